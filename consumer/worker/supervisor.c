/*
 * supervisor.c - fork, watch and restart the consumer processes, and start
 * the quarantine consumer (admit.c) when a consumer asks for it.
 *
 * The quarantine consumer is kid number cfg->consumers (after the others):
 * started on SIGUSR1, restarted when it dies (a suspect killed it: more
 * suspects may wait), not restarted when it exits cleanly after idling,
 * unless a request came during its life (it may have been leaving when the
 * request's suspect arrived).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "consumer.h"
#include "rebound_base.h"
#include "supervisor.h"
#include "watchdog.h"
#include "worker_log.h"

#define RESTART_MIN_MS 500
#define RESTART_MAX_MS 30000
/* After the drain time, consumers get this long before SIGKILL. */
#define KILL_GRACE_MS 10000

typedef struct child {
    pid_t pid; /* 0: not running */
    int64_t started_ms;
    int64_t restart_at_ms; /* 0: no restart scheduled */
    rb_backoff restart;    /* RESTART_MIN_MS, doubling up to RESTART_MAX_MS */
    int beat_fd;           /* read end of its watchdog pipe, -1: none */
    int64_t beat_ms;       /* its last beat; 0: not heard yet (starting) */
    int64_t wanted_ms;     /* quarantine: the last request for it (mono), 0: none */
} child;

typedef struct sup {
    const rb_worker_config *cfg;
    child *kids;
    int n;           /* the consumers, and the quarantine consumer: kids[n - 1] */
    rb_selfpipe sig; /* handled[] */
    pid_t self;
    bool stopping;
    bool cold;
    int64_t kill_at_ms;
    int rc;
} sup;

static const int handled[] = {SIGTERM, SIGINT, SIGQUIT, SIGCHLD, SIGUSR1};
#define NHANDLED (sizeof handled / sizeof handled[0])

void rb_consumer_id(const rb_worker_config *cfg, int n, char *out, size_t cap)
{
    if (n > cfg->consumers)
        snprintf(out, cap, "%s.quarantine", cfg->worker_id);
    else if (cfg->consumers > 1)
        snprintf(out, cap, "%s.%d", cfg->worker_id, n);
    else
        snprintf(out, cap, "%s", cfg->worker_id);
}

static bool is_quarantine(const sup *s, int i)
{
    return i == s->n - 1;
}

/* "consumer 2", "quarantine consumer": for log lines. */
typedef struct kid_label {
    char s[32];
} kid_label;

static kid_label kid_name(const sup *s, int i)
{
    kid_label t;
    if (is_quarantine(s, i))
        snprintf(t.s, sizeof t.s, "quarantine consumer");
    else
        snprintf(t.s, sizeof t.s, "consumer %d", i + 1);
    return t;
}

/* Fork consumer i. Returns 1 in the child, 0 in the parent. */
static int spawn(sup *s, int i)
{
    child *k = &s->kids[i];
    int beat[2] = {-1, -1};
    if (s->cfg->watchdog_ms > 0 && rb_watchdog_pipe(beat) != 0)
        rb_warn("%s: no watchdog pipe: %s", kid_name(s, i).s, strerror(errno));
    sigset_t all, old;
    sigfillset(&all);
    /* No handler may run in the child before it has reset them: it would
     * write into the supervisor's pipe. */
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        rb_selfpipe_default(&s->sig);
        sigprocmask(SIG_SETMASK, &old, NULL);
        /* Its own process group: a Ctrl-C in a terminal reaches the
         * supervisor only, which passes it on once. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != s->self) /* the supervisor died before prctl */
            raise(SIGTERM);
        for (int j = 0; j < s->n; j++)
            if (s->kids[j].beat_fd >= 0) {
                close(s->kids[j].beat_fd);
                s->kids[j].beat_fd = -1;
            }
        if (beat[0] >= 0) close(beat[0]);
        rb_watchdog_child(beat[1]);
        return 1;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (beat[1] >= 0) close(beat[1]);
    if (k->beat_fd >= 0) close(k->beat_fd);
    k->beat_fd = pid > 0 ? beat[0] : -1;
    if (pid < 0 && beat[0] >= 0) close(beat[0]);
    k->beat_ms = 0;
    k->restart_at_ms = 0;
    if (pid < 0) {
        /* Retried after the wait a death would cost, without growing it. */
        int wait = (int)rb_backoff_peek(&k->restart);
        k->restart_at_ms = rb_mono_ms() + wait;
        rb_error("%s: fork: %s; retrying in %d ms", kid_name(s, i).s, strerror(errno), wait);
        return 0;
    }
    k->pid = pid;
    k->started_ms = rb_mono_ms();
    rb_info("%s started (pid %ld)", kid_name(s, i).s, (long)pid);
    return 0;
}

