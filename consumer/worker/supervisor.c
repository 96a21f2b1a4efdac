/* supervisor.c - fork, watch and restart the consumer processes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "consumer.h"
#include "signame.h"
#include "supervisor.h"
#include "wclock.h"
#include "worker_log.h"

#define RESTART_MIN_MS 500
#define RESTART_MAX_MS 30000
/* A consumer that lived this long starts over at the shortest backoff. */
#define STABLE_MS 30000
/* After the drain time, consumers get this long before SIGKILL. */
#define KILL_GRACE_MS 10000

typedef struct child {
    pid_t pid; /* 0: not running */
    int64_t started_ms;
    int64_t restart_at_ms; /* 0: no restart scheduled */
    int backoff_ms;
} child;

typedef struct sup {
    const rb_worker_config *cfg;
    child *kids;
    int n;
    int sig_pipe[2];
    pid_t self;
    bool stopping;
    bool cold;
    int64_t kill_at_ms;
    int rc;
} sup;

static int g_sig_write = -1;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (g_sig_write >= 0) {
        ssize_t w = write(g_sig_write, &b, 1);
        (void)w;
    }
    errno = saved;
}

static const int handled[] = {SIGTERM, SIGINT, SIGQUIT, SIGCHLD};
#define NHANDLED (sizeof handled / sizeof handled[0])

static void set_handlers(void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < NHANDLED; i++)
        sigaction(handled[i], &sa, NULL);
}

void rb_consumer_id(const rb_worker_config *cfg, int n, char *out, size_t cap)
{
    if (cfg->consumers > 1)
        snprintf(out, cap, "%s.%d", cfg->worker_id, n);
    else
        snprintf(out, cap, "%s", cfg->worker_id);
}

/* Fork consumer i. Returns 1 in the child, 0 in the parent. */
static int spawn(sup *s, int i)
{
    sigset_t all, old;
    sigfillset(&all);
    /* No handler may run in the child before it has reset them: it would
     * write into the supervisor's pipe. */
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        set_handlers(SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        /* Its own process group: a Ctrl-C in a terminal reaches the
         * supervisor only, which passes it on once. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != s->self) /* the supervisor died before prctl */
            raise(SIGTERM);
        return 1;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    child *k = &s->kids[i];
    k->restart_at_ms = 0;
    if (pid < 0) {
        k->restart_at_ms = rb_mono_ms() + k->backoff_ms;
        rb_error("consumer %d: fork: %s; retrying in %d ms", i + 1, strerror(errno), k->backoff_ms);
        return 0;
    }
    k->pid = pid;
    k->started_ms = rb_mono_ms();
    rb_info("consumer %d started (pid %ld)", i + 1, (long)pid);
    return 0;
}

static void signal_all(sup *s, int sig)
{
    for (int i = 0; i < s->n; i++) {
        if (s->kids[i].pid > 0) kill(s->kids[i].pid, sig);
        s->kids[i].restart_at_ms = 0;
    }
}

static void describe(int status, char *out, size_t cap)
{
    if (WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d (%s)%s", WTERMSIG(status),
                 rb_sig_name(WTERMSIG(status)).s, WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
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
        describe(status, how, sizeof how);
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (s->stopping) {
            rb_log(clean ? RB_LOG_INFO : RB_LOG_WARN, "consumer %d (pid %ld) %s", i + 1, (long)pid,
                   how);
            if (!clean && !s->cold) s->rc = 1;
            continue;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == RB_CONSUMER_EXIT_FATAL) {
            rb_error("consumer %d (pid %ld) cannot run (see above); stopping the others", i + 1,
                     (long)pid);
            s->rc = 1;
            s->stopping = true;
            s->kill_at_ms = rb_mono_ms() + s->cfg->drain_ms + KILL_GRACE_MS;
            signal_all(s, SIGTERM);
            continue;
        }
        int64_t now = rb_mono_ms();
        if (now - k->started_ms >= STABLE_MS) k->backoff_ms = RESTART_MIN_MS;
        rb_warn("consumer %d (pid %ld) %s; restarting in %d ms", i + 1, (long)pid, how,
                k->backoff_ms);
        k->restart_at_ms = now + k->backoff_ms;
        k->backoff_ms = k->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : k->backoff_ms * 2;
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

static int live(const sup *s)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += s->kids[i].pid > 0;
    return n;
}

static void release(sup *s)
{
    g_sig_write = -1;
    close(s->sig_pipe[0]);
    close(s->sig_pipe[1]);
    free(s->kids);
}

int rb_supervise(const rb_worker_config *cfg, int *consumer_index)
{
    *consumer_index = 0;
    sup s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    s.n = cfg->consumers;
    s.self = getpid();
    s.kids = calloc((size_t)s.n, sizeof *s.kids);
    if (!s.kids || pipe2(s.sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        rb_error("cannot start: %s", strerror(errno));
        free(s.kids);
        return 1;
    }
    g_sig_write = s.sig_pipe[1];
    set_handlers(on_signal);
    signal(SIGPIPE, SIG_IGN);

    rb_info("rebound-worker %s: %d consumer%s x %d slot%s, queue '%s', mode %s, code root %s",
            REBOUND_VERSION, s.n, s.n > 1 ? "s" : "", cfg->slots, cfg->slots > 1 ? "s" : "",
            cfg->queue, rb_mode_name(cfg->mode), cfg->code_root);
    for (int i = 0; i < s.n; i++) {
        s.kids[i].backoff_ms = RESTART_MIN_MS;
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
        struct pollfd pfd = {.fd = s.sig_pipe[0], .events = POLLIN};
        if (poll(&pfd, 1, timeout) < 0 && errno != EINTR) {
            rb_error("poll: %s", strerror(errno));
            s.rc = 1;
            break;
        }
        unsigned char buf[64];
        ssize_t n;
        while ((n = read(s.sig_pipe[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == SIGCHLD)
                    reap(&s);
                else
                    on_stop_signal(&s, buf[i]);
            }
        }
        /* A SIGCHLD may coalesce with another; reaping is cheap. */
        reap(&s);
    }
    rb_info("all consumers stopped; exiting");
    int rc = s.rc;
    release(&s);
    set_handlers(SIG_DFL);
    return rc;
}
