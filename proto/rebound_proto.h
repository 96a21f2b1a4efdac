/*
 * rebound_proto.h - the wire protocol of rebound (see PROTOCOL.md).
 *
 * Jobs and results are msgpack maps with string keys. This library is the
 * only place that knows their layout: the consumer decodes and validates a
 * job here before anything runs it, the trampoline child decodes the same
 * (already validated) bytes again to execute them, and both sides build
 * results with the packers below.
 *
 * Untrusted bytes are never handed to msgpack-c before rb_msgpack_check()
 * has accepted them: msgpack-c 4.0 allocates a declared array/map size
 * before it checks that the bytes exist.
 *
 * Errors are written into a caller-provided rb_err as one line of text that
 * names the offending key path ("calls[2].file: path escapes the code
 * root"). No function here exits or prints.
 */
#ifndef REBOUND_PROTO_H
#define REBOUND_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>

#define RB_PROTO_VERSION 1
#define RB_MAX_DEPTH 32
#define RB_MAX_ID_BYTES 128

#define RB_DEFAULT_MAX_JOB_BYTES (8u << 20)
#define RB_DEFAULT_MAX_CALLS 64
#define RB_DEFAULT_TIMEOUT_MS 10000
#define RB_DEFAULT_MAX_TIMEOUT_MS 60000
#define RB_DEFAULT_MAX_OUTPUT_BYTES (1u << 20)
#define RB_DEFAULT_MAX_RESULT_BYTES (16u << 20)

/* One line of error text. Empty when there is no error. */
typedef struct rb_err {
    char msg[512];
} rb_err;

/* printf into err->msg (truncating). Always returns -1, so that
 * `return rb_err_set(err, ...)` reads naturally. err may be NULL. */
