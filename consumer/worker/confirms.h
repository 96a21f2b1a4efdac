/*
 * confirms.h - result messages on their way to the broker.
 *
 * A result message is "held" until it can be published, then "pending"
 * until the broker confirms it (publisher confirms: basic.ack / basic.nack
 * carrying the publish sequence number, possibly with `multiple`). Only a
 * confirmed message settles its job (basic.ack, or basic.reject for a
 * rejected job), and only on the connection the job was delivered on:
 * after a reconnect the old delivery tags are dead, the broker has already
 * requeued those jobs.
 *
 * A message the broker refuses (basic.nack, e.g. its reply queue is full
 * with overflow reject-publish) waits in a retry list until its time has
 * come, then is held again: never dropped, never hammered at the broker.
 *
 * When the connection is lost, pending messages go back to the front of
 * the held list, in publish order, to be published again on the next
 * connection (the broker may or may not have routed them: the receiver can
 * see a result twice, never zero times).
 *
 * Pure bookkeeping: no I/O here, so the rules are unit-tested directly.
 */
#ifndef REBOUND_WORKER_CONFIRMS_H
#define REBOUND_WORKER_CONFIRMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rebound_base.h"
#include "rebound_proto.h"

/* A refused message waits this long before it is held again, doubling with
 * each refusal: publishing again at once would spin as long as the broker
 * keeps refusing (a full reply queue). */
#define RB_OUTMSG_RETRY_MIN_MS 200
#define RB_OUTMSG_RETRY_MAX_MS 10000

typedef enum rb_settle {
    RB_SETTLE_NONE = 0, /* nothing to settle (a result held from an old connection) */
    RB_SETTLE_ACK,      /* basic.ack the job once confirmed */
    RB_SETTLE_REJECT,   /* basic.reject (no requeue) the job once confirmed */
} rb_settle;

typedef struct rb_outmsg {
    struct rb_outmsg *next; /* list link, owned by the outbox */
    char *routing_key;      /* the job's reply_to */
    char *correlation_id;   /* NULL when the job had none */
    size_t correlation_id_len;
    void *body; /* the packed result */
    size_t len;
    bool persistent;       /* delivery_mode 2 */
    bool mandatory;        /* published mandatory: returned when it has no queue */
    rb_settle settle;      /* what a confirm triggers */
    uint64_t delivery_tag; /* of the job */
    uint64_t generation;   /* connection the delivery tag belongs to */
    uint64_t seq;          /* publish sequence number while pending */
    int nacks;             /* times the broker refused it */
    bool returned;         /* the broker returned it: no queue by that name */
    char *job_id;          /* for log lines; owned, may be NULL */
    char *reply_to;        /* a job published again (admit.c): its reply_to; owned */
    int64_t deliveries;    /* and its earlier deliveries */
    char traceparent[RB_TRACEPARENT_LEN + 1]; /* the job's, passed on; "" when none */
    int64_t assembled_ns; /* a job's result: its delivery's stamp, for the log of */
    char stages[200];     /* its stages so far ("decoded=12 ..."), and then: */
    int64_t published_ns;
    rb_backoff retry;    /* the wait after the next refusal */
    int64_t retry_at_ms; /* while in the retry list */
} rb_outmsg;

/*
 * A new message. routing_key and correlation_id are copied; body (malloc'd,
 * e.g. a msgpack_sbuffer's data) is taken over and freed with the message.
 * Returns NULL on allocation failure (body is then freed too).
 */
rb_outmsg *rb_outmsg_new(const char *routing_key, const char *correlation_id,
                         size_t correlation_id_len, void *body, size_t len, bool persistent);
void rb_outmsg_free(rb_outmsg *m);

typedef struct rb_outbox {
    rb_outmsg *held, *held_tail;       /* to publish, oldest first */
    rb_outmsg *pending, *pending_tail; /* published, ascending seq */
    rb_outmsg *retry;                  /* refused, waiting; any order */
    size_t nheld, npending, nretry;
} rb_outbox;

void rb_outbox_init(rb_outbox *ob);
/* Free every message still held, pending or waiting to retry. */
void rb_outbox_free(rb_outbox *ob);

bool rb_outbox_empty(const rb_outbox *ob);

/* Append m (taken over) to the held list. */
void rb_outbox_hold(rb_outbox *ob, rb_outmsg *m);
/* Put m back at the front of the held list (its publish failed). */
void rb_outbox_hold_front(rb_outbox *ob, rb_outmsg *m);
/* Take the oldest held message (caller owns it), or NULL. */
rb_outmsg *rb_outbox_take_held(rb_outbox *ob);

/* The oldest pending message published to routing_key with this
 * correlation id (NULL: none), or NULL: what a basic.return names. */
rb_outmsg *rb_outbox_find_pending(rb_outbox *ob, const char *routing_key,
                                  const char *correlation_id, size_t correlation_id_len);

/* m (taken over) was published with sequence number seq; seqs are
 * increasing within a connection. */
void rb_outbox_published(rb_outbox *ob, rb_outmsg *m, uint64_t seq);

/*
 * The broker confirmed (basic.ack or basic.nack) sequence number seq, or
 * every pending one up to seq when multiple. Each matching message is
 * removed and handed to fn, which takes it over (and may hold it again, but
 * must not publish from inside the call). Returns how many matched.
 */
typedef void (*rb_outbox_fn)(void *ctx, rb_outmsg *m);
size_t rb_outbox_confirm(rb_outbox *ob, uint64_t seq, bool multiple, rb_outbox_fn fn, void *ctx);

/* Put m (taken over) aside until at_ms (any clock, as long as the same
 * one is passed to rb_outbox_release_due). */
void rb_outbox_retry_later(rb_outbox *ob, rb_outmsg *m, int64_t at_ms);

/* Move the messages whose time has come to the end of the held list.
 * Returns the earliest time still waiting, or -1 when none waits. */
int64_t rb_outbox_release_due(rb_outbox *ob, int64_t now_ms);

/* The connection is gone: every pending message goes back to the front of
 * the held list, in publish order. */
void rb_outbox_requeue_pending(rb_outbox *ob);

#endif
