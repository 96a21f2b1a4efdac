/*
 * test_base_helpers.c - base/'s helpers, one behaviour at a time: backoff
 * bounds, growth, jitter and reset; the text of wait statuses; the signal
 * self-pipe waking poll() and draining; the clocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rebound_base.h"

/* ---- backoff ---------------------------------------------------------------- */

static void test_backoff_doubles_up_to_max(void **state)
{
    (void)state;
    rb_backoff b;
    rb_backoff_init(&b, 100, 3200, false);
    const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 3200, 3200};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(rb_backoff_peek(&b), want[i]);
        assert_int_equal(rb_backoff_next(&b), want[i]);
    }
}

/* A maximum that is no power of two times the minimum is reached, not
 * overshot: 500 ms doubling up to 30 s ends 16 s, 30 s. */
static void test_backoff_caps_at_max(void **state)
{
    (void)state;
    rb_backoff b;
    rb_backoff_init(&b, 500, 30000, false);
    int64_t last = 0;
    for (int i = 0; i < 6; i++)
        last = rb_backoff_next(&b);
    assert_int_equal(last, 16000);
    assert_int_equal(rb_backoff_next(&b), 30000);
    assert_int_equal(rb_backoff_next(&b), 30000);
}

static void test_backoff_peek_does_not_count(void **state)
{
    (void)state;
    rb_backoff b;
    rb_backoff_init(&b, 200, 10000, false);
    assert_int_equal(rb_backoff_peek(&b), 200);
    assert_int_equal(rb_backoff_peek(&b), 200);
    assert_int_equal(rb_backoff_next(&b), 200);
    assert_int_equal(rb_backoff_peek(&b), 400);
}

static void test_backoff_reset_starts_over(void **state)
{
    (void)state;
    rb_backoff b;
    rb_backoff_init(&b, 100, 10000, false);
    for (int i = 0; i < 10; i++)
        rb_backoff_next(&b);
    assert_int_equal(rb_backoff_next(&b), 10000);
    rb_backoff_reset(&b);
    assert_int_equal(rb_backoff_next(&b), 100);
    assert_int_equal(rb_backoff_next(&b), 200);
}

/* With jitter, wait n lies in [d/2, d] for d = min * 2^n (capped), and the
 * waits of processes that failed together differ. */
static void test_backoff_jitter_bounds_and_growth(void **state)
{
    (void)state;
    enum { RUNS = 200, STEPS = 10 };
    int64_t first[RUNS];
    for (int r = 0; r < RUNS; r++) {
        rb_backoff b;
        rb_backoff_init(&b, 100, 10000, true);
        int64_t d = 100;
        for (int n = 0; n < STEPS; n++) {
            int64_t w = rb_backoff_next(&b);
            if (n == 0) first[r] = w;
            assert_true(w >= d / 2);
            assert_true(w <= d);
            d = d * 2 > 10000 ? 10000 : d * 2;
        }
    }
    bool differ = false;
    for (int r = 1; r < RUNS && !differ; r++)
        differ = first[r] != first[0];
    assert_true(differ);
}

static void test_backoff_jitter_reset(void **state)
{
    (void)state;
    rb_backoff b;
    rb_backoff_init(&b, 100, 5000, true);
    for (int i = 0; i < 12; i++)
        rb_backoff_next(&b);
    int64_t w = rb_backoff_next(&b);
    assert_true(w >= 2500 && w <= 5000);
    rb_backoff_reset(&b);
    w = rb_backoff_next(&b);
    assert_true(w >= 50 && w <= 100);
}

/* ---- wait statuses -------------------------------------------------------- */

/* Linux's wait status layout, so that every case (a core dump included) is
 * tested without making one. */
#define EXITED(code) ((code) << 8)
#define SIGNALED(sig) (sig)
#define CORE 0x80

static void check_text(int status, rb_sig_style style, const char *want)
{
    char buf[160];
    memset(buf, 'x', sizeof buf);
    const char *got = rb_wait_text(status, style, buf, sizeof buf);
    assert_ptr_equal(got, buf);
    assert_string_equal(got, want);
}

