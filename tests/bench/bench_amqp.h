/*
 * bench_amqp.h - what the benchmark's C programs (bench_client,
 * echo_consumer) share: connecting to the broker and reading RPC replies.
 * Messages go to stderr, prefixed with the program's name.
 */
#ifndef REBOUND_BENCH_AMQP_H
#define REBOUND_BENCH_AMQP_H

#include <stddef.h>

#include <amqp.h>

#include "rebound_amqp.h"

/* 0 when the last RPC succeeded; otherwise says so (naming `what`), -1. */
int bench_check_rpc(const char *prog, amqp_connection_state_t conn, const char *what);

/* Connect to url (amqp:// only; a lone "/" path is the vhost "/"), log in
 * and open channel 1, each step bounded by 10 s. NULL on failure (said). */
amqp_connection_state_t bench_connect(const char *prog, const char *url);

#endif
