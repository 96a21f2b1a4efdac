/*
 * redis_url.c - parsing the Redis URLs that --redis-url and
 * REBOUND_REDIS_URL accept:
 *
 *   redis://[[default]:password@]host[:port][/db]
 *   unix://[[default]:password@]/path/to/socket[?db=N]
 *
 * The password may be percent-encoded. Error messages never repeat the
 * URL, because it may carry the password.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "health_internal.h"

#define DEFAULT_PORT 6379

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Copy s[0..n) into out (of size cap) decoding %XX escapes. */
static int percent_decode(const char *s, size_t n, char *out, size_t cap, const char *what,
                          rb_err *err)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) return rb_err_set(err, "redis URL: %s: bad %%-escape", what);
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0') return rb_err_set(err, "redis URL: %s: contains a NUL byte", what);
        if (o + 1 >= cap)
            return rb_err_set(err, "redis URL: %s: longer than %zu bytes", what, cap - 1);
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* "[user]:password" (user empty or "default", as in Redis 6 ACLs). */
static int parse_userinfo(const char *s, size_t n, rb_redis_url *out, rb_err *err)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL)
        return rb_err_set(err, "redis URL: expected ':password@' before the address");
    size_t ulen = (size_t)(colon - s);
    if (ulen != 0 && !(ulen == 7 && memcmp(s, "default", 7) == 0))
        return rb_err_set(err, "redis URL: only the 'default' user is supported "
                               "(write redis://:password@host)");
    return percent_decode(colon + 1, n - ulen - 1, out->password, sizeof out->password, "password",
                          err);
}

/* A decimal integer filling s[0..n) exactly, in [min, max]. */
static int parse_int(const char *s, size_t n, long min, long max, long *out)
{
    if (n == 0 || n > 10) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_db(const char *s, size_t n, rb_redis_url *out, rb_err *err)
{
    long db = 0;
    if (n == 0) return 0;
    if (parse_int(s, n, 0, INT_MAX, &db) < 0)
        return rb_err_set(err, "redis URL: db '%.*s' is not a non-negative integer",
                          (int)(n > 32 ? 32 : n), s);
    out->db = (int)db;
    return 0;
}

/* host[:port][/db] */
static int parse_tcp(const char *s, rb_redis_url *out, rb_err *err)
{
    const char *at = strrchr(s, '@');
    if (at != NULL) {
        if (parse_userinfo(s, (size_t)(at - s), out, err) < 0) return -1;
        s = at + 1;
    }
    const char *host = s, *host_end;
    if (*s == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return rb_err_set(err, "redis URL: '[' without a closing ']' in the host");
        s = host_end + 1;
    } else {
        host_end = s + strcspn(s, ":/?#");
        s = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0) return rb_err_set(err, "redis URL: the host is empty");
    if (hlen >= sizeof out->host)
        return rb_err_set(err, "redis URL: the host is longer than %zu bytes",
                          sizeof out->host - 1);
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';

    if (*s == ':') {
        s++;
        size_t plen = strcspn(s, "/?#");
        long port;
        if (parse_int(s, plen, 1, 65535, &port) < 0)
            return rb_err_set(err, "redis URL: port '%.*s' is not a number in 1..65535",
                              (int)(plen > 32 ? 32 : plen), s);
        out->port = (int)port;
        s += plen;
    }
    if (*s == '/') {
        s++;
        size_t dlen = strcspn(s, "?#");
        if (parse_db(s, dlen, out, err) < 0) return -1;
        s += dlen;
    }
    if (*s != '\0') return rb_err_set(err, "redis URL: unexpected '%.32s' after the address", s);
    return 0;
}

/* /path[?db=N] */
static int parse_unix(const char *s, rb_redis_url *out, rb_err *err)
{
    if (*s != '/') {
        /* userinfo: everything up to the last "@/" */
        const char *at = NULL;
        for (const char *p = strstr(s, "@/"); p != NULL; p = strstr(p + 1, "@/"))
            at = p;
        if (at == NULL)
            return rb_err_set(err, "redis URL: unix:// needs an absolute socket path "
                                   "(unix:///path/to/socket)");
        if (parse_userinfo(s, (size_t)(at - s), out, err) < 0) return -1;
        s = at + 1;
    }
    size_t plen = strcspn(s, "?");
    if (plen >= sizeof out->unix_path)
        return rb_err_set(err, "redis URL: socket path longer than %zu bytes",
                          sizeof out->unix_path - 1);
    if (plen == 1) return rb_err_set(err, "redis URL: the socket path is empty");
    memcpy(out->unix_path, s, plen);
    out->unix_path[plen] = '\0';
    s += plen;
    if (*s == '?') {
        s++;
        if (strncmp(s, "db=", 3) != 0)
            return rb_err_set(err, "redis URL: unix:// accepts only the query '?db=N'");
        s += 3;
        if (*s == '\0') return rb_err_set(err, "redis URL: db '' is not a non-negative integer");
        if (parse_db(s, strlen(s), out, err) < 0) return -1;
    }
    return 0;
}

int rb_redis_url_parse(const char *url, rb_redis_url *out, rb_err *err)
{
    memset(out, 0, sizeof *out);
    out->port = DEFAULT_PORT;
    if (url == NULL || *url == '\0') return rb_err_set(err, "redis URL: empty");
    int rc;
    if (strncasecmp(url, "redis://", 8) == 0) {
        rc = parse_tcp(url + 8, out, err);
    } else if (strncasecmp(url, "unix://", 7) == 0) {
        rc = parse_unix(url + 7, out, err);
        out->port = 0;
    } else if (strncasecmp(url, "rediss://", 9) == 0) {
        rc = rb_err_set(err, "redis URL: TLS (rediss://) is not supported");
    } else {
        rc = rb_err_set(err, "redis URL: the scheme must be redis:// or unix://");
    }
    if (rc < 0) {
        /* do not leave half a result (or a password) behind */
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

void rb_redis_url_addr(const rb_redis_url *u, char *buf, size_t len)
{
    if (u->unix_path[0] != '\0')
        snprintf(buf, len, "unix:%s", u->unix_path);
    else if (strchr(u->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", u->host, u->port);
    else
        snprintf(buf, len, "%s:%d", u->host, u->port);
}
