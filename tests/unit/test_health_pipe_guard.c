/*
 * test_health_pipe_guard.c - a write to a peer that went away, inside the
 * guard, neither kills the process (SIGPIPE's default action) nor leaves a
 * SIGPIPE pending; one that was already pending is left alone; the signal
 * mask is restored.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "health_internal.h"

static bool pipe_pending(void)
{
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    return sigismember(&pending, SIGPIPE) == 1;
}

static bool pipe_blocked(void)
{
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    return sigismember(&cur, SIGPIPE) == 1;
}

static int broken_socket(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    return sv[0];
}

static void test_write_to_closed_peer_survives(void **state)
{
    signal(SIGPIPE, SIG_DFL); /* what an unprepared process has */
    int fd = broken_socket();
    rb_pipe_guard g;
    rb_pipe_guard_enter(&g);
    assert_true(pipe_blocked());
    errno = 0;
    assert_int_equal(write(fd, "x", 1), -1);
    assert_int_equal(errno, EPIPE);
    assert_true(pipe_pending()); /* raised, held by the mask */
    rb_pipe_guard_leave(&g);
    /* still alive, nothing pending, mask as before */
    assert_false(pipe_pending());
    assert_false(pipe_blocked());
    close(fd);
}

static void test_someone_elses_pending_sigpipe_is_kept(void **state)
{
    signal(SIGPIPE, SIG_DFL);
    sigset_t pipe, old;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipe, &old);
    raise(SIGPIPE); /* pending before the guard */
    int fd = broken_socket();
    rb_pipe_guard g;
    rb_pipe_guard_enter(&g);
    assert_int_equal(write(fd, "x", 1), -1);
    rb_pipe_guard_leave(&g);
    assert_true(pipe_pending());
    assert_true(pipe_blocked()); /* the caller had it blocked: still blocked */
    /* consume it before unblocking, or it would kill the test */
    const struct timespec zero = {0, 0};
    assert_int_equal(sigtimedwait(&pipe, NULL, &zero), SIGPIPE);
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_to_closed_peer_survives),
        cmocka_unit_test(test_someone_elses_pending_sigpipe_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
