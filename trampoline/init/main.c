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
 *
 * On x86-64 it is built without the C library (system calls made here, and
 * a _start of its own): glibc's start-up asks the CPU about its caches with
 * dozens of cpuid instructions, each a trap to the hypervisor on a virtual
 * machine, and that was a tenth of a trivial job's CPU there (perf: 3% of
 * all samples of the pool's throughput run, in handle_amd and friends,
 * against 25% in the job's child). Elsewhere the same loop runs on libc.
 */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define ZYGOTE_PIDFD 3

#if defined(__x86_64__)

static long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static long sys4(long nr, long a, long b, long c, long d)
{
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

/* The kernel's signal sets are 64 bits here, not glibc's 1024. */
typedef uint64_t kernel_sigset;
#define SIGSET_BYTES sizeof(kernel_sigset)

static void init_exit(void)
{
    for (;;)
        sys3(SYS_exit_group, 0, 0, 0);
}
static void set_name(void)
{
    sys3(SYS_prctl, PR_SET_NAME, (long)"rebound-init", 0);
}
static void die_with_parent(void)
{
    sys3(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0);
}
static void block_all_signals(void)
{
    kernel_sigset all = ~(kernel_sigset)0;
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, SIGSET_BYTES);
}
static int sigchld_fd(void)
{
    kernel_sigset chld = (kernel_sigset)1 << (SIGCHLD - 1);
    return (int)sys4(SYS_signalfd4, -1, (long)&chld, SIGSET_BYTES, SFD_CLOEXEC | SFD_NONBLOCK);
}
static int poll_fds(struct pollfd *p, int n, int timeout_ms)
{
    return (int)sys3(SYS_poll, (long)p, n, timeout_ms);
}
static long read_fd(int fd, void *buf, unsigned long len)
{
    return sys3(SYS_read, fd, (long)buf, (long)len);
}
static int reap_one(void)
{
    return (int)sys4(SYS_wait4, -1, 0, WNOHANG, 0);
}

#else /* the C library's */

#include <unistd.h>

static void init_exit(void)
{
    _exit(0);
}
static void set_name(void)
{
    prctl(PR_SET_NAME, "rebound-init");
}
static void die_with_parent(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}
static void block_all_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}
static int sigchld_fd(void)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    return signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
}
static int poll_fds(struct pollfd *p, int n, int timeout_ms)
{
    return poll(p, (nfds_t)n, timeout_ms);
}
static long read_fd(int fd, void *buf, unsigned long len)
{
    return read(fd, buf, len);
}
static int reap_one(void)
{
    return waitpid(-1, NULL, WNOHANG);
}

#endif

static void init_loop(void)
{
    set_name();
    die_with_parent();
    block_all_signals();
    int sfd = sigchld_fd();
    for (;;) {
        /* The zygote died before the death signal was set (or the pidfd
         * reads as ended): nobody would kill us. */
        struct pollfd p[2];
        p[0].fd = ZYGOTE_PIDFD;
        p[0].events = POLLIN;
        p[0].revents = 0;
        p[1].fd = sfd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        int n = poll_fds(p, sfd >= 0 ? 2 : 1, sfd >= 0 ? -1 : 1000);
        if (n < 0) continue;
        if (p[0].revents) init_exit();
        struct signalfd_siginfo si;
        while (sfd >= 0 && read_fd(sfd, &si, sizeof si) > 0) {
        }
        while (reap_one() > 0) {
        }
    }
}

#if defined(__x86_64__)
/* The kernel enters here with the stack as the ABI wants it before a call,
 * less the return address: align it and call in. */
__attribute__((noreturn, used)) void init_start(void)
{
    init_loop();
    init_exit();
    __builtin_unreachable();
}
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    and $-16, %rsp\n"
        "    call init_start\n"
        "    hlt\n");
#else
int main(void)
{
    init_loop();
    return 0;
}
#endif
