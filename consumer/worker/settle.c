/*
 * settle.c - settling a delivery on the connection it came on.
 *
 * A delivery tag means something only on its own connection: after a
 * reconnect it is dead, and the broker has requeued that job already. So
 * every ack, reject and requeue checks the job's connection generation
 * first, and a failure to write one marks the connection failed, for the
 * loop (consumer.c) to handle. jobs.c and admit.c both settle through here.
 */
#include <stdio.h>

#include "consumer_internal.h"

void rb_settle_failed(rb_consumer *c, const rb_err *err)
{
    if (c->amqp_failed) return;
    c->amqp_failed = true;
    snprintf(c->amqp_failure, sizeof c->amqp_failure, "%s", err->msg);
}

void rb_settle_job(rb_consumer *c, rb_settle how, uint64_t tag, uint64_t generation)
{
    if (how == RB_SETTLE_NONE || !c->amqp || c->amqp_failed || generation != c->generation)
        return; /* a dead delivery tag: the broker has requeued that job */
    rb_err err = {{0}};
    int rc = how == RB_SETTLE_ACK ? rb_amqp_ack(c->amqp, tag, &err)
                                  : rb_amqp_reject(c->amqp, tag, false, &err);
    if (rc < 0) rb_settle_failed(c, &err);
}

void rb_settle_requeue(rb_consumer *c, uint64_t tag, uint64_t generation)
{
    if (!c->amqp || generation != c->generation) return;
    rb_err err = {{0}};
    if (rb_amqp_reject(c->amqp, tag, true, &err) < 0) rb_settle_failed(c, &err);
}
