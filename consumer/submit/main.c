/*
 * main.c - rebound-submit: send one job (JSON or msgpack) to a rebound
 * queue and print its result.
 *
 * Exit codes: 0 the result's status is "ok"; 1 any other status (or a
 * result that cannot be read); 2 usage error (bad flag, unreadable or
 * invalid input); 3 no result in time (or no queue took the job); 4 the
 * broker could not be reached.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_msgpack.h"
#include "rebound_proto.h"
#include "rpc.h"

#define EXIT_STATUS_NOT_OK 1
#define EXIT_USAGE 2
#define EXIT_NO_REPLY 3
#define EXIT_BROKER 4
#define DEFAULT_TIMEOUT_MS 30000
#define MAX_INPUT_BYTES (64u << 20)
#define MAX_RESULT_DEPTH 128

typedef struct args {
    const char *url;
    const char *queue;
    long timeout_ms;
    int msgpack;
    const char *file; /* NULL or "-": stdin */
} args;

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: rebound-submit [--amqp-url URL] [--queue Q] [--timeout-ms N] [--msgpack] "
        "[FILE|-]\n"
        "Send one job to a rebound queue and print its result as JSON.\n\n"
        "  --amqp-url URL   broker [REBOUND_AMQP_URL; default amqp://guest:guest@127.0.0.1:5672/]\n"
        "  --queue Q        job queue [REBOUND_QUEUE; default rebound.jobs]\n"
        "  --timeout-ms N   how long to wait for the result [REBOUND_SUBMIT_TIMEOUT_MS; "
        "default %d]\n"
        "  --msgpack        read the job and write the result as raw msgpack\n"
        "  FILE             the job (JSON object); - or nothing: standard input\n\n"
        "In JSON output a msgpack bin is {\"$bin\": \"<base64>\"} and an ext is\n"
        "{\"$ext\": <type>, \"$data\": \"<base64>\"}.\n"
        "Exit: 0 status ok, 1 other status, 2 usage, 3 no result in time, 4 broker "
        "unreachable.\n",
        DEFAULT_TIMEOUT_MS);
}

static int parse_timeout(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 24L * 3600 * 1000) return -1;
    *out = v;
    return 0;
}

/* Returns -1 on error (message printed), 1 when --help was shown, 0 to run. */
static int parse_args(int argc, char **argv, args *a)
{
    a->url = getenv("REBOUND_AMQP_URL");
    if (!a->url || !*a->url) a->url = "amqp://guest:guest@127.0.0.1:5672/";
    a->queue = getenv("REBOUND_QUEUE");
    if (!a->queue || !*a->queue) a->queue = "rebound.jobs";
    a->timeout_ms = DEFAULT_TIMEOUT_MS;
    const char *t = getenv("REBOUND_SUBMIT_TIMEOUT_MS");
    if (t && *t && parse_timeout(t, &a->timeout_ms) < 0) {
        fprintf(stderr,
                "rebound-submit: REBOUND_SUBMIT_TIMEOUT_MS: '%s' is not a number of "
                "milliseconds\n",
                t);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char **dst = NULL;
        const char *val = NULL;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(s, "--msgpack") == 0) {
            a->msgpack = 1;
            continue;
        }
        if (strcmp(s, "-") == 0 || strncmp(s, "-", 1) != 0) {
            if (a->file) {
                fprintf(stderr, "rebound-submit: more than one input file ('%s', '%s')\n", a->file,
                        s);
                return -1;
            }
            a->file = s;
            continue;
        }
        const char *eq = strchr(s, '=');
        size_t len = eq ? (size_t)(eq - s) : strlen(s);
        const char *name;
        if (len == 10 && strncmp(s, "--amqp-url", len) == 0) {
            name = "--amqp-url";
            dst = &a->url;
        } else if (len == 7 && strncmp(s, "--queue", len) == 0) {
            name = "--queue";
            dst = &a->queue;
        } else if (len == 12 && strncmp(s, "--timeout-ms", len) == 0) {
            name = "--timeout-ms";
        } else {
            fprintf(stderr, "rebound-submit: unknown flag '%.*s' (see --help)\n", (int)len, s);
            return -1;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "rebound-submit: %s needs a value\n", name);
            return -1;
        }
        if (dst) {
            if (!*val) {
                fprintf(stderr, "rebound-submit: %s: empty value\n", name);
                return -1;
            }
            *dst = val;
        } else if (parse_timeout(val, &a->timeout_ms) < 0) {
            fprintf(stderr,
                    "rebound-submit: --timeout-ms: '%s' is not a number of "
                    "milliseconds in 1..86400000\n",
                    val);
            return -1;
        }
    }
    return 0;
}

