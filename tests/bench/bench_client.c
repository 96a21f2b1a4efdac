/*
 * bench_client: the load client of the worker benchmark (tests/bench/bench_worker).
 *
 *   bench_client --amqp-url URL --queue Q [--jobs N] [--window W] [--warmup N]
 *                [--job trivial|numpy | --body-file FILE] [--timeout-ms MS] [--gap-ms MS]
 *                [--timing]
 *
 * Publishes rebound jobs to queue Q and takes their results over RabbitMQ's
 * direct reply-to, keeping up to W jobs in flight (W = 1: one job at a time,
 * the round-trip latency). Each job carries its index as correlation id; a
 * round trip is timed from just before its publish to the reply's arrival.
 * The --warmup jobs run one at a time first and are not counted.
 *
 * --gap-ms (with --window 1) waits that long after each result before the
 * next job goes out, as jobs arriving at a steady rate would: a worker that
 * prepares something between jobs (rebound forks the next child) is then
 * found ready, where back-to-back jobs measure that preparation too.
 *
 * The built-in jobs call f() or g(50) in f.py under the worker's code root:
 *   def f(): return 1
 *   def g(n): 50x50 numpy matmul, returns the trace
 *
 * Prints one line on stdout for the driver script to parse:
 *   bench_client jobs=2000 ok=2000 window=1 p50_ms=0.41 p99_ms=0.95 jobs_per_s=2103.2 seconds=0.95
 *       worker_ms_p50=0.21
 * (all on one line; worker_ms_p50, the median of the `ms` the results
 * carry - the worker's own timing of each job - only when they carry one).
 *
 * --timing asks the built-in job for its stages ("timing": true, see
 * PROTOCOL.md); the line then ends with the median of each stage, in us
 * since the worker had the delivery, and outside_ms_p50: the median over
 * jobs of the round trip less the job's "packed" stage - the time the job
 * spent outside the worker's stamps (client to broker to worker, result
 * publish, broker to client):
 *       stages_us_p50=decoded:13,submitted:14,started:130,done:270,packed:280
 *       outside_ms_p50=0.52
 * Exit status: 0 when every result came back with status "ok", 1 when some
 * did not or a reply did not come within --timeout-ms, 2 on bad usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "bench_amqp.h"
#include "rebound_proto.h"

#define DIRECT_REPLY_TO "amq.rabbitmq.reply-to"
#define SETUP_TIMEOUT_S 10

typedef struct opts {
    const char *url;
    const char *queue;
    const char *job;
    const char *body_file;
    int jobs;
    int window;
    int warmup;
    int timeout_ms;
    int gap_ms;
    bool timing;
} opts;

/* The stages a result's `timing` map carries, in their order (PROTOCOL.md). */
static const char *const STAGES[] = {"decoded", "submitted", "started", "done", "packed"};
#define NSTAGES (sizeof STAGES / sizeof STAGES[0])

/* One batch of jobs: per job, when it went out and how long it took. */
typedef struct batch {
    int jobs, window;
    double *sent_ms;
    double *lat_ms;  /* < 0: no reply yet */
    double *work_ms; /* the `ms` results carry (the worker's own timing) */
    int nwork;
    double *stage_us[NSTAGES]; /* per job with a timing map: each stage */
    double *outside_ms;        /* and its round trip less its "packed" */
    int nstage;
    int sent, got, ok;
    double first_ms, last_ms;
    bool reported; /* the first failed result is shown, not every one */
} batch;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static int check_rpc(amqp_connection_state_t conn, const char *what)
{
    return bench_check_rpc("bench_client", conn, what);
}

static amqp_connection_state_t connect_broker(const char *url)
{
    amqp_connection_state_t conn = bench_connect("bench_client", url);
    if (!conn) return NULL;
    /* Direct reply-to: the pseudo-queue is consumed, no-ack, before the
     * first publish on the same channel. */
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(DIRECT_REPLY_TO), amqp_empty_bytes, 0, 1, 0,
                       amqp_empty_table);
    if (check_rpc(conn, "consuming " DIRECT_REPLY_TO) < 0) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    return conn;
}

