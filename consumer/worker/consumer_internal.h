/*
 * consumer_internal.h - the state of a consumer process, shared by
 * consumer.c (the loop, connection and shutdown), jobs.c (deliveries in,
 * results out), admit.c (which delivery runs where), settle.c (acks and
 * rejects), label.c (how log lines name a job) and consumer_hb.c (the
 * heartbeat's view).
 */
#ifndef REBOUND_WORKER_CONSUMER_INTERNAL_H
#define REBOUND_WORKER_CONSUMER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "amqp_session.h"
#include "confirms.h"
#include "consumer.h"
#include "rebound_base.h"
#include "rebound_health.h"
#include "rebound_pool.h"

/* A job handed to the pool, waiting for its result. */
typedef struct rb_inflight {
    uint64_t pool_tag;
    uint64_t delivery_tag;
    uint64_t generation; /* connection it was delivered on */
    char *reply_to;      /* NULL: no reply, ack only */
    char *correlation_id;
    size_t correlation_id_len;
    char *job_id;
    bool redelivered;
    char traceparent[RB_TRACEPARENT_LEN + 1]; /* "" when the job had none */
    bool timing;                              /* the job asked for its stages in the result */
    int64_t assembled_ns;                     /* rb_mono_ns of its stages (jobs.c) */
    int64_t decoded_ns;
    int64_t submitted_ns;
} rb_inflight;

typedef struct rb_consumer {
    const rb_worker_config *cfg;
    char id[160];
    char host[256];
    rb_limits limits;
    rb_pool *pool;
    rb_heartbeat *hb;

    rb_amqp *amqp;       /* NULL while disconnected */
    uint64_t generation; /* of the current (or last) connection; starts at 1 */
    bool ever_connected;
    int64_t next_connect_ms;
    int connect_failures;    /* attempts since the last connection: for the log, and each
                                round of the broker list ends in a backoff (consumer.c) */
    int broker;              /* index in cfg->amqp of the broker tried next, or connected to */
    int64_t connected_at_ms; /* when the current (or last) connection was made */
    rb_backoff reconnect;
    bool amqp_failed; /* an ack/reject failed inside a confirm callback */
    char amqp_failure[512];

    rb_outbox outbox;
    rb_inflight *jobs;
    size_t njobs, capjobs;
    uint64_t next_pool_tag;

    bool draining;
    bool cancel_sent;
    int64_t drain_deadline_ms;
    bool cold;

    rb_selfpipe sig; /* SIGTERM, SIGINT, SIGQUIT */

    int64_t started_ms; /* wall */
    int64_t last_job_ms;
    uint64_t jobs_rejected;
    uint64_t results_unroutable; /* returned by the broker: nobody to receive them */
    uint64_t jobs_crashed_unrun; /* answered crashed on their last delivery, not run */
    uint64_t redelivered;
    double cpu_ms_total;      /* jobs' cpu_ms, summed */
    int64_t last_activity_ms; /* mono: last delivery or result (quarantine's idle exit) */
    bool blocked;             /* the broker blocks our publishes (connection.blocked) */
    bool wait_writable;       /* a result waits for room in the socket's buffer */
} rb_consumer;

/* settle.c: ack (RB_SETTLE_ACK) or dead-letter (RB_SETTLE_REJECT) a
 * delivery, or give it back to the queue (requeue: out of memory), each only
 * on the connection it came on; a failed write marks the connection failed
 * (c->amqp_failed, with the reason in c->amqp_failure). */
void rb_settle_job(rb_consumer *c, rb_settle how, uint64_t tag, uint64_t generation);
void rb_settle_requeue(rb_consumer *c, uint64_t tag, uint64_t generation);
void rb_settle_failed(rb_consumer *c, const rb_err *err);

/* admit.c: a delivery handed to the pool, or, when it is a suspect and
 * this is not the quarantine consumer, moved to <queue>.suspects.
 * rb_admit_take takes over d's body and strings, and frees job. */
int64_t rb_admit_deliveries(const rb_amqp_delivery *d);
void rb_admit_take(rb_consumer *c, rb_amqp_delivery *d, rb_job *job, int64_t decoded_ns);
void rb_admit_remove(rb_consumer *c, size_t i);
void rb_admit_free(rb_consumer *c);
/* Ask the supervisor for the quarantine consumer (no-op in it). */
void rb_admit_want_quarantine(rb_consumer *c);

/* label.c: how log lines name a job: "<id>", or "<id> (trace <trace id>)" when it
 * came with a traceparent (README, "Tracing across the queue"). */
typedef struct rb_job_label {
    char s[400];
} rb_job_label;
rb_job_label rb_job_label_of(const char *id, const char *traceparent);

/* jobs.c */

void rb_jobs_on_delivery(rb_consumer *c, rb_amqp_delivery *d);
void rb_jobs_on_result(rb_consumer *c, rb_pool_result *res);
void rb_jobs_on_confirm(rb_consumer *c, uint64_t seq, bool multiple, bool ack);
/* The broker returned a result (no queue by its reply_to): its confirm,
 * which follows, acks the job with a warning; nothing is published again. */
void rb_jobs_on_returned(rb_consumer *c, const rb_amqp_delivery *d);
/* Publish held results while connected. Returns -1 when the connection
 * failed (c->amqp_failed is then set). */
int rb_jobs_flush(rb_consumer *c);
void rb_jobs_free(rb_consumer *c);

/* consumer_hb.c */
void rb_consumer_hb_fill(void *ctx, rb_hb_info *info);
/* The heartbeat's log sink (rb_heartbeat_set_log): its lines join the
 * worker's log. ctx is unused. */
void rb_consumer_hb_log(void *ctx, const char *line);
const char *rb_consumer_state(const rb_consumer *c);

/* consumer.c: the AMQP connection failed; reconnect later. */
void rb_consumer_lost(rb_consumer *c, const char *reason, bool graceful);

#endif
