/*
 * hb_fields.c - the layout of the P:worker:<id> hash and the key names.
 * This is the Redis contract dashboards read: field names and number
 * formats change only together with the README.
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "health_internal.h"

typedef struct field_builder {
    rb_hb_fields *f;
    int n;
} field_builder;

static void add_str(field_builder *b, const char *name, const char *value)
{
    b->f->name[b->n] = name;
    b->f->value[b->n] = value != NULL ? value : "";
    b->n++;
}

static void add_i64(field_builder *b, const char *name, int64_t v)
{
    snprintf(b->f->num[b->n], sizeof b->f->num[b->n], "%" PRId64, v);
    add_str(b, name, b->f->num[b->n]);
}

static void add_u64(field_builder *b, const char *name, uint64_t v)
{
    snprintf(b->f->num[b->n], sizeof b->f->num[b->n], "%" PRIu64, v);
    add_str(b, name, b->f->num[b->n]);
}

static void add_double(field_builder *b, const char *name, double v)
{
    /* readers parse this as a JSON number: no nan/inf */
    if (!isfinite(v)) v = 0.0;
    snprintf(b->f->num[b->n], sizeof b->f->num[b->n], "%.2f", v);
    add_str(b, name, b->f->num[b->n]);
}

void rb_hb_fields_make(rb_hb_fields *f, const rb_hb_info *info, int64_t beat_ms)
{
    field_builder b = {f, 0};
    add_str(&b, "id", info->id);
    add_str(&b, "host", info->host);
    add_i64(&b, "pid", info->pid);
    add_str(&b, "queue", info->queue);
    add_str(&b, "mode", info->mode);
    add_str(&b, "version", info->version);
    add_str(&b, "python", info->python);
    add_str(&b, "state", info->state);
    add_i64(&b, "started_ms", info->started_ms);
    add_i64(&b, "beat_ms", beat_ms);
    add_i64(&b, "slots", info->slots);
    add_i64(&b, "busy", info->busy);
    add_u64(&b, "jobs_ok", info->jobs_ok);
    add_u64(&b, "jobs_error", info->jobs_error);
    add_u64(&b, "jobs_timeout", info->jobs_timeout);
    add_u64(&b, "jobs_crashed", info->jobs_crashed);
    add_u64(&b, "jobs_rejected", info->jobs_rejected);
    add_u64(&b, "redelivered", info->redelivered);
    add_u64(&b, "results_unroutable", info->results_unroutable);
    add_i64(&b, "last_job_ms", info->last_job_ms);
    add_double(&b, "avg_run_ms", info->avg_run_ms);
    add_double(&b, "cpu_ms_total", info->cpu_ms_total);
    add_u64(&b, "rss_kb", info->rss_kb);
    add_str(&b, "preload_failed", info->preload_failed);
    add_str(&b, "sandbox", info->sandbox);
    assert(b.n == RB_HB_NFIELDS);
}

int rb_hb_worker_key(char *buf, size_t len, const char *prefix, const char *id)
{
    int n = snprintf(buf, len, "%s:worker:%s", prefix, id);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int rb_hb_set_key(char *buf, size_t len, const char *prefix)
{
    int n = snprintf(buf, len, "%s:workers", prefix);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}
