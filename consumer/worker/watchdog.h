/*
 * watchdog.h - a consumer's beat to its supervisor (watchdog.c).
 */
#ifndef REBOUND_WORKER_WATCHDOG_H
#define REBOUND_WORKER_WATCHDOG_H

#include <stdbool.h>

/* Supervisor: a non-blocking, close-on-exec pipe for one consumer. 0, or
 * -1 with errno. */
int rb_watchdog_pipe(int fds[2]);
/* Supervisor: drain what the consumer wrote on rfd; whether it wrote. */
bool rb_watchdog_heard(int rfd);
/* Consumer, once after the fork: where its beats go. */
void rb_watchdog_child(int wfd);
/* Consumer, from its loop: a beat, at most one a second; never waits. */
void rb_watchdog_beat(void);

#endif