static void test_wait_text_exit(void **state)
{
    (void)state;
    check_text(EXITED(3), RB_SIG_DESCRIBED, "exited with status 3");
    check_text(EXITED(0), RB_SIG_NAMED, "exited with status 0");
    check_text(EXITED(255), RB_SIG_NUMBER, "exited with status 255");
}

static void test_wait_text_signal_styles(void **state)
{
    (void)state;
    check_text(SIGNALED(SIGSEGV), RB_SIG_DESCRIBED, "killed by signal 11 (Segmentation fault)");
    check_text(SIGNALED(SIGSEGV), RB_SIG_NAMED, "killed by signal 11 (SIGSEGV)");
    check_text(SIGNALED(SIGSEGV), RB_SIG_NUMBER, "killed by signal 11");
    check_text(SIGNALED(SIGKILL), RB_SIG_NAMED, "killed by signal 9 (SIGKILL)");
}

/* Only the log's style mentions a core dump. */
static void test_wait_text_core_dump(void **state)
{
    (void)state;
    check_text(SIGNALED(SIGSEGV) | CORE, RB_SIG_NAMED,
               "killed by signal 11 (SIGSEGV), core dumped");
    check_text(SIGNALED(SIGSEGV) | CORE, RB_SIG_DESCRIBED,
               "killed by signal 11 (Segmentation fault)");
    check_text(SIGNALED(SIGABRT) | CORE, RB_SIG_NUMBER, "killed by signal 6");
}

static void test_wait_text_other_status(void **state)
{
    (void)state;
    int stopped = (SIGSTOP << 8) | 0x7f;
    check_text(stopped, RB_SIG_NAMED, "ended with wait status 4991");
}

/* The statuses waitpid really returns read the same. */
static void test_wait_text_real_processes(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(3);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    check_text(status, RB_SIG_DESCRIBED, "exited with status 3");

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    check_text(status, RB_SIG_DESCRIBED, "killed by signal 9 (Killed)");
}

static void test_wait_text_truncates(void **state)
{
    (void)state;
    char buf[8];
    rb_wait_text(EXITED(3), RB_SIG_NAMED, buf, sizeof buf);
    assert_string_equal(buf, "exited ");
}

static void test_sig_name(void **state)
{
    (void)state;
    assert_string_equal(rb_sig_name(SIGTERM).s, "SIGTERM");
    assert_string_equal(rb_sig_name(SIGCHLD).s, "SIGCHLD");
    assert_string_equal(rb_sig_name(70).s, "signal 70");
}

/* ---- the self-pipe ---------------------------------------------------------- */

static const int routed[] = {SIGUSR1, SIGUSR2};

typedef struct seen {
    int sigs[8];
    size_t n;
} seen;

static void record(void *ctx, int sig)
{
    seen *s = ctx;
    if (s->n < sizeof s->sigs / sizeof s->sigs[0]) s->sigs[s->n++] = sig;
}

static int poll_in(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    return n == 1 && (pfd.revents & POLLIN) ? 1 : n;
}

static void test_selfpipe_wakes_poll_and_drains(void **state)
{
    (void)state;
    rb_selfpipe p;
    assert_int_equal(rb_selfpipe_open(&p, routed, 2), 0);
    assert_int_equal(poll_in(p.rd, 0), 0); /* nothing yet */

    raise(SIGUSR2);
    raise(SIGUSR1);
    raise(SIGUSR2);
    assert_int_equal(poll_in(p.rd, 1000), 1);
    seen s = {.n = 0};
    assert_int_equal(rb_selfpipe_drain(&p, record, &s), 3);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.sigs[0], SIGUSR2);
    assert_int_equal(s.sigs[1], SIGUSR1);
    assert_int_equal(s.sigs[2], SIGUSR2);

    /* Drained: poll sleeps again, and a second drain finds nothing. */
    assert_int_equal(poll_in(p.rd, 0), 0);
    assert_int_equal(rb_selfpipe_drain(&p, record, &s), 0);
    rb_selfpipe_close(&p);
}

