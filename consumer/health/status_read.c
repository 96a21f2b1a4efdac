/*
 * status_read.c - one look at the heartbeats: the sorted set says who has
 * beaten recently, each hash says what it reported. A member whose hash has
 * expired is a worker that stopped beating without deregistering (killed,
 * host gone, network split): it is shown as lost until a live writer prunes
 * it from the set.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "health_internal.h"
#include "status.h"

#define KEY_MAX 1024

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int64_t parse_i64(const char *s, int64_t fallback)
{
    if (s == NULL || *s == '\0') return fallback;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno != 0 || *end != '\0' ? fallback : (int64_t)v;
}

static uint64_t parse_u64(const char *s)
{
    int64_t v = parse_i64(s, 0);
    return v < 0 ? 0 : (uint64_t)v;
}

const char *rb_worker_field(const rb_worker_row *w, const char *name)
{
    for (size_t i = 0; i < w->nfields; i++)
        if (strcmp(w->names[i], name) == 0) return w->values[i];
    return NULL;
}

static void row_free(rb_worker_row *w)
{
    for (size_t i = 0; i < w->nfields; i++) {
        free(w->names[i]);
        free(w->values[i]);
    }
    free(w->names);
    free(w->values);
    free(w->id);
}

void rb_status_snapshot_free(rb_status_snapshot *s)
{
    for (size_t i = 0; i < s->n; i++)
        row_free(&s->rows[i]);
    free(s->rows);
    s->rows = NULL;
    s->n = 0;
}

static const char *field_or_dash(const rb_worker_row *w, const char *name)
{
    const char *v = rb_worker_field(w, name);
    return v != NULL && *v != '\0' ? v : "-";
}

const char *const rb_status_job_fields[RB_JOB_KINDS] = {"jobs_ok", "jobs_error", "jobs_timeout",
                                                        "jobs_crashed", "jobs_rejected"};

static void row_parse(rb_worker_row *w, int64_t look_ms)
{
    w->host = field_or_dash(w, "host");
    w->state = w->lost ? "lost" : field_or_dash(w, "state");
    w->slots = (long)parse_i64(rb_worker_field(w, "slots"), 0);
    w->busy = (long)parse_i64(rb_worker_field(w, "busy"), 0);
    for (int k = 0; k < RB_JOB_KINDS; k++)
        w->jobs[k] = parse_u64(rb_worker_field(w, rb_status_job_fields[k]));
    w->redelivered = parse_u64(rb_worker_field(w, "redelivered"));
    w->rss_kb = parse_u64(rb_worker_field(w, "rss_kb"));
    if (!w->lost) w->beat_ms = parse_i64(rb_worker_field(w, "beat_ms"), w->beat_ms);
    w->age_ms = look_ms > w->beat_ms ? look_ms - w->beat_ms : 0;
}

/* The hash of one member; an empty reply means it expired. */
static int row_fill(rb_worker_row *w, const redisReply *h, rb_err *err)
{
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements % 2 != 0)
        return rb_err_set(err, "HGETALL of worker %s: unexpected reply", w->id);
    w->lost = h->elements == 0;
    size_t n = h->elements / 2;
    if (n == 0) return 0;
    w->names = calloc(n, sizeof *w->names);
    w->values = calloc(n, sizeof *w->values);
    if (w->names == NULL || w->values == NULL) return rb_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = h->element[2 * i], *v = h->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return rb_err_set(err, "HGETALL of worker %s: unexpected reply", w->id);
        w->names[i] = dup_n(k->str, k->len);
        w->values[i] = dup_n(v->str, v->len);
        w->nfields = i + 1; /* so that row_free frees what exists */
        if (w->names[i] == NULL || w->values[i] == NULL) return rb_err_set(err, "out of memory");
    }
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const rb_worker_row *)a)->id, ((const rb_worker_row *)b)->id);
}

int rb_status_from_replies(const redisReply *zrange, redisReply *const *hashes, int64_t look_ms,
                           rb_status_snapshot *out, rb_err *err)
{
    memset(out, 0, sizeof *out);
    out->look_ms = look_ms;
    out->mono_ms = rb_mono_ms();
    if (zrange == NULL || zrange->type != REDIS_REPLY_ARRAY || zrange->elements % 2 != 0)
        return rb_err_set(err, "ZRANGE: unexpected reply");
    size_t n = zrange->elements / 2;
    if (n == 0) return 0;
    out->rows = calloc(n, sizeof *out->rows);
    if (out->rows == NULL) return rb_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const redisReply *m = zrange->element[2 * i], *score = zrange->element[2 * i + 1];
        if (m->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING) {
            rb_status_snapshot_free(out);
            return rb_err_set(err, "ZRANGE: unexpected reply");
        }
        rb_worker_row *w = &out->rows[i];
        out->n = i + 1;
        w->id = dup_n(m->str, m->len);
        if (w->id == NULL) {
            rb_status_snapshot_free(out);
            return rb_err_set(err, "out of memory");
        }
        w->beat_ms = (int64_t)strtod(score->str, NULL);
        if (row_fill(w, hashes[i], err) < 0) {
            rb_status_snapshot_free(out);
            return -1;
        }
        row_parse(w, look_ms);
    }
    qsort(out->rows, out->n, sizeof *out->rows, row_cmp);
    return 0;
}

