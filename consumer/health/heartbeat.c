/*
 * heartbeat.c - the consumer's Redis heartbeat over a non-blocking hiredis
 * connection driven by the consumer's own poll loop.
 *
 * hiredis 0.14 async API, with our own "event library": the ev hooks only
 * record whether hiredis wants to read or write; rb_heartbeat_pollfd turns
 * that into poll events and rb_heartbeat_process hands readiness back to
 * redisAsyncHandleRead/Write. Callbacks only record what happened (flags,
 * reason); decisions (freeing the context, reconnecting, logging) are taken
 * after hiredis has returned, never from inside a hiredis callback.
 *
 * Lifetime rules of hiredis 0.14 that this relies on:
 *  - when hiredis drops a connection itself (connect failure, EOF, write or
 *    protocol error) it frees the context inside HandleRead/HandleWrite:
 *    pending reply callbacks run with a NULL reply, then ev.cleanup, then
 *    onDisconnect (only if it had connected) or, for a failed connect,
 *    onConnect(REDIS_ERR) runs first. ev.cleanup is the one hook that runs
 *    on every path, so it is where hb->ac is forgotten;
 *  - redisAsyncFree, called by us outside any callback, runs the same
 *    sequence synchronously.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat_internal.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define OP_TIMEOUT_MAX_MS 1000

void rb_hb_set_reason(rb_heartbeat *hb, const char *fmt, ...)
{
    if (hb->reason[0] != '\0') return; /* the first cause is the informative one */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hb->reason, sizeof hb->reason, fmt, ap);
    va_end(ap);
}

/* ---- hiredis event hooks: only record what hiredis wants ------------------- */

static void ev_add_read(void *p)
{
    ((rb_heartbeat *)p)->want_read = true;
}

static void ev_del_read(void *p)
{
    ((rb_heartbeat *)p)->want_read = false;
}

static void ev_add_write(void *p)
{
    ((rb_heartbeat *)p)->want_write = true;
}

static void ev_del_write(void *p)
{
    ((rb_heartbeat *)p)->want_write = false;
}

/* The context is about to be freed (by hiredis or by redisAsyncFree). */
static void ev_cleanup(void *p)
{
    rb_heartbeat *hb = p;
    hb->ac = NULL;
    hb->want_read = hb->want_write = false;
    hb->connected = false;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rb_heartbeat *hb = ac->data;
    if (status == REDIS_OK)
        hb->connected = true;
    else
        rb_hb_set_reason(hb, "%s", ac->c.errstr[0] != '\0' ? ac->c.errstr : "connect failed");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rb_heartbeat *hb = ac->data;
    /* REDIS_OK: we freed it ourselves and already know why */
    if (status != REDIS_OK)
        rb_hb_set_reason(hb, "%s", ac->c.errstr[0] != '\0' ? ac->c.errstr : "connection lost");
}

/* ---- replies ---------------------------------------------------------------- */

/* An error reply means this connection cannot do its job (bad password, a
 * key of the wrong type, ...): drop it, and retry later with backoff. */
static void fail_on_error(rb_heartbeat *hb, const redisReply *r, const char *what)
{
    hb->failed = true;
    rb_hb_set_reason(hb, "%s: %s", what, r->str != NULL ? r->str : "error");
}

static void on_auth_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR) fail_on_error(priv, r, "AUTH");
}

static void on_select_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR) fail_on_error(priv, r, "SELECT");
}

static void on_beat_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rb_heartbeat *hb = priv;
    redisReply *r = reply;
    hb->inflight = false;
    if (r == NULL) return; /* the connection is going away; its hooks say why */
    if (r->type == REDIS_REPLY_ERROR) {
        fail_on_error(hb, r, "EXEC");
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        hb->failed = true;
        rb_hb_set_reason(hb, "EXEC: unexpected reply type %d", r->type);
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            fail_on_error(hb, r->element[i], "beat");
            return;
        }
    }
    rb_backoff_reset(&hb->backoff);
    if (hb->outage) {
        rb_hb_log(hb, "heartbeat: redis reachable again");
        hb->outage = false;
    }
}

void rb_hb_log(rb_heartbeat *hb, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (hb->log)
        hb->log(hb->log_ctx, line);
    else
        fprintf(stderr, "%s\n", line);
}

void rb_heartbeat_set_log(rb_heartbeat *hb, void (*log)(void *ctx, const char *line), void *ctx)
{
    hb->log = log;
    hb->log_ctx = ctx;
}

/* ---- connection ------------------------------------------------------------- */

/* Drop the connection (if any) and schedule a reconnect with backoff: 100 ms
 * doubling up to 5 s, each wait drawn from [d/2, d] so that the consumers of
 * a host that lost Redis together do not come back together. */
