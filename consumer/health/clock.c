/*
 * clock.c - the two clocks of the heartbeat: monotonic time schedules beats
 * and timeouts (immune to clock steps), wall-clock time is what the hash
 * publishes, because readers on other hosts compare it with their own.
 */
#include <time.h>

#include "health_internal.h"

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rb_hb_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t rb_hb_unix_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}
