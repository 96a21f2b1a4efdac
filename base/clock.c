/* clock.c - the clocks: one clock_gettime each, in the units callers use. */
#include <time.h>

#include "rebound_base.h"

int64_t rb_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t rb_mono_ms(void)
{
    return rb_mono_ns() / 1000000;
}

int64_t rb_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rb_ms_until(int64_t deadline, int64_t now)
{
    int64_t d = deadline - now;
    if (d < 0) return 0;
    return d > INT32_MAX ? INT32_MAX : (int)d;
}