static void conn_down(rb_heartbeat *hb, const char *why)
{
    char reason[sizeof hb->reason];
    snprintf(reason, sizeof reason, "%s",
             why != NULL && why[0] != '\0' ? why : "connection closed");
    snprintf(hb->last_error, sizeof hb->last_error, "%s", reason);
    if (hb->ac != NULL) redisAsyncFree(hb->ac); /* runs ev_cleanup, which clears hb->ac */
    hb->ac = NULL;
    hb->connected = false;
    hb->inflight = false;
    hb->failed = false;
    hb->want_read = hb->want_write = false;

    hb->next_connect = rb_mono_ms() + rb_backoff_next(&hb->backoff);

    if (!hb->outage && !hb->stopping) {
        rb_hb_log(hb, "heartbeat: redis %s unreachable: %s; retrying", hb->addr, reason);
        hb->outage = true;
    }
}

void rb_hb_conn_start(rb_heartbeat *hb, int64_t now)
{
    hb->reason[0] = '\0';
    hb->failed = false;
    redisAsyncContext *ac = hb->url.unix_path[0] != '\0'
                                ? redisAsyncConnectUnix(hb->url.unix_path)
                                : redisAsyncConnect(hb->url.host, hb->url.port);
    if (ac == NULL) {
        conn_down(hb, "out of memory");
        return;
    }
    if (ac->err != 0) {
        char why[sizeof hb->reason];
        snprintf(why, sizeof why, "%s", ac->errstr);
        redisAsyncFree(ac); /* no hooks installed yet */
        conn_down(hb, why);
        return;
    }
    ac->data = hb;
    ac->ev.data = hb;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    hb->ac = ac;
    hb->connected = false;
    hb->want_read = hb->want_write = false;
    redisAsyncSetConnectCallback(ac, on_connect); /* asks for writability */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    hb->connect_deadline = now + hb->op_timeout_ms;

    /* queued now, written as soon as the connection is up */
    if (hb->url.password[0] != '\0')
        redisAsyncCommand(ac, on_auth_reply, hb, "AUTH %s", hb->url.password);
    if (hb->url.db != 0) redisAsyncCommand(ac, on_select_reply, hb, "SELECT %d", hb->url.db);
    hb->force = true; /* show up again right away */
}

/* After hiredis returns, act on what the callbacks recorded. */
void rb_hb_handle_io(rb_heartbeat *hb, short revents)
{
    if (hb->ac == NULL || revents == 0) return;
    if (revents & (POLLIN | POLLHUP | POLLERR)) redisAsyncHandleRead(hb->ac);
    if (hb->ac != NULL && (revents & (POLLOUT | POLLHUP | POLLERR)) && hb->want_write) {
        rb_pipe_guard g;
        rb_pipe_guard_enter(&g);
        redisAsyncHandleWrite(hb->ac);
        rb_pipe_guard_leave(&g);
    }
    if (hb->ac == NULL)
        conn_down(hb, hb->reason); /* hiredis dropped it */
    else if (hb->failed)
        conn_down(hb, hb->reason);
}

/* ---- beats ------------------------------------------------------------------ */

int rb_hb_hset_make(rb_heartbeat *hb, rb_hb_hset *a, rb_hb_info *info, int64_t beat_ms,
                    const char *state_override)
{
    memset(info, 0, sizeof *info);
    hb->fill(hb->ctx, info);
    if (state_override != NULL) info->state = state_override;
    if (info->id == NULL || info->id[0] == '\0') return -1;
    if (rb_hb_worker_key(a->key, sizeof a->key, hb->prefix, info->id) < 0) return -1;
    rb_hb_fields_make(&a->f, info, beat_ms);
    a->argv[0] = "HSET";
    a->argv[1] = a->key;
    for (int i = 0; i < RB_HB_NFIELDS; i++) {
        a->argv[2 + 2 * i] = a->f.name[i];
        a->argv[3 + 2 * i] = a->f.value[i];
    }
    return 0;
}

/* One round trip: MULTI, HSET, PEXPIRE, ZADD, ZREMRANGEBYSCORE, EXEC. */
static void send_beat(rb_heartbeat *hb, int64_t now)
{
    rb_hb_hset a;
    rb_hb_info info;
    int64_t beat_ms = rb_wall_ms();
    hb->force = false;
    if (rb_hb_hset_make(hb, &a, &info, beat_ms, NULL) < 0) return;
    long long ttl = 3LL * hb->interval_ms;
    long long oldest = (long long)beat_ms - 10LL * hb->interval_ms;
    int rc = redisAsyncCommand(hb->ac, NULL, NULL, "MULTI");
    rc |= redisAsyncCommandArgv(hb->ac, NULL, NULL, 2 + 2 * RB_HB_NFIELDS, a.argv, NULL);
    rc |= redisAsyncCommand(hb->ac, NULL, NULL, "PEXPIRE %s %lld", a.key, ttl);
    rc |= redisAsyncCommand(hb->ac, NULL, NULL, "ZADD %s %lld %s", hb->set_key, (long long)beat_ms,
                            info.id);
    rc |= redisAsyncCommand(hb->ac, NULL, NULL, "ZREMRANGEBYSCORE %s -inf (%lld", hb->set_key,
                            oldest);
    rc |= redisAsyncCommand(hb->ac, on_beat_reply, hb, "EXEC");
    if (rc != REDIS_OK) {
        hb->failed = true;
        rb_hb_set_reason(hb, "could not queue the beat");
        return;
    }
    hb->inflight = true;
    hb->inflight_deadline = now + hb->op_timeout_ms;
}

