/*
 * echo_consumer: two baselines of the worker benchmark (tests/bench/bench_worker).
 *
 *   echo_consumer --amqp-url URL --queue Q [--queue-type quorum|classic] [--prefetch N]
 *   echo_consumer --amqp-url URL --queue Q --spawn-python CODE_ROOT [--slots N] [...]
 *
 * Without --spawn-python, the floor: every job is answered at once with
 * {v: 1, status: "ok"} on its reply_to (same correlation id) and acked.
 * Nothing is decoded or run, so what is measured is the broker, the client
 * and the AMQP library alone.
 *
 * With --spawn-python, what a worker without a preforked interpreter does:
 * each job runs in a fresh /usr/bin/python3 that imports rebound's default
 * preload list (numpy, lxml.etree, json, random, math), reads the job from
 * stdin, calls each call's function from its file under CODE_ROOT and writes
 * the result map to stdout, which is published as the reply. Up to --slots
 * jobs run at once (the prefetch is the slot count).
 *
 * The queue is declared durable with the given x-queue-type (default quorum,
 * rebound-worker's default). "consuming" is printed on stderr once the
 * consumer is registered. SIGTERM or SIGINT stops it within 200 ms; jobs not
 * yet acked go back to the queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "bench_amqp.h"

#include "rebound_proto.h"

#define SETUP_TIMEOUT_S 10
#define MAX_SLOTS 64
#define TICK_MS 200
#define MAX_RESULT_BYTES (16u << 20)

/* The fresh interpreter's program; argv[1] is the code root. */
static const char CHILD_PY[] =
    "import sys, importlib\n"
    "import numpy, lxml.etree, json, random, math\n"
    "import msgpack\n"
    "job = msgpack.unpackb(sys.stdin.buffer.read())\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "results = []\n"
    "for c in job['calls']:\n"
    "    mod = importlib.import_module(c['file'][:-3].replace('/', '.'))\n"
    "    val = getattr(mod, c['fcn'])(*c.get('args', []), **(c.get('kwargs') or {}))\n"
    "    results.append({'present': True, 'val': val})\n"
    "sys.stdout.buffer.write(msgpack.packb(\n"
    "    {'v': 1, 'id': job['id'], 'status': 'ok', 'results': results}))\n";

/* A job running in a fresh interpreter. */
typedef struct kid {
    pid_t pid;
    int out_fd; /* the child's stdout; EOF when it is done */
    char *out;  /* what it wrote so far (owned) */
    size_t len, cap;
    bool failed;                /* killed for writing too much: its output is dropped */
    uint64_t tag;               /* delivery tag, acked once the reply is out */
    amqp_bytes_t reply_to, cid; /* owned copies; may be empty */
    double deadline_ms;
} kid;

typedef struct state {
    amqp_connection_state_t conn;
    const char *spawn_root; /* NULL: echo */
    int slots;
    int job_timeout_ms;
    msgpack_sbuffer echo; /* the packed {v: 1, status: "ok"} */
    kid kids[MAX_SLOTS];
    int nkids;
} state;

static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int check_rpc(amqp_connection_state_t conn, const char *what)
{
    return bench_check_rpc("echo_consumer", conn, what);
}

static amqp_connection_state_t connect_broker(const char *url)
{
    return bench_connect("echo_consumer", url);
}

static int start_consuming(amqp_connection_state_t conn, const char *queue, const char *type,
                           int prefetch)
{
    amqp_table_entry_t arg;
    arg.key = amqp_cstring_bytes("x-queue-type");
    arg.value.kind = AMQP_FIELD_KIND_UTF8;
    arg.value.value.bytes = amqp_cstring_bytes(type);
    amqp_table_t args = {1, &arg};
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
    if (check_rpc(conn, "queue.declare") < 0) return -1;
    amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
    if (check_rpc(conn, "basic.qos") < 0) return -1;
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    return check_rpc(conn, "basic.consume");
}

