/* A call's captured output: read as it comes so the child never blocks on
 * a full pipe, kept up to the cap, returned as valid UTF-8. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool_internal.h"

void capture_init(capture *c, size_t max)
{
    memset(c, 0, sizeof *c);
    c->max = max;
}

void capture_reset(capture *c)
{
    c->len = 0;
    c->truncated = false;
}

void capture_free(capture *c)
{
    free(c->data);
    memset(c, 0, sizeof *c);
}

int capture_drain(capture *c, int fd)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) return 0;
        if (n < 0) return errno == EINTR ? 1 : (errno == EAGAIN ? 1 : 0);
        size_t room = c->max - c->len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        if (take > 0) {
            if (!c->data) {
                c->data = malloc(c->max ? c->max : 1);
                if (!c->data) return 1;
            }
            memcpy(c->data + c->len, buf, take);
            c->len += take;
        }
        if (take < (size_t)n) c->truncated = true;
    }
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned char b = p[0];
    size_t need;
    unsigned min;
    unsigned cp;
    if (b < 0x80) return 1;
    if ((b & 0xe0) == 0xc0)
        need = 2, min = 0x80, cp = b & 0x1f;
    else if ((b & 0xf0) == 0xe0)
        need = 3, min = 0x800, cp = b & 0x0f;
    else if ((b & 0xf8) == 0xf0)
        need = 4, min = 0x10000, cp = b & 0x07;
    else
        return 0;
    if (left < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return need;
}

char *capture_utf8(const capture *c, size_t *len)
{
    char *out = malloc(c->len * 3 + 1);
    if (!out) {
        *len = 0;
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)c->data;
    size_t o = 0;
    for (size_t i = 0; i < c->len;) {
        size_t n = utf8_seq(p + i, c->len - i);
        if (n) {
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}