int rb_err_set(rb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- limits ---------------------------------------------------------- */

typedef struct rb_limits {
    size_t max_job_bytes;       /* bodies larger than this are rejected */
    size_t max_calls;           /* calls per job, 1..max_calls */
    int64_t default_timeout_ms; /* when the job gives none */
    int64_t max_timeout_ms;     /* a larger timeout_ms is capped to this */
} rb_limits;

/* Fill with the RB_DEFAULT_* values above. */
void rb_limits_default(rb_limits *lim);

/* ---- structural validation of untrusted msgpack ----------------------- */

/*
 * Walk buf once without allocating: every declared str/bin/array/map length
 * must fit in the bytes that remain, nesting depth <= max_depth (the top
 * level is depth 1), no ext types, exactly one object with no trailing
 * bytes. Returns 0 when acceptable, -1 with err set otherwise ("truncated
 * str at offset 3", "nesting deeper than 32", "ext type at offset 7",
 * "4 trailing bytes", "empty input"; rb_job_decode prefixes these with
 * "body is not valid msgpack: "). max_depth must be 1..1024. Runs in
 * O(len) time and O(1) memory whatever the input declares.
 */
int rb_msgpack_check(const void *buf, size_t len, int max_depth, rb_err *err);

/* ---- jobs ----------------------------------------------------------------- */

typedef struct rb_call {
    char *fcn;         /* a Python identifier */
    char *file;        /* relative path under the code root, or NULL */
    char *source;      /* inline module source (NUL-terminated), or NULL */
    size_t source_len; /* bytes in source, excluding the NUL */
    char *cwd;         /* relative to the code root, or NULL */
    char **paths;      /* npaths relative paths, or NULL */
    size_t npaths;
    msgpack_object args;   /* always an array (empty when absent) */
    msgpack_object kwargs; /* a map with str keys, or nil when absent */
    bool return_args;
} rb_call;

typedef struct rb_job {
    char *id;
    rb_call *calls;
    size_t ncalls;
    int64_t timeout_ms; /* after defaulting and capping */
    bool has_seed;
    int64_t seed;
    char **forbidden_modules; /* nforbidden module names, or NULL */
    size_t nforbidden;
    bool timing; /* the result carries a `timing` map (README, "Where the time goes") */
    /* private: the unpacked body that args/kwargs point into */
    msgpack_unpacked _unpacked;
} rb_job;

/*
 * Validate and decode a job body (lim NULL: the defaults). The job keeps its
 * own copy of the body, so body may be freed at once. On success returns 0
 * and *out is a new job owned by the caller (free with rb_job_free). On
 * failure returns -1, *out is NULL and err says why, naming the key path.
 * When the failure happened after the id was read, *id_out (if not NULL)
 * receives a malloc'd copy of the id for the rejection result (caller
 * frees); otherwise NULL.
 *
 * Path rules checked here are lexical: relative, no ".." component, no
 * empty path. Symlinks are checked by rb_job_check_paths.
 */
int rb_job_decode(const void *body, size_t len, const rb_limits *lim, rb_job **out, char **id_out,
                  rb_err *err);

/*
 * Check that every call's file, cwd and paths, resolved with symlinks under
 * code_root, stay inside code_root, and that each file exists and is a
 * regular file. Returns 0 or -1 with err naming the call ("calls[2].file:
 * path escapes the code root").
 */
int rb_job_check_paths(const rb_job *job, const char *code_root, rb_err *err);

void rb_job_free(rb_job *job);

/* ---- results -------------------------------------------------------------- */

typedef enum rb_status {
    RB_STATUS_OK = 0,
    RB_STATUS_ERROR,
    RB_STATUS_TIMEOUT,
    RB_STATUS_CRASHED,
    RB_STATUS_REJECTED,
    RB_STATUS_COUNT
} rb_status;

/* "ok", "error", "timeout", "crashed", "rejected". */
const char *rb_status_name(rb_status st);

/*
 * Everything a result message carries. Call results arrive already packed
 * (one msgpack map each, concatenated) from the trampoline child, so they
 * are copied verbatim into the `results` array.
 */
/*
 * What a job cost (README, "Per-job accounting"). Measured in the child,
 * from the moment it has the job until it reports its last call, with
 * getrusage (the child itself and the processes it waited for); for a job
 * whose child crashed, by its zygote from wait4 of the child (which then
 * includes the child's setup since its fork, and has no wall time).
 * Zeroed: nothing measured (a job that hit its wall limit, say).
 */
typedef struct rb_usage {
    bool has_cpu;       /* cpu_ms and max_rss_kb were measured */
    double cpu_ms;      /* user + system */
    int64_t max_rss_kb; /* peak resident memory of one of those processes */
    bool has_wall;
    double wall_ms; /* the job's own run, in the child */
} rb_usage;

/* How a crashed job's child ended (from its wait status). */
typedef struct rb_exit_info {
    bool known;
    int code;   /* its exit status, when signal is 0 */
    int signal; /* the signal that killed it, or 0 */
    bool core;  /* and it dumped core */
} rb_exit_info;

/* ---- trace context (trace.c) --------------------------------------------- */

/* "00-<trace id>-<parent id>-<flags>": 55 characters. */
#define RB_TRACEPARENT_LEN 55

/* Whether s (len bytes, no terminator needed) is a version-00 W3C
 * traceparent: lower-case hex fields, neither id all zeros. */
bool rb_traceparent_valid(const char *s, size_t len);

/* Stages of a job inside the worker, each in microseconds since its
 * delivery was assembled: the `timing` map of a result. */
#define RB_TIMING_MAX 8
typedef struct rb_timing {
    size_t n;
    const char *stage[RB_TIMING_MAX]; /* static names, e.g. "decoded" */
    int64_t us[RB_TIMING_MAX];
} rb_timing;

typedef struct rb_result {
    const char *id; /* NULL packs as nil */
    rb_status status;
    const char *error_type;    /* NULL: no `error` key */
    const char *error_message; /* used when error_type is set */
    const char *worker;        /* worker id */
    double ms;                 /* execution wall time */
    bool redelivered;          /* packs `redelivered: true` only when set */
    const void *call_results;  /* ncalls packed maps back to back, or NULL */
    size_t call_results_len;
    size_t ncalls;
    rb_usage usage;          /* cpu_ms, max_rss_kb, wall_ms keys for the fields measured */
    rb_exit_info exit;       /* an `exit` map when known */
    const rb_timing *timing; /* a `timing` map when not NULL */
} rb_result;

/* Pack r into sbuf (appending). Returns 0, or -1 on allocation failure (sbuf
 * is then left as it was). Text that is not UTF-8 is packed with U+FFFD in
 * place of the bad bytes, here and in every packer below. */
int rb_result_pack(const rb_result *r, msgpack_sbuffer *sbuf);

/* Convenience: a complete `rejected` result for a body that failed
 * rb_job_decode (id may be NULL). Same return convention. */
int rb_result_pack_rejected(const char *id, const char *worker, const char *message,
                            msgpack_sbuffer *sbuf);

/*
 * One call result as the child packs it. `val` and `args` are already
 * packed msgpack objects (or NULL). When packing would exceed max_bytes the
 * val/args are dropped and error becomes ValueError "result too large" (and
 * if that still does not fit, output is shortened and truncated set).
 * max_bytes 0: no limit. Appends to sbuf; same return convention.
 */
typedef struct rb_call_result {
    bool present;
    const void *val; /* packed value, NULL packs nil */
    size_t val_len;
    const void *args; /* packed args array, NULL: no `args` key */
    size_t args_len;
    const char *output; /* captured stdout+stderr */
    size_t output_len;
    bool truncated;
    const char *error_type; /* NULL: no `error` key */
    const char *error_message;
    const char *error_traceback;
    double ms;
} rb_call_result;

int rb_call_result_pack(const rb_call_result *cr, size_t max_bytes, msgpack_sbuffer *sbuf);

/* ---- framing: a 4-byte big-endian length, then that many bytes -------------- */

#define RB_FRAME_MAX (64u << 20)

/* Write one frame to a blocking fd, retrying on EINTR and short writes.
 * Returns 0, or -1 with errno set. */
int rb_frame_write(int fd, const void *buf, size_t len);

/* The 4-byte length prefix of a frame of len bytes. */
void rb_frame_len_encode(unsigned char out[4], uint32_t len);

/* Append one whole frame (prefix and payload) to sb, for writing several
 * frames at once. Returns 0, or -1 on allocation failure or len over
 * UINT32_MAX. */
int rb_frame_append(msgpack_sbuffer *sb, const void *payload, size_t len);

/* Read one whole frame from a blocking fd into a malloc'd buffer (caller
 * frees). Returns 1 with *buf and *len set, 0 on clean EOF before a frame, -1
 * on error, a short frame or a length over max (errno EMSGSIZE). */
int rb_frame_read(int fd, size_t max, void **buf, size_t *len);

/* Accumulates bytes from a non-blocking fd and hands out whole frames. */
typedef struct rb_framebuf {
    char *data; /* owned; freed by rb_framebuf_free */
    size_t len;
    size_t cap;
    size_t off; /* start of unconsumed bytes */
    size_t max; /* largest frame accepted */
} rb_framebuf;

void rb_framebuf_init(rb_framebuf *fb, size_t max);
void rb_framebuf_reset(rb_framebuf *fb); /* drop buffered bytes, keep memory */
void rb_framebuf_free(rb_framebuf *fb);

/* Read what fd has now. Returns bytes read (>0), 0 on EOF, -1 with errno
 * (EAGAIN when nothing is available). */
ssize_t rb_framebuf_fill(rb_framebuf *fb, int fd);

/* Take the next whole frame: returns 1 with *frame and *len pointing into the
 * buffer (valid until the next fill/next/reset), 0 when incomplete, -1 when
 * the declared length exceeds max. */
int rb_framebuf_next(rb_framebuf *fb, const char **frame, size_t *len);

/* ---- small msgpack helpers shared by all parts -------------------------- */

/* Pack a NUL-terminated string (NULL packs nil). */
int rb_pack_cstr(msgpack_packer *pk, const char *s);
/* Pack a str key followed by nothing: the caller packs the value next. */
int rb_pack_key(msgpack_packer *pk, const char *key);

/* Look up a str key in a msgpack map; NULL when absent or not a map. */
const msgpack_object *rb_map_get(const msgpack_object *map, const char *key);

/* ---- text ----------------------------------------------------------------- */

/*
 * s[0..n) as well-formed UTF-8: every byte that is not part of a
 * well-formed sequence becomes U+FFFD, as the packers do with the text they
 * pack (s may be NULL when n is 0). Returns a NUL-terminated copy that the
 * caller frees, with its length (without the NUL) in *out_len; NULL and
 * *out_len 0 when out of memory.
 */
char *rb_utf8_repair(const void *s, size_t n, size_t *out_len);

#endif
