/*
 * backoff.c - exponential backoff with optional jitter (see rebound_base.h).
 *
 * The jitter needs no good randomness, only different values in processes
 * that failed at the same moment: a xorshift64 seeded once from getrandom
 * (or, without entropy, from the clock, the pid and the struct's address).
 */
#include <sys/random.h>
#include <unistd.h>

#include "rebound_base.h"

static uint64_t seed(const rb_backoff *b)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
        s = ((uint64_t)rb_mono_ns() << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)b;
    return s ? s : 0x9e3779b97f4a7c15ULL; /* xorshift never leaves 0 */
}

static uint64_t rng_next(rb_backoff *b)
{
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return x;
}

void rb_backoff_init(rb_backoff *b, int64_t min_ms, int64_t max_ms, bool jitter)
{
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->next_ms = min_ms;
    b->jitter = jitter;
    b->rng = jitter ? seed(b) : 0;
}

int64_t rb_backoff_next(rb_backoff *b)
{
    int64_t d = b->next_ms;
    b->next_ms = d > b->max_ms / 2 ? b->max_ms : d * 2;
    if (!b->jitter) return d;
    int64_t half = d / 2;
    return half + (int64_t)(rng_next(b) % (uint64_t)(half + 1));
}

int64_t rb_backoff_peek(const rb_backoff *b)
{
    return b->next_ms;
}

void rb_backoff_reset(rb_backoff *b)
{
    b->next_ms = b->min_ms;
}