/* Publish body to reply_to (if any), then ack the job. */
static int reply_and_ack(state *s, amqp_bytes_t reply_to, amqp_bytes_t cid, uint64_t tag,
                         const void *body, size_t len)
{
    if (reply_to.len > 0) {
        amqp_basic_properties_t props;
        memset(&props, 0, sizeof props);
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.content_type = amqp_cstring_bytes("application/msgpack");
        props.delivery_mode = 1; /* direct reply-to keeps nothing on disk */
        if (cid.len > 0) {
            props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
            props.correlation_id = cid;
        }
        amqp_bytes_t b = {len, (void *)body};
        int rc = amqp_basic_publish(s->conn, 1, amqp_empty_bytes, reply_to, 0, 0, &props, b);
        if (rc != AMQP_STATUS_OK) {
            fprintf(stderr, "echo_consumer: publishing a reply: %s\n", amqp_error_string2(rc));
            return -1;
        }
    }
    int rc = amqp_basic_ack(s->conn, 1, tag, 0);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "echo_consumer: basic.ack: %s\n", amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

/* ---- fresh interpreters ---------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Start a fresh interpreter for one job. The job goes in through a pipe the
 * child reads to the end before it writes anything, so a blocking write
 * cannot deadlock. */
static int spawn(state *s, const amqp_envelope_t *env)
{
    if (s->nkids == MAX_SLOTS) {
        /* More deliveries than the prefetch allows: let another take it. */
        return amqp_basic_reject(s->conn, 1, env->delivery_tag, 1) == AMQP_STATUS_OK ? 0 : -1;
    }
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0) return -1;
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        closefrom(3); /* the broker socket among them */
        execl("/usr/bin/python3", "python3", "-c", CHILD_PY, s->spawn_root, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    /* A child that died early closes its stdin: EPIPE, reported as a crash
     * when its stdout ends. */
    (void)write_all(in[1], env->message.body.bytes, env->message.body.len);
    close(in[1]);
    kid *k = &s->kids[s->nkids++];
    memset(k, 0, sizeof *k);
    k->pid = pid;
    k->out_fd = out[0];
    k->tag = env->delivery_tag;
    const amqp_basic_properties_t *p = &env->message.properties;
    if (p->_flags & AMQP_BASIC_REPLY_TO_FLAG) k->reply_to = amqp_bytes_malloc_dup(p->reply_to);
    if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
        k->cid = amqp_bytes_malloc_dup(p->correlation_id);
    k->deadline_ms = now_ms() + s->job_timeout_ms;
    return 0;
}

static void kid_free(kid *k)
{
    if (k->out_fd >= 0) close(k->out_fd);
    free(k->out);
    amqp_bytes_free(k->reply_to);
    amqp_bytes_free(k->cid);
}

/* The child's stdout ended: reap it and send its result (or a crash). */
static int kid_done(state *s, int i)
{
    kid *k = &s->kids[i];
    close(k->out_fd);
    k->out_fd = -1;
    int st = 0;
    while (waitpid(k->pid, &st, 0) < 0 && errno == EINTR)
        ;
    int rc;
    if (!k->failed && WIFEXITED(st) && WEXITSTATUS(st) == 0 && k->len > 0) {
        rc = reply_and_ack(s, k->reply_to, k->cid, k->tag, k->out, k->len);
    } else {
        char msg[100];
        if (WIFSIGNALED(st))
            snprintf(msg, sizeof msg, "python3 killed by signal %d", WTERMSIG(st));
        else
            snprintf(msg, sizeof msg, "python3 exited with status %d", WEXITSTATUS(st));
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        rb_pack_key(&pk, "v");
        msgpack_pack_int(&pk, 1);
        rb_pack_key(&pk, "status");
        rb_pack_cstr(&pk, "crashed");
        rb_pack_key(&pk, "error");
        msgpack_pack_map(&pk, 2);
        rb_pack_key(&pk, "type");
        rb_pack_cstr(&pk, "Crashed");
        rb_pack_key(&pk, "message");
        rb_pack_cstr(&pk, msg);
        rc = reply_and_ack(s, k->reply_to, k->cid, k->tag, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    }
    kid_free(k);
    s->kids[i] = s->kids[--s->nkids];
    return rc;
}

/* Read what the child wrote. Returns 1 at EOF, 0 otherwise. */
static int kid_read(kid *k)
{
    char scratch[4096]; /* drains a child whose output is dropped */
    char *dst = scratch;
    size_t room = sizeof scratch;
    if (!k->failed && k->len == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 4096;
        char *p = cap <= MAX_RESULT_BYTES ? realloc(k->out, cap) : NULL;
        if (p) {
            k->out = p;
            k->cap = cap;
        } else {
            k->failed = true;
            kill(k->pid, SIGKILL); /* EOF follows; the job counts as crashed */
        }
    }
    if (!k->failed) {
        dst = k->out + k->len;
        room = k->cap - k->len;
    }
    ssize_t n = read(k->out_fd, dst, room);
    if (n > 0 && dst != scratch) k->len += (size_t)n;
    return n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
}

static void kill_kids(state *s)
{
    for (int i = 0; i < s->nkids; i++) {
        kill(s->kids[i].pid, SIGKILL);
        while (waitpid(s->kids[i].pid, NULL, 0) < 0 && errno == EINTR)
            ;
        kid_free(&s->kids[i]);
    }
    s->nkids = 0;
}

/* ---- the loop ---------------------------------------------------------------- */

/* A frame other than a delivery: only a closed channel or connection
 * matters. */
static int other_frame(state *s)
{
    amqp_frame_t f;
    struct timeval tv = {SETUP_TIMEOUT_S, 0};
    int rc = amqp_simple_wait_frame_noblock(s->conn, &f, &tv);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "echo_consumer: reading from the broker: %s\n", amqp_error_string2(rc));
        return -1;
    }
    if (f.frame_type == AMQP_FRAME_METHOD &&
        (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
         f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        fprintf(stderr, "echo_consumer: closed by the broker\n");
        return -1;
    }
    return 0;
}

/* Handle every delivery that can be read without waiting. */
static int take_deliveries(state *s)
{
    for (;;) {
        amqp_maybe_release_buffers(s->conn);
        struct timeval zero = {0, 0};
        amqp_envelope_t env;
        amqp_rpc_reply_t r = amqp_consume_message(s->conn, &env, &zero, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            int rc;
            if (s->spawn_root) {
                rc = spawn(s, &env);
                if (rc < 0) fprintf(stderr, "echo_consumer: cannot start python3: %m\n");
            } else {
                const amqp_basic_properties_t *p = &env.message.properties;
                amqp_bytes_t none = {0, NULL};
                rc = reply_and_ack(s, (p->_flags & AMQP_BASIC_REPLY_TO_FLAG) ? p->reply_to : none,
                                   (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) ? p->correlation_id
                                                                                : none,
                                   env.delivery_tag, s->echo.data, s->echo.size);
            }
            amqp_destroy_envelope(&env);
            if (rc < 0) return -1;
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            return 0;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (other_frame(s) < 0) return -1;
            continue;
        }
        fprintf(stderr, "echo_consumer: consuming: %s\n",
                r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                    ? amqp_error_string2(r.library_error)
                    : "unexpected reply from the broker");
        return -1;
    }
}

static int run(state *s)
{
    struct pollfd fds[1 + MAX_SLOTS];
    while (!g_stop) {
        int n = 0, timeout = TICK_MS;
        fds[n++] = (struct pollfd){.fd = amqp_get_sockfd(s->conn), .events = POLLIN};
        double now = now_ms();
        for (int i = 0; i < s->nkids; i++) {
            fds[n++] = (struct pollfd){.fd = s->kids[i].out_fd, .events = POLLIN};
            double left = s->kids[i].deadline_ms - now;
            if (left < timeout) timeout = left < 0 ? 0 : (int)left;
        }
        if (amqp_data_in_buffer(s->conn) || amqp_frames_enqueued(s->conn)) timeout = 0;
        if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            fprintf(stderr, "echo_consumer: poll: %m\n");
            return -1;
        }
        if (g_stop) break;
        if (take_deliveries(s) < 0) return -1;
        /* Kids are matched to their pollfd by position: walk backwards, as a
         * finished kid is replaced by the last one. Kids spawned above come
         * after n and wait for the next turn. */
        now = now_ms();
        for (int i = n - 2; i >= 0; i--) {
            kid *k = &s->kids[i];
            if (k->deadline_ms <= now) kill(k->pid, SIGKILL); /* its EOF follows */
            if ((fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) && kid_read(k) &&
                kid_done(s, i) < 0)
                return -1;
        }
    }
    return 0;
}

