/*
 * sandbox_spare.c - a spare's state set right again as it takes a job.
 *
 * A spare waits for its job as the slot's user, next to the job that runs
 * on the slot now, which runs as that same user: that job can lower the
 * spare's limits (prlimit), make it SCHED_IDLE, pin it to one CPU or give
 * it the idle I/O class, and the next job, another sender's, would run so.
 * When the job arrives, the child sets each of these again to what the
 * sandbox gives. What it cannot set again without privileges (a hard limit
 * lowered below the plan's; SCHED_IDLE, which RLIMIT_NICE 0 does not let it
 * leave) makes it refuse the job before anything of it runs: the pool hands
 * the job to the next spare (once), forked after the job that did this.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_DEFAULT 0 /* class none: the best-effort level of the nice value */

void sandbox_spare_prepare(sandbox_plan *plan)
{
    CPU_ZERO(&plan->cpus);
    plan->have_cpus = sched_getaffinity(0, sizeof plan->cpus, &plan->cpus) == 0;
}

int sandbox_spare_reset(const sandbox_plan *plan, rb_err *err)
{
    if (sandbox_rlimits_apply(plan, err) != 0) return -1;
    if (sched_getscheduler(0) != SCHED_OTHER) {
        struct sched_param none = {0};
        if (sched_setscheduler(0, SCHED_OTHER, &none) != 0)
            return rb_err_set(err, "sched_setscheduler(SCHED_OTHER): %s", strerror(errno));
    }
    /* Pinned (sandbox_cpu.c), no job can have moved it: every job is
     * refused sched_setaffinity. */
    if (!plan->pin && plan->have_cpus && sched_setaffinity(0, sizeof plan->cpus, &plan->cpus) != 0)
        return rb_err_set(err, "sched_setaffinity: %s", strerror(errno));
    if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_DEFAULT) != 0)
        return rb_err_set(err, "ioprio_set: %s", strerror(errno));
    return 0;
}
