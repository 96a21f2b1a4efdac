/*
 * test_proto_frame.c - length-prefixed frames over real pipes: blocking
 * write/read, the accumulating buffer fed a byte at a time, oversize
 * lengths, EOF in the middle of a frame, and the buffer's memory bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rebound_proto.h"

static void make_pipe(int fds[2], bool nonblocking_read)
{
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    if (nonblocking_read) assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
}

static char *pattern(size_t n, unsigned seed)
{
    char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(i * 31 + seed);
    return p;
}

typedef struct writer_arg {
    int fd;
    const size_t *sizes;
    size_t n;
    int rc;
} writer_arg;

/* Writes frames of the given sizes, then closes its end. */
static void *writer(void *p)
{
    writer_arg *w = p;
    w->rc = 0;
    for (size_t i = 0; i < w->n; i++) {
        char *data = pattern(w->sizes[i], (unsigned)i);
        if (rb_frame_write(w->fd, data, w->sizes[i]) != 0) w->rc = -1;
        free(data);
    }
    close(w->fd);
    return NULL;
}

static void test_write_read_through_pipe(void **state)
{
    (void)state;
    /* Sizes beyond the pipe's 64 KiB make both sides loop. */
    static const size_t sizes[] = {0, 1, 4, 1000, 65536, 300000, 3};
    int fds[2];
    make_pipe(fds, false);
    writer_arg w = {.fd = fds[1], .sizes = sizes, .n = sizeof sizes / sizeof sizes[0]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer, &w), 0);
    for (size_t i = 0; i < w.n; i++) {
        void *buf = NULL;
        size_t len = 99;
        assert_int_equal(rb_frame_read(fds[0], 1u << 20, &buf, &len), 1);
        assert_non_null(buf);
        assert_int_equal(len, sizes[i]);
        char *want = pattern(sizes[i], (unsigned)i);
        assert_memory_equal(buf, want, sizes[i]);
        free(want);
        free(buf);
    }
    void *buf = (void *)1;
    size_t len = 1;
    assert_int_equal(rb_frame_read(fds[0], 1u << 20, &buf, &len), 0);
    assert_null(buf);
    assert_int_equal(len, 0);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    close(fds[0]);
}

static void test_read_errors(void **state)
{
    (void)state;
    int fds[2];
    void *buf;
    size_t len;

    /* EOF inside the header. */
    make_pipe(fds, false);
    assert_int_equal(write(fds[1], "\x00\x00", 2), 2);
    close(fds[1]);
    errno = 0;
    assert_int_equal(rb_frame_read(fds[0], 100, &buf, &len), -1);
    assert_int_equal(errno, EPROTO);
    assert_null(buf);
    close(fds[0]);

    /* EOF inside the payload. */
    make_pipe(fds, false);
    assert_int_equal(write(fds[1],
                           "\x00\x00\x00\x05"
                           "abc",
                           7),
                     7);
    close(fds[1]);
    errno = 0;
    assert_int_equal(rb_frame_read(fds[0], 100, &buf, &len), -1);
    assert_int_equal(errno, EPROTO);
    assert_null(buf);
    close(fds[0]);

    /* A length over the maximum is refused before anything is allocated. */
    make_pipe(fds, false);
    assert_int_equal(write(fds[1], "\xff\xff\xff\xff", 4), 4);
    errno = 0;
    assert_int_equal(rb_frame_read(fds[0], RB_FRAME_MAX, &buf, &len), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_null(buf);
    assert_int_equal(write(fds[1], "\x00\x00\x00\x65", 4), 4);
    assert_int_equal(rb_frame_read(fds[0], 100, &buf, &len), -1);
    assert_int_equal(errno, EMSGSIZE);
    close(fds[1]);
    close(fds[0]);

    /* Exactly the maximum is fine. */
    make_pipe(fds, false);
    char *data = pattern(100, 7);
    assert_int_equal(rb_frame_write(fds[1], data, 100), 0);
    assert_int_equal(rb_frame_read(fds[0], 100, &buf, &len), 1);
    assert_int_equal(len, 100);
    assert_memory_equal(buf, data, 100);
    free(buf);
    free(data);
    close(fds[1]);
    close(fds[0]);
}

static void test_write_to_closed_pipe(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds, false);
    close(fds[0]);
    errno = 0;
    assert_int_equal(rb_frame_write(fds[1], "x", 1), -1);
    assert_int_equal(errno, EPIPE);
    close(fds[1]);
}

