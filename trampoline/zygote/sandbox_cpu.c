/*
 * sandbox_cpu.c - a CPU per slot.
 *
 * A job with a dozen spinning processes would otherwise take the CPU the
 * other slots' jobs need (measured: 4-8 times slower). Each slot gets one
 * CPU of the mother's, round them from the worker's global slot number (as
 * isolate gives each box its CPU set). A child moves onto it while it sets
 * itself up, before it says ready, and installs a second seccomp filter
 * that refuses sched_setaffinity: the job and everything it starts stay
 * there (a filter cannot read the mask a call passes, so the call is
 * refused outright), and no other job can move the spare either.
 *
 * Why not a cpuset control group per slot: the zygote would live on that
 * CPU too, and the next spare would be made on the CPU the job is using;
 * measured, the trivial job's p50 went from 0.21 to 0.52 ms and the
 * throughput down a fifth. --shared-cpus turns it off.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include <seccomp.h>

#include "sandbox.h"

void sandbox_cpu_prepare(sandbox_plan *plan)
{
    plan->pin = false;
    if (plan->cfg.shared_cpus || !plan->have_cpus || CPU_COUNT(&plan->cpus) < 2) return;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return;
    rb_err err = {{0}};
    plan->pin = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(sched_setaffinity), 0) == 0 &&
                sandbox_seccomp_export(ctx, &plan->pin_bpf, &plan->pin_bpf_len, &err) == 0;
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
    return sandbox_seccomp_install(plan->pin_bpf, plan->pin_bpf_len, err);
}
