/*
 * consumer.c - the event loop of a consumer process: signals, the AMQP
 * connection (with reconnects), the pool and the heartbeat, multiplexed by
 * one poll().
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer_internal.h"
#include "watchdog.h"
#include "rebound_base.h"
#include "worker_log.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 10000
/* A connection lost after this long is tried again at once (rb_consumer_lost). */
#define RECONNECT_AT_ONCE_AFTER_MS 1000
#define SETUP_TIMEOUT_MS 5000
#define EVENTS_PER_TURN 256
#define MAX_SLEEP_MS 1000
/* The quarantine consumer exits after this long without a suspect. */
#define QUARANTINE_IDLE_MS 3000

/* ---- signals: a self-pipe, read by the loop ------------------------------ */

static const int stop_signals[] = {SIGTERM, SIGINT, SIGQUIT};

static int setup_signals(rb_consumer *c)
{
    if (rb_selfpipe_open(&c->sig, stop_signals, sizeof stop_signals / sizeof stop_signals[0]) < 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return 0;
}

/* ---- connection ------------------------------------------------------------ */

/* Reconnecting waits 100 ms, doubling up to 10 s, each wait drawn from
 * [d/2, d]: consumers that lost the broker together do not all come back in
 * the same millisecond. */
static void schedule_reconnect(rb_consumer *c, const char *why)
{
    int wait = (int)rb_backoff_next(&c->reconnect);
    c->next_connect_ms = rb_mono_ms() + wait;
    rb_warn("%s; %zu results held, %zu jobs in flight; reconnecting in %d ms", why, c->outbox.nheld,
            c->njobs, wait);
}

/* Move on to the next broker of the list, wrapping around. */
static void next_broker(rb_consumer *c)
{
    c->broker = (c->broker + 1) % c->cfg->nbrokers;
}

void rb_consumer_lost(rb_consumer *c, const char *reason, bool graceful)
{
    rb_amqp_close(c->amqp, graceful);
    c->amqp = NULL;
    c->amqp_failed = false;
    c->cancel_sent = false;
    /* Unconfirmed results may or may not have reached the broker: publish
     * them again on the next connection. */
    rb_outbox_requeue_pending(&c->outbox);
    c->blocked = false; /* a new connection is told again */
    c->wait_writable = false;
    char why[800];
    snprintf(why, sizeof why, "connection lost: %s (%s)", reason, c->cfg->amqp[c->broker].shown);
    /* With several brokers, the next one is tried: the one just lost may be
     * the node that went down (a cluster's, or a host cut off). */
    next_broker(c);
    int64_t now = rb_mono_ms();
    if (now - c->connected_at_ms >= RECONNECT_AT_ONCE_AFTER_MS) {
        /* A connection that had been up a while: the broker is most likely
         * back already (a restart, a blip). Try again at once, in the place
         * of the shortest wait, so that a failure waits the second one. A
         * connection lost right after it was made waits, or a broker that
         * keeps closing it would be hammered. */
        rb_backoff_next(&c->reconnect);
        c->next_connect_ms = now;
        rb_warn("%s; %zu results held, %zu jobs in flight; reconnecting at once", why,
                c->outbox.nheld, c->njobs);
    } else {
        schedule_reconnect(c, why);
    }
    if (c->hb) rb_heartbeat_beat_now(c->hb);
}

static void try_connect(rb_consumer *c)
{
    const rb_worker_config *cfg = c->cfg;
    rb_amqp_params p = {
        .url = &cfg->amqp[c->broker],
        .tls_ca = cfg->tls_ca,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
        .queue = cfg->queue,
        .queue_type = cfg->queue_type,
        .delivery_limit = cfg->delivery_limit,
        .prefetch = cfg->prefetch,
        .heartbeat_s = cfg->amqp_heartbeat_s,
        .connection_name = c->id,
        .consume = !c->draining,
        .quarantine = cfg->quarantine,
        .setup_timeout_ms = SETUP_TIMEOUT_MS,
        .max_body = cfg->max_job_bytes,
    };
    rb_err err = {{0}};
    const char *shown = cfg->amqp[c->broker].shown;
    c->amqp = rb_amqp_open(&p, &err);
    if (!c->amqp) {
        c->connect_failures++;
        char why[1024];
        snprintf(why, sizeof why, "cannot set up %s (attempt %d): %s", shown, c->connect_failures,
                 err.msg);
        next_broker(c);
        if (c->connect_failures % cfg->nbrokers != 0) {
            /* Brokers of the list not tried yet in this round are tried at
             * once; a round in which none answered ends in the backoff. */
            c->next_connect_ms = rb_mono_ms();
            rb_warn("%s; trying %s next", why, cfg->amqp[c->broker].shown);
        } else {
            schedule_reconnect(c, why);
        }
        return;
    }
    c->generation++;
    c->connected_at_ms = rb_mono_ms();
    c->connect_failures = 0;
    rb_backoff_reset(&c->reconnect);
    c->ever_connected = true;
    rb_info("connected to %s (broker %d of %d); %s queue '%s', prefetch %d%s; %zu held results "
            "to publish",
            shown, c->broker + 1, cfg->nbrokers, rb_queue_type_name(cfg->queue_type), cfg->queue,
            cfg->prefetch, c->draining ? " (draining: not consuming)" : "", c->outbox.nheld);
    const char *dead_note = rb_amqp_dead_queue_note(c->amqp);
    if (dead_note[0]) rb_warn("%s", dead_note);
    c->last_activity_ms = c->connected_at_ms;
    /* Suspects left by a consumer that died before its quarantine
     * consumer ran them (on any host): run them here. */
    uint32_t waiting = rb_amqp_suspects_waiting(c->amqp);
    if (waiting > 0 && !cfg->quarantine) { /* (the quarantine consumer runs them) */
        rb_info("%u jobs wait in quarantine: asking for the quarantine consumer", waiting);
        rb_admit_want_quarantine(c);
    }
    if (c->hb) rb_heartbeat_beat_now(c->hb);
}

/* ---- shutdown -------------------------------------------------------------- */

static void begin_drain(rb_consumer *c)
{
    c->draining = true;
    c->drain_deadline_ms = rb_mono_ms() + c->cfg->drain_ms;
    if (c->amqp) {
        rb_err err = {{0}};
        if (rb_amqp_cancel(c->amqp, &err) < 0)
            rb_consumer_lost(c, err.msg, false);
        else
            c->cancel_sent = true;
    }
    if (c->hb) rb_heartbeat_beat_now(c->hb);
}

static void start_drain(rb_consumer *c, int sig)
{
    rb_info("%s: warm shutdown: finishing %zu jobs in flight (up to %d ms)", rb_sig_name(sig).s,
            c->njobs, c->cfg->drain_ms);
    begin_drain(c);
}

/* The quarantine consumer is started on demand (admit.c) and leaves when
 * no suspect has come for a while: this starts its drain then. Returns
 * the ms until it would, or -1 (for the poll timeout). */
static int quarantine_leave_when_idle(rb_consumer *c, int64_t now)
{
    if (!c->cfg->quarantine || c->draining || !c->amqp || c->njobs > 0 ||
        !rb_outbox_empty(&c->outbox))
        return -1;
    if (now - c->last_activity_ms < QUARANTINE_IDLE_MS)
        return rb_ms_until(c->last_activity_ms + QUARANTINE_IDLE_MS, now);
    rb_info("no suspect for %d ms: the quarantine consumer exits", QUARANTINE_IDLE_MS);
    begin_drain(c);
    return -1;
}

static void go_cold(rb_consumer *c, const char *why)
{
    c->cold = true;
    rb_warn("%s: cold shutdown: abandoning %zu jobs in flight and %zu unconfirmed results "
            "(the broker requeues their jobs)",
            why, c->njobs, c->outbox.nheld + c->outbox.npending + c->outbox.nretry);
    rb_pool_abandon_running(c->pool);
}

static void on_signal(void *ctx, int sig)
{
    rb_consumer *c = ctx;
    if (c->cold) return; /* the rest of the pipe is drained unread */
    if (sig == SIGQUIT)
        go_cold(c, "SIGQUIT");
    else if (c->draining)
        go_cold(c, "second shutdown signal");
    else
        start_drain(c, sig);
}

static bool drained(const rb_consumer *c)
{
    return c->njobs == 0 && rb_outbox_empty(&c->outbox);
}

/* ---- the loop -------------------------------------------------------------- */

static int min_timeout(int a, int b)
{
    if (a < 0) return b;
    if (b < 0) return a;
    return a < b ? a : b;
}

static void read_amqp(rb_consumer *c, bool *more)
{
    *more = false;
    for (int i = 0; i < EVENTS_PER_TURN && c->amqp && !c->amqp_failed; i++) {
        rb_amqp_event ev;
        switch (rb_amqp_next(c->amqp, &ev)) {
        case RB_EV_NONE:
            return;
        case RB_EV_DELIVERY:
            rb_jobs_on_delivery(c, &ev.delivery);
            rb_amqp_delivery_free(&ev.delivery);
            break;
        case RB_EV_ACK:
        case RB_EV_NACK:
            rb_jobs_on_confirm(c, ev.seq, ev.multiple, ev.type == RB_EV_ACK);
            break;
        case RB_EV_RETURNED:
            rb_jobs_on_returned(c, &ev.delivery);
            rb_amqp_delivery_free(&ev.delivery);
            break;
        case RB_EV_BLOCKED:
            if (!c->blocked)
                rb_warn("the broker blocks publishing (%s): results wait until it unblocks",
                        ev.reason[0] ? ev.reason : "no reason given");
            c->blocked = true;
            if (c->hb) rb_heartbeat_beat_now(c->hb);
            break;
        case RB_EV_UNBLOCKED:
            if (c->blocked)
                rb_info("the broker unblocked publishing: %zu results to publish", c->outbox.nheld);
            c->blocked = false;
            if (c->hb) rb_heartbeat_beat_now(c->hb);
            break;
        case RB_EV_CANCEL_OK:
            rb_info("consumer cancelled; no new jobs");
            break;
        case RB_EV_LOST:
            rb_consumer_lost(c, ev.reason, ev.graceful);
            return;
        }
    }
    *more = c->amqp != NULL;
}

static int run_loop(rb_consumer *c)
{
    /* The signal pipe, the broker and Redis, and the pool's. */
    size_t cap = 3 + (size_t)rb_pool_max_pollfds(c->pool);
    struct pollfd *fds = calloc(cap, sizeof *fds);
    if (!fds) {
        rb_error("out of memory");
        return RB_CONSUMER_EXIT_FATAL;
    }
    bool more = false;
    while (!c->cold) {
        rb_watchdog_beat(); /* to the supervisor: this loop turns */
        int64_t now = rb_mono_ms();
        if (!c->amqp && now >= c->next_connect_ms) try_connect(c);
        int64_t retry_at = rb_outbox_release_due(&c->outbox, now);
        if (rb_jobs_flush(c) < 0) rb_consumer_lost(c, c->amqp_failure, false);
        if (c->draining && drained(c)) break;
        now = rb_mono_ms();
        if (c->draining && now >= c->drain_deadline_ms) {
            go_cold(c, "drain deadline passed");
            break;
        }

        int n = 0;
        fds[n++] = (struct pollfd){.fd = c->sig.rd, .events = POLLIN};
        int hb_i = -1;
        if (c->amqp)
            fds[n++] = (struct pollfd){.fd = rb_amqp_fd(c->amqp),
                                       .events = POLLIN | (c->wait_writable ? POLLOUT : 0)};
        if (c->hb && rb_heartbeat_pollfd(c->hb, &fds[n])) hb_i = n++;
        int pool_i = n;
        int npool = rb_pool_pollfds(c->pool, fds + n, (int)cap - n);
        n += npool;

        int timeout = MAX_SLEEP_MS;
        timeout = min_timeout(timeout, rb_pool_timeout_ms(c->pool));
        if (c->hb) timeout = min_timeout(timeout, rb_heartbeat_timeout_ms(c->hb));
        if (c->amqp) {
            timeout = min_timeout(timeout, rb_amqp_max_sleep_ms(c->amqp));
            if (more || rb_amqp_buffered(c->amqp)) timeout = 0;
        } else {
            timeout = min_timeout(timeout, rb_ms_until(c->next_connect_ms, now));
        }
        if (c->draining) timeout = min_timeout(timeout, rb_ms_until(c->drain_deadline_ms, now));
        timeout = min_timeout(timeout, quarantine_leave_when_idle(c, now));
        if (retry_at >= 0) timeout = min_timeout(timeout, rb_ms_until(retry_at, now));

        if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            rb_error("poll: %s", strerror(errno));
            free(fds);
            return RB_CONSUMER_EXIT_FATAL;
        }
        if (fds[0].revents) rb_selfpipe_drain(&c->sig, on_signal, c);
        if (c->cold) break;
        /* Read whether or not the socket polled readable: librabbitmq sends
         * its heartbeats from inside reads, and TLS may hold decrypted
         * bytes the socket no longer shows. */
        read_amqp(c, &more);
        if (c->amqp_failed) rb_consumer_lost(c, c->amqp_failure, false);
        rb_pool_process(c->pool, fds + pool_i, npool);
        rb_pool_result res;
        while (rb_pool_next_result(c->pool, &res)) {
            rb_jobs_on_result(c, &res);
            rb_pool_result_free(&res);
        }
        if (c->hb) rb_heartbeat_process(c->hb, hb_i >= 0 ? &fds[hb_i] : NULL);
    }
    free(fds);
    return 0;
}

