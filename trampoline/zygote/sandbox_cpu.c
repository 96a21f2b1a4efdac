/*
 * sandbox_cpu.c - a CPU per slot.
 *
 * A job with a dozen spinning processes would otherwise take the CPU the
 * other slots' jobs need (measured: 4-8 times slower). Each slot gets one
 * CPU of the mother's, round them from the worker's global slot number (as
 * isolate gives each box its CPU set), and a child moves onto it as its job
 * arrives, then installs a second seccomp filter that refuses
 * sched_setaffinity: the job and everything it starts stay there (a filter
 * cannot read the mask a call passes, so the call is refused outright).
 *
 * Why not a cpuset control group per slot: the zygote and its spare would
 * live on that CPU too, and the next spare would be made on the CPU the
 * job is using; measured, the trivial job's p50 went from 0.21 to 0.52 ms
 * and the throughput down a fifth. Pinned as it takes its job, a child
 * costs one system call more. --shared-cpus turns it off.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox.h"

void sandbox_cpu_prepare(sandbox_plan *plan)
{
    plan->pin = false;
    if (plan->cfg.shared_cpus || !plan->have_cpus || CPU_COUNT(&plan->cpus) < 2) return;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return;
    int fd = -1;
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(sched_setaffinity), 0) == 0 &&
        (fd = memfd_create("rebound-pin", MFD_CLOEXEC)) >= 0 && seccomp_export_bpf(ctx, fd) == 0) {
        off_t size = lseek(fd, 0, SEEK_END);
        if (size > 0 && size % sizeof(struct sock_filter) == 0 &&
            (plan->pin_bpf = malloc((size_t)size)) != NULL &&
            pread(fd, plan->pin_bpf, (size_t)size, 0) == size) {
            plan->pin_bpf_len = (unsigned short)(size / sizeof(struct sock_filter));
            plan->pin = true;
        }
    }
    if (fd >= 0) close(fd);
    seccomp_release(ctx);
}

void sandbox_cpu_for_slot(sandbox_plan *plan, int slot)
{
    if (!plan->pin) return;
    int want = (int)((plan->cfg.slot_offset + slot) % CPU_COUNT(&plan->cpus));
    CPU_ZERO(&plan->slot_cpus);
    for (int c = 0, seen = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &plan->cpus) && seen++ == want) {
            CPU_SET(c, &plan->slot_cpus);
            break;
        }
}

int sandbox_cpu_pin(const sandbox_plan *plan, rb_err *err)
{
    if (sched_setaffinity(0, sizeof plan->slot_cpus, &plan->slot_cpus) != 0)
        return rb_err_set(err, "sched_setaffinity: %s", strerror(errno));
    struct sock_fprog prog = {.len = plan->pin_bpf_len, .filter = plan->pin_bpf};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        return rb_err_set(err, "seccomp (sched_setaffinity): %s", strerror(errno));
    return 0;
}
