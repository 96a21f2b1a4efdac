/*
 * job.c - decoding and validating a job body into an rb_job.
 *
 * Order matters: the size limit, then the structural pre-check, and only
 * then msgpack-c (which would otherwise allocate whatever the bytes declare).
 * After decoding, every rule is checked before the job is handed out, so a
 * caller never sees a half-valid job.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_internal.h"

void rb_limits_default(rb_limits *lim)
{
    lim->max_job_bytes = RB_DEFAULT_MAX_JOB_BYTES;
    lim->max_calls = RB_DEFAULT_MAX_CALLS;
    lim->default_timeout_ms = RB_DEFAULT_TIMEOUT_MS;
    lim->max_timeout_ms = RB_DEFAULT_MAX_TIMEOUT_MS;
}

/* An optional key given as nil counts as absent: clients commonly build the
 * map with a None for "not set". */
static const msgpack_object *get_opt(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = rb_map_get(map, key);
    return (o && o->type == MSGPACK_OBJECT_NIL) ? NULL : o;
}

static bool is_str(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR;
}

static bool has_nul(const msgpack_object *o)
{
    return memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL;
}

/* A malloc'd NUL-terminated copy of a str object. */
static char *dup_str(const msgpack_object *o)
{
    char *s = malloc((size_t)o->via.str.size + 1);
    if (!s) return NULL;
    if (o->via.str.size) memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    return s;
}

/* Copy a str that ends up in a C API (paths, module names, the id), where
 * an embedded NUL would silently cut the value. */
static int copy_cstr(const msgpack_object *o, const char *key, char **out, rb_err *err)
{
    if (!is_str(o)) return rb_err_set(err, "%s: must be a string", key);
    if (has_nul(o)) return rb_err_set(err, "%s: contains a NUL byte", key);
    if (!(*out = dup_str(o))) return rb_err_set(err, "%s: out of memory", key);
    return 0;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static bool is_identifier(const char *s, size_t n)
{
    if (n == 0 || !is_ident_start(s[0])) return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_ident_char(s[i])) return false;
    }
    return true;
}

/* "os", "os.path": dotted identifiers. */
static bool is_module_name(const char *s)
{
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!is_identifier(p, n)) return false;
        if (!dot) return true;
        p = dot + 1;
    }
}

static int path_value(const msgpack_object *o, const char *key, char **out, rb_err *err)
{
    if (copy_cstr(o, key, out, err) < 0) return -1;
    return rb__path_lexical(*out, key, err);
}