/* Beats heard, and consumers that have gone silent killed (they are then
 * reaped and restarted as after any death). Returns the poll timeout,
 * shortened to the next watchdog deadline. */
#define MAX_WATCHED 257 /* --consumers at most 256, and the quarantine consumer */
static int watch(sup *s, int64_t now, int timeout)
{
    int64_t bound = s->cfg->watchdog_ms;
    for (int i = 0; i < s->n && bound > 0; i++) {
        child *k = &s->kids[i];
        if (k->pid <= 0 || k->beat_fd < 0) continue;
        if (rb_watchdog_heard(k->beat_fd)) k->beat_ms = now;
        if (k->beat_ms == 0) continue; /* still starting: its pool may take a while */
        if (now - k->beat_ms >= bound) {
            rb_warn("%s (pid %ld) stalled: no beat for %lld ms; killing it", kid_name(s, i).s,
                    (long)k->pid, (long long)(now - k->beat_ms));
            kill(k->pid, SIGKILL);
            k->beat_ms = 0;
            continue;
        }
        int t = rb_ms_until(k->beat_ms + bound, now);
        if (timeout < 0 || t < timeout) timeout = t;
    }
    return timeout;
}

static void signal_all(sup *s, int sig)
{
    for (int i = 0; i < s->n; i++) {
        if (s->kids[i].pid > 0) kill(s->kids[i].pid, sig);
        s->kids[i].restart_at_ms = 0;
    }
}

static void reap(sup *s)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int i = 0;
        while (i < s->n && s->kids[i].pid != pid)
            i++;
        if (i == s->n) continue;
        child *k = &s->kids[i];
        k->pid = 0;
        char how[160];
        rb_wait_text(status, RB_SIG_NAMED, how, sizeof how);
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (s->stopping) {
            rb_log(clean ? RB_LOG_INFO : RB_LOG_WARN, "%s (pid %ld) %s", kid_name(s, i).s,
                   (long)pid, how);
            if (!clean && !s->cold) s->rc = 1;
            continue;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == RB_CONSUMER_EXIT_FATAL) {
            rb_error("%s (pid %ld) cannot run (see above); stopping the others", kid_name(s, i).s,
                     (long)pid);
            s->rc = 1;
            s->stopping = true;
            s->kill_at_ms = rb_mono_ms() + s->cfg->drain_ms + KILL_GRACE_MS;
            signal_all(s, SIGTERM);
            continue;
        }
        int64_t now = rb_mono_ms();
        if (is_quarantine(s, i) && clean) {
            /* It idled out. A request during its life may have come as it
             * was leaving: then once more. */
            if (k->wanted_ms >= k->started_ms) {
                rb_info("%s (pid %ld) %s; starting it again: asked for meanwhile", kid_name(s, i).s,
                        (long)pid, how);
                k->restart_at_ms = now;
            } else {
                rb_info("%s (pid %ld) %s", kid_name(s, i).s, (long)pid, how);
            }
            continue;
        }
        /* One that ran well for a while starts over at the shortest wait:
         * else a crash a day would end up waiting the longest each time. */
        if (now - k->started_ms >= s->cfg->restart_reset_ms) rb_backoff_reset(&k->restart);
        int wait = (int)rb_backoff_next(&k->restart);
        rb_warn("%s (pid %ld) %s; restarting in %d ms", kid_name(s, i).s, (long)pid, how, wait);
        k->restart_at_ms = now + wait;
    }
}

static void on_stop_signal(sup *s, int sig)
{
    if (sig == SIGQUIT || s->stopping) {
        /* A second request, or SIGQUIT: cold, at once. */
        if (!s->cold) rb_warn("%s: cold shutdown of the consumers", rb_sig_name(sig).s);
        s->cold = true;
        s->stopping = true;
        signal_all(s, SIGQUIT);
        return;
    }
    s->stopping = true;
    s->kill_at_ms = rb_mono_ms() + s->cfg->drain_ms + KILL_GRACE_MS;
    rb_info("%s: warm shutdown of the consumers (up to %d ms)", rb_sig_name(sig).s,
            s->cfg->drain_ms);
    signal_all(s, SIGTERM);
}