static void test_selfpipe_fds_nonblocking_cloexec(void **state)
{
    (void)state;
    rb_selfpipe p;
    assert_int_equal(rb_selfpipe_open(&p, routed, 2), 0);
    int fds[] = {p.rd, p.wr};
    for (int i = 0; i < 2; i++) {
        assert_true(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
        assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
    }
    rb_selfpipe_close(&p);
}

static bool handler_is_default(int sig)
{
    struct sigaction sa;
    sigaction(sig, NULL, &sa);
    return sa.sa_handler == SIG_DFL;
}

static void test_selfpipe_close_restores_defaults(void **state)
{
    (void)state;
    rb_selfpipe p;
    assert_int_equal(rb_selfpipe_open(&p, routed, 2), 0);
    assert_false(handler_is_default(SIGUSR1));
    rb_selfpipe_close(&p);
    assert_true(handler_is_default(SIGUSR1));
    assert_true(handler_is_default(SIGUSR2));
    assert_int_equal(p.rd, -1);
    seen s = {.n = 0};
    assert_int_equal(rb_selfpipe_drain(&p, record, &s), 0);
    rb_selfpipe_close(&p); /* a second close is a no-op */

    /* rb_selfpipe_default alone: the pipe stays open. */
    assert_int_equal(rb_selfpipe_open(&p, routed, 2), 0);
    rb_selfpipe_default(&p);
    assert_true(handler_is_default(SIGUSR2));
    assert_true(p.rd >= 0);
    rb_selfpipe_close(&p);
}

/* ---- clocks ---------------------------------------------------------------- */

static void test_clock_monotonic(void **state)
{
    (void)state;
    int64_t prev = rb_mono_ns();
    for (int i = 0; i < 100000; i++) {
        int64_t now = rb_mono_ns();
        assert_true(now >= prev);
        prev = now;
    }
    int64_t t0 = rb_mono_ms();
    struct timespec nap = {0, 20 * 1000000};
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR) {
    }
    int64_t t1 = rb_mono_ms();
    /* 20 ms passed; whole milliseconds may lose one to rounding down. */
    assert_true(t1 - t0 >= 19);
    assert_true(t1 - t0 < 5000);
    int64_t ns_ms = rb_mono_ns() / 1000000;
    assert_true(ns_ms >= t1 && ns_ms - t1 < 1000);
}

static void test_clock_wall(void **state)
{
    (void)state;
    int64_t before = (int64_t)time(NULL) * 1000;
    int64_t w = rb_wall_ms();
    int64_t after = (int64_t)time(NULL) * 1000 + 2000; /* time() may lag a tick */
    assert_true(w >= before && w <= after);
}

static void test_ms_until(void **state)
{
    (void)state;
    assert_int_equal(rb_ms_until(1500, 0), 1500);
    assert_int_equal(rb_ms_until(100, 100), 0);
    assert_int_equal(rb_ms_until(0, 100), 0);
    assert_int_equal(rb_ms_until(INT64_MAX / 2, 0), INT32_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_up_to_max),
        cmocka_unit_test(test_backoff_caps_at_max),
        cmocka_unit_test(test_backoff_peek_does_not_count),
        cmocka_unit_test(test_backoff_reset_starts_over),
        cmocka_unit_test(test_backoff_jitter_bounds_and_growth),
        cmocka_unit_test(test_backoff_jitter_reset),
        cmocka_unit_test(test_wait_text_exit),
        cmocka_unit_test(test_wait_text_signal_styles),
        cmocka_unit_test(test_wait_text_core_dump),
        cmocka_unit_test(test_wait_text_other_status),
        cmocka_unit_test(test_wait_text_real_processes),
        cmocka_unit_test(test_wait_text_truncates),
        cmocka_unit_test(test_sig_name),
        cmocka_unit_test(test_selfpipe_wakes_poll_and_drains),
        cmocka_unit_test(test_selfpipe_fds_nonblocking_cloexec),
        cmocka_unit_test(test_selfpipe_close_restores_defaults),
        cmocka_unit_test(test_clock_monotonic),
        cmocka_unit_test(test_clock_wall),
        cmocka_unit_test(test_ms_until),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