/* rebound-trampoline sits next to rebound-worker. */
static int trampoline_path(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) return -1;
    exe[n] = '\0';
    if ((size_t)snprintf(out, cap, "%s/rebound-trampoline", dirname(exe)) >= cap) return -1;
    return 0;
}

/* The pool's own lines (zygote replacements, trampoline restarts) join the
 * worker's log, in its format. */
static void pool_log_line(void *ctx, const char *line)
{
    (void)ctx;
    rb_warn("pool: %s", line);
}

static rb_pool *start_pool(rb_consumer *c)
{
    const rb_worker_config *cfg = c->cfg;
    char tp[PATH_MAX];
    if (trampoline_path(tp, sizeof tp) < 0) {
        rb_error("cannot locate rebound-trampoline: %s", strerror(errno));
        return NULL;
    }
    rb_pool_config pc;
    rb_pool_config_default(&pc);
    pc.slots = cfg->slots;
    pc.trampoline_path = tp;
    pc.code_root = cfg->code_root;
    pc.mode = cfg->mode;
    pc.preload = cfg->preload;
    pc.max_output_bytes = cfg->max_output_bytes;
    pc.mem_limit_mb = cfg->mem_limit_mb;
    pc.tmp_mb = cfg->tmp_mb;
    pc.tmp_inodes = cfg->tmp_inodes;
    pc.slot_offset = cfg->slot_offset;
    pc.container_cmd = cfg->container_cmd && cfg->container_cmd[0] ? cfg->container_cmd : NULL;
    pc.container_rw = cfg->container_rw;
    pc.allow_network = cfg->allow_network;
    pc.shared_cpus = cfg->shared_cpus;
    pc.run_as = cfg->run_as;
    pc.uid_base = (long)cfg->uid_base;
    pc.sandbox_best_effort = cfg->sandbox_best_effort;
    pc.log = pool_log_line;
    rb_err err = {{0}};
    rb_pool *pool = rb_pool_new(&pc, &err);
    if (!pool) {
        rb_error("cannot start the trampoline pool: %s", err.msg);
        return NULL;
    }
    const char *failed = rb_pool_preload_failed(pool);
    rb_info("pool ready: %d slots, mode %s, sandbox %s%s%s", cfg->slots, rb_mode_name(cfg->mode),
            rb_pool_sandbox(pool), failed[0] ? "; preload failed: " : "", failed);
    /* Started with --sandbox-best-effort and something is missing: say so
     * where a log filtered to warnings shows it. */
    const char *missing = strstr(rb_pool_sandbox(pool), "missing:");
    if (cfg->mode != RB_MODE_INTERNAL && missing)
        rb_warn("sandbox: jobs run without %s (--sandbox-best-effort)",
                missing + strlen("missing:"));
    return pool;
}