/* A consumer has moved a suspect to quarantine (admit.c). */
static void on_quarantine_wanted(sup *s)
{
    child *k = &s->kids[s->n - 1];
    if (s->stopping) return;
    k->wanted_ms = rb_mono_ms();
    if (k->pid == 0 && k->restart_at_ms == 0) k->restart_at_ms = k->wanted_ms;
}

static void on_signal(void *ctx, int sig)
{
    sup *s = ctx;
    if (sig == SIGCHLD)
        reap(s);
    else if (sig == SIGUSR1)
        on_quarantine_wanted(s);
    else
        on_stop_signal(s, sig);
}

static int live(const sup *s)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += s->kids[i].pid > 0;
    return n;
}

/* Also puts the handled signals back to their defaults. */
static void release(sup *s)
{
    rb_selfpipe_close(&s->sig);
    for (int i = 0; s->kids && i < s->n; i++)
        if (s->kids[i].beat_fd >= 0) close(s->kids[i].beat_fd);
    free(s->kids);
}

int rb_supervise(const rb_worker_config *cfg, int *consumer_index)
{
    *consumer_index = 0;
    sup s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    s.n = cfg->consumers + 1; /* and the quarantine consumer, on demand */
    s.self = getpid();
    s.kids = calloc((size_t)s.n, sizeof *s.kids);
    if (!s.kids || rb_selfpipe_open(&s.sig, handled, NHANDLED) < 0) {
        rb_error("cannot start: %s", strerror(errno));
        free(s.kids);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    rb_info("rebound-worker %s: %d consumer%s x %d slot%s, queue '%s', mode %s, code root %s",
            REBOUND_VERSION, cfg->consumers, cfg->consumers > 1 ? "s" : "", cfg->slots,
            cfg->slots > 1 ? "s" : "", cfg->queue, rb_mode_name(cfg->mode), cfg->code_root);
    for (int i = 0; i < s.n; i++) {
        s.kids[i].beat_fd = -1;
        rb_backoff_init(&s.kids[i].restart, RESTART_MIN_MS, RESTART_MAX_MS, false);
    }
    for (int i = 0; i < cfg->consumers; i++) {
        if (spawn(&s, i)) {
            *consumer_index = i + 1;
            release(&s);
            return 0;
        }
    }

    for (;;) {
        if (s.stopping && live(&s) == 0) break;
        int64_t now = rb_mono_ms();
        int timeout = -1;
        for (int i = 0; i < s.n; i++) {
            if (s.kids[i].restart_at_ms == 0) continue;
            if (now >= s.kids[i].restart_at_ms) {
                if (spawn(&s, i)) {
                    *consumer_index = i + 1;
                    release(&s);
                    return 0;
                }
                continue;
            }
            int t = rb_ms_until(s.kids[i].restart_at_ms, now);
            if (timeout < 0 || t < timeout) timeout = t;
        }
        if (s.stopping) {
            if (now >= s.kill_at_ms && !s.cold) {
                rb_warn("consumers still running %d ms after the shutdown request; killing them",
                        cfg->drain_ms + KILL_GRACE_MS);
                s.cold = true;
                s.rc = 1;
                signal_all(&s, SIGKILL);
            } else if (!s.cold) {
                int t = rb_ms_until(s.kill_at_ms, now);
                if (timeout < 0 || t < timeout) timeout = t;
            }
        }
        timeout = watch(&s, now, timeout);
        struct pollfd pfd[1 + MAX_WATCHED];
        int np = 0;
        pfd[np++] = (struct pollfd){.fd = s.sig.rd, .events = POLLIN};
        for (int i = 0; i < s.n && np < 1 + MAX_WATCHED; i++)
            if (s.kids[i].beat_fd >= 0)
                pfd[np++] = (struct pollfd){.fd = s.kids[i].beat_fd, .events = POLLIN};
        if (poll(pfd, (nfds_t)np, timeout) < 0 && errno != EINTR) {
            rb_error("poll: %s", strerror(errno));
            s.rc = 1;
            break;
        }
        rb_selfpipe_drain(&s.sig, on_signal, &s);
        /* A SIGCHLD may coalesce with another; reaping is cheap. */
        reap(&s);
    }
    rb_info("all consumers stopped; exiting");
    int rc = s.rc;
    release(&s);
    return rc;
}
