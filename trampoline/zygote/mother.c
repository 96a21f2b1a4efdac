/*
 * mother.c - the preloaded interpreter that forks zygotes.
 *
 * The pool asks for a zygote per slot ("spawn", passing the zygote's end of
 * a fresh control socket); the mother forks and answers with the pid. A
 * zygote forked from here shares the mother's pages, so each extra slot
 * costs little memory and replacing a dead zygote costs a fork, not a cold
 * start of Python.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Python.h>

#include "ctl.h"
#include "trampoline.h"

static void reply(int sock, ctl_type type, long long slot, long long pid, const char *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    ctl_msg_init(&sb, &pk, type, 2);
    rb_pack_key(&pk, "slot");
    msgpack_pack_int64(&pk, slot);
    if (err) {
        rb_pack_key(&pk, "err");
        rb_pack_cstr(&pk, err);
    } else {
        rb_pack_key(&pk, "pid");
        msgpack_pack_int64(&pk, pid);
    }
    ctl_send_sbuf(sock, &sb, NULL, 0);
    msgpack_sbuffer_destroy(&sb);
}

static void spawn(tr_state *st, int sock, int sigfd, long long slot, int zctl)
{
    /* Without the fork hooks (main.c says when), no Python runs in the
     * zygote after this fork, so it writes nothing of the interpreter's
     * memory and keeps it on the huge pages it shares with us (arenas.c). */
    bool hooks = st->fork_hooks;
    if (hooks) PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        if (hooks) PyOS_AfterFork_Child();
        close(sock);
        close(sigfd);
        zygote_run(st, (int)slot, zctl);
    }
    if (hooks) PyOS_AfterFork_Parent();
    close(zctl);
    if (pid < 0)
        reply(sock, CTL_SPAWN_FAILED, slot, 0, strerror(errno));
    else
        reply(sock, CTL_SPAWNED, slot, pid, NULL);
}

int mother_run(tr_state *st)
{
    int sock = st->cfg.control_fd;
    int sigfd = tr_sigchld_fd();
    if (sigfd < 0) {
        tr_log("signalfd: %s", strerror(errno));
        return 1;
    }

    static char buf[CTL_MAX_MSG];
    for (;;) {
        struct pollfd pfd[2] = {{sock, POLLIN, 0}, {sigfd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0 && errno != EINTR) return 1;

        if (pfd[1].revents) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) > 0) {
            }
            /* Zygotes are reaped here; the pool learns of a death from its
             * control socket closing. A zygote that was killed could not
             * clean up after its last child. */
            pid_t pid;
            while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
                tmpdir_remove_zygote(pid);
        }
        if (!pfd[0].revents) continue;

        int fds[CTL_MAX_FDS], nfds = 0;
        ssize_t n = ctl_recv(sock, buf, sizeof buf, fds, &nfds);
        if (n == 0) {
            /* The pool is done with us. It closed the zygotes' sockets
             * first, so they are cleaning up and exiting: wait for them
             * (bounded), or they would be killed mid-way by PDEATHSIG. */
            alarm(2);
            pid_t pid;
            while ((pid = waitpid(-1, NULL, 0)) > 0)
                tmpdir_remove_zygote(pid);
            return 0;
        }
        if (n < 0) {
            if (errno == EAGAIN) continue;
            tr_log("control socket: %s", strerror(errno));
            return 1;
        }
        msgpack_unpacked unp;
        ctl_type type;
        if (ctl_parse(ctl_payload(buf), (size_t)n, &unp, &type) == 0 && type == CTL_SPAWN &&
            nfds == 1) {
            spawn(st, sock, sigfd, ctl_get_int(&unp.data, "slot", -1), fds[0]);
        } else {
            tr_log("unexpected control message");
            for (int i = 0; i < nfds; i++)
                close(fds[i]);
        }
        msgpack_unpacked_destroy(&unp);
    }
}
