/*
 * selfpipe.c - signals into a poll() loop through a pipe (see
 * rebound_base.h). The handler only writes one byte: it is async-signal-safe
 * and leaves errno as it found it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "rebound_base.h"

/* The write end the handler uses: a handler gets no argument of ours. */
static volatile sig_atomic_t g_write_fd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (g_write_fd >= 0) {
        ssize_t w = write(g_write_fd, &b, 1);
        (void)w; /* a full pipe already holds enough wake-ups */
    }
    errno = saved;
}

static void route(const rb_selfpipe *p, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < p->nsigs; i++)
        sigaction(p->sigs[i], &sa, NULL);
}

int rb_selfpipe_open(rb_selfpipe *p, const int *sigs, size_t nsigs)
{
    int fds[2];
    p->rd = p->wr = -1;
    p->sigs = sigs;
    p->nsigs = nsigs;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return -1;
    p->rd = fds[0];
    p->wr = fds[1];
    g_write_fd = p->wr;
    route(p, on_signal);
    return 0;
}

void rb_selfpipe_default(const rb_selfpipe *p)
{
    route(p, SIG_DFL);
}

size_t rb_selfpipe_drain(rb_selfpipe *p, void (*fn)(void *ctx, int sig), void *ctx)
{
    size_t total = 0;
    unsigned char buf[64];
    ssize_t n;
    while (p->rd >= 0 && (n = read(p->rd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            fn(ctx, buf[i]);
        total += (size_t)n;
    }
    return total;
}

void rb_selfpipe_close(rb_selfpipe *p)
{
    if (p->rd < 0) return;
    rb_selfpipe_default(p);
    if (g_write_fd == p->wr) g_write_fd = -1;
    close(p->rd);
    close(p->wr);
    p->rd = p->wr = -1;
}
