/* amqp_url.c - AMQP URLs: parsing (on top of amqp_parse_url) and redaction. */
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

/* The password of a URL's userinfo: *colon is the ':' before it, *at the
 * '@' after it. False when the URL has none. */
static bool find_password(const char *url, const char **colon, const char **at)
{
    const char *scheme_end = strstr(url, "://");
    const char *auth = scheme_end ? scheme_end + 3 : url;
    /* The userinfo ends at the last '@' before the path. */
    const char *path = strchr(auth, '/');
    *at = NULL;
    for (const char *p = auth; *p && (!path || p < path); p++) {
        if (*p == '@') *at = p;
    }
    *colon = *at ? memchr(auth, ':', (size_t)(*at - auth)) : NULL;
    return *colon != NULL;
}

void rb_amqp_url_redact(const char *url, char *out, size_t cap)
{
    if (cap == 0) return;
    const char *colon, *at;
    if (!find_password(url, &colon, &at)) {
        snprintf(out, cap, "%s", url);
        return;
    }
    snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
}

void rb_url_mask_password(char *url)
{
    const char *colon, *at;
    if (find_password(url, &colon, &at))
        memset(url + (colon - url) + 1, '*', (size_t)(at - colon - 1));
}
