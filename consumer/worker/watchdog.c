/*
 * watchdog.c - the beat a consumer sends its supervisor over a pipe.
 *
 * A consumer can be alive and stuck (stopped, or blocked in a call that
 * never returns): nothing then notices it but the broker, after its
 * heartbeat timeout, and Redis's dashboards. The supervisor gives each
 * consumer the write end of a pipe; the consumer's loop writes a byte at
 * most once a second; a supervisor that has heard a consumer once and then
 * hears nothing for --watchdog-ms kills it, and restarts it as after any
 * death. Redis is not involved: it may be down while the worker is fine.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "rebound_base.h"
#include "watchdog.h"

#define BEAT_EVERY_MS 1000

static int beat_fd = -1;
static int64_t last_beat_ms;

int rb_watchdog_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC | O_NONBLOCK);
}

void rb_watchdog_child(int wfd)
{
    beat_fd = wfd;
    last_beat_ms = 0;
}

void rb_watchdog_beat(void)
{
    if (beat_fd < 0) return;
    int64_t now = rb_mono_ms();
    if (last_beat_ms != 0 && now - last_beat_ms < BEAT_EVERY_MS) return;
    last_beat_ms = now;
    /* A full pipe (a supervisor that does not read) is no reason to wait. */
    ssize_t n = write(beat_fd, "b", 1);
    (void)n;
}

bool rb_watchdog_heard(int rfd)
{
    char buf[64];
    bool heard = false;
    ssize_t n;
    while ((n = read(rfd, buf, sizeof buf)) > 0)
        heard = true;
    return heard;
}
