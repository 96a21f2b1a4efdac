/* consumer_hb.c - the consumer's side of its Redis heartbeat: what the
 * heartbeat reports, and where its log lines go. */
#include <stdio.h>
#include <unistd.h>

#include "consumer_internal.h"
#include "worker_log.h"

const char *rb_consumer_state(const rb_consumer *c)
{
    if (c->draining) return "draining";
    if (c->amqp && c->blocked) return "blocked";
    if (c->amqp) return "ready";
    return c->ever_connected ? "reconnecting" : "starting";
}

/* At warning level: every line the heartbeat logs is about trouble with its
 * Redis (unreachable, reachable again, not deregistered). The line already
 * says "heartbeat:". */
void rb_consumer_hb_log(void *ctx, const char *line)
{
    (void)ctx;
    rb_warn("%s", line);
}

/* Resident memory of this process in KiB, from /proc/self/statm. */
static uint64_t own_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2) return 0;
    long page = sysconf(_SC_PAGESIZE);
    return resident * (uint64_t)(page > 0 ? page : 4096) / 1024;
}

void rb_consumer_hb_fill(void *ctx, rb_hb_info *info)
{
    const rb_consumer *c = ctx;
    rb_pool_stats st;
    /* Called only when a beat is due: the /proc walk is affordable here. */
    rb_pool_get_stats(c->pool, &st, true);
    info->id = c->id;
    info->host = c->host;
    info->pid = (long)getpid();
    info->queue = c->cfg->queue;
    info->mode = rb_mode_name(c->cfg->mode);
    info->version = REBOUND_VERSION;
    info->python = rb_pool_python(c->pool);
    info->state = rb_consumer_state(c);
    info->started_ms = c->started_ms;
    info->slots = st.slots;
    info->busy = st.busy;
    info->jobs_ok = st.jobs[RB_STATUS_OK];
    info->jobs_error = st.jobs[RB_STATUS_ERROR];
    info->jobs_timeout = st.jobs[RB_STATUS_TIMEOUT];
    /* With the jobs answered crashed on their last delivery, never run. */
    info->jobs_crashed = st.jobs[RB_STATUS_CRASHED] + c->jobs_crashed_unrun;
    info->jobs_rejected = c->jobs_rejected;
    info->redelivered = c->redelivered;
    info->results_unroutable = c->results_unroutable;
    info->last_job_ms = c->last_job_ms;
    info->avg_run_ms = st.avg_run_ms;
    info->cpu_ms_total = c->cpu_ms_total;
    info->rss_kb = own_rss_kb() + st.rss_kb;
    info->preload_failed = rb_pool_preload_failed(c->pool);
    info->sandbox = rb_pool_sandbox(c->pool);
}
