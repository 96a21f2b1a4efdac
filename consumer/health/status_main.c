/*
 * status_main.c - rebound-status: show the consumers' heartbeats.
 *
 * Exit status (usable as a liveness probe): 0 when at least one worker is
 * ready, 1 when none is, 2 for a usage error, 3 when Redis cannot be read.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "health_internal.h"
#include "status.h"

#define CONNECT_TIMEOUT_MS 2000
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct looker {
    const rb_status_opts *o;
    rb_redis_url url;
    char addr[300];
    redisContext *c; /* kept between looks in --watch; NULL after an error */
} looker;

/* One look; -1 (message printed) when Redis could not be read. */
static int look(looker *l, rb_status_snapshot *snap)
{
    rb_err err = {{0}};
    if (l->c == NULL) {
        l->c = rb_redis_connect_sync(&l->url, CONNECT_TIMEOUT_MS, &err);
        if (l->c == NULL) {
            fprintf(stderr, "rebound-status: cannot reach %s\n", err.msg);
            return -1;
        }
    }
    if (rb_status_read(l->c, l->o->prefix, snap, &err) < 0) {
        fprintf(stderr, "rebound-status: redis %s: %s\n", l->addr, err.msg);
        redisFree(l->c); /* unusable after an error in hiredis 0.14 */
        l->c = NULL;
        return -1;
    }
    if (l->o->worker != NULL) rb_status_keep_worker(snap, l->o->worker);
    return 0;
}

static int show(const looker *l, const rb_status_snapshot *snap, bool rates)
{
    if (l->o->json) return rb_status_print_json(stdout, snap, rates);
    rb_status_print_table(stdout, snap, rates);
    return 0;
}

static int once(looker *l)
{
    rb_status_snapshot snap;
    if (look(l, &snap) < 0) return EXIT_UNREACHABLE;
    int rc;
    if (l->o->prometheus) {
        /* For a textfile collector ("> f.tmp && mv f.tmp f.prom"): the
         * output says who is ready; failing would keep a stale file. */
        rb_status_print_prometheus(stdout, &snap);
        rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : EXIT_UNREACHABLE;
    } else {
        rc = show(l, &snap, false) < 0 ? EXIT_UNREACHABLE : rb_status_exit_code(&snap);
    }
    rb_status_snapshot_free(&snap);
    return rc;
}

/* Sleep for s seconds, returning early on SIGINT/SIGTERM. */
static void pause_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (!interrupted && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int watch(looker *l)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: nanosleep must return */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rb_status_snapshot prev = {0};
    bool have_prev = false;
    int rc = EXIT_UNREACHABLE;
    while (!interrupted) {
        rb_status_snapshot cur;
        if (!l->o->json) fputs("\033[H\033[2J", stdout); /* home, clear screen */
        if (look(l, &cur) == 0) {
            if (have_prev) rb_status_rates(&cur, &prev);
            if (!l->o->json) {
                time_t now = time(NULL);
                char when[32];
                strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
                printf("redis %s  prefix %s  every %gs  %s\n\n", l->addr, l->o->prefix,
                       l->o->watch_s, when);
            }
            rc = show(l, &cur, true) < 0 ? EXIT_UNREACHABLE : rb_status_exit_code(&cur);
            rb_status_snapshot_free(&prev);
            prev = cur;
            have_prev = true;
        } else {
            rc = EXIT_UNREACHABLE;
        }
        fflush(stdout);
        pause_s(l->o->watch_s);
    }
    rb_status_snapshot_free(&prev);
    return rc;
}

int main(int argc, char **argv)
{
    /* a Redis that closes the connection mid-write must not kill us */
    signal(SIGPIPE, SIG_IGN);

    rb_status_opts o;
    rb_err err = {{0}};
    if (rb_status_parse_args(argc, argv, getenv("REBOUND_REDIS_URL"), &o, &err) < 0) {
        fprintf(stderr, "rebound-status: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (o.help) {
        fputs(rb_status_usage, stdout);
        return 0;
    }
    /* The worker's own variable: a probe beside it looks where it writes. */
    const char *env_prefix = getenv("REBOUND_REDIS_PREFIX");
    if (!o.prefix_given && env_prefix != NULL && env_prefix[0] != '\0') o.prefix = env_prefix;
    looker l = {.o = &o};
    if (rb_redis_url_parse(o.url, &l.url, &err) < 0) { /* checked by parse_args already */
        fprintf(stderr, "rebound-status: %s\n", err.msg);
        return EXIT_USAGE;
    }
    rb_redis_url_addr(&l.url, l.addr, sizeof l.addr);
    int rc = o.watch_s > 0 ? watch(&l) : once(&l);
    if (l.c != NULL) redisFree(l.c);
    return rc;
}
