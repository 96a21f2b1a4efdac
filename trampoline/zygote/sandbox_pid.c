/*
 * sandbox_pid.c - a PID namespace per child, with rebound-init as its pid 1.
 *
 * Per child, the zygote starts rebound-init in a new PID namespace, points
 * its own "namespace for children" at it (setns), forks the child (which is
 * born there as pid 2), and points it back. The job then sees only its own
 * processes (with its own /proc, sandbox_mount.c), cannot signal anything
 * outside, and whatever it starts, setsid or double fork, dies with the
 * namespace when the zygote kills the init after the child has ended. So
 * setsid and setpgid need not be denied.
 *
 * The init is started like posix_spawn does (clone with CLONE_VM and
 * CLONE_VFORK: no copy of the zygote's page tables, the zygote waits until
 * the exec) and exec'd from a descriptor opened by the mother before any
 * path was hidden.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

#define INIT_NAME "rebound-init"
#define INIT_ZYGOTE_PIDFD 3

static int own_pidns = -1; /* the zygote's own namespace, to point back to */
static int zygote_pidfd = -1;

int sandbox_pid_prepare(sandbox_plan *plan, rb_err *err)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - sizeof INIT_NAME - 2);
    if (n <= 0) return rb_err_set(err, "readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    snprintf(slash + 1, sizeof exe - (size_t)(slash + 1 - exe), "%s", INIT_NAME);
    plan->init_fd = open(exe, O_PATH | O_CLOEXEC);
    if (plan->init_fd < 0) return rb_err_set(err, "pidns: %s: %s", exe, strerror(errno));
    /* Try it once: a kernel or container that refuses PID namespaces is
     * found here, and the filter keeps denying setsid then. */
    if (sandbox_pid_zygote_start(err) != 0) return -1;
    int pidfd = -1;
    pid_t pid = sandbox_pid_start_init(plan, &pidfd, err);
    sandbox_pid_close();
    if (pid < 0) return -1;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(pidfd);
    return 0;
}

int sandbox_pid_zygote_start(rb_err *err)
{
    own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (own_pidns < 0) return rb_err_set(err, "open /proc/self/ns/pid: %s", strerror(errno));
    zygote_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (zygote_pidfd < 0) return rb_err_set(err, "pidfd_open: %s", strerror(errno));
    fcntl(zygote_pidfd, F_SETFD, FD_CLOEXEC);
    return 0;
}

void sandbox_pid_close(void)
{
    if (own_pidns >= 0) close(own_pidns);
    if (zygote_pidfd >= 0) close(zygote_pidfd);
    own_pidns = zygote_pidfd = -1;
}

typedef struct init_args {
    int exe_fd;
    int zygote_pidfd;
} init_args;

/* Runs on the zygote's memory until the exec: system calls only. */
__attribute__((no_sanitize("address", "undefined"))) static int exec_init(void *p)
{
    const init_args *a = p;
    char *const argv[] = {(char *)INIT_NAME, NULL};
    char *const envp[] = {NULL};
    if (syscall(SYS_dup2, a->zygote_pidfd, INIT_ZYGOTE_PIDFD) < 0) syscall(SYS_exit, 127);
    syscall(SYS_execveat, a->exe_fd, "", argv, envp, AT_EMPTY_PATH);
    syscall(SYS_exit, 127);
    return 127;
}

pid_t sandbox_pid_start_init(const sandbox_plan *plan, int *pidfd, rb_err *err)
{
    static char stack[16384] __attribute__((aligned(16)));
    init_args a = {plan->init_fd, zygote_pidfd};
    *pidfd = -1;
    /* The zygote's SIGCHLD is blocked (it reads a signalfd): nothing runs
     * on this stack but exec_init. */
    pid_t pid = clone(exec_init, stack + sizeof stack,
                      CLONE_VM | CLONE_VFORK | CLONE_NEWPID | CLONE_PIDFD | SIGCHLD, &a, pidfd);
    if (pid < 0) return rb_err_set(err, "clone(CLONE_NEWPID): %s", strerror(errno));
    /* The exec failed: the init exited at once. */
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
        close(*pidfd);
        *pidfd = -1;
        return rb_err_set(err, "pidns: cannot start " INIT_NAME " (exit status %d)",
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    fcntl(*pidfd, F_SETFD, FD_CLOEXEC);
    return pid;
}

int sandbox_pid_enter(int init_pidfd, rb_err *err)
{
    if (setns(init_pidfd, CLONE_NEWPID) != 0)
        return rb_err_set(err, "setns(CLONE_NEWPID): %s", strerror(errno));
    return 0;
}

void sandbox_pid_leave(void)
{
    /* Cannot fail for one's own namespace; if it did, the next init's clone
     * would fail, and be reported there. */
    if (own_pidns >= 0) (void)setns(own_pidns, CLONE_NEWPID);
}

bool sandbox_pid_zygote_alive(void)
{
    if (zygote_pidfd < 0) return true; /* cannot tell: the death signal remains */
    struct pollfd p = {zygote_pidfd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}