/* The job body: a built-in job, or the bytes of --body-file. Caller frees. */
static char *job_body(const opts *o, size_t *len)
{
    if (o->body_file) {
        FILE *f = fopen(o->body_file, "rb");
        if (!f) {
            fprintf(stderr, "bench_client: %s: %s\n", o->body_file, strerror(errno));
            return NULL;
        }
        char *buf = NULL;
        size_t cap = 0, n = 0, got;
        do {
            if (n == cap) {
                cap = cap ? cap * 2 : 4096;
                char *p = realloc(buf, cap);
                if (!p) {
                    fprintf(stderr, "bench_client: out of memory\n");
                    free(buf);
                    fclose(f);
                    return NULL;
                }
                buf = p;
            }
            got = fread(buf + n, 1, cap - n, f);
            n += got;
        } while (got > 0);
        fclose(f);
        *len = n;
        return buf;
    }
    bool numpy = strcmp(o->job, "numpy") == 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, o->timing ? 4 : 3);
    if (o->timing) {
        rb_pack_key(&pk, "timing");
        msgpack_pack_true(&pk);
    }
    rb_pack_key(&pk, "v");
    msgpack_pack_int(&pk, 1);
    rb_pack_key(&pk, "id");
    rb_pack_cstr(&pk, numpy ? "bench-numpy" : "bench-trivial");
    rb_pack_key(&pk, "calls");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, numpy ? 3 : 2);
    rb_pack_key(&pk, "fcn");
    rb_pack_cstr(&pk, numpy ? "g" : "f");
    rb_pack_key(&pk, "file");
    rb_pack_cstr(&pk, "f.py");
    if (numpy) {
        rb_pack_key(&pk, "args");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int(&pk, 50);
    }
    *len = sb.size;
    return sb.data; /* ownership passes to the caller */
}

static int publish(amqp_connection_state_t conn, const char *queue, int idx, const void *body,
                   size_t len)
{
    char cid[16];
    snprintf(cid, sizeof cid, "%d", idx);
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    props.content_type = amqp_cstring_bytes("application/msgpack");
    props.delivery_mode = 2; /* as rebound-submit sends jobs */
    props.reply_to = amqp_cstring_bytes(DIRECT_REPLY_TO);
    props.correlation_id = amqp_cstring_bytes(cid);
    amqp_bytes_t b = {len, (void *)body};
    /* Mandatory: a queue nobody declared is reported instead of timing out. */
    int rc =
        amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 1, 0, &props, b);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "bench_client: publishing job %d: %s\n", idx, amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

/* A frame other than a delivery: a returned job or a closed channel end
 * the run; anything else is ignored. */
static int other_frame(amqp_connection_state_t conn, const char *queue)
{
    amqp_frame_t f;
    struct timeval tv = {SETUP_TIMEOUT_S, 0};
    int rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "bench_client: reading from the broker: %s\n", amqp_error_string2(rc));
        return -1;
    }
    if (f.frame_type != AMQP_FRAME_METHOD) return 0;
    switch (f.payload.method.id) {
    case AMQP_BASIC_RETURN_METHOD: {
        const amqp_basic_return_t *ret = f.payload.method.decoded;
        fprintf(stderr, "bench_client: no queue '%s' took the job: %u %.*s\n", queue,
                ret->reply_code, (int)ret->reply_text.len, (const char *)ret->reply_text.bytes);
        return -1;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_channel_close_t *c = f.payload.method.decoded;
        fprintf(stderr, "bench_client: closed by the broker: %u %.*s\n", c->reply_code,
                (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        return -1;
    }
    default:
        return 0;
    }
}

/* A result's `timing` map: kept when it has every stage. */
static void take_stages(const msgpack_object *timing, double lat_ms, batch *b)
{
    if (!timing || timing->type != MSGPACK_OBJECT_MAP) return;
    double v[NSTAGES];
    for (size_t i = 0; i < NSTAGES; i++) {
        const msgpack_object *o = rb_map_get(timing, STAGES[i]);
        if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return;
        v[i] = (double)o->via.u64;
    }
    for (size_t i = 0; i < NSTAGES; i++)
        b->stage_us[i][b->nstage] = v[i];
    b->outside_ms[b->nstage++] = lat_ms - v[NSTAGES - 1] / 1e3;
}

static void show_str(const char *what, const msgpack_object *o)
{
    if (o && o->type == MSGPACK_OBJECT_STR)
        fprintf(stderr, " %s: %.*s", what, (int)o->via.str.size, o->via.str.ptr);
}

/* Whether a result body says status "ok". The first failure is shown with
 * its error message, so that a broken setup is not mistaken for a slow one. */
static bool result_ok(const void *body, size_t len, double lat_ms, batch *b)
{
    const msgpack_object *ms;
    rb_err err = {{0}};
    bool ok = false;
    if (rb_msgpack_check(body, len, RB_MAX_DEPTH, &err) < 0) {
        if (!b->reported) fprintf(stderr, "bench_client: result is not msgpack: %s\n", err.msg);
        b->reported = true;
        return false;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, body, len, NULL) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *st = rb_map_get(&u.data, "status");
        ok = st && st->type == MSGPACK_OBJECT_STR && st->via.str.size == 2 &&
             memcmp(st->via.str.ptr, "ok", 2) == 0;
        ms = rb_map_get(&u.data, "ms");
        if (ms && (ms->type == MSGPACK_OBJECT_FLOAT64 || ms->type == MSGPACK_OBJECT_FLOAT32))
            b->work_ms[b->nwork++] = ms->via.f64;
        take_stages(rb_map_get(&u.data, "timing"), lat_ms, b);
        if (!ok && !b->reported) {
            fprintf(stderr, "bench_client: a job failed:");
            show_str("status", st);
            const msgpack_object *e = rb_map_get(&u.data, "error");
            const msgpack_object *rs = rb_map_get(&u.data, "results");
            if (!e && rs && rs->type == MSGPACK_OBJECT_ARRAY && rs->via.array.size > 0)
                e = rb_map_get(&rs->via.array.ptr[0], "error");
            if (e) {
                show_str("type", rb_map_get(e, "type"));
                show_str("message", rb_map_get(e, "message"));
            }
            fputc('\n', stderr);
            b->reported = true;
        }
    }
    msgpack_unpacked_destroy(&u);
    return ok;
}

