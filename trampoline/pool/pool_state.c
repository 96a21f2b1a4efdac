/*
 * pool_state.c - what the pool's parts share, below all of them: the log
 * and the job records (finishing one, putting one back in front).
 * pool.c (the API), slot.c and mother_link.c call down here, never up.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_internal.h"

const char *rb_mode_name(rb_mode m)
{
    return m == RB_MODE_INTERNAL ? "internal" : m == RB_MODE_CONTAINER ? "container" : "native";
}

int rb_mode_parse(const char *s, rb_mode *out)
{
    if (strcmp(s, "internal") == 0)
        *out = RB_MODE_INTERNAL;
    else if (strcmp(s, "native") == 0)
        *out = RB_MODE_NATIVE;
    else if (strcmp(s, "container") == 0)
        *out = RB_MODE_CONTAINER;
    else
        return -1;
    return 0;
}

void pool_log(const rb_pool *pool, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (pool->cfg.log)
        pool->cfg.log(pool->cfg.log_ctx, line);
    else
        fprintf(stderr, "rebound-pool: %s\n", line);
}

/* ---- jobs and results ----------------------------------------------------- */

void pool_note_sandbox(rb_pool *pool, const char *report)
{
    if (pool->sandbox && strcmp(pool->sandbox, report) == 0) return;
    free(pool->sandbox);
    pool->sandbox = strdup(report);
    pool->sandbox_missing = strstr(report, "missing:") != NULL;
}

void pool_finish(rb_pool *pool, slot *s, rb_status st, const char *etype, const char *emsg)
{
    pool_job *job = s->job;
    s->job = NULL;
    pool_done *d = job->done; /* allocated with the job: nothing can fail here */
    job->done = NULL;
    d->res.tag = job->tag;
    d->res.status = st;
    d->res.error_type = etype ? strdup(etype) : NULL;
    d->res.error_message = emsg ? strdup(emsg) : NULL;
    d->res.call_results_len = s->calls.size;
    d->res.call_results = msgpack_sbuffer_release(&s->calls);
    d->res.ncalls = s->ncalls;
    d->res.done_ns = rb_mono_ns();
    d->res.ms = (double)(d->res.done_ns - job->submit_ns) / 1e6;
    d->res.started_ns = s->job_written == job->len ? s->job_started_ns : 0;
    d->res.usage = s->usage;
    d->res.exit = s->exit;
    memset(&s->usage, 0, sizeof s->usage);
    memset(&s->exit, 0, sizeof s->exit);
    if (pool->done_tail)
        pool->done_tail->next = d;
    else
        pool->done_head = d;
    pool->done_tail = d;
    pool->recent_ms[pool->recent_n++ % 64] = d->res.ms;
    pool->jobs[st]++;
    pool_job_free(job);
}

void pool_requeue_front(rb_pool *pool, pool_job *job)
{
    job->next = pool->queue_head;
    pool->queue_head = job;
    if (!pool->queue_tail) pool->queue_tail = job;
    pool->queued++;
}

void pool_job_free(pool_job *job)
{
    free(job->done);
    free(job->files);
    free(job->wire);
    free(job);
}
