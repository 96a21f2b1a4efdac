/*
 * status_json.c - rebound-status --json:
 *   {"workers": [{<every hash field>, "age_ms": N, "lost": false}, ...
 *                {"id": ..., "beat_ms": <score>, "age_ms": N, "lost": true}],
 *    "totals": {...}}
 * Hash values that are numbers come out as JSON numbers, except the fields
 * that are text by contract (an id or version may well look numeric).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "status.h"

static const char *const text_fields[] = {"id",    "host",           "queue",   "mode", "version",
                                          "state", "preload_failed", "sandbox", NULL};

static bool is_text_field(const char *name)
{
    for (int i = 0; text_fields[i] != NULL; i++)
        if (strcmp(text_fields[i], name) == 0) return true;
    return false;
}

/* A JSON number for a decimal integer or real, else NULL. */
static json_t *number_of(const char *s)
{
    if (*s == '\0' || strspn(s, "+-0123456789.eE") != strlen(s))
        return NULL; /* also keeps out inf, nan and hex floats */
    char *end;
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (*end == '\0' && errno == 0) return json_integer(i);
    errno = 0;
    double d = strtod(s, &end);
    if (*end == '\0' && errno == 0 && isfinite(d)) return json_real(d);
    return NULL;
}

/* Insert v (taking the reference) into obj; false when out of memory. */
static bool put(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

static json_t *worker_json(const rb_worker_row *w, bool show_rates)
{
    json_t *o = json_object();
    if (o == NULL) return NULL;
    bool ok = true;
    if (w->lost) {
        ok = put(o, "id", json_string(w->id)) && put(o, "beat_ms", json_integer(w->beat_ms));
    } else {
        if (rb_worker_field(w, "id") == NULL) ok = put(o, "id", json_string(w->id));
        for (size_t i = 0; ok && i < w->nfields; i++) {
            json_t *v = is_text_field(w->names[i]) ? NULL : number_of(w->values[i]);
            if (v == NULL) v = json_string(w->values[i]);
            ok = put(o, w->names[i], v);
        }
    }
    ok = ok && put(o, "age_ms", json_integer(w->age_ms)) && put(o, "lost", json_boolean(w->lost));
    if (ok && show_rates)
        ok = put(o, "jobs_per_s", w->has_rate ? json_real(w->jobs_per_s) : json_null());
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *totals_json(const rb_status_snapshot *s, bool show_rates)
{
    json_int_t ready = 0, lost = 0, slots = 0, busy = 0;
    uint64_t jobs[RB_JOB_KINDS] = {0}, redelivered = 0, rss = 0;
    double rate = 0;
    bool any_rate = false;
    for (size_t i = 0; i < s->n; i++) {
        const rb_worker_row *w = &s->rows[i];
        if (w->lost) {
            lost++;
            continue;
        }
        ready += strcmp(w->state, "ready") == 0;
        slots += w->slots;
        busy += w->busy;
        for (int k = 0; k < RB_JOB_KINDS; k++)
            jobs[k] += w->jobs[k];
        redelivered += w->redelivered;
        rss += w->rss_kb;
        if (w->has_rate) {
            any_rate = true;
            rate += w->jobs_per_s;
        }
    }
    json_t *o = json_object();
    bool ok = o != NULL && put(o, "workers", json_integer((json_int_t)s->n)) &&
              put(o, "ready", json_integer(ready)) && put(o, "lost", json_integer(lost)) &&
              put(o, "slots", json_integer(slots)) && put(o, "busy", json_integer(busy));
    for (int k = 0; ok && k < RB_JOB_KINDS; k++)
        ok = put(o, rb_status_job_fields[k], json_integer((json_int_t)jobs[k]));
    ok = ok && put(o, "redelivered", json_integer((json_int_t)redelivered)) &&
         put(o, "rss_kb", json_integer((json_int_t)rss));
    if (ok && show_rates) ok = put(o, "jobs_per_s", any_rate ? json_real(rate) : json_null());
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int rb_status_print_json(FILE *out, const rb_status_snapshot *s, bool show_rates)
{
    json_t *root = json_object(), *workers = json_array();
    bool ok = root != NULL && workers != NULL;
    for (size_t i = 0; ok && i < s->n; i++) {
        json_t *w = worker_json(&s->rows[i], show_rates);
        ok = w != NULL && json_array_append_new(workers, w) == 0;
    }
    if (ok) {
        ok = json_object_set_new(root, "workers", workers) == 0;
        workers = NULL; /* owned by root now, whatever the outcome */
    }
    ok = ok && put(root, "totals", totals_json(s, show_rates));
    ok = ok && json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0;
    if (ok) fputc('\n', out);
    json_decref(workers);
    json_decref(root);
    return ok ? 0 : -1;
}