/* Take one reply: 1 when one of ours came in, 0 for anything else, -1 on a
 * broker failure or no reply within timeout_ms. */
static int take_reply(amqp_connection_state_t conn, const char *queue, int timeout_ms, batch *b)
{
    amqp_maybe_release_buffers(conn);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    amqp_envelope_t env;
    amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
    double t = now_ms();
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        const amqp_basic_properties_t *p = &env.message.properties;
        int idx = -1;
        if ((p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) && p->correlation_id.len < 16) {
            char cid[16];
            memcpy(cid, p->correlation_id.bytes, p->correlation_id.len);
            cid[p->correlation_id.len] = '\0';
            char *end;
            long v = strtol(cid, &end, 10);
            if (*cid && !*end && v >= 0 && v < b->sent) idx = (int)v;
        }
        int rc = 0;
        if (idx >= 0 && b->lat_ms[idx] < 0) {
            b->lat_ms[idx] = t - b->sent_ms[idx];
            b->got++;
            b->last_ms = t;
            if (result_ok(env.message.body.bytes, env.message.body.len, b->lat_ms[idx], b)) b->ok++;
            rc = 1;
        }
        amqp_destroy_envelope(&env);
        return rc;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
        fprintf(stderr, "bench_client: no reply within %d ms (%d of %d jobs answered)\n",
                timeout_ms, b->got, b->jobs);
        return -1;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
        return other_frame(conn, queue) < 0 ? -1 : 0;
    char why[300];
    rb_amqp_reply_text(r, why, sizeof why);
    fprintf(stderr, "bench_client: waiting for results: %s\n", why);
    return -1;
}

/* Run jobs with up to window in flight. Returns 0, or -1 when the broker
 * failed or a reply did not come in time (b holds what was measured). */
static int run_batch(amqp_connection_state_t conn, const opts *o, const void *body, size_t len,
                     batch *b)
{
    for (int i = 0; i < b->jobs; i++)
        b->lat_ms[i] = -1;
    b->first_ms = now_ms();
    while (b->got < b->jobs) {
        while (b->sent < b->jobs && b->sent - b->got < b->window) {
            b->sent_ms[b->sent] = now_ms();
            if (publish(conn, o->queue, b->sent, body, len) < 0) return -1;
            b->sent++;
        }
        if (take_reply(conn, o->queue, o->timeout_ms, b) < 0) return -1;
        if (o->gap_ms > 0 && b->window == 1 && b->sent < b->jobs) {
            struct timespec gap = {o->gap_ms / 1000, (long)(o->gap_ms % 1000) * 1000000};
            while (nanosleep(&gap, &gap) < 0 && errno == EINTR)
                ;
        }
    }
    return 0;
}

static int batch_init(batch *b, int jobs, int window)
{
    memset(b, 0, sizeof *b);
    b->jobs = jobs;
    b->window = window;
    b->sent_ms = calloc((size_t)jobs, sizeof *b->sent_ms);
    b->lat_ms = calloc((size_t)jobs, sizeof *b->lat_ms);
    b->work_ms = calloc((size_t)jobs, sizeof *b->work_ms);
    b->outside_ms = calloc((size_t)jobs, sizeof *b->outside_ms);
    bool ok = b->sent_ms && b->lat_ms && b->work_ms && b->outside_ms;
    for (size_t i = 0; i < NSTAGES; i++)
        ok = (b->stage_us[i] = calloc((size_t)jobs, sizeof *b->stage_us[i])) && ok;
    return ok ? 0 : -1;
}

static void batch_free(batch *b)
{
    free(b->sent_ms);
    free(b->lat_ms);
    free(b->work_ms);
    free(b->outside_ms);
    for (size_t i = 0; i < NSTAGES; i++)
        free(b->stage_us[i]);
}

