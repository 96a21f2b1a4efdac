/*
 * rebound_amqp.h - what every AMQP client of the project (rebound-worker,
 * rebound-submit, the benchmark's programs) says the same way.
 */
#ifndef REBOUND_AMQP_H
#define REBOUND_AMQP_H

#include <stddef.h>

#include <amqp.h>

/* Describe an RPC reply that was not normal, in out (always terminated):
 * the library's error, or "channel closed by the broker: 406
 * PRECONDITION_FAILED - ...", or what else came instead. */
void rb_amqp_reply_text(amqp_rpc_reply_t r, char *out, size_t cap);

/* The vhost of a URL amqp_parse_url has read: its own, or "/" for a lone
 * "/" or no path. Points into ci or at a literal. */
const char *rb_amqp_vhost(const struct amqp_connection_info *ci);

#endif