static int decode_call(rb_call *c, const msgpack_object *m, size_t i, rb_err *err)
{
    char key[80];
    const msgpack_object *o;

    if (m->type != MSGPACK_OBJECT_MAP) return rb_err_set(err, "calls[%zu]: must be a map", i);

    snprintf(key, sizeof key, "calls[%zu].fcn", i);
    if (!(o = get_opt(m, "fcn"))) return rb_err_set(err, "%s: required", key);
    if (!is_str(o)) return rb_err_set(err, "%s: must be a string", key);
    if (!is_identifier(o->via.str.ptr, o->via.str.size))
        return rb_err_set(err, "%s: not a Python identifier", key);
    if (!(c->fcn = dup_str(o))) return rb_err_set(err, "%s: out of memory", key);

    const msgpack_object *file = get_opt(m, "file");
    const msgpack_object *source = get_opt(m, "source");
    if (!file == !source) return rb_err_set(err, "calls[%zu]: exactly one of file and source", i);
    if (file) {
        snprintf(key, sizeof key, "calls[%zu].file", i);
        if (path_value(file, key, &c->file, err) < 0) return -1;
        size_t n = strlen(c->file);
        if (n < 4 || strcmp(c->file + n - 3, ".py") != 0 || c->file[n - 4] == '/')
            return rb_err_set(err, "%s: must name a .py file", key);
    } else {
        /* Source text goes to Python's compile(), which takes a length, so
         * an embedded NUL is Python's to report, not a truncation here. */
        if (!is_str(source)) return rb_err_set(err, "calls[%zu].source: must be a string", i);
        if (!(c->source = dup_str(source)))
            return rb_err_set(err, "calls[%zu].source: out of memory", i);
        c->source_len = source->via.str.size;
    }

    c->args.type = MSGPACK_OBJECT_ARRAY;
    c->args.via.array.size = 0;
    c->args.via.array.ptr = NULL;
    if ((o = get_opt(m, "args"))) {
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return rb_err_set(err, "calls[%zu].args: must be an array", i);
        c->args = *o;
    }

    c->kwargs.type = MSGPACK_OBJECT_NIL;
    if ((o = get_opt(m, "kwargs"))) {
        if (o->type != MSGPACK_OBJECT_MAP)
            return rb_err_set(err, "calls[%zu].kwargs: must be a map", i);
        for (uint32_t k = 0; k < o->via.map.size; k++) {
            if (!is_str(&o->via.map.ptr[k].key))
                return rb_err_set(err, "calls[%zu].kwargs: keys must be strings", i);
        }
        c->kwargs = *o;
    }

    if ((o = get_opt(m, "cwd"))) {
        snprintf(key, sizeof key, "calls[%zu].cwd", i);
        if (path_value(o, key, &c->cwd, err) < 0) return -1;
    }

    if ((o = get_opt(m, "paths"))) {
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return rb_err_set(err, "calls[%zu].paths: must be an array of strings", i);
        if (o->via.array.size) {
            if (!(c->paths = calloc(o->via.array.size, sizeof *c->paths)))
                return rb_err_set(err, "calls[%zu].paths: out of memory", i);
            c->npaths = o->via.array.size;
        }
        for (size_t j = 0; j < c->npaths; j++) {
            snprintf(key, sizeof key, "calls[%zu].paths[%zu]", i, j);
            if (path_value(&o->via.array.ptr[j], key, &c->paths[j], err) < 0) return -1;
        }
    }

    if ((o = get_opt(m, "return_args"))) {
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return rb_err_set(err, "calls[%zu].return_args: must be a boolean", i);
        c->return_args = o->via.boolean;
    }
    return 0;
}

/* NULL when o is an acceptable id, else what is wrong with it. */
static const char *id_problem(const msgpack_object *o)
{
    if (!is_str(o)) return "must be a string";
    if (o->via.str.size < 1 || o->via.str.size > RB_MAX_ID_BYTES) return "must be 1-128 bytes";
    if (has_nul(o)) return "contains a NUL byte";
    if (!rb__utf8_valid(o->via.str.ptr, o->via.str.size)) return "not valid UTF-8";
    return NULL;
}

static int decode_root(rb_job *job, const msgpack_object *root, const rb_limits *lim, rb_err *err)
{
    const msgpack_object *o;

    if (root->type != MSGPACK_OBJECT_MAP) return rb_err_set(err, "body is not a map");

    /* Take the id first, before any other rule can fail, so that even a
     * rejection can be matched to its job by the client. */
    const msgpack_object *id = rb_map_get(root, "id");
    if (id && !id_problem(id) && !(job->id = dup_str(id)))
        return rb_err_set(err, "id: out of memory");

    if (!(o = rb_map_get(root, "v"))) return rb_err_set(err, "v: required");
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 != RB_PROTO_VERSION)
        return rb_err_set(err, "v: must be %d", RB_PROTO_VERSION);

    if (!id || id->type == MSGPACK_OBJECT_NIL) return rb_err_set(err, "id: required");
    const char *why = id_problem(id);
    if (why) return rb_err_set(err, "id: %s", why);

    if (rb__check_values(root, err) < 0) return -1;

    o = get_opt(root, "calls");
    if (!o) return rb_err_set(err, "calls: required");
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 ||
        o->via.array.size > lim->max_calls)
        return rb_err_set(err, "calls: must be an array of 1-%zu calls", lim->max_calls);
    if (!(job->calls = calloc(o->via.array.size, sizeof *job->calls)))
        return rb_err_set(err, "calls: out of memory");
    job->ncalls = o->via.array.size;
    for (size_t i = 0; i < job->ncalls; i++) {
        if (decode_call(&job->calls[i], &o->via.array.ptr[i], i, err) < 0) return -1;
    }

    int64_t timeout = lim->default_timeout_ms;
    if ((o = get_opt(root, "timeout_ms"))) {
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 < 1)
            return rb_err_set(err, "timeout_ms: must be a positive integer");
        timeout = o->via.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
    }
    job->timeout_ms = timeout > lim->max_timeout_ms ? lim->max_timeout_ms : timeout;

    if ((o = get_opt(root, "seed"))) {
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            job->seed = o->via.i64;
        } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
            job->seed = (int64_t)o->via.u64;
        } else {
            return rb_err_set(err, "seed: must be an integer in the signed 64-bit range");
        }
        job->has_seed = true;
    }

    if ((o = get_opt(root, "timing"))) {
        if (o->type != MSGPACK_OBJECT_BOOLEAN) return rb_err_set(err, "timing: must be a boolean");
        job->timing = o->via.boolean;
    }

    if ((o = get_opt(root, "forbidden_modules"))) {
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return rb_err_set(err, "forbidden_modules: must be an array of strings");
        if (o->via.array.size) {
            job->forbidden_modules = calloc(o->via.array.size, sizeof *job->forbidden_modules);
            if (!job->forbidden_modules) return rb_err_set(err, "forbidden_modules: out of memory");
            job->nforbidden = o->via.array.size;
        }
        for (size_t i = 0; i < job->nforbidden; i++) {
            char key[64];
            snprintf(key, sizeof key, "forbidden_modules[%zu]", i);
            if (copy_cstr(&o->via.array.ptr[i], key, &job->forbidden_modules[i], err) < 0)
                return -1;
            if (!is_module_name(job->forbidden_modules[i]))
                return rb_err_set(err, "%s: not a module name", key);
        }
    }
    return 0;
}