static int parse_int(const char *flag, const char *s, int min, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < min || v > 100000000) {
        fprintf(stderr, "bench_client: %s: '%s' is not an integer >= %d\n", flag, s, min);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){.job = "trivial", .jobs = 2000, .window = 1, .warmup = 20, .timeout_ms = 30000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--timing") == 0) {
            o->timing = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_client: %s: missing value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (strcmp(a, "--amqp-url") == 0)
            o->url = v;
        else if (strcmp(a, "--queue") == 0)
            o->queue = v;
        else if (strcmp(a, "--job") == 0)
            o->job = v;
        else if (strcmp(a, "--body-file") == 0)
            o->body_file = v;
        else if (strcmp(a, "--jobs") == 0)
            rc = parse_int(a, v, 1, &o->jobs);
        else if (strcmp(a, "--window") == 0)
            rc = parse_int(a, v, 1, &o->window);
        else if (strcmp(a, "--warmup") == 0)
            rc = parse_int(a, v, 0, &o->warmup);
        else if (strcmp(a, "--timeout-ms") == 0)
            rc = parse_int(a, v, 1, &o->timeout_ms);
        else if (strcmp(a, "--gap-ms") == 0)
            rc = parse_int(a, v, 0, &o->gap_ms);
        else {
            fprintf(stderr, "bench_client: unknown option %s\n", a);
            return -1;
        }
        if (rc < 0) return -1;
    }
    if (!o->url || !o->queue) {
        fprintf(stderr, "bench_client: --amqp-url and --queue are required\n");
        return -1;
    }
    if (strcmp(o->job, "trivial") != 0 && strcmp(o->job, "numpy") != 0) {
        fprintf(stderr, "bench_client: --job: '%s' is not trivial or numpy\n", o->job);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_args(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: bench_client --amqp-url URL --queue Q [--jobs N] [--window W] "
                        "[--warmup N] [--job trivial|numpy | --body-file FILE] [--timeout-ms MS] "
                        "[--gap-ms MS] [--timing]\n");
        return 2;
    }
    size_t len = 0;
    char *body = job_body(&o, &len);
    if (!body) return 1;
    amqp_connection_state_t conn = connect_broker(o.url);
    if (!conn) {
        free(body);
        return 1;
    }

    int rc = 1;
    batch warm, b;
    memset(&b, 0, sizeof b);
    if (batch_init(&warm, o.warmup ? o.warmup : 1, 1) < 0 || batch_init(&b, o.jobs, o.window) < 0) {
        fprintf(stderr, "bench_client: out of memory\n");
        goto out;
    }
    warm.jobs = o.warmup;
    if (run_batch(conn, &o, body, len, &warm) < 0) goto out;
    if (warm.ok < warm.jobs) {
        fprintf(stderr, "bench_client: %d of %d warm-up jobs failed\n", warm.jobs - warm.ok,
                warm.jobs);
        goto out;
    }
    if (run_batch(conn, &o, body, len, &b) < 0) goto out;

    double secs = (b.last_ms - b.first_ms) / 1e3;
    qsort(b.lat_ms, (size_t)b.jobs, sizeof *b.lat_ms, cmp_double);
    printf("bench_client jobs=%d ok=%d window=%d p50_ms=%.4f p99_ms=%.4f jobs_per_s=%.1f "
           "seconds=%.3f",
           b.jobs, b.ok, b.window, pct(b.lat_ms, b.jobs, 0.5), pct(b.lat_ms, b.jobs, 0.99),
           secs > 0 ? b.jobs / secs : 0.0, secs);
    if (b.nwork > 0) {
        qsort(b.work_ms, (size_t)b.nwork, sizeof *b.work_ms, cmp_double);
        printf(" worker_ms_p50=%.4f", pct(b.work_ms, b.nwork, 0.5));
    }
    if (b.nstage > 0) {
        printf(" stages_us_p50=");
        for (size_t i = 0; i < NSTAGES; i++) {
            qsort(b.stage_us[i], (size_t)b.nstage, sizeof *b.stage_us[i], cmp_double);
            printf("%s%s:%.0f", i ? "," : "", STAGES[i], pct(b.stage_us[i], b.nstage, 0.5));
        }
        qsort(b.outside_ms, (size_t)b.nstage, sizeof *b.outside_ms, cmp_double);
        printf(" outside_ms_p50=%.4f", pct(b.outside_ms, b.nstage, 0.5));
    }
    putchar('\n');
    rc = b.ok == b.jobs ? 0 : 1;
out:
    batch_free(&warm);
    batch_free(&b);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    free(body);
    return rc;
}