static int parse_int(const char *flag, const char *v, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || !*v || *end || x < min || x > max) {
        fprintf(stderr, "echo_consumer: %s: '%s' is not an integer in %d-%d\n", flag, v, min, max);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *queue = NULL, *type = "quorum";
    int prefetch = 0;
    state s;
    memset(&s, 0, sizeof s);
    s.slots = 1;
    s.job_timeout_ms = 60000;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            bad = 1;
        else if (strcmp(a, "--amqp-url") == 0)
            url = v;
        else if (strcmp(a, "--queue") == 0)
            queue = v;
        else if (strcmp(a, "--queue-type") == 0)
            type = v;
        else if (strcmp(a, "--prefetch") == 0)
            bad = parse_int(a, v, 1, 65535, &prefetch) < 0;
        else if (strcmp(a, "--spawn-python") == 0)
            s.spawn_root = v;
        else if (strcmp(a, "--slots") == 0)
            bad = parse_int(a, v, 1, MAX_SLOTS, &s.slots) < 0;
        else if (strcmp(a, "--job-timeout-ms") == 0)
            bad = parse_int(a, v, 1, 3600000, &s.job_timeout_ms) < 0;
        else
            bad = 1;
    }
    if (bad || !url || !queue) {
        fprintf(stderr, "usage: echo_consumer --amqp-url URL --queue Q [--queue-type "
                        "quorum|classic] [--prefetch N] [--spawn-python CODE_ROOT [--slots N] "
                        "[--job-timeout-ms MS]]\n");
        return 2;
    }
    if (!prefetch) prefetch = s.spawn_root ? s.slots : 64;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop; /* no SA_RESTART: poll returns at once */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    msgpack_sbuffer_init(&s.echo);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &s.echo, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    rb_pack_key(&pk, "v");
    msgpack_pack_int(&pk, 1);
    rb_pack_key(&pk, "status");
    rb_pack_cstr(&pk, "ok");

    int rc = 1;
    s.conn = connect_broker(url);
    if (!s.conn) goto out;
    if (start_consuming(s.conn, queue, type, prefetch) < 0) goto close;
    fprintf(stderr, "echo_consumer: consuming queue '%s' (%s, prefetch %d, %s)\n", queue, type,
            prefetch, s.spawn_root ? "a fresh python3 per job" : "echo");
    rc = run(&s) < 0 ? 1 : 0;
close:
    kill_kids(&s);
    amqp_connection_close(s.conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(s.conn);
out:
    msgpack_sbuffer_destroy(&s.echo);
    return rc;
}
