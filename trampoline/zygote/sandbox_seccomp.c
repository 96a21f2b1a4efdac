/* A seccomp-bpf filter: allow by default, deny what a job has no business
 * doing. Denied calls fail with EPERM rather than killing the child, so the
 * job sees an ordinary OSError and its result says what happened. */
#include <errno.h>
#include <string.h>
#include <linux/filter.h>
#include <sched.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox.h"

static const char *const denied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "unshare",
    "setns",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
};

/* Without a PID namespace, staying in the process group lets the pool kill
 * every process a job starts with one signal. */
static const char *const group_leaving[] = {"setsid", "setpgid"};

/* Build the filter with libseccomp and keep its BPF program: generating it
 * costs far more than installing it, and only installing happens per child. */
int sandbox_seccomp_build(bool deny_inet, bool deny_setsid, sandbox_plan *plan, rb_err *err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return rb_err_set(err, "seccomp_init failed");
    int rc = 0;
    const char *what = "";
    for (size_t i = 0; i < sizeof denied / sizeof denied[0] && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR) continue; /* not on this architecture */
        what = denied[i];
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    for (size_t i = 0; deny_setsid && i < 2 && rc == 0; i++) {
        what = group_leaving[i];
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), seccomp_syscall_resolve_name(what), 0);
    }
    /* clone3 passes its flags in memory, where a filter cannot look: it
     * answers ENOSYS, on which glibc falls back to clone, whose flags a
     * filter can check. New namespaces through clone are refused like
     * unshare (an unprivileged user namespace would need nothing else). */
    if (rc == 0) {
        what = "clone3";
        int nr = seccomp_syscall_resolve_name("clone3");
        if (nr != __NR_SCMP_ERROR) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    }
    static const unsigned long ns_flags[] = {CLONE_NEWUSER,  CLONE_NEWNS,  CLONE_NEWNET,
                                             CLONE_NEWPID,   CLONE_NEWIPC, CLONE_NEWUTS,
                                             CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0] && rc == 0; i++) {
        what = "clone(CLONE_NEW*)";
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    }
    /* A job may lower its own priority (os.nice), not that of other
     * processes of the run-as user: the other slots' jobs. */
    if (rc == 0) {
        what = "setpriority";
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setpriority), 1,
                              SCMP_A0(SCMP_CMP_NE, PRIO_PROCESS));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setpriority), 1,
                                  SCMP_A1(SCMP_CMP_NE, 0));
    }
    if (rc == 0 && deny_inet) {
        what = "socket(AF_INET)";
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, AF_INET));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                                  SCMP_A0(SCMP_CMP_EQ, AF_INET6));
    }
    if (rc != 0) {
        seccomp_release(ctx);
        return rb_err_set(err, "seccomp rule %s: %s", what, strerror(-rc));
    }
    rc = sandbox_seccomp_export(ctx, &plan->bpf, &plan->bpf_len, err);
    seccomp_release(ctx);
    return rc;
}

int sandbox_seccomp_export(void *ctx, struct sock_filter **bpf, unsigned short *len, rb_err *err)
{
    *bpf = NULL;
    *len = 0;
    int fd = memfd_create("rebound-seccomp", MFD_CLOEXEC);
    if (fd < 0) return rb_err_set(err, "memfd_create: %s", strerror(errno));
    int rc = seccomp_export_bpf(ctx, fd);
    off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (size <= 0 || size % sizeof(struct sock_filter) != 0) {
        close(fd);
        return rb_err_set(err, "seccomp_export_bpf: %s", rc ? strerror(-rc) : "empty program");
    }
    *bpf = malloc((size_t)size);
    if (!*bpf || pread(fd, *bpf, (size_t)size, 0) != size) {
        close(fd);
        free(*bpf);
        *bpf = NULL;
        return rb_err_set(err, "seccomp: cannot read the exported program");
    }
    close(fd);
    *len = (unsigned short)(size / sizeof(struct sock_filter));
    return 0;
}

int sandbox_seccomp_install(const struct sock_filter *bpf, unsigned short len, rb_err *err)
{
    struct sock_fprog prog = {.len = len, .filter = (struct sock_filter *)bpf};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        return rb_err_set(err, "seccomp(SECCOMP_SET_MODE_FILTER): %s", strerror(errno));
    return 0;
}

int sandbox_seccomp_apply(const sandbox_plan *plan, rb_err *err)
{
    if (!plan->bpf) return rb_err_set(err, "seccomp: %s", plan->seccomp_error);
    return sandbox_seccomp_install(plan->bpf, plan->bpf_len, err);
}