static void test_wire_format(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds, false);
    assert_int_equal(rb_frame_write(fds[1], "hello", 5), 0);
    assert_int_equal(rb_frame_write(fds[1], "", 0), 0);
    char got[13];
    assert_int_equal(read(fds[0], got, sizeof got), 13);
    assert_memory_equal(got, "\x00\x00\x00\x05hello\x00\x00\x00\x00", 13);
    close(fds[0]);
    close(fds[1]);
}

static void test_framebuf_byte_at_a_time(void **state)
{
    (void)state;
    /* Two frames, written one byte at a time; each appears exactly when
     * its last byte has been filled in, not before. */
    const char wire[] = "\x00\x00\x00\x03"
                        "abc"
                        "\x00\x00\x00\x00"
                        "\x00\x00\x00\x02"
                        "de";
    size_t wire_len = sizeof wire - 1;
    size_t ends[] = {7, 11, 17}; /* offsets at which a frame completes */
    const char *payloads[] = {"abc", "", "de"};
    int fds[2];
    make_pipe(fds, true);
    rb_framebuf fb;
    rb_framebuf_init(&fb, 1024);

    const char *frame;
    size_t len;
    errno = 0;
    assert_int_equal(rb_framebuf_fill(&fb, fds[0]), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(rb_framebuf_next(&fb, &frame, &len), 0);

    size_t next_frame = 0;
    for (size_t i = 0; i < wire_len; i++) {
        assert_int_equal(write(fds[1], wire + i, 1), 1);
        assert_int_equal(rb_framebuf_fill(&fb, fds[0]), 1);
        if (next_frame < 3 && i + 1 == ends[next_frame]) {
            assert_int_equal(rb_framebuf_next(&fb, &frame, &len), 1);
            assert_int_equal(len, strlen(payloads[next_frame]));
            assert_memory_equal(frame, payloads[next_frame], len);
            next_frame++;
        }
        assert_int_equal(rb_framebuf_next(&fb, &frame, &len), 0);
    }
    assert_int_equal(next_frame, 3);
    close(fds[1]);
    assert_int_equal(rb_framebuf_fill(&fb, fds[0]), 0);
    rb_framebuf_free(&fb);
    close(fds[0]);
}

static void test_framebuf_many_frames_one_fill(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds, true);
    for (int i = 0; i < 50; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof msg, "frame %d", i);
        assert_int_equal(rb_frame_write(fds[1], msg, (size_t)n), 0);
    }
    rb_framebuf fb;
    rb_framebuf_init(&fb, 64);
    assert_true(rb_framebuf_fill(&fb, fds[0]) > 0);
    const char *frame;
    size_t len;
    for (int i = 0; i < 50; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof msg, "frame %d", i);
        assert_int_equal(rb_framebuf_next(&fb, &frame, &len), 1);
        assert_int_equal(len, (size_t)n);
        assert_memory_equal(frame, msg, len);
    }
    assert_int_equal(rb_framebuf_next(&fb, &frame, &len), 0);

    /* reset drops what is buffered, including half a frame. */
    assert_int_equal(write(fds[1],
                           "\x00\x00\x00\x09"
                           "half",
                           8),
                     8);
    assert_int_equal(rb_framebuf_fill(&fb, fds[0]), 8);
    assert_int_equal(rb_framebuf_next(&fb, &frame, &len), 0);
    rb_framebuf_reset(&fb);
    assert_int_equal(rb_frame_write(fds[1], "new", 3), 0);
    assert_int_equal(rb_framebuf_fill(&fb, fds[0]), 7);
    assert_int_equal(rb_framebuf_next(&fb, &frame, &len), 1);
    assert_memory_equal(frame, "new", 3);
    rb_framebuf_free(&fb);
    close(fds[0]);
    close(fds[1]);
}

