/*
 * health_itest.h - helpers shared by the heartbeat integration tests:
 * driving a heartbeat through a poll loop, bounded waits on Redis state,
 * private redis-server instances, capturing stderr, running rebound-status.
 * Every wait here has a deadline.
 */
#ifndef REBOUND_HEALTH_ITEST_H
#define REBOUND_HEALTH_ITEST_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "health_internal.h"
#include "rebound_health.h"

extern char **environ;

#define IT_SKIP 77

/* ---- a fake worker the heartbeat reports on ------------------------------- */

typedef struct it_worker {
    char id[64];
    const char *state;
    int slots, busy;
    uint64_t ok, error, timeout, crashed, rejected, redelivered;
    int64_t started_ms, last_job_ms;
    double avg_run_ms;
    uint64_t rss_kb;
    int fills; /* how often the heartbeat asked */
} it_worker;

static inline void it_fill(void *ctx, rb_hb_info *info)
{
    it_worker *w = ctx;
    w->fills++;
    info->id = w->id;
    info->host = "testhost";
    info->pid = 4242;
    info->queue = "rebound.jobs";
    info->mode = "fork";
    info->version = "9.9.9";
    info->state = w->state;
    info->started_ms = w->started_ms;
    info->slots = w->slots;
    info->busy = w->busy;
    info->jobs_ok = w->ok;
    info->jobs_error = w->error;
    info->jobs_timeout = w->timeout;
    info->jobs_crashed = w->crashed;
    info->jobs_rejected = w->rejected;
    info->redelivered = w->redelivered;
    info->last_job_ms = w->last_job_ms;
    info->avg_run_ms = w->avg_run_ms;
    info->rss_kb = w->rss_kb;
    info->preload_failed = "lxml";
    info->sandbox = "none";
}

static inline void it_worker_init(it_worker *w, const char *id)
{
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    w->state = "ready";
    w->slots = 4;
    w->started_ms = 1700000000000;
    w->rss_kb = 65536;
}

/* ---- driving the heartbeat ------------------------------------------------------ */

static int64_t it_max_process_ms; /* the longest rb_heartbeat_process call seen */

/* One iteration of a consumer's poll loop (waits at most 20 ms). */
static inline void it_step(rb_heartbeat *hb)
{
    struct pollfd pfd;
    int have = rb_heartbeat_pollfd(hb, &pfd);
    int t = rb_heartbeat_timeout_ms(hb);
    if (t > 20) t = 20;
    int n = poll(&pfd, have ? 1 : 0, t);
    int64_t t0 = rb_hb_mono_ms();
    rb_heartbeat_process(hb, n > 0 ? &pfd : NULL);
    int64_t d = rb_hb_mono_ms() - t0;
    if (d > it_max_process_ms) it_max_process_ms = d;
}

typedef bool (*it_pred)(void *arg);

