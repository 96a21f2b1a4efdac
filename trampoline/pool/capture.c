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

char *capture_utf8(const capture *c, size_t *len)
{
    return rb_utf8_repair(c->data, c->len, len);
}
