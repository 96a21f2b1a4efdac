/*
 * rebound_base.h - the few helpers every part of rebound needs, written once:
 * the clocks, exponential backoff with jitter, the text of a wait status, and
 * the signal self-pipe.
 *
 * base/ is the bottom layer: it uses nothing of the project, and any folder
 * (proto/, trampoline/, consumer/) may use it. Nothing here allocates, exits
 * or prints.
 */
#ifndef REBOUND_BASE_H
#define REBOUND_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- clocks (clock.c) ------------------------------------------------------ */

/* CLOCK_MONOTONIC: for deadlines, timeouts and durations; immune to the
 * wall clock being stepped. */
int64_t rb_mono_ms(void);
int64_t rb_mono_ns(void);

/* CLOCK_REALTIME in ms since the epoch: for what is reported to others
 * (heartbeat timestamps), who compare it with their own clocks. */
int64_t rb_wall_ms(void);

/* Milliseconds from now until deadline (both from the same clock), clamped
 * to 0..INT32_MAX: a poll() timeout. */
int rb_ms_until(int64_t deadline, int64_t now);

/* ---- exponential backoff (backoff.c) ------------------------------------------ */

/*
 * The wait before retrying something that keeps failing: min_ms, then twice
 * as long after each further failure, never more than max_ms; reset after a
 * success. With jitter each wait is drawn uniformly from [d/2, d], so that
 * processes that failed together (a broker restart) do not all come back in
 * the same millisecond. Plain data: embed it, no cleanup.
 */
typedef struct rb_backoff {
    int64_t min_ms;
    int64_t max_ms;
    int64_t next_ms; /* d of the next wait, before jitter */
    bool jitter;
    uint64_t rng; /* xorshift64 state, for the jitter */
} rb_backoff;

/* min_ms >= 1 and max_ms >= min_ms. */
void rb_backoff_init(rb_backoff *b, int64_t min_ms, int64_t max_ms, bool jitter);
/* The wait to use now; the one after it doubles (up to max_ms). */
int64_t rb_backoff_next(rb_backoff *b);
/* d of the wait rb_backoff_next would give, without counting it (the wait
 * itself without jitter). */
int64_t rb_backoff_peek(const rb_backoff *b);
/* A success: the next wait is min_ms again. */
void rb_backoff_reset(rb_backoff *b);

/* ---- processes: signal names, wait statuses (proc_text.c) ------------------ */

/* "SIGTERM" rather than strsignal's "Terminated", for log lines; "signal
 * 70" for a number without a name. A struct so that it can be used as a
 * printf argument without a buffer of the caller's. */
typedef struct rb_signame {
    char s[24];
} rb_signame;

rb_signame rb_sig_name(int sig);

/* How rb_wait_text names the signal that killed a process. */
typedef enum rb_sig_style {
    /* "killed by signal 11" */
    RB_SIG_NUMBER,
    /* "killed by signal 11 (Segmentation fault)": what a crashed job's
     * result says to the user (README, PROTOCOL.md). */
    RB_SIG_DESCRIBED,
    /* "killed by signal 11 (SIGSEGV), core dumped": the worker's log lines.
     * Only here is a core dump mentioned: an operator can go and find the
     * core file, a job's sender cannot. */
    RB_SIG_NAMED,
} rb_sig_style;

/* A waitpid() status as text: "exited with status 3", "killed by signal
 * ..." (see rb_sig_style), "ended with wait status N" for anything else.
 * Writes at most cap bytes into out, always NUL-terminated; returns out. */
const char *rb_wait_text(int status, rb_sig_style style, char *out, size_t cap);

/* ---- the signal self-pipe (selfpipe.c) ---------------------------------------- */

/*
 * A signal handler may do almost nothing; a poll() loop wants to see
 * signals as readable bytes. The handler writes the signal's number into
 * a non-blocking pipe, and the loop polls its read end and drains it.
 * One per process (the handler finds the pipe through a global).
 */
typedef struct rb_selfpipe {
    int rd; /* poll for POLLIN; -1 when closed */
    int wr;
    const int *sigs; /* the signals routed here (the caller's array) */
    size_t nsigs;
} rb_selfpipe;

/* Make the pipe (close-on-exec, non-blocking) and route sigs[0..nsigs) to
 * it (SA_RESTART). sigs must outlive the pipe. 0, or -1 with errno. */
int rb_selfpipe_open(rb_selfpipe *p, const int *sigs, size_t nsigs);
/* Put the routed signals back to SIG_DFL (e.g. in a forked child, before it
 * unblocks them: its handler would write into its parent's pipe). */
void rb_selfpipe_default(const rb_selfpipe *p);
/* Read everything waiting, calling fn with each signal in arrival order.
 * Returns how many there were. */
size_t rb_selfpipe_drain(rb_selfpipe *p, void (*fn)(void *ctx, int sig), void *ctx);
/* rb_selfpipe_default, then close both ends. A closed pipe is a no-op. */
void rb_selfpipe_close(rb_selfpipe *p);

#endif
