/*
 * status_prom.c - rebound-status --prometheus: the heartbeats in
 * Prometheus' text exposition format 0.0.4, for node_exporter's textfile
 * collector or a scrape through a small sidecar.
 *
 * Every metric has one HELP and one TYPE line before its samples, and each
 * sample carries the worker's id, host and queue as labels (a lost worker,
 * whose hash has expired, has only its id: host and queue are empty). The
 * heartbeat's counters are counters (names end in _total); milliseconds
 * become seconds and kilobytes bytes, as Prometheus' naming rules ask.
 * A field a worker did not write (an older version) gives no sample.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

typedef enum prom_type { GAUGE, COUNTER } prom_type;

/* One metric taken from one hash field: value = field * scale. */
typedef struct prom_field {
    const char *name;
    prom_type type;
    const char *field;
    double scale;
    const char *help;
} prom_field;

static const prom_field fields[] = {
    {"rebound_worker_slots", GAUGE, "slots", 1, "Job slots of the consumer."},
    {"rebound_worker_busy_slots", GAUGE, "busy", 1, "Slots running a job at the last beat."},
    {"rebound_worker_redelivered_total", COUNTER, "redelivered", 1,
     "Jobs that arrived with the redelivered flag set."},
    {"rebound_worker_results_unroutable_total", COUNTER, "results_unroutable", 1,
     "Results the broker could not route to a reply queue."},
    {"rebound_worker_job_cpu_seconds_total", COUNTER, "cpu_ms_total", 0.001,
     "CPU time the jobs used, summed."},
    {"rebound_worker_job_run_seconds_avg", GAUGE, "avg_run_ms", 0.001,
     "Mean run time of the last 64 jobs."},
    {"rebound_worker_last_job_timestamp_seconds", GAUGE, "last_job_ms", 0.001,
     "Unix time the last job finished (0: none yet)."},
    {"rebound_worker_start_time_seconds", GAUGE, "started_ms", 0.001,
     "Unix time the consumer started."},
    {"rebound_worker_resident_memory_bytes", GAUGE, "rss_kb", 1024,
     "Resident memory of the consumer with its trampolines."},
};

/* A job field's outcome label: "jobs_ok" -> "ok". */
static const char *outcome_of(int kind)
{
    return rb_status_job_fields[kind] + strlen("jobs_");
}

/* The states a heartbeat reports (README, "Health"); another one found in a
 * hash gets its own series too. */
static const char *const states[] = {"starting",     "ready",   "draining",
                                     "reconnecting", "blocked", "stopped"};
#define NSTATES (sizeof states / sizeof states[0])

