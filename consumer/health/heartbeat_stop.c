/*
 * heartbeat_stop.c - warm shutdown: mark the hash stopped, then delete it
 * and the sorted-set member, so that dashboards do not show a worker that
 * left on purpose as lost. This is the one heartbeat call that blocks
 * (bounded by its timeout), because it runs just before exit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "heartbeat_internal.h"

#define STOP_ATTEMPTS 2

static void on_stop_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rb_heartbeat *hb = priv;
    redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        hb->stop_errors++;
        rb_hb_set_reason(hb, "%s", r->str);
    }
}

static void on_stop_last_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rb_heartbeat *hb = priv;
    if (reply == NULL) return; /* lost before the answer: stop retries on a new connection */
    on_stop_reply(ac, reply, priv);
    hb->stop_pending = false;
}

/* HSET (state=stopped), PEXPIRE, DEL, ZREM: the last reply ends the stop. */
static int send_stop(rb_heartbeat *hb)
{
    rb_hb_hset a;
    rb_hb_info info;
    if (rb_hb_hset_make(hb, &a, &info, rb_wall_ms(), "stopped") < 0) {
        rb_hb_set_reason(hb, "no worker id to remove");
        return -1;
    }
    int rc = redisAsyncCommandArgv(hb->ac, on_stop_reply, hb, 2 + 2 * RB_HB_NFIELDS, a.argv, NULL);
    rc |= redisAsyncCommand(hb->ac, on_stop_reply, hb, "PEXPIRE %s %lld", a.key,
                            3LL * hb->interval_ms);
    rc |= redisAsyncCommand(hb->ac, on_stop_reply, hb, "DEL %s", a.key);
    rc |= redisAsyncCommand(hb->ac, on_stop_last_reply, hb, "ZREM %s %s", hb->set_key, info.id);
    if (rc != REDIS_OK) {
        rb_hb_set_reason(hb, "could not queue the stop commands");
        return -1;
    }
    hb->stop_pending = true;
    hb->stop_errors = 0;
    return 0;
}

/* Drive the connection until the stop's last reply, the connection's end
 * or the deadline. Blocks in poll(). */
static void stop_wait(rb_heartbeat *hb, int64_t deadline)
{
    while (hb->stop_pending && hb->ac != NULL) {
        int64_t left = deadline - rb_mono_ms();
        if (left <= 0) {
            rb_hb_set_reason(hb, "no reply within the stop timeout");
            return;
        }
        struct pollfd pfd;
        if (rb_heartbeat_pollfd(hb, &pfd) == 0)
            return; /* hiredis waits for nothing: cannot progress */
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno != EINTR) {
            rb_hb_set_reason(hb, "poll: %s", strerror(errno));
            return;
        }
        if (n > 0) rb_hb_handle_io(hb, pfd.revents);
    }
}

int rb_heartbeat_stop(rb_heartbeat *hb, int timeout_ms)
{
    if (hb->stopped) return -1;
    hb->stopping = true;
    int64_t deadline = rb_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc = -1;
    char why[sizeof hb->reason] = "";
    /* The existing connection is reused on purpose: a beat still in flight
     * on it is then processed by Redis before the DEL, not after. A second
     * attempt on a fresh connection covers one that had silently died. */
    for (int attempt = 0; attempt < STOP_ATTEMPTS && rb_mono_ms() < deadline; attempt++) {
        if (hb->ac == NULL) rb_hb_conn_start(hb, rb_mono_ms());
        if (hb->ac == NULL) {
            snprintf(why, sizeof why, "%s", hb->last_error);
            continue;
        }
        if (send_stop(hb) < 0) {
            snprintf(why, sizeof why, "%s", hb->reason);
            break;
        }
        stop_wait(hb, deadline);
        if (!hb->stop_pending) {
            rc = hb->stop_errors == 0 ? 0 : -1;
            snprintf(why, sizeof why, "%s", hb->reason);
            break;
        }
        if (hb->ac != NULL) {
            /* timed out or stuck: a new connection would not help */
            snprintf(why, sizeof why, "%s", hb->reason);
            break;
        }
        snprintf(why, sizeof why, "%s", hb->last_error); /* lost: try a fresh one */
    }
    if (hb->ac != NULL) redisAsyncFree(hb->ac);
    hb->ac = NULL;
    hb->stopped = true;
    if (rc != 0)
        rb_hb_log(hb, "heartbeat: could not remove this worker from redis %s: %s", hb->addr,
                  why[0] != '\0' ? why : "timed out");
    return rc;
}
