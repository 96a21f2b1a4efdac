/* amqp_url.c - AMQP URLs: parsing (on top of amqp_parse_url), lists of
 * them (several brokers), and redaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "rebound_amqp.h"
#include "worker_config.h"

static int copy_field(char *dst, size_t cap, const char *src, const char *what, rb_err *err)
{
    size_t n = strlen(src);
    if (n >= cap) return rb_err_set(err, "%s is longer than %zu bytes", what, cap - 1);
    memcpy(dst, src, n + 1);
    return 0;
}

int rb_amqp_url_parse(const char *url, rb_amqp_url *out, rb_err *err)
{
    memset(out, 0, sizeof *out);
    char shown[128];
    rb_amqp_url_redact(url, shown, sizeof shown);
    if (strncmp(url, "amqp://", 7) != 0 && strncmp(url, "amqps://", 8) != 0)
        return rb_err_set(err, "'%s' is not an amqp:// or amqps:// URL", shown);

    /* amqp_parse_url cuts the buffer it is given into pieces. */
    char *buf = strdup(url);
    if (!buf) return rb_err_set(err, "out of memory");
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    int rc = amqp_parse_url(buf, &ci);
    if (rc != AMQP_STATUS_OK) {
        free(buf);
        return rb_err_set(
            err,
            "'%s' is not a valid AMQP URL "
            "(amqp[s]://[user[:password]@]host[:port][/vhost], vhost percent-encoded)",
            shown);
    }
    if (ci.port < 1 || ci.port > 65535) {
        free(buf);
        return rb_err_set(err, "'%s': port %d is out of range 1-65535", shown, ci.port);
    }
    out->tls = ci.ssl != 0;
    out->port = ci.port;
    rb_amqp_url_redact(url, out->shown, sizeof out->shown);
    const char *vhost = rb_amqp_vhost(&ci);
    rc = 0;
    if (copy_field(out->host, sizeof out->host, ci.host, "host", err) < 0 ||
        copy_field(out->user, sizeof out->user, ci.user, "user", err) < 0 ||
        copy_field(out->password, sizeof out->password, ci.password, "password", err) < 0 ||
        copy_field(out->vhost, sizeof out->vhost, vhost, "vhost", err) < 0)
        rc = -1;
    free(buf);
    return rc;
}

int rb_amqp_url_list_parse(const char *list, rb_amqp_url *out, int max, int *n, int *bad,
                           rb_err *err)
{
    *n = 0;
    *bad = 0;
    int count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    if (count > max) return rb_err_set(err, "%d brokers given, at most %d are allowed", count, max);
    const char *p = list;
    for (int i = 0; i < count; i++) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        /* With one broker the error names the setting alone, as before. */
        *bad = count > 1 ? i + 1 : 0;
        if (a == b) return rb_err_set(err, "empty entry (a broker URL is missing between commas)");
        char *one = strndup(a, (size_t)(b - a));
        if (!one) return rb_err_set(err, "out of memory");
        int rc = rb_amqp_url_parse(one, &out[i], err);
        free(one);
        if (rc < 0) return -1;
        p = *end ? end + 1 : end;
    }
    *bad = 0;
    *n = count;
    return 0;
}

/* The password of the URL url[0..len): *colon is the ':' before it, *at the
 * '@' after it. False when the URL has none. */
static bool find_password(const char *url, size_t len, const char **colon, const char **at)
{
    const char *end = url + len;
    const char *scheme_end = strstr(url, "://");
    const char *auth = scheme_end && scheme_end < end ? scheme_end + 3 : url;
    /* The userinfo ends at the last '@' before the path. */
    const char *path = memchr(auth, '/', (size_t)(end - auth));
    if (!path) path = end;
    *at = NULL;
    for (const char *p = auth; p < path; p++) {
        if (*p == '@') *at = p;
    }
    *colon = *at ? memchr(auth, ':', (size_t)(*at - auth)) : NULL;
    return *colon != NULL;
}

void rb_amqp_url_redact(const char *url, char *out, size_t cap)
{
    if (cap == 0) return;
    const char *colon, *at;
    if (!find_password(url, strlen(url), &colon, &at)) {
        snprintf(out, cap, "%s", url);
        return;
    }
    snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
}

/* Mask the password of url[0..len) in place; nothing is written when it
 * has none (argv's strings may be read-only in a test). */
static void mask_password(char *url, size_t len)
{
    const char *colon, *at;
    if (find_password(url, len, &colon, &at))
        memset(url + (colon - url) + 1, '*', (size_t)(at - colon - 1));
}

void rb_url_mask_password(char *url)
{
    mask_password(url, strlen(url));
}

void rb_url_list_mask_passwords(char *list)
{
    for (char *p = list;;) {
        char *comma = strchr(p, ',');
        mask_password(p, comma ? (size_t)(comma - p) : strlen(p));
        if (!comma) return;
        p = comma + 1;
    }
}