static void header(FILE *out, const char *name, prom_type type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
            type == COUNTER ? "counter" : "gauge");
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(FILE *out, const char *name, const char *value)
{
    fprintf(out, "%s=\"", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '"')
            fputs("\\\"", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* name{worker="..",host="..",queue="..": the caller may add labels with
 * more_label, then closes with value(). */
static void series(FILE *out, const char *name, const rb_worker_row *w)
{
    const char *host = w->lost ? NULL : rb_worker_field(w, "host");
    const char *queue = w->lost ? NULL : rb_worker_field(w, "queue");
    fprintf(out, "%s{", name);
    put_label(out, "worker", w->id);
    fputc(',', out);
    put_label(out, "host", host != NULL ? host : "");
    fputc(',', out);
    put_label(out, "queue", queue != NULL ? queue : "");
}

static void more_label(FILE *out, const char *name, const char *value)
{
    fputc(',', out);
    put_label(out, name, value != NULL ? value : "");
}

/* Ends the series: integers exactly, other values with all the digits a
 * double has. */
static void value(FILE *out, double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        fprintf(out, "} %.0f\n", v);
    else
        fprintf(out, "} %.17g\n", v);
}

/* A hash field as a finite number, or false. */
static bool field_number(const rb_worker_row *w, const char *name, double *out)
{
    const char *s = w->lost ? NULL : rb_worker_field(w, name);
    if (s == NULL || *s == '\0') return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || errno != 0 || !isfinite(v)) return false;
    *out = v;
    return true;
}

static void print_field(FILE *out, const rb_status_snapshot *s, const prom_field *f)
{
    header(out, f->name, f->type, f->help);
    for (size_t i = 0; i < s->n; i++) {
        double v;
        if (!field_number(&s->rows[i], f->field, &v)) continue;
        series(out, f->name, &s->rows[i]);
        value(out, v * f->scale);
    }
}

static bool known_state(const char *state)
{
    for (size_t k = 0; k < NSTATES; k++)
        if (strcmp(states[k], state) == 0) return true;
    return false;
}

static void print_states(FILE *out, const rb_status_snapshot *s)
{
    const char *name = "rebound_worker_state";
    header(out, name, GAUGE, "1 for the state the worker reported at its last beat, else 0.");
    for (size_t i = 0; i < s->n; i++) {
        const rb_worker_row *w = &s->rows[i];
        if (w->lost) continue;
        for (size_t k = 0; k < NSTATES; k++) {
            series(out, name, w);
            more_label(out, "state", states[k]);
            value(out, strcmp(w->state, states[k]) == 0);
        }
        if (!known_state(w->state)) {
            series(out, name, w);
            more_label(out, "state", w->state);
            value(out, 1);
        }
    }
}

static void print_jobs(FILE *out, const rb_status_snapshot *s)
{
    const char *name = "rebound_worker_jobs_total";
    header(out, name, COUNTER, "Jobs finished, by outcome.");
    for (size_t i = 0; i < s->n; i++) {
        for (int k = 0; k < RB_JOB_KINDS; k++) {
            double v;
            if (!field_number(&s->rows[i], rb_status_job_fields[k], &v)) continue;
            series(out, name, &s->rows[i]);
            more_label(out, "outcome", outcome_of(k));
            value(out, v);
        }
    }
}

static void print_info(FILE *out, const rb_status_snapshot *s)
{
    const char *name = "rebound_worker_info";
    header(out, name, GAUGE, "Always 1; the labels say what the worker runs.");
    for (size_t i = 0; i < s->n; i++) {
        const rb_worker_row *w = &s->rows[i];
        if (w->lost) continue;
        series(out, name, w);
        static const char *const labels[] = {"version", "python", "mode", "sandbox",
                                             "preload_failed"};
        for (size_t k = 0; k < sizeof labels / sizeof labels[0]; k++)
            more_label(out, labels[k], rb_worker_field(w, labels[k]));
        value(out, 1);
    }
}

void rb_status_print_prometheus(FILE *out, const rb_status_snapshot *s)
{
    size_t ready = 0;
    for (size_t i = 0; i < s->n; i++)
        ready += !s->rows[i].lost && strcmp(s->rows[i].state, "ready") == 0;
    header(out, "rebound_workers", GAUGE, "Workers in the heartbeat set, lost ones included.");
    fprintf(out, "rebound_workers %zu\n", s->n);
    header(out, "rebound_workers_ready", GAUGE, "Workers whose last beat said ready.");
    fprintf(out, "rebound_workers_ready %zu\n", ready);

    header(out, "rebound_worker_up", GAUGE,
           "1 while the worker's heartbeat hash exists, 0 when it expired (lost).");
    for (size_t i = 0; i < s->n; i++) {
        series(out, "rebound_worker_up", &s->rows[i]);
        value(out, !s->rows[i].lost);
    }
    header(out, "rebound_worker_heartbeat_age_seconds", GAUGE,
           "Time since the worker's last beat, at this look.");
    for (size_t i = 0; i < s->n; i++) {
        series(out, "rebound_worker_heartbeat_age_seconds", &s->rows[i]);
        value(out, (double)s->rows[i].age_ms / 1000.0);
    }
    print_states(out, s);
    print_jobs(out, s);
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
        print_field(out, s, &fields[k]);
    print_info(out, s);
}
