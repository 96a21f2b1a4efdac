/*
 * rebound-init - the first process of a job's PID namespace.
 *
 * A zygote starts one per child, in a new PID namespace, and forks the
 * child into that namespace beside it: the job is pid 2, and everything it
 * starts (setsid, double-forked daemons included) lives in the namespace
 * too. When the job's child ends, the zygote kills this process, and the
 * kernel kills everything left in the namespace with it.
 *
 * Why not let the job be pid 1 itself: the kernel ignores signals a
 * namespace's init sends itself without a handler, so a job's
 * os.kill(os.getpid(), SIGKILL) or abort() would not end it.
 *
 * Until then it reaps orphans re-parented to it (else their zombies would
 * hold pids of the job's process bound) and dies with the zygote, whose
 * pidfd it gets as fd 3. It is a static binary of a few pages: exec'ing it
 * costs little next to the fork of a child. Nothing of the job runs here.
 */
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define ZYGOTE_PIDFD 3

int main(void)
{
    prctl(PR_SET_NAME, "rebound-init");
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    for (;;) {
        /* The zygote died before the death signal was set (or the pidfd
         * reads as ended): nobody would kill us. */
        struct pollfd p[2] = {{ZYGOTE_PIDFD, POLLIN, 0}, {sfd, POLLIN, 0}};
        int n = poll(p, sfd >= 0 ? 2 : 1, sfd >= 0 ? -1 : 1000);
        if (n < 0) continue;
        if (p[0].revents) _exit(0);
        struct signalfd_siginfo si;
        while (sfd >= 0 && read(sfd, &si, sizeof si) > 0) {
        }
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
    }
}
