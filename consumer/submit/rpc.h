/*
 * rpc.h - one job out, one result back, over RabbitMQ's direct reply-to.
 *
 * The reply consumer (basic.consume on amq.rabbitmq.reply-to, no-ack) is
 * set up before the job is published, on the same channel, as direct
 * reply-to requires. The job is published mandatory, so a queue that does
 * not exist is reported at once instead of after the timeout.
 */
#ifndef REBOUND_SUBMIT_RPC_H
#define REBOUND_SUBMIT_RPC_H

#include <stddef.h>

typedef enum rb_rpc_status {
    RB_RPC_REPLIED = 0, /* *reply holds the result body */
    RB_RPC_NO_REPLY,    /* nothing came in time */
    RB_RPC_UNROUTABLE,  /* no queue took the job */
    RB_RPC_BAD_URL,     /* the URL did not parse */
    RB_RPC_BROKER,      /* connection, login or channel failure */
} rb_rpc_status;

typedef struct rb_rpc_request {
    const char *url;
    const char *queue;
    const void *body;
    size_t len;
    int timeout_ms; /* for the reply, from the publish */
} rb_rpc_request;

/* Send the job and wait for its result. On RB_RPC_REPLIED *reply is a
 * malloc'd copy of the result body (caller frees); otherwise err (errcap
 * bytes) says what happened. */
rb_rpc_status rb_rpc_call(const rb_rpc_request *req, void **reply, size_t *reply_len, char *err,
                          size_t errcap);

#endif
