/*
 * consumer.h - one consumer process: one AMQP connection and channel, one
 * trampoline pool, one Redis heartbeat, all driven by one single-threaded
 * poll() loop.
 */
#ifndef REBOUND_WORKER_CONSUMER_H
#define REBOUND_WORKER_CONSUMER_H

#include "worker_config.h"

/* Exit code of a consumer that cannot work at all (e.g. the trampoline does
 * not start): the supervisor does not restart it. */
#define RB_CONSUMER_EXIT_FATAL 78

/*
 * Run until SIGTERM/SIGINT (warm shutdown: finish the jobs in flight,
 * publish and ack their results, bounded by cfg->drain_ms), a second such
 * signal, the drain deadline or SIGQUIT (cold shutdown: kill the jobs,
 * leave them unacked for the broker to requeue). Installs its own signal
 * handlers. Returns the process exit code: 0, or RB_CONSUMER_EXIT_FATAL.
 */
int rb_consumer_run(const rb_worker_config *cfg, const char *worker_id);

#endif
