/*
 * pipe_guard.c - keep a write to a vanished Redis from killing the process
 * with SIGPIPE (see rb_pipe_guard in health_internal.h).
 *
 * Only the calling thread's mask changes, and only for the duration of the
 * write. A SIGPIPE that was already pending before the guard (raised by
 * someone else) is left alone; one raised by our write is a synchronous,
 * thread-directed signal, so sigtimedwait() consumes exactly that one.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "health_internal.h"

static void pipe_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGPIPE);
}

void rb_pipe_guard_enter(rb_pipe_guard *g)
{
    sigset_t pipe, pending;
    pipe_set(&pipe);
    pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

void rb_pipe_guard_leave(rb_pipe_guard *g)
{
    if (!g->was_pending) {
        sigset_t pipe, pending;
        pipe_set(&pipe);
        sigemptyset(&pending);
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) == 1) {
            const struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}