int rb_consumer_run(const rb_worker_config *cfg, const char *worker_id)
{
    rb_consumer c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    snprintf(c.id, sizeof c.id, "%s", worker_id);
    gethostname(c.host, sizeof c.host - 1);
    c.started_ms = rb_wall_ms();
    rb_limits_default(&c.limits);
    c.limits.max_job_bytes = cfg->max_job_bytes;
    c.limits.default_timeout_ms = cfg->timeout_ms;
    c.limits.max_timeout_ms = cfg->max_timeout_ms;
    rb_outbox_init(&c.outbox);
    rb_log_set_id(c.id);
    rb_backoff_init(&c.reconnect, RECONNECT_MIN_MS, RECONNECT_MAX_MS, true);
    /* The first connection is tried at once, in the place of the shortest
     * wait: if it fails, the wait is the second one, as for a failed try
     * after a lost connection. */
    rb_backoff_next(&c.reconnect);

    if (setup_signals(&c) < 0) {
        rb_error("cannot create the signal pipe: %s", strerror(errno));
        return RB_CONSUMER_EXIT_FATAL;
    }
    int rc = RB_CONSUMER_EXIT_FATAL;
    c.pool = start_pool(&c);
    if (!c.pool) goto out;
    if (cfg->redis_url[0]) {
        rb_err err = {{0}};
        c.hb = rb_heartbeat_new(cfg->redis_url, cfg->redis_prefix, cfg->heartbeat_ms,
                                rb_consumer_hb_fill, &c, &err);
        if (!c.hb) {
            rb_error("heartbeat: %s", err.msg);
            goto out;
        }
        rb_heartbeat_set_log(c.hb, rb_consumer_hb_log, NULL);
    }
    c.next_connect_ms = rb_mono_ms();
    rc = run_loop(&c);
    if (rc == 0 && !c.cold) {
        rb_info("drained; exiting");
        rb_amqp_close(c.amqp, true);
        c.amqp = NULL;
        if (c.hb) rb_heartbeat_stop(c.hb, 1000);
    }
out:
    rb_amqp_close(c.amqp, false);
    rb_heartbeat_free(c.hb);
    if (c.pool) rb_pool_free(c.pool);
    rb_jobs_free(&c);
    rb_selfpipe_close(&c.sig);
    return rc;
}
