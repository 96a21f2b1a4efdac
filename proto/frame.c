/*
 * frame.c - length-prefixed frames over pipes: a 4-byte big-endian length,
 * then that many bytes. Blocking helpers for the simple side of a pipe and
 * an accumulating buffer for a poll() loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto_internal.h"

/* Room asked of read() by rb_framebuf_fill; also the slack a buffer may
 * have beyond the largest frame. */
#define FILL_CHUNK (64u * 1024)

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void rb_frame_len_encode(unsigned char out[4], uint32_t len)
{
    put_be32(out, len);
}

int rb_frame_append(msgpack_sbuffer *sb, const void *payload, size_t len)
{
    if (len > UINT32_MAX) return -1;
    unsigned char hdr[4];
    put_be32(hdr, (uint32_t)len);
    if (msgpack_sbuffer_write(sb, (const char *)hdr, sizeof hdr) != 0) return -1;
    return len ? msgpack_sbuffer_write(sb, payload, len) : 0;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int rb_frame_write(int fd, const void *buf, size_t len)
{
    if (len > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    unsigned char hdr[4];
    put_be32(hdr, (uint32_t)len);
    struct iovec iov[2] = {
        {.iov_base = hdr, .iov_len = sizeof hdr},
        {.iov_base = (void *)buf, .iov_len = len},
    };
    struct iovec *v = iov;
    int nv = len ? 2 : 1;
    while (nv > 0) {
        ssize_t n = writev(fd, v, nv);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        size_t done = (size_t)n;
        while (nv > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            nv--;
        }
        if (nv > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

/* Read exactly n bytes unless EOF comes first. Returns the count read
 * (< n only at EOF), or -1 on error. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int rb_frame_read(int fd, size_t max, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    unsigned char hdr[4];
    ssize_t r = read_full(fd, hdr, sizeof hdr);
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (r < (ssize_t)sizeof hdr) {
        errno = EPROTO;
        return -1;
    }
    uint32_t n = get_be32(hdr);
    if (n > max) {
        errno = EMSGSIZE;
        return -1;
    }
    char *data = malloc(n ? n : 1);
    if (!data) return -1;
    r = read_full(fd, data, n);
    if (r < (ssize_t)n) {
        int saved = r < 0 ? errno : EPROTO;
        free(data);
        errno = saved;
        return -1;
    }
    *buf = data;
    *len = n;
    return 1;
}

void rb_framebuf_init(rb_framebuf *fb, size_t max)
{
    memset(fb, 0, sizeof *fb);
    fb->max = max;
}

void rb_framebuf_reset(rb_framebuf *fb)
{
    fb->len = 0;
    fb->off = 0;
}

void rb_framebuf_free(rb_framebuf *fb)
{
    free(fb->data);
    fb->data = NULL;
    fb->len = fb->cap = fb->off = 0;
}

/*
 * The buffer never grows beyond one largest frame plus its header and a
 * read chunk: a peer that sends more than that without the caller taking
 * frames out gets ENOBUFS instead of unbounded memory.
 */
ssize_t rb_framebuf_fill(rb_framebuf *fb, int fd)
{
    if (fb->off > 0) {
        memmove(fb->data, fb->data + fb->off, fb->len - fb->off);
        fb->len -= fb->off;
        fb->off = 0;
    }
    size_t limit = fb->max > SIZE_MAX - 4 - FILL_CHUNK ? SIZE_MAX : fb->max + 4 + FILL_CHUNK;
    if (fb->cap - fb->len < FILL_CHUNK && fb->cap < limit) {
        size_t ncap = fb->cap ? fb->cap : FILL_CHUNK;
        while (ncap - fb->len < FILL_CHUNK && ncap < limit)
            ncap = ncap > limit / 2 ? limit : ncap * 2;
        if (ncap > limit) ncap = limit;
        char *nd = realloc(fb->data, ncap);
        if (!nd) return -1;
        fb->data = nd;
        fb->cap = ncap;
    }
    if (fb->len == fb->cap) {
        errno = ENOBUFS;
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, fb->data + fb->len, fb->cap - fb->len);
        if (n < 0 && errno == EINTR) continue;
        if (n > 0) fb->len += (size_t)n;
        return n;
    }
}

int rb_framebuf_next(rb_framebuf *fb, const char **frame, size_t *len)
{
    size_t avail = fb->len - fb->off;
    if (avail < 4) return 0;
    uint32_t n = get_be32((const unsigned char *)fb->data + fb->off);
    if (n > fb->max) {
        errno = EMSGSIZE;
        return -1;
    }
    if (avail - 4 < n) return 0;
    *frame = fb->data + fb->off + 4;
    *len = n;
    fb->off += 4 + (size_t)n;
    return 1;
}
