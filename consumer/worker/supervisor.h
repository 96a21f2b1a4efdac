/*
 * supervisor.h - the rebound-worker process itself: it forks the consumer
 * processes, restarts one that dies (with backoff, saying why), and passes
 * SIGTERM/SIGINT/SIGQUIT on to them.
 */
#ifndef REBOUND_WORKER_SUPERVISOR_H
#define REBOUND_WORKER_SUPERVISOR_H

#include "worker_config.h"

/*
 * Supervise cfg->consumers consumers until they have all exited after a
 * shutdown signal (or one of them failed fatally). Returns in two kinds of
 * process:
 *   - the supervisor: *consumer_index is 0 and the return value is its exit
 *     code (0, or 1 when a consumer could not run);
 *   - a freshly forked consumer: *consumer_index is its number (1-based;
 *     cfg->consumers + 1 is the quarantine consumer, started when a
 *     consumer sends the supervisor SIGUSR1),
 *     every supervisor resource is released and signal handlers are reset;
 *     the caller runs the consumer and exits with its code.
 */
int rb_supervise(const rb_worker_config *cfg, int *consumer_index);

/* The worker id of consumer n (1-based): cfg->worker_id alone when there is
 * one consumer, "<id>.<n>" otherwise; "<id>.quarantine" for the quarantine
 * consumer (n = cfg->consumers + 1). */
void rb_consumer_id(const rb_worker_config *cfg, int n, char *out, size_t cap);

#endif
