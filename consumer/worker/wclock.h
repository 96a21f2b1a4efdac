/* wclock.h - the two clocks the worker reads: monotonic for deadlines,
 * wall time for what is reported (heartbeat timestamps). */
#ifndef REBOUND_WORKER_WCLOCK_H
#define REBOUND_WORKER_WCLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t rb_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t rb_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds from now until deadline, clamped to 0..INT32_MAX. */
static inline int rb_ms_until(int64_t deadline, int64_t now)
{
    int64_t d = deadline - now;
    if (d < 0) return 0;
    return d > INT32_MAX ? INT32_MAX : (int)d;
}

#endif
