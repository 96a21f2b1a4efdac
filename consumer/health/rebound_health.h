/*
 * rebound_health.h - the Redis heartbeat of a consumer process, and the
 * reading side used by rebound-status.
 *
 * A heartbeat never blocks the consumer's event loop: it talks to Redis over
 * a non-blocking hiredis connection that the consumer's poll() drives
 * (rb_heartbeat_pollfd / rb_heartbeat_process). When Redis is down or slow
 * the beat is skipped, the outage is logged once, and the connection is
 * retried with backoff.
 *
 * Redis contract (README documents it): with prefix P,
 *   P:worker:<id>  hash of the rb_hb_info fields plus beat_ms, PEXPIRE 3 x interval
 *   P:workers      sorted set, member <id>, score beat_ms; members older than
 *                  10 x interval are removed by every writer.
 *
 * Outages are reported on stderr, one line each: "heartbeat: redis ADDR
 * unreachable: REASON; retrying" once per outage, then "heartbeat: redis
 * reachable again". SIGPIPE from a vanished Redis is absorbed internally.
 * Host names are resolved by hiredis inside the (otherwise non-blocking)
 * connect: give an IP address or an /etc/hosts name when a slow DNS must
 * not stall the caller.
 */
#ifndef REBOUND_HEALTH_H
#define REBOUND_HEALTH_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "rebound_proto.h"

/* What one beat writes. Strings are borrowed for the duration of the call
 * that receives the struct. */
typedef struct rb_hb_info {
    const char *id;
    const char *host;
    long pid;
    const char *queue;
    const char *mode;
    const char *version;
    const char *python; /* the embedded Python's version, e.g. 3.13.0 */
    const char *state; /* starting | ready | draining | reconnecting | stopped */
    int64_t started_ms;
    int slots;
    int busy;
    uint64_t jobs_ok, jobs_error, jobs_timeout, jobs_crashed, jobs_rejected;
    uint64_t redelivered;
    uint64_t results_unroutable; /* returned by the broker: their sender was gone */
    int64_t last_job_ms;         /* 0: no job yet */
    double avg_run_ms;
    double cpu_ms_total; /* the jobs' cpu_ms, summed (results' per-job accounting) */
    uint64_t rss_kb;
    const char *preload_failed; /* comma list, may be "" */
    const char *sandbox;
} rb_hb_info;

/* Called by the heartbeat when a beat is due; fills *info. */
typedef void (*rb_hb_fill_fn)(void *ctx, rb_hb_info *info);

typedef struct rb_redis_url {
    char host[256]; /* empty for unix sockets */
    int port;
    char unix_path[256]; /* empty for TCP */
    char password[256];  /* empty: no AUTH */
    int db;
} rb_redis_url;

/* Parse redis://[[default]:password@]host[:port][/db] (IPv6 as [addr]) or
 * unix://[[default]:password@]/path[?db=N]; the password may be
 * %-encoded. Returns 0 or -1 with err naming what is wrong (never echoing
 * the password). */
int rb_redis_url_parse(const char *url, rb_redis_url *out, rb_err *err);

typedef struct rb_heartbeat rb_heartbeat;

/* Create (does not connect yet; the first connect happens in
 * rb_heartbeat_process). url must be non-empty, prefix non-empty (at most
 * 200 bytes), interval_ms > 0; fill/ctx are kept. fill is called for each
 * beat sent (not for skipped ones) and by rb_heartbeat_stop; it must set
 * info->id (without one, nothing is sent).
 * Returns NULL with err set for bad arguments. Free with rb_heartbeat_free. */
rb_heartbeat *rb_heartbeat_new(const char *url, const char *prefix, int interval_ms,
                               rb_hb_fill_fn fill, void *ctx, rb_err *err);

/* Send the heartbeat's log lines (outage, recovery; one line each, no
 * newline) to log instead of stderr. */
void rb_heartbeat_set_log(rb_heartbeat *hb, void (*log)(void *ctx, const char *line), void *ctx);

/* Returns 1 with *pfd set (fd, events) when there is an fd to poll, or 0
 * with pfd->fd = -1 (which poll() ignores) when there is nothing to poll now.
 * Call again before every poll(): the fd changes on reconnect. */
int rb_heartbeat_pollfd(rb_heartbeat *hb, struct pollfd *pfd);

/* Milliseconds until rb_heartbeat_process must run again (>= 0). */
int rb_heartbeat_timeout_ms(rb_heartbeat *hb);

/* Handle I/O on the fd (pfd: the entry after poll(), or NULL when it was
 * not polled) and send a beat when one is due; also handles timeouts and
 * reconnects. Never blocks. */
void rb_heartbeat_process(rb_heartbeat *hb, const struct pollfd *pfd);

/* Send a beat now, regardless of the interval (e.g. on a state change).
 * While disconnected or while a beat is in flight, it goes out as soon as
 * that is over. Never blocks. */
void rb_heartbeat_beat_now(rb_heartbeat *hb);

/* Warm shutdown: write state=stopped, then delete the hash and the sorted
 * set member. Blocks at most timeout_ms. Returns 0 when Redis confirmed
 * (-1 is also logged on stderr). Uses the heartbeat's own connection, so a
 * beat still in flight lands before the delete. Afterwards the heartbeat is
 * inert (no fd, no beats; timeout INT_MAX); free it with rb_heartbeat_free. */
int rb_heartbeat_stop(rb_heartbeat *hb, int timeout_ms);

/* Close the connection and free; NULL is fine. Without a prior stop (or
 * after a crash) the hash expires after 3 intervals. */
void rb_heartbeat_free(rb_heartbeat *hb);

#endif