int rb_job_decode(const void *body, size_t len, const rb_limits *lim, rb_job **out, char **id_out,
                  rb_err *err)
{
    rb_limits defaults;
    if (!lim) {
        rb_limits_default(&defaults);
        lim = &defaults;
    }
    *out = NULL;
    if (id_out) *id_out = NULL;

    if (len > lim->max_job_bytes)
        return rb_err_set(err, "body is %zu bytes, over the %zu-byte limit", len,
                          lim->max_job_bytes);
    rb_err cerr;
    if (rb_msgpack_check(body, len, RB_MAX_DEPTH, &cerr) < 0)
        return rb_err_set(err, "body is not valid msgpack: %s", cerr.msg);
    if (len > SIZE_MAX - sizeof(rb_job))
        return rb_err_set(err, "body is %zu bytes, too large", len);

    /* msgpack-c's str/bin objects point into the buffer they were decoded
     * from, so the job keeps its own copy of the body, in the same block. */
    rb_job *job = calloc(1, sizeof *job + len);
    if (!job) return rb_err_set(err, "out of memory for a %zu-byte body", len);
    char *copy = (char *)(job + 1);
    memcpy(copy, body, len);
    msgpack_unpacked_init(&job->_unpacked);

    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&job->_unpacked, copy, len, &off);
    int rc;
    if (ur == MSGPACK_UNPACK_SUCCESS && off == len)
        rc = decode_root(job, &job->_unpacked.data, lim, err);
    else if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        rc = rb_err_set(err, "out of memory decoding a %zu-byte body", len);
    else
        rc = rb_err_set(err, "body is not valid msgpack: decoder error %d", (int)ur);

    if (rc < 0) {
        if (id_out) {
            *id_out = job->id;
            job->id = NULL;
        }
        rb_job_free(job);
        return -1;
    }
    *out = job;
    return 0;
}

void rb_job_free(rb_job *job)
{
    if (!job) return;
    for (size_t i = 0; i < job->ncalls; i++) {
        rb_call *c = &job->calls[i];
        free(c->fcn);
        free(c->file);
        free(c->source);
        free(c->cwd);
        for (size_t j = 0; j < c->npaths; j++)
            free(c->paths[j]);
        free(c->paths);
    }
    free(job->calls);
    for (size_t i = 0; i < job->nforbidden; i++)
        free(job->forbidden_modules[i]);
    free(job->forbidden_modules);
    free(job->id);
    msgpack_unpacked_destroy(&job->_unpacked);
    free(job);
}