/* Drive hb (may be NULL) until pred holds or timeout_ms passes. */
static inline bool it_run_until(rb_heartbeat *hb, int timeout_ms, it_pred pred, void *arg)
{
    int64_t deadline = rb_hb_mono_ms() + timeout_ms;
    for (;;) {
        if (pred(arg)) return true;
        if (rb_hb_mono_ms() >= deadline) return false;
        if (hb != NULL) {
            it_step(hb);
        } else {
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

/* Drive hb for ms milliseconds (for checks that something does NOT happen,
 * or to keep a writer beating). */
static inline void it_run_for(rb_heartbeat *hb, int ms)
{
    int64_t end = rb_hb_mono_ms() + ms;
    while (rb_hb_mono_ms() < end)
        it_step(hb);
}

/* ---- looking at Redis ---------------------------------------------------------- */

static inline redisContext *it_connect(const char *url)
{
    rb_redis_url u;
    rb_err err = {{0}};
    if (rb_redis_url_parse(url, &u, &err) < 0) return NULL;
    return rb_redis_connect_sync(&u, 2000, &err);
}

/* A command whose reply the caller frees; NULL on a connection error. */
static inline redisReply *it_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    return r;
}

static inline long long it_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
    if (r != NULL) freeReplyObject(r);
    return v;
}

/* A hash field as a malloc'd string (NULL when absent). */
static inline char *it_hget(redisContext *c, const char *key, const char *field)
{
    redisReply *r = redisCommand(c, "HGET %s %s", key, field);
    char *v = r != NULL && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    if (r != NULL) freeReplyObject(r);
    return v;
}

typedef struct it_keycheck {
    redisContext *c;
    const char *key;
    const char *field; /* with value: wait for field == value */
    const char *value;
    const char *member; /* for set checks */
    bool want;
} it_keycheck;

static inline bool it_key_exists_is(void *arg)
{
    it_keycheck *k = arg;
    return (it_int(k->c, "EXISTS %s", k->key) == 1) == k->want;
}

static inline bool it_field_is(void *arg)
{
    it_keycheck *k = arg;
    char *v = it_hget(k->c, k->key, k->field);
    bool eq = v != NULL && strcmp(v, k->value) == 0;
    free(v);
    return eq;
}

static inline bool it_member_is(void *arg)
{
    it_keycheck *k = arg;
    redisReply *r = redisCommand(k->c, "ZSCORE %s %s", k->key, k->member);
    bool present = r != NULL && r->type == REDIS_REPLY_STRING;
    if (r != NULL) freeReplyObject(r);
    return present == k->want;
}

/* ---- private redis-server ------------------------------------------------------- */

typedef struct it_redis {
    pid_t pid;
    int port;
    char dir[64];
    char sock[128];
    char url[256]; /* redis://[:pw@]127.0.0.1:port/0 */
    char password[32];
} it_redis;

static inline int it_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static inline bool it_redis_ping(void *arg)
{
    it_redis *r = arg;
    redisContext *c = it_connect(r->url);
    if (c == NULL) return false;
    redisReply *rep = redisCommand(c, "PING");
    bool ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
    if (rep != NULL) freeReplyObject(rep);
    redisFree(c);
    return ok;
}

/* Start redis-server on r->port (picked on first start, kept on restart);
 * returns when it answers PING. */
static inline bool it_redis_start(it_redis *r, const char *password)
{
    if (r->port == 0) {
        r->port = it_free_port();
        snprintf(r->dir, sizeof r->dir, "/tmp/rb-hb-redis-XXXXXX");
        if (r->port <= 0 || mkdtemp(r->dir) == NULL) return false;
        snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
        snprintf(r->password, sizeof r->password, "%s", password != NULL ? password : "");
        if (password != NULL)
            snprintf(r->url, sizeof r->url, "redis://:%s@127.0.0.1:%d/0", password, r->port);
        else
            snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
    }
    char port[16], log[160];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    const char *argv[32] = {"/usr/bin/redis-server",
                            "--port",
                            port,
                            "--bind",
                            "127.0.0.1",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--daemonize",
                            "no",
                            "--dir",
                            r->dir,
                            "--unixsocket",
                            r->sock,
                            "--unixsocketperm",
                            "700",
                            "--logfile",
                            log};
    int n = 19;
    if (r->password[0] != '\0') {
        argv[n++] = "--requirepass";
        argv[n++] = r->password;
    }
    argv[n] = NULL;
    if (posix_spawn(&r->pid, argv[0], NULL, NULL, (char *const *)argv, environ) != 0) return false;
    return it_run_until(NULL, 10000, it_redis_ping, r);
}

/* SHUTDOWN NOSAVE over a separate connection; returns when the process is
 * gone. */
static inline bool it_redis_shutdown(it_redis *r)
{
    if (r->pid <= 0) return true;
    redisContext *c = it_connect(r->url);
    if (c != NULL) {
        redisReply *rep = redisCommand(c, "SHUTDOWN NOSAVE");
        if (rep != NULL) freeReplyObject(rep);
        redisFree(c);
    }
    int64_t deadline = rb_hb_mono_ms() + 10000;
    while (rb_hb_mono_ms() < deadline) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            return true;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(r->pid, SIGKILL); /* the server we started, by its pid */
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
    return false;
}

static inline void it_redis_cleanup(it_redis *r)
{
    it_redis_shutdown(r);
    if (r->dir[0] != '\0') {
        char path[200];
        snprintf(path, sizeof path, "%s/redis.log", r->dir);
        unlink(path);
        unlink(r->sock);
        rmdir(r->dir);
    }
}

/* ---- capturing our own stderr -------------------------------------------------- */

typedef struct it_stderr {
    int saved;
    char path[64];
} it_stderr;

static inline void it_stderr_begin(it_stderr *s)
{
    snprintf(s->path, sizeof s->path, "/tmp/rb-hb-stderr-XXXXXX");
    int fd = mkstemp(s->path);
    fflush(stderr);
    s->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Restore stderr; returns what was written meanwhile (caller frees). */
static inline char *it_stderr_end(it_stderr *s)
{
    fflush(stderr);
    dup2(s->saved, 2);
    close(s->saved);
    FILE *f = fopen(s->path, "r");
    char *buf = calloc(1, 65536);
    if (f != NULL) {
        size_t n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
        fclose(f);
    }
    unlink(s->path);
    fputs(buf, stderr); /* keep it visible in the test log */
    return buf;
}

typedef struct it_grep {
    it_stderr *cap;
    const char *needle;
} it_grep;

/* Predicate: the captured stderr contains g->needle. */
static inline bool it_stderr_has(void *arg)
{
    it_grep *g = arg;
    fflush(stderr);
    FILE *f = fopen(g->cap->path, "r");
    if (f == NULL) return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, g->needle) != NULL;
}

static inline int it_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- running rebound-status ------------------------------------------------------ */

/* Run $REBOUND_BIN_DIR/rebound-status with args (NULL-terminated); returns
 * its exit status (-1 if it could not run or did not finish within 20 s)
 * and its stdout in *out (caller frees). */
static inline int it_run_status(char **out, const char *const *args)
{
    const char *bin_dir = getenv("REBOUND_BIN_DIR");
    *out = calloc(1, 1);
    if (bin_dir == NULL) return -1;
    char bin[512];
    snprintf(bin, sizeof bin, "%s/rebound-status", bin_dir);
    const char *argv[16] = {bin};
    int n = 1;
    for (; args[n - 1] != NULL && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int p[2];
    if (pipe(p) < 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return -1;
    }
    size_t len = 0, cap = 0;
    int64_t deadline = rb_hb_mono_ms() + 20000;
    for (;;) {
        int64_t left = deadline - rb_hb_mono_ms();
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) break;
        if (len + 4096 + 1 > cap) {
            cap = cap * 2 + 8192;
            *out = realloc(*out, cap);
        }
        ssize_t got = read(p[0], *out + len, 4096);
        if (got <= 0) break;
        len += (size_t)got;
        (*out)[len] = '\0';
    }
    close(p[0]);
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (rb_hb_mono_ms() >= deadline) {
            kill(pid, SIGKILL); /* the process we started, by its pid */
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#endif
