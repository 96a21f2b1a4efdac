/*
 * heartbeat_internal.h - the heartbeat's state, shared by heartbeat.c (the
 * connection and the beats) and heartbeat_stop.c (deregistering).
 */
#ifndef REBOUND_HEARTBEAT_INTERNAL_H
#define REBOUND_HEARTBEAT_INTERNAL_H

#include <hiredis/async.h>

#include "health_internal.h"

#define RB_HB_MAX_PREFIX 200
#define RB_HB_KEY_MAX 1024

struct rb_heartbeat {
    rb_redis_url url;
    char addr[300]; /* for messages, without the password */
    char *prefix;
    char set_key[RB_HB_MAX_PREFIX + 16];
    int interval_ms;
    int op_timeout_ms; /* connect and reply timeout: min(interval, 1 s) */
    rb_hb_fill_fn fill;
    void *ctx;
    void (*log)(void *ctx, const char *line); /* NULL: stderr */
    void *log_ctx;

    redisAsyncContext *ac; /* NULL while disconnected */
    bool want_read, want_write;
    bool connected;
    int64_t connect_deadline; /* monotonic ms */

    bool inflight; /* a beat's EXEC reply is outstanding */
    int64_t inflight_deadline;
    bool force;           /* beat as soon as a connection can take it */
    int64_t next_beat;    /* monotonic ms of the next regular beat */
    int64_t next_connect; /* monotonic ms of the next connect, when ac == NULL */
    rb_backoff backoff;   /* of reconnects; reset by a beat that went through */
    bool outage;          /* "unreachable" logged, "reachable again" not yet */

    bool failed;          /* a reply said the connection is unusable */
    char reason[256];     /* first cause of the current connection's failure */
    char last_error[256]; /* why the last connection was dropped */

    bool stopping, stopped;
    bool stop_pending; /* the stop commands' last reply is outstanding */
    int stop_errors;
};

/* The HSET command of one beat. */
typedef struct rb_hb_hset {
    char key[RB_HB_KEY_MAX];
    const char *argv[2 + 2 * RB_HB_NFIELDS];
    rb_hb_fields f;
} rb_hb_hset;

/* Record the first cause of the current connection's trouble. */
void rb_hb_set_reason(rb_heartbeat *hb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Call fill and build the HSET of every field (state replaced when
 * state_override is set). -1 when there is no id to key the hash by. */
int rb_hb_hset_make(rb_heartbeat *hb, rb_hb_hset *h, rb_hb_info *info, int64_t beat_ms,
                    const char *state_override);

/* Start connecting (AUTH and SELECT queued); on an immediate failure hb->ac
 * stays NULL and hb->last_error says why. */
void rb_hb_conn_start(rb_heartbeat *hb, int64_t now);

/* Feed poll readiness to hiredis, then drop the connection if it failed. */
void rb_hb_handle_io(rb_heartbeat *hb, short revents);

/* One line of the heartbeat's log (no newline), to its log hook or stderr. */
void rb_hb_log(rb_heartbeat *hb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