int rb_status_read(redisContext *c, const char *prefix, rb_status_snapshot *out, rb_err *err)
{
    char set_key[KEY_MAX], key[KEY_MAX];
    memset(out, 0, sizeof *out);
    if (rb_hb_set_key(set_key, sizeof set_key, prefix) < 0)
        return rb_err_set(err, "the prefix is too long");
    redisReply *z = redisCommand(c, "ZRANGE %s 0 -1 WITHSCORES", set_key);
    if (z == NULL) return rb_err_set(err, "ZRANGE %s: %s", set_key, c->errstr);
    if (z->type == REDIS_REPLY_ERROR) {
        rb_err_set(err, "ZRANGE %s: %s", set_key, z->str);
        freeReplyObject(z);
        return -1;
    }
    int64_t look_ms = rb_wall_ms();
    size_t n = z->type == REDIS_REPLY_ARRAY ? z->elements / 2 : 0;
    redisReply **hashes = calloc(n + 1, sizeof *hashes);
    int rc = 0;
    if (hashes == NULL) {
        freeReplyObject(z);
        return rb_err_set(err, "out of memory");
    }
    /* pipelined: every HGETALL goes out before the first reply is read */
    for (size_t i = 0; i < n && rc == 0; i++) {
        const redisReply *m = z->element[2 * i];
        if (m->type != REDIS_REPLY_STRING || rb_hb_worker_key(key, sizeof key, prefix, m->str) < 0)
            rc = rb_err_set(err, "ZRANGE %s: unexpected member", set_key);
        else if (redisAppendCommand(c, "HGETALL %s", key) != REDIS_OK)
            rc = rb_err_set(err, "HGETALL: %s", c->errstr);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK) {
            rc = rb_err_set(err, "HGETALL: %s", c->errstr);
        } else {
            hashes[i] = r;
            if (hashes[i]->type == REDIS_REPLY_ERROR)
                rc = rb_err_set(err, "HGETALL: %s", hashes[i]->str);
        }
    }
    if (rc == 0) rc = rb_status_from_replies(z, hashes, look_ms, out, err);
    for (size_t i = 0; i < n; i++)
        if (hashes[i] != NULL) freeReplyObject(hashes[i]);
    free(hashes);
    freeReplyObject(z);
    return rc;
}

void rb_status_rates(rb_status_snapshot *cur, const rb_status_snapshot *prev)
{
    double dt_s = (double)(cur->mono_ms - prev->mono_ms) / 1000.0;
    for (size_t i = 0; i < cur->n; i++) {
        rb_worker_row *w = &cur->rows[i];
        w->has_rate = false;
        if (w->lost || dt_s <= 0) continue;
        rb_worker_row key = {.id = w->id};
        const rb_worker_row *p =
            prev->n > 0 ? bsearch(&key, prev->rows, prev->n, sizeof *prev->rows, row_cmp) : NULL;
        if (p == NULL || p->lost) continue;
        uint64_t now_total = 0, then_total = 0;
        for (int k = 0; k < RB_JOB_KINDS; k++) {
            now_total += w->jobs[k];
            then_total += p->jobs[k];
        }
        if (now_total < then_total) continue; /* counters went back: a restart under the same id */
        w->has_rate = true;
        w->jobs_per_s = (double)(now_total - then_total) / dt_s;
    }
}

void rb_status_keep_worker(rb_status_snapshot *s, const char *id)
{
    size_t len = strlen(id), kept = 0;
    for (size_t i = 0; i < s->n; i++) {
        rb_worker_row *w = &s->rows[i];
        if (strncmp(w->id, id, len) == 0 && (w->id[len] == '\0' || w->id[len] == '.'))
            s->rows[kept++] = *w; /* still sorted */
        else
            row_free(w);
    }
    s->n = kept;
}

int rb_status_exit_code(const rb_status_snapshot *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->rows[i].lost && strcmp(s->rows[i].state, "ready") == 0) return 0;
    return 1;
}
