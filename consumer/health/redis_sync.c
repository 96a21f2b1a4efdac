/*
 * redis_sync.c - a blocking, time-bounded Redis connection for the places
 * that may block: rebound-status. (The heartbeat itself never uses one.)
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "health_internal.h"

static struct timeval tv_of_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Send cmd and check that the reply is not an error. */
static int simple_command(redisContext *c, int argc, const char **argv, const char *addr,
                          rb_err *err)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r == NULL) return rb_err_set(err, "redis %s: %s: %s", addr, argv[0], c->errstr);
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR)
        rc = rb_err_set(err, "redis %s: %s: %s", addr, argv[0], r->str);
    freeReplyObject(r);
    return rc;
}

redisContext *rb_redis_connect_sync(const rb_redis_url *u, int timeout_ms, rb_err *err)
{
    char addr[300];
    rb_redis_url_addr(u, addr, sizeof addr);
    struct timeval tv = tv_of_ms(timeout_ms);
    redisContext *c = u->unix_path[0] != '\0' ? redisConnectUnixWithTimeout(u->unix_path, tv)
                                              : redisConnectWithTimeout(u->host, u->port, tv);
    if (c == NULL) {
        rb_err_set(err, "redis %s: out of memory", addr);
        return NULL;
    }
    if (c->err != 0) {
        rb_err_set(err, "redis %s: %s", addr, c->errstr);
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        rb_err_set(err, "redis %s: setting the timeout: %s", addr, c->errstr);
        redisFree(c);
        return NULL;
    }
    if (u->password[0] != '\0') {
        const char *argv[] = {"AUTH", u->password};
        if (simple_command(c, 2, argv, addr, err) < 0) {
            redisFree(c);
            return NULL;
        }
    }
    if (u->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", u->db);
        const char *argv[] = {"SELECT", db};
        if (simple_command(c, 2, argv, addr, err) < 0) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}