/* Read the whole input into a malloc'd buffer. */
static char *slurp(const char *file, size_t *len)
{
    FILE *f = (!file || strcmp(file, "-") == 0) ? stdin : fopen(file, "rb");
    const char *name = f == stdin ? "standard input" : file;
    if (!f) {
        fprintf(stderr, "rebound-submit: %s: %s\n", name, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *p = cap < MAX_INPUT_BYTES ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                fprintf(stderr, "rebound-submit: %s: larger than %u bytes\n", name,
                        MAX_INPUT_BYTES);
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                fprintf(stderr, "rebound-submit: %s: read error\n", name);
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin) fclose(f);
    *len = n;
    return buf;
}

/* The job as msgpack: the input itself, or its JSON converted. */
static int job_body(const args *a, char *in, size_t len, msgpack_sbuffer *sb)
{
    if (a->msgpack) return msgpack_sbuffer_write(sb, in, len);
    json_error_t jerr;
    json_t *j = json_loadb(in, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!j) {
        fprintf(stderr, "rebound-submit: %s:%d:%d: %s\n",
                a->file && strcmp(a->file, "-") ? a->file : "<stdin>", jerr.line, jerr.column,
                jerr.text);
        return -1;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = rb_json_to_msgpack(j, &pk);
    json_decref(j);
    if (rc < 0) fprintf(stderr, "rebound-submit: out of memory\n");
    return rc;
}

/* Print the result; the exit code follows its status. */
static int show_result(const args *a, const void *buf, size_t len)
{
    if (a->msgpack) fwrite(buf, 1, len, stdout);
    rb_err err = {{0}};
    if (rb_msgpack_check(buf, len, MAX_RESULT_DEPTH, &err) < 0) {
        fprintf(stderr, "rebound-submit: the result is not valid msgpack: %s\n", err.msg);
        return EXIT_STATUS_NOT_OK;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = EXIT_STATUS_NOT_OK;
    if (msgpack_unpack_next(&u, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS) {
        fprintf(stderr, "rebound-submit: the result cannot be decoded\n");
        goto out;
    }
    if (!a->msgpack) {
        json_t *j = rb_msgpack_to_json(&u.data);
        char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
        json_decref(j);
        if (!text) {
            fprintf(stderr, "rebound-submit: out of memory\n");
            goto out;
        }
        printf("%s\n", text);
        free(text);
    }
    const msgpack_object *st = rb_map_get(&u.data, "status");
    if (st && st->type == MSGPACK_OBJECT_STR && st->via.str.size == 2 &&
        memcmp(st->via.str.ptr, "ok", 2) == 0)
        rc = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

int main(int argc, char **argv)
{
    args a = {0};
    int p = parse_args(argc, argv, &a);
    if (p != 0) return p > 0 ? 0 : EXIT_USAGE;
    size_t len;
    char *in = slurp(a.file, &len);
    if (!in) return EXIT_USAGE;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = job_body(&a, in, len, &sb);
    free(in);
    if (rc < 0) {
        msgpack_sbuffer_destroy(&sb);
        return EXIT_USAGE;
    }
    rb_rpc_request req = {a.url, a.queue, sb.data, sb.size, (int)a.timeout_ms};
    void *reply;
    size_t reply_len;
    char err[512];
    rb_rpc_status st = rb_rpc_call(&req, &reply, &reply_len, err, sizeof err);
    msgpack_sbuffer_destroy(&sb);
    switch (st) {
    case RB_RPC_REPLIED:
        rc = show_result(&a, reply, reply_len);
        free(reply);
        return rc;
    case RB_RPC_BAD_URL:
        fprintf(stderr, "rebound-submit: %s\n", err);
        return EXIT_USAGE;
    case RB_RPC_NO_REPLY:
    case RB_RPC_UNROUTABLE:
        fprintf(stderr, "rebound-submit: %s\n", err);
        return EXIT_NO_REPLY;
    case RB_RPC_BROKER:
        break;
    }
    fprintf(stderr, "rebound-submit: %s\n", err);
    return EXIT_BROKER;
}