static void test_framebuf_oversize(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds, true);
    rb_framebuf fb;
    rb_framebuf_init(&fb, 10);
    const char *frame;
    size_t len;

    assert_int_equal(rb_frame_write(fds[1], "0123456789", 10), 0);
    assert_int_equal(rb_framebuf_fill(&fb, fds[0]), 14);
    assert_int_equal(rb_framebuf_next(&fb, &frame, &len), 1);
    assert_int_equal(len, 10);

    /* The header alone is enough to refuse the frame. */
    assert_int_equal(write(fds[1], "\x00\x00\x00\x0b", 4), 4);
    assert_int_equal(rb_framebuf_fill(&fb, fds[0]), 4);
    errno = 0;
    assert_int_equal(rb_framebuf_next(&fb, &frame, &len), -1);
    assert_int_equal(errno, EMSGSIZE);
    rb_framebuf_reset(&fb);

    assert_int_equal(write(fds[1], "\xff\xff\xff\xff", 4), 4);
    assert_int_equal(rb_framebuf_fill(&fb, fds[0]), 4);
    assert_int_equal(rb_framebuf_next(&fb, &frame, &len), -1);
    rb_framebuf_free(&fb);
    close(fds[0]);
    close(fds[1]);
}

/* A peer that keeps sending while nobody takes frames out cannot make the
 * buffer grow past one largest frame plus a read chunk. */
static void test_framebuf_memory_bound(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds, true);
    assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    rb_framebuf fb;
    rb_framebuf_init(&fb, 16);
    char junk[4096];
    memset(junk, 0, sizeof junk);
    int saw_enobufs = 0;
    for (int i = 0; i < 1000 && !saw_enobufs; i++) {
        ssize_t w = write(fds[1], junk, sizeof junk);
        assert_true(w > 0 || errno == EAGAIN);
        ssize_t r = rb_framebuf_fill(&fb, fds[0]);
        if (r < 0 && errno == ENOBUFS)
            saw_enobufs = 1;
        else
            assert_true(r > 0 || errno == EAGAIN);
        assert_true(fb.cap <= 16 + 4 + 64 * 1024);
    }
    assert_true(saw_enobufs);
    rb_framebuf_free(&fb);
    close(fds[0]);
    close(fds[1]);
}

/* A 1 MiB frame arriving in pipe-sized pieces, read by a poll() loop. */
static void test_framebuf_large_frame_with_poll(void **state)
{
    (void)state;
    static const size_t sizes[] = {1u << 20, 17};
    int fds[2];
    make_pipe(fds, true);
    writer_arg w = {.fd = fds[1], .sizes = sizes, .n = 2};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer, &w), 0);
    rb_framebuf fb;
    rb_framebuf_init(&fb, 2u << 20);
    size_t got = 0;
    int fills = 0;
    bool eof = false;
    while (!eof) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1); /* bounded: the writer never stalls */
        ssize_t r = rb_framebuf_fill(&fb, fds[0]);
        assert_true(r >= 0 || errno == EAGAIN);
        if (r > 0) fills++;
        eof = r == 0;
        const char *frame;
        size_t len;
        while (rb_framebuf_next(&fb, &frame, &len) == 1) {
            assert_true(got < 2);
            assert_int_equal(len, sizes[got]);
            char *want = pattern(len, (unsigned)got);
            assert_memory_equal(frame, want, len);
            free(want);
            got++;
        }
    }
    assert_int_equal(got, 2);
    assert_true(fills > 1);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    rb_framebuf_free(&fb);
    close(fds[0]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(120); /* a hung pipe fails the program rather than the whole run */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read_through_pipe),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_write_to_closed_pipe),
        cmocka_unit_test(test_wire_format),
        cmocka_unit_test(test_framebuf_byte_at_a_time),
        cmocka_unit_test(test_framebuf_many_frames_one_fill),
        cmocka_unit_test(test_framebuf_oversize),
        cmocka_unit_test(test_framebuf_memory_bound),
        cmocka_unit_test(test_framebuf_large_frame_with_poll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
