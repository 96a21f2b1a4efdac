/* Resource limits of a child. */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sandbox.h"

#define CHILD_FSIZE (256ull << 20) /* largest file a job may write */
#define CHILD_NOFILE 256
#define CHILD_NPROC 128 /* processes of the run-as user, all slots together */
/* With a control group bounding each job's tasks (sandbox_cgroup.c), the
 * per-user limit is only a backstop: jobs of slots sharing one user (with
 * --uid-base 0) must not take each other's processes. */
#define CHILD_NPROC_BACKSTOP 4096

static int set_limit(int resource, const char *name, rlim_t value, rb_err *err)
{
    struct rlimit rl = {value, value};
    if (setrlimit(resource, &rl) == 0) return 0;
    return rb_err_set(err, "setrlimit(%s): %s", name, strerror(errno));
}

int sandbox_rlimits_apply(const sandbox_plan *plan, rb_err *err)
{
    /* The limit (0: none) is on what the job adds: the inherited interpreter with its
     * preloaded libraries already maps a few hundred MB (and far more under
     * AddressSanitizer, whose shadow memory is reserved up front). */
    rlim_t as = ((rlim_t)plan->base_vsz_kb << 10) + ((rlim_t)plan->cfg.mem_limit_mb << 20);
    if (plan->cfg.mem_limit_mb > 0 && set_limit(RLIMIT_AS, "RLIMIT_AS", as, err) != 0) return -1;
    if (set_limit(RLIMIT_FSIZE, "RLIMIT_FSIZE", CHILD_FSIZE, err) != 0) return -1;
    if (set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", CHILD_NOFILE, err) != 0) return -1;
    if (set_limit(RLIMIT_CORE, "RLIMIT_CORE", 0, err) != 0) return -1;
    /* RLIMIT_NPROC counts every process of the real user: only meaningful
     * once the child runs as its own unprivileged user. */
    rlim_t nproc = plan->cgroups.ready ? CHILD_NPROC_BACKSTOP : CHILD_NPROC;
    if (plan->switch_user && set_limit(RLIMIT_NPROC, "RLIMIT_NPROC", nproc, err) != 0) return -1;
    return 0;
}

void sandbox_limit_cpu(long long timeout_ms, long cpus)
{
    /* A backstop behind the pool's wall clock, which never fires first: a
     * job's threads can burn at most one CPU-second per core per second. */
    rlim_t secs = (rlim_t)((timeout_ms + 999) / 1000) * (rlim_t)(cpus > 0 ? cpus : 1) + 2;
    struct rlimit rl = {secs, secs + 1};
    setrlimit(RLIMIT_CPU, &rl);
}
