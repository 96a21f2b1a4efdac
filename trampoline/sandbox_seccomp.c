/* A seccomp-bpf filter: allow by default, deny what a job has no business
 * doing. Denied calls fail with EPERM rather than killing the child, so the
 * job sees an ordinary OSError and its result says what happened. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

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
    /* Staying in the process group lets the pool kill every process a job
     * starts with one signal. */
    "setsid",
    "setpgid",
};

int sandbox_seccomp_apply(bool deny_inet, rb_err *err)
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
    /* glibc falls back from clone3 to clone only on ENOSYS, so that is the
     * answer that keeps threads and subprocesses working; clone's own flags
     * cannot ask for new namespaces here because unshare/setns-level rights
     * were never granted (no capabilities after the user switch). */
    if (rc == 0) {
        what = "clone3";
        int nr = seccomp_syscall_resolve_name("clone3");
        if (nr != __NR_SCMP_ERROR) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
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
    what = "load";
    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) return rb_err_set(err, "seccomp_load: %s", strerror(-rc));
    return 0;
}
