/*
 * status.h - the parts of rebound-status: command line, reading the
 * heartbeats from Redis, and printing them as a table or as JSON.
 * Internal to consumer/health (and its tests).
 */
#ifndef REBOUND_STATUS_H
#define REBOUND_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>

#include "rebound_proto.h"

/* ---- command line ------------------------------------------------------ */

#define RB_STATUS_DEFAULT_URL "redis://127.0.0.1:6379/0"

typedef struct rb_status_opts {
    const char *url; /* borrowed from argv / the environment */
    const char *prefix;
    bool prefix_given; /* --prefix was on the command line */
    bool json;
    bool prometheus;    /* --prometheus: text exposition format; exclusive with --json, --watch */
    const char *worker; /* --worker: only this id and its consumers (ID.n); NULL: all */
    double watch_s;     /* 0: print once */
    bool help;
} rb_status_opts;

/* Parse argv (flags as "--flag value" or "--flag=value"); env_url is
 * REBOUND_REDIS_URL (may be NULL), used when --redis-url is absent. Returns
 * 0, or -1 with err naming the bad flag or value (a usage error). */
int rb_status_parse_args(int argc, char **argv, const char *env_url, rb_status_opts *o,
                         rb_err *err);

extern const char rb_status_usage[];

/* ---- one look at Redis -------------------------------------------------- */

enum { RB_JOB_OK, RB_JOB_ERROR, RB_JOB_TIMEOUT, RB_JOB_CRASHED, RB_JOB_REJECTED, RB_JOB_KINDS };

/* The heartbeat's field for each kind ("jobs_ok", ...), in the enum's order. */
extern const char *const rb_status_job_fields[RB_JOB_KINDS];

typedef struct rb_worker_row {
    char *id;
    bool lost;       /* in the sorted set, but its hash has expired */
    int64_t beat_ms; /* the hash's beat_ms, or the set's score when lost */
    int64_t age_ms;  /* look time - beat_ms, >= 0 */
    size_t nfields;  /* the hash as Redis returned it (0 when lost) */
    char **names;
    char **values;
    /* parsed from the hash for the table and the totals */
    const char *host, *state; /* point into values, or "-" */
    long slots, busy;
    uint64_t jobs[RB_JOB_KINDS];
    uint64_t redelivered;
    uint64_t rss_kb;
    /* jobs finished per second since the previous look (--watch) */
    bool has_rate;
    double jobs_per_s;
} rb_worker_row;

typedef struct rb_status_snapshot {
    rb_worker_row *rows; /* sorted by id; owned, free with rb_status_snapshot_free */
    size_t n;
    int64_t look_ms; /* wall clock of the look */
    int64_t mono_ms; /* monotonic clock of the look, for rates */
} rb_status_snapshot;

/* ZRANGE P:workers 0 -1 WITHSCORES, then one pipelined HGETALL per member.
 * Returns 0, or -1 with err (the caller adds the address). */
int rb_status_read(redisContext *c, const char *prefix, rb_status_snapshot *out, rb_err *err);

/* Build a snapshot from replies already read: the ZRANGE WITHSCORES reply
 * and one HGETALL reply per member, in member order. Exposed for tests. */
int rb_status_from_replies(const redisReply *zrange, redisReply *const *hashes, int64_t look_ms,
                           rb_status_snapshot *out, rb_err *err);

/* The value of a hash field, or NULL. */
const char *rb_worker_field(const rb_worker_row *w, const char *name);

/* Fill has_rate/jobs_per_s of cur from the matching rows (by id) of prev. */
void rb_status_rates(rb_status_snapshot *cur, const rb_status_snapshot *prev);

void rb_status_snapshot_free(rb_status_snapshot *s);

/* Keep only the rows of worker id (exactly, or "<id>.<anything>": the
 * consumers of a worker started with --consumers > 1), freeing the others. */
void rb_status_keep_worker(rb_status_snapshot *s, const char *id);

/* 0 when at least one live worker is ready, 1 otherwise. */
int rb_status_exit_code(const rb_status_snapshot *s);

/* ---- output ------------------------------------------------------------------ */

/* The aligned table with a totals row. show_rates: the JOBS/S column has
 * values (in --watch); otherwise it shows '-'. */
void rb_status_print_table(FILE *out, const rb_status_snapshot *s, bool show_rates);

/* The JSON document (one line ends it). show_rates adds jobs_per_s.
 * Returns 0, or -1 when out of memory. */
int rb_status_print_json(FILE *out, const rb_status_snapshot *s, bool show_rates);

/* Prometheus' text exposition format 0.0.4 (status_prom.c). */
void rb_status_print_prometheus(FILE *out, const rb_status_snapshot *s);

/* "0.4s", "12s", "3m05s", "2h07m", "3d04h". */
void rb_status_fmt_age(char *buf, size_t len, int64_t age_ms);
/* "512K", "12.3M", "1.5G". */
void rb_status_fmt_kb(char *buf, size_t len, uint64_t kb);

#endif
