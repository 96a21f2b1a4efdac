/*
 * amqp_session.h - one AMQP connection with one channel, as a consumer
 * process uses it: set up in one (bounded, blocking) call, then driven
 * without blocking from the consumer's poll() loop.
 *
 * librabbitmq-c only sends and checks heartbeats while one of its calls
 * runs, so the loop calls rb_amqp_next at least every
 * rb_amqp_max_sleep_ms; rb_amqp_next never waits (a zero timeout).
 *
 * Setup: login advertising consumer_cancel_notify, channel 1, the dead
 * letter queue <queue>.dead, the job queue and its quarantine queue
 * <queue>.suspects (both durable, x-queue-type, dead-lettering to
 * <queue>.dead through the default exchange, and for quorum queues
 * x-delivery-limit), basic.qos, confirm.select and (unless told not to)
 * basic.consume with manual acks, on the job queue or, for the quarantine
 * consumer, on <queue>.suspects.
 */
#ifndef REBOUND_WORKER_AMQP_SESSION_H
#define REBOUND_WORKER_AMQP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "rebound_amqp.h"

#include "worker_config.h"

typedef struct rb_amqp_params {
    const rb_amqp_url *url;
    const char *tls_ca; /* NULL: the system's bundle */
    const char *tls_cert;
    const char *tls_key;
    const char *queue;
    rb_queue_type queue_type;
    int delivery_limit; /* 0: none */
    int prefetch;
    int heartbeat_s;
    const char *connection_name; /* shown by the broker */
    bool consume;                /* false: publish only (reconnect while draining) */
    bool quarantine;             /* consume <queue>.suspects instead of queue */
    int setup_timeout_ms;        /* bounds connect, login and each setup RPC */
    size_t max_body;             /* larger delivery bodies are not stored */
} rb_amqp_params;

/* A delivery, assembled from its method, header and body frames. Owned by
 * the receiver; free with rb_amqp_delivery_free. */
typedef struct rb_amqp_delivery {
    uint64_t tag;
    bool redelivered;
    char *content_type; /* NULL when absent */
    char *reply_to;     /* NULL when absent or empty */
    char *correlation_id;
    size_t correlation_id_len;
    void *body;                 /* NULL when oversize (or empty) */
    size_t len;                 /* the body size the broker announced */
    bool oversize;              /* len > max_body: the bytes were read and dropped */
    int64_t delivery_count;     /* x-delivery-count (quorum queues: earlier deliveries returned);
                                   -1 when absent */
    int64_t earlier_deliveries; /* RB_AMQP_DELIVERIES_HEADER: deliveries of the job before
                                   it was published again (admit.c); -1 when absent */
    char traceparent[RB_TRACEPARENT_LEN + 1]; /* a valid W3C traceparent header, or "" */
    int64_t assembled_ns;                     /* rb_mono_ns when its last frame was read */
} rb_amqp_delivery;

void rb_amqp_delivery_free(rb_amqp_delivery *d);

typedef enum rb_amqp_event_type {
    RB_EV_NONE = 0,  /* nothing more to read now */
    RB_EV_DELIVERY,  /* ev->delivery is filled (caller owns it) */
    RB_EV_ACK,       /* publisher confirm: ev->seq, ev->multiple */
    RB_EV_NACK,      /* the broker refused: publish again */
    RB_EV_CANCEL_OK, /* our basic.cancel took effect */
    RB_EV_RETURNED,  /* a mandatory publish had no queue: ev->delivery's reply_to is its
                        routing key, correlation_id its own (no body); its confirm follows */
    RB_EV_LOST,      /* connection, channel or consumer gone: ev->reason */
    RB_EV_BLOCKED,   /* the broker blocks publishing (a resource alarm): ev->reason */
    RB_EV_UNBLOCKED, /* and no longer */
} rb_amqp_event_type;

typedef struct rb_amqp_event {
    rb_amqp_event_type type;
    rb_amqp_delivery delivery;
    uint64_t seq;
    bool multiple;
    bool graceful; /* LOST: the socket still works, close it politely */
    char reason[320];
} rb_amqp_event;

typedef struct rb_amqp rb_amqp;

/* Connect and set everything up. Returns NULL with err set on failure. */
rb_amqp *rb_amqp_open(const rb_amqp_params *p, rb_err *err);