static void check_deadlines(rb_heartbeat *hb, int64_t now)
{
    if (hb->ac == NULL) return;
    if (!hb->connected && now >= hb->connect_deadline) {
        char why[64];
        snprintf(why, sizeof why, "connect timed out after %d ms", hb->op_timeout_ms);
        conn_down(hb, why);
    } else if (hb->inflight && now >= hb->inflight_deadline) {
        char why[64];
        snprintf(why, sizeof why, "no reply within %d ms", hb->op_timeout_ms);
        conn_down(hb, why);
    }
}

/* ---- public API ------------------------------------------------------------- */

rb_heartbeat *rb_heartbeat_new(const char *url, const char *prefix, int interval_ms,
                               rb_hb_fill_fn fill, void *ctx, rb_err *err)
{
    rb_redis_url u;
    if (url == NULL || url[0] == '\0') {
        rb_err_set(err, "heartbeat: the redis URL is empty");
        return NULL;
    }
    if (rb_redis_url_parse(url, &u, err) < 0) return NULL;
    if (prefix == NULL || prefix[0] == '\0') {
        rb_err_set(err, "heartbeat: the key prefix is empty");
        return NULL;
    }
    if (strlen(prefix) > RB_HB_MAX_PREFIX) {
        rb_err_set(err, "heartbeat: the key prefix is longer than %d bytes", RB_HB_MAX_PREFIX);
        return NULL;
    }
    if (interval_ms <= 0 || interval_ms > INT_MAX / 10) {
        rb_err_set(err, "heartbeat: interval %d ms is out of range", interval_ms);
        return NULL;
    }
    if (fill == NULL) {
        rb_err_set(err, "heartbeat: no fill callback");
        return NULL;
    }
    rb_heartbeat *hb = calloc(1, sizeof *hb);
    if (hb == NULL || (hb->prefix = strdup(prefix)) == NULL) {
        free(hb);
        rb_err_set(err, "heartbeat: out of memory");
        return NULL;
    }
    hb->url = u;
    rb_redis_url_addr(&u, hb->addr, sizeof hb->addr);
    rb_hb_set_key(hb->set_key, sizeof hb->set_key, prefix);
    hb->interval_ms = interval_ms;
    hb->op_timeout_ms = interval_ms < OP_TIMEOUT_MAX_MS ? interval_ms : OP_TIMEOUT_MAX_MS;
    hb->fill = fill;
    hb->ctx = ctx;
    rb_backoff_init(&hb->backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS, true);
    int64_t now = rb_mono_ms();
    hb->next_beat = now;
    hb->next_connect = now;
    return hb;
}

int rb_heartbeat_pollfd(rb_heartbeat *hb, struct pollfd *pfd)
{
    pfd->fd = -1;
    pfd->events = 0;
    pfd->revents = 0;
    if (hb->stopped || hb->ac == NULL || !(hb->want_read || hb->want_write)) return 0;
    pfd->fd = hb->ac->c.fd;
    pfd->events = (short)((hb->want_read ? POLLIN : 0) | (hb->want_write ? POLLOUT : 0));
    return 1;
}

int rb_heartbeat_timeout_ms(rb_heartbeat *hb)
{
    if (hb->stopped) return INT_MAX;
    int64_t now = rb_mono_ms();
    int64_t t = hb->next_beat;
    if (hb->ac == NULL) {
        if (hb->next_connect < t) t = hb->next_connect;
    } else {
        if (hb->failed || (hb->force && !hb->inflight)) t = now;
        if (!hb->connected && hb->connect_deadline < t) t = hb->connect_deadline;
        if (hb->inflight && hb->inflight_deadline < t) t = hb->inflight_deadline;
    }
    int64_t d = t - now;
    return d < 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
}

void rb_heartbeat_process(rb_heartbeat *hb, const struct pollfd *pfd)
{
    if (hb->stopped) return;
    if (pfd != NULL && hb->ac != NULL && pfd->fd == hb->ac->c.fd) rb_hb_handle_io(hb, pfd->revents);
    if (hb->failed) conn_down(hb, hb->reason);
    int64_t now = rb_mono_ms();
    check_deadlines(hb, now);
    if (hb->ac == NULL && now >= hb->next_connect) rb_hb_conn_start(hb, now);
    bool due = now >= hb->next_beat;
    if (due) hb->next_beat = now + hb->interval_ms;
    /* a beat still in flight means this one is skipped, not queued */
    if ((due || hb->force) && hb->ac != NULL && !hb->inflight) send_beat(hb, now);
}

void rb_heartbeat_beat_now(rb_heartbeat *hb)
{
    if (hb->stopped || hb->stopping) return;
    hb->force = true;
    if (hb->ac != NULL && !hb->inflight) send_beat(hb, rb_mono_ms());
}

void rb_heartbeat_free(rb_heartbeat *hb)
{
    if (hb == NULL) return;
    hb->stopping = true; /* no outage message from the teardown */
    if (hb->ac != NULL) redisAsyncFree(hb->ac);
    free(hb->prefix);
    free(hb);
}
