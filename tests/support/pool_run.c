/*
 * pool_run - a real trampoline pool driven over stdin/stdout, so that tests
 * written in Python can run many jobs through it without a broker.
 *
 *   pool_run --mode native|internal --slots N --code-root DIR
 *            [--preload LIST] [--mem-limit-mb N] [--wait-ms MS] [--uid-base N]
 *            [--tmp-mb N] [--tmp-inodes N]
 *
 * stdin: job bodies (msgpack), each behind a 4-byte big-endian length; all
 * of them are read, then submitted at once (FIFO over the slots).
 * stdout: the same framing. First a map {sandbox, preload_failed}, then one
 * result per job as the worker would pack it, in the order they finish; a
 * body the decoder refuses gets the worker's `rejected` result.
 * Exit 0 when every job was answered; 1 when --wait-ms (default 600000)
 * passed first (the results that came are written), 2 on bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

typedef struct pending {
    rb_job *job; /* NULL once answered */
} pending;

static int write_all(const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(1, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_frame(const msgpack_sbuffer *sb)
{
    uint32_t be = htonl((uint32_t)sb->size);
    return write_all(&be, 4) == 0 && write_all(sb->data, sb->size) == 0 ? 0 : -1;
}

static int read_all(void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(0, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n == 0 && p == buf ? 0 : -1;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

typedef struct progress {
    rb_pool *pool;
    pending *jobs;
    size_t left;
    int failed;
} progress;

static bool collect(void *ctx)
{
    progress *pr = ctx;
    rb_pool_result res;
    while (rb_pool_next_result(pr->pool, &res)) {
        uint64_t tag = res.tag; /* rb_pool_result_free clears res */
        rb_job *job = pr->jobs[tag].job;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (harness_pack_result(&res, job->id, "pool_run", &sb) != 0 || write_frame(&sb) != 0)
            pr->failed = 1;
        msgpack_sbuffer_destroy(&sb);
        rb_pool_result_free(&res);
        rb_job_free(job);
        pr->jobs[tag].job = NULL;
        pr->left--;
    }
    return pr->left == 0 || pr->failed;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mode", required_argument, 0, 'm'},         {"slots", required_argument, 0, 's'},
        {"code-root", required_argument, 0, 'r'},    {"preload", required_argument, 0, 'p'},
        {"mem-limit-mb", required_argument, 0, 'M'}, {"wait-ms", required_argument, 0, 'w'},
        {"uid-base", required_argument, 0, 'U'},     {"tmp-mb", required_argument, 0, 't'},
        {"tmp-inodes", required_argument, 0, 'i'},   {0, 0, 0, 0}};
    const char *mode = "native", *root = NULL, *preload = NULL;
    int slots = 1, mem = -1, wait_ms = 600000, tmp_mb = 0, tmp_inodes = 0, c;
    long uid_base = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            mode = optarg;
            break;
        case 's':
            slots = atoi(optarg);
            break;
        case 'r':
            root = optarg;
            break;
        case 'p':
            preload = optarg;
            break;
        case 'M':
            mem = atoi(optarg);
            break;
        case 'w':
            wait_ms = atoi(optarg);
            break;
        case 'U':
            uid_base = atol(optarg);
            break;
        case 't':
            tmp_mb = atoi(optarg);
            break;
        case 'i':
            tmp_inodes = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (!root || slots < 1) {
        fprintf(stderr, "pool_run: --code-root and --slots >= 1 are required\n");
        return 2;
    }

    /* Every body first: the pool gets them all at once. */
    size_t n = 0, cap = 0;
    char **bodies = NULL;
    size_t *lens = NULL;
    for (;;) {
        uint32_t be;
        int rc = read_all(&be, 4);
        if (rc == 0) break;
        size_t len = ntohl(be);
        if (rc < 0 || len > RB_FRAME_MAX) {
            fprintf(stderr, "pool_run: bad frame on stdin\n");
            return 2;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            bodies = realloc(bodies, cap * sizeof *bodies);
            lens = realloc(lens, cap * sizeof *lens);
            if (!bodies || !lens) return 2;
        }
        bodies[n] = malloc(len ? len : 1);
        lens[n] = len;
        if (!bodies[n] || read_all(bodies[n], len) < 0) {
            fprintf(stderr, "pool_run: short body on stdin\n");
            return 2;
        }
        n++;
    }

    rb_pool_config cfg;
    harness_config(&cfg, mode, slots, root);
    if (preload) cfg.preload = preload;
    if (mem >= 0) cfg.mem_limit_mb = mem;
    cfg.uid_base = uid_base;
    if (tmp_mb > 0) cfg.tmp_mb = tmp_mb;
    if (tmp_inodes > 0) cfg.tmp_inodes = tmp_inodes;
    rb_pool *pool = harness_pool(mode, slots, root, &cfg);

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    rb_pack_key(&pk, "sandbox");
    rb_pack_cstr(&pk, rb_pool_sandbox(pool));
    rb_pack_key(&pk, "preload_failed");
    rb_pack_cstr(&pk, rb_pool_preload_failed(pool));
    int failed = write_frame(&sb);
    msgpack_sbuffer_destroy(&sb);

    pending *jobs = calloc(n ? n : 1, sizeof *jobs);
    progress pr = {.pool = pool, .jobs = jobs};
    rb_limits lim;
    rb_limits_default(&lim);
    for (size_t i = 0; i < n && !failed; i++) {
        char *id = NULL;
        rb_err err = {{0}};
        if (rb_job_decode(bodies[i], lens[i], &lim, &jobs[i].job, &id, &err) != 0) {
            msgpack_sbuffer_init(&sb);
            rb_result_pack_rejected(id, "pool_run", err.msg, &sb);
            failed = write_frame(&sb);
            msgpack_sbuffer_destroy(&sb);
        } else if (rb_pool_submit(pool, i, bodies[i], lens[i], jobs[i].job) == 0) {
            pr.left++;
        } else {
            failed = -1;
        }
        free(id);
    }
    if (!failed) harness_drive(pool, wait_ms, collect, &pr);
    if (pr.left > 0)
        fprintf(stderr, "pool_run: %zu jobs unanswered after %d ms\n", pr.left, wait_ms);

    rb_pool_free(pool);
    for (size_t i = 0; i < n; i++) {
        rb_job_free(jobs[i].job);
        free(bodies[i]);
    }
    free(jobs);
    free(bodies);
    free(lens);
    return failed || pr.failed || pr.left ? 1 : 0;
}