/* Close (graceful: connection.close, bounded by 2 s) and free. NULL is a
 * no-op. */
void rb_amqp_close(rb_amqp *a, bool graceful);

int rb_amqp_fd(const rb_amqp *a);

/* Frames or bytes are buffered inside librabbitmq: do not sleep in poll(). */
bool rb_amqp_buffered(const rb_amqp *a);

/* The longest the loop may go without calling rb_amqp_next (-1: no limit). */
int rb_amqp_max_sleep_ms(const rb_amqp *a);

/* Read the next event without blocking. After RB_EV_LOST the session is
 * dead: rb_amqp_close it. */
rb_amqp_event_type rb_amqp_next(rb_amqp *a, rb_amqp_event *ev);

/*
 * Publish body to the default exchange with routing key rk, content_type
 * application/msgpack. *seq receives the publisher-confirm sequence number.
 * Returns 0, or -1 with err set when the connection failed.
 */
/* What a publish carries. reply_to and deliveries (> 0: the header
 * RB_AMQP_DELIVERIES_HEADER) are for a job published again; a result has
 * neither. */
#define RB_AMQP_DELIVERIES_HEADER "x-rebound-deliveries"
typedef struct rb_amqp_pub {
    const char *routing_key;
    const char *correlation_id; /* NULL: none */
    size_t correlation_id_len;
    const char *reply_to; /* NULL: none */
    int64_t deliveries;
    const char *traceparent; /* NULL or "": none */
    const void *body;
    size_t len;
    bool persistent; /* delivery_mode 2 */
    bool mandatory;  /* returned (basic.return) when no queue takes it */
} rb_amqp_pub;

int rb_amqp_publish(rb_amqp *a, const rb_amqp_pub *pub, uint64_t *seq, rb_err *err);

/* Whether a publish of len body bytes fits in the socket's send buffer
 * now (or the buffer is empty: a larger one is written all the same).
 * Writing only then keeps the consumer out of a blocking write while the
 * broker is not reading (flow control). */
bool rb_amqp_write_room(const rb_amqp *a, size_t len);

/* The quarantine queue of queue: "<queue>.suspects" (admit.c). */
void rb_amqp_suspects_queue(const char *queue, char *out, size_t cap);

/* Jobs that were waiting in <queue>.suspects when the connection was set
 * up (queue.declare-ok's count of ready messages). */
uint32_t rb_amqp_suspects_waiting(const rb_amqp *a);

/* "" or why <queue>.dead could not be declared at setup (its cluster node
 * down): the connection works without it. Owned by a. */
const char *rb_amqp_dead_queue_note(const rb_amqp *a);

/* basic.ack / basic.reject (requeue as given). 0 or -1 with err set. */
int rb_amqp_ack(rb_amqp *a, uint64_t tag, rb_err *err);
int rb_amqp_reject(rb_amqp *a, uint64_t tag, bool requeue, rb_err *err);

/* Send basic.cancel for our consumer without waiting: RB_EV_CANCEL_OK
 * follows. Deliveries may still arrive until then. 0 or -1 with err. */
int rb_amqp_cancel(rb_amqp *a, rb_err *err);

/* ---- shared between amqp_session.c and amqp_read.c only ---------------- */

/* Where the delivery being assembled is: its frames come in this order. */
typedef enum rb_amqp_rd_state {
    RB_RD_IDLE = 0, /* between deliveries: a method frame comes next */
    RB_RD_HEADER,   /* basic.deliver (or basic.return) read: its header is next */
    RB_RD_BODY,     /* header read: body frames until rd.len bytes */
} rb_amqp_rd_state;

struct rb_amqp {
    amqp_connection_state_t conn;
    int fd;
    int heartbeat_s;
    uint64_t next_seq;         /* of the next publish, from 1 after confirm.select */
    char consumer_tag[256];    /* "" while not consuming (cancelled, or publish only) */
    uint32_t suspects_waiting; /* ready in <queue>.suspects at setup */
    char dead_note[600];       /* rb_amqp_dead_queue_note */
    int sndbuf;                /* SO_SNDBUF, as the kernel reports it */
    size_t max_body;
    rb_amqp_rd_state rd_state; /* of the delivery being assembled */
    bool rd_discard;           /* content to read and drop */
    bool rd_returned;          /* the content is a basic.return's */
    size_t rd_got;
    rb_amqp_delivery rd;
};

#endif
