/*
 * health_internal.h - shared by the files of consumer/health (the heartbeat
 * library and rebound-status). Not a public API: the worker uses
 * rebound_health.h only.
 */
#ifndef REBOUND_HEALTH_INTERNAL_H
#define REBOUND_HEALTH_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "rebound_base.h"
#include "rebound_health.h"

/* ---- the Redis contract ------------------------------------------------ */

/* The hash fields a beat writes, in this order (README documents them). */
#define RB_HB_NFIELDS 25

typedef struct rb_hb_fields {
    const char *name[RB_HB_NFIELDS];
    const char *value[RB_HB_NFIELDS]; /* point into info's strings or num[] */
    char num[RB_HB_NFIELDS][32];      /* storage for the formatted numbers */
} rb_hb_fields;

/* Lay out info (plus beat_ms) as hash fields. NULL strings become "". The
 * result borrows info's strings: use it before info changes. */
void rb_hb_fields_make(rb_hb_fields *f, const rb_hb_info *info, int64_t beat_ms);

/* "P:worker:<id>" and "P:workers" into buf; returns -1 when it does not fit. */
int rb_hb_worker_key(char *buf, size_t len, const char *prefix, const char *id);
int rb_hb_set_key(char *buf, size_t len, const char *prefix);

/* ---- addresses and connections ------------------------------------------- */

/* The address for messages: "127.0.0.1:6379", "[::1]:6379" or
 * "unix:/run/redis.sock". Never contains the password. */
void rb_redis_url_addr(const rb_redis_url *u, char *buf, size_t len);

/* A blocking connection with every socket operation bounded by timeout_ms,
 * authenticated and on the URL's db. Returns a context owned by the caller
 * (redisFree) or NULL with err naming the address. */
redisContext *rb_redis_connect_sync(const rb_redis_url *u, int timeout_ms, rb_err *err);

/* ---- clocks ------------------------------------------------------------------- */

/* Monotonic time schedules beats and timeouts (immune to clock steps);
 * wall-clock time is what the hash publishes (beat_ms, last_job_ms),
 * because readers on other hosts compare it with their own. These names
 * are base/'s clocks under the names the health tests know them by. */
static inline int64_t rb_hb_mono_ms(void)
{
    return rb_mono_ms();
}

static inline int64_t rb_hb_unix_ms(void)
{
    return rb_wall_ms();
}

/* ---- SIGPIPE -------------------------------------------------------------------- */

/* hiredis 0.14 writes with write(2), so a peer that went away raises SIGPIPE,
 * whose default action would kill the consumer. Around a write, the guard
 * blocks SIGPIPE in the calling thread and discards one that the write
 * raised, leaving the process's signal dispositions alone. */
typedef struct rb_pipe_guard {
    sigset_t old;
    bool was_pending;
} rb_pipe_guard;

void rb_pipe_guard_enter(rb_pipe_guard *g);
void rb_pipe_guard_leave(rb_pipe_guard *g);

#endif
