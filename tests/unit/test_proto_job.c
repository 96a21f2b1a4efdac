/*
 * test_proto_job.c - rb_job_decode on valid jobs: every field, defaults,
 * limits, every value type inside args/kwargs, and ownership of the
 * decoded data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto_text.h"
#include "rebound_proto.h"

static rb_job *decode_text(const char *text, const rb_limits *lim)
{
    mpbuf b = mp(text);
    rb_job *job = NULL;
    char *id = NULL;
    rb_err err = {""};
    int rc = rb_job_decode(b.data, b.len, lim, &job, &id, &err);
    free(b.data);
    if (rc != 0) fail_msg("rejected: %s", err.msg);
    assert_non_null(job);
    assert_null(id);
    assert_string_equal(err.msg, "");
    return job;
}

static void assert_str_obj(const msgpack_object *o, const char *s)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(s));
    assert_memory_equal(o->via.str.ptr, s, strlen(s));
}

static void test_minimal_job_defaults(void **state)
{
    (void)state;
    rb_job *job =
        decode_text("{v: 1, id: 'job-1', calls: [{fcn: 'f', source: 'def f(): pass'}]}", NULL);
    assert_string_equal(job->id, "job-1");
    assert_int_equal(job->ncalls, 1);
    assert_int_equal(job->timeout_ms, RB_DEFAULT_TIMEOUT_MS);
    assert_false(job->has_seed);
    assert_null(job->forbidden_modules);
    assert_int_equal(job->nforbidden, 0);
    const rb_call *c = &job->calls[0];
    assert_string_equal(c->fcn, "f");
    assert_null(c->file);
    assert_string_equal(c->source, "def f(): pass");
    assert_int_equal(c->source_len, 13);
    assert_null(c->cwd);
    assert_null(c->paths);
    assert_int_equal(c->npaths, 0);
    assert_int_equal(c->args.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(c->args.via.array.size, 0);
    assert_int_equal(c->kwargs.type, MSGPACK_OBJECT_NIL);
    assert_false(c->return_args);
    rb_job_free(job);
}

static void test_every_field(void **state)
{
    (void)state;
    rb_job *job = decode_text(
        "{v: 1, id: 'j', timeout_ms: 2500, seed: -42, forbidden_modules: ['os', 'socket',"
        " 'os.path', '_x1'], calls: ["
        "  {fcn: 'main', file: 'pkg/mod.py', args: [1, 'two'], kwargs: {a: 1, b: [true]},"
        "   cwd: 'pkg', paths: ['lib', 'vendor/x', '.'], return_args: true},"
        "  {fcn: '_g2', source: 'def _g2(): return 1\\n', return_args: false}]}",
        NULL);
    assert_int_equal(job->timeout_ms, 2500);
    assert_true(job->has_seed);
    assert_int_equal(job->seed, -42);
    assert_int_equal(job->nforbidden, 4);
    assert_string_equal(job->forbidden_modules[0], "os");
    assert_string_equal(job->forbidden_modules[1], "socket");
    assert_string_equal(job->forbidden_modules[2], "os.path");
    assert_string_equal(job->forbidden_modules[3], "_x1");
    assert_int_equal(job->ncalls, 2);

    const rb_call *c = &job->calls[0];
    assert_string_equal(c->fcn, "main");
    assert_string_equal(c->file, "pkg/mod.py");
    assert_null(c->source);
    assert_string_equal(c->cwd, "pkg");
    assert_int_equal(c->npaths, 3);
    assert_string_equal(c->paths[0], "lib");
    assert_string_equal(c->paths[1], "vendor/x");
    assert_string_equal(c->paths[2], ".");
    assert_true(c->return_args);
    assert_int_equal(c->args.via.array.size, 2);
    assert_int_equal(c->args.via.array.ptr[0].via.u64, 1);
    assert_str_obj(&c->args.via.array.ptr[1], "two");
    assert_int_equal(c->kwargs.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(c->kwargs.via.map.size, 2);
    assert_str_obj(&c->kwargs.via.map.ptr[0].key, "a");
    assert_str_obj(&c->kwargs.via.map.ptr[1].key, "b");
    assert_int_equal(c->kwargs.via.map.ptr[1].val.type, MSGPACK_OBJECT_ARRAY);

    c = &job->calls[1];
    assert_string_equal(c->fcn, "_g2");
    assert_string_equal(c->source, "def _g2(): return 1\n");
    assert_int_equal(c->source_len, 20);
    assert_false(c->return_args);
    rb_job_free(job);
}

/* args holding one value of every type the protocol allows. */
static void test_every_value_type_in_args(void **state)
{
    (void)state;
    rb_job *job = decode_text(
        "{v: 1, id: 'types', calls: [{fcn: 'f', source: 's', args: ["
        " nil, true, false, 0, 127, 18446744073709551615, -1, -9223372036854775808,"
        " 1.25, 0.5f, '', 'h\\xc3\\xa9llo \\xf0\\x9f\\x99\\x82', b'\\x00\\xff\\x80', b'',"
        " [1, [2, [3]]], {s: 1, 7: 2, -3: 3, b'bk': 4, true: 5, nil: 6, 2.5: 7}],"
        " kwargs: {x: 'y', n: nil, e: {}}}]}",
        NULL);
    const msgpack_object *a = job->calls[0].args.via.array.ptr;
    assert_int_equal(job->calls[0].args.via.array.size, 16);
    assert_int_equal(a[0].type, MSGPACK_OBJECT_NIL);
    assert_int_equal(a[1].type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(a[1].via.boolean);
    assert_int_equal(a[2].type, MSGPACK_OBJECT_BOOLEAN);
    assert_false(a[2].via.boolean);
    assert_int_equal(a[3].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(a[3].via.u64, 0);
    assert_int_equal(a[4].via.u64, 127);
    assert_int_equal(a[5].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true(a[5].via.u64 == UINT64_MAX);
    assert_int_equal(a[6].type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_true(a[6].via.i64 == -1);
    assert_true(a[7].via.i64 == INT64_MIN);
    assert_int_equal(a[8].type, MSGPACK_OBJECT_FLOAT64);
    assert_true(a[8].via.f64 == 1.25);
    assert_int_equal(a[9].type, MSGPACK_OBJECT_FLOAT32);
    assert_true(a[9].via.f64 == 0.5);
    assert_str_obj(&a[10], "");
    assert_str_obj(&a[11], "h\xc3\xa9llo \xf0\x9f\x99\x82");
    assert_int_equal(a[12].type, MSGPACK_OBJECT_BIN);
    assert_int_equal(a[12].via.bin.size, 3);
    assert_memory_equal(a[12].via.bin.ptr, "\x00\xff\x80", 3);
    assert_int_equal(a[13].type, MSGPACK_OBJECT_BIN);
    assert_int_equal(a[13].via.bin.size, 0);
    assert_int_equal(a[14].type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(a[14].via.array.ptr[1].via.array.ptr[1].via.array.ptr[0].via.u64, 3);
    assert_int_equal(a[15].type, MSGPACK_OBJECT_MAP);
    const msgpack_object_kv *kv = a[15].via.map.ptr;
    assert_int_equal(a[15].via.map.size, 7);
    assert_str_obj(&kv[0].key, "s");
    assert_int_equal(kv[1].key.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(kv[2].key.type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_int_equal(kv[3].key.type, MSGPACK_OBJECT_BIN);
    assert_int_equal(kv[4].key.type, MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(kv[5].key.type, MSGPACK_OBJECT_NIL);
    assert_int_equal(kv[6].key.type, MSGPACK_OBJECT_FLOAT64);
    assert_int_equal(kv[6].val.via.u64, 7);

    const msgpack_object *kw = &job->calls[0].kwargs;
    assert_int_equal(kw->via.map.size, 3);
    assert_str_obj(&kw->via.map.ptr[0].val, "y");
    assert_int_equal(kw->via.map.ptr[1].val.type, MSGPACK_OBJECT_NIL);
    assert_int_equal(kw->via.map.ptr[2].val.type, MSGPACK_OBJECT_MAP);
    rb_job_free(job);
}

/* args point into memory the job owns, not into the caller's buffer. */
static void test_job_outlives_body(void **state)
{
    (void)state;
    mpbuf b = mp("{v: 1, id: 'keep', calls: [{fcn: 'f', source: 's', args: ['payload', b'xyz'],"
                 " kwargs: {k: 'v'}}]}");
    rb_job *job = NULL;
    rb_err err = {""};
    assert_int_equal(rb_job_decode(b.data, b.len, NULL, &job, NULL, &err), 0);
    /* explicit_bzero: a plain memset before free() may be optimised away. */
    explicit_bzero(b.data, b.len);
    const msgpack_object *payload = &job->calls[0].args.via.array.ptr[0];
    assert_true(payload->via.str.ptr < b.data || payload->via.str.ptr >= b.data + b.len);
    assert_str_obj(payload, "payload");
    assert_memory_equal(job->calls[0].args.via.array.ptr[1].via.bin.ptr, "xyz", 3);
    assert_str_obj(&job->calls[0].kwargs.via.map.ptr[0].key, "k");
    assert_str_obj(&job->calls[0].kwargs.via.map.ptr[0].val, "v");
    free(b.data);
    assert_str_obj(payload, "payload");
    assert_string_equal(job->id, "keep");
    rb_job_free(job);
}

static void test_timeout_default_and_cap(void **state)
{
    (void)state;
    const char *fmt = "{v: 1, id: 'j', calls: [{fcn: 'f', source: 's'}], timeout_ms: %s}";
    char text[256];
    struct {
        const char *given;
        int64_t want;
    } cases[] = {
        {"nil", RB_DEFAULT_TIMEOUT_MS},
        {"1", 1},
        {"60000", 60000},
        {"60001", RB_DEFAULT_MAX_TIMEOUT_MS},
        {"18446744073709551615", RB_DEFAULT_MAX_TIMEOUT_MS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, fmt, cases[i].given);
        rb_job *job = decode_text(text, NULL);
        assert_int_equal(job->timeout_ms, cases[i].want);
        rb_job_free(job);
    }

    rb_limits lim;
    rb_limits_default(&lim);
    lim.default_timeout_ms = 500;
    lim.max_timeout_ms = 2000;
    rb_job *job = decode_text("{v: 1, id: 'j', calls: [{fcn: 'f', source: 's'}]}", &lim);
    assert_int_equal(job->timeout_ms, 500);
    rb_job_free(job);
    job = decode_text("{v: 1, id: 'j', calls: [{fcn: 'f', source: 's'}], timeout_ms: 3000}", &lim);
    assert_int_equal(job->timeout_ms, 2000);
    rb_job_free(job);
    /* A default above the maximum is capped too. */
    lim.default_timeout_ms = 5000;
    job = decode_text("{v: 1, id: 'j', calls: [{fcn: 'f', source: 's'}]}", &lim);
    assert_int_equal(job->timeout_ms, 2000);
    rb_job_free(job);
}

static void test_seed_range(void **state)
{
    (void)state;
    rb_job *job = decode_text(
        "{v: 1, id: 'j', calls: [{fcn: 'f', source: 's'}], seed: 9223372036854775807}", NULL);
    assert_true(job->has_seed);
    assert_true(job->seed == INT64_MAX);
    rb_job_free(job);
    job = decode_text(
        "{v: 1, id: 'j', calls: [{fcn: 'f', source: 's'}], seed: -9223372036854775808}", NULL);
    assert_true(job->seed == INT64_MIN);
    rb_job_free(job);
    job = decode_text("{v: 1, id: 'j', calls: [{fcn: 'f', source: 's'}], seed: 0}", NULL);
    assert_true(job->has_seed);
    assert_true(job->seed == 0);
    rb_job_free(job);
}

static void test_nil_means_absent(void **state)
{
    (void)state;
    rb_job *job =
        decode_text("{v: 1, id: 'j', timeout_ms: nil, seed: nil, forbidden_modules: nil,"
                    " calls: [{fcn: 'f', file: nil, source: 's', args: nil, kwargs: nil, cwd: nil,"
                    " paths: nil, return_args: nil}]}",
                    NULL);
    assert_int_equal(job->timeout_ms, RB_DEFAULT_TIMEOUT_MS);
    assert_false(job->has_seed);
    assert_int_equal(job->nforbidden, 0);
    const rb_call *c = &job->calls[0];
    assert_null(c->file);
    assert_string_equal(c->source, "s");
    assert_int_equal(c->args.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(c->args.via.array.size, 0);
    assert_int_equal(c->kwargs.type, MSGPACK_OBJECT_NIL);
    assert_null(c->cwd);
    assert_int_equal(c->npaths, 0);
    assert_false(c->return_args);
    rb_job_free(job);
}

static void test_unknown_keys_ignored(void **state)
{
    (void)state;
    rb_job *job =
        decode_text("{v: 1, future: {anything: [1, 2]}, 5: 'int key', id: 'j', b'bin': 1,"
                    " calls: [{fcn: 'f', source: 's', priority: 'high', 0: 0}], empty: [], x: {}}",
                    NULL);
    assert_string_equal(job->id, "j");
    assert_int_equal(job->ncalls, 1);
    rb_job_free(job);
}

static void test_first_duplicate_key_wins(void **state)
{
    (void)state;
    rb_job *job =
        decode_text("{v: 1, id: 'first', id: 'second', calls: [{fcn: 'f', source: 's'}]}", NULL);
    assert_string_equal(job->id, "first");
    rb_job_free(job);
}

static void test_limits_at_their_edges(void **state)
{
    (void)state;
    /* An id of exactly 128 bytes. */
    char text[8192];
    char id[129];
    memset(id, 'i', 128);
    id[128] = '\0';
    snprintf(text, sizeof text, "{v: 1, id: '%s', calls: [{fcn: 'f', source: 's'}]}", id);
    rb_job *job = decode_text(text, NULL);
    assert_string_equal(job->id, id);
    rb_job_free(job);

    /* 64 calls. */
    size_t n = (size_t)snprintf(text, sizeof text, "{v: 1, id: 'j', calls: [");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s{fcn: 'f%d', source: 's'}",
                              i ? ", " : "", i);
    snprintf(text + n, sizeof text - n, "]}");
    job = decode_text(text, NULL);
    assert_int_equal(job->ncalls, 64);
    assert_string_equal(job->calls[63].fcn, "f63");
    rb_job_free(job);

    /* Values nested to exactly 32 levels: body 1, calls 2, call 3, args 4,
     * then 28 more arrays. */
    n = (size_t)snprintf(text, sizeof text,
                         "{v: 1, id: 'j', calls: [{fcn: 'f', source: 's', "
                         "args: ");
    for (int i = 0; i < 29; i++)
        text[n++] = '[';
    for (int i = 0; i < 29; i++)
        text[n++] = ']';
    snprintf(text + n, sizeof text - n, "}]}");
    job = decode_text(text, NULL);
    rb_job_free(job);

    /* A body exactly at a custom size limit. */
    mpbuf b = mp("{v: 1, id: 'j', calls: [{fcn: 'f', source: 's'}]}");
    rb_limits lim;
    rb_limits_default(&lim);
    lim.max_job_bytes = b.len;
    rb_err err = {""};
    assert_int_equal(rb_job_decode(b.data, b.len, &lim, &job, NULL, &err), 0);
    rb_job_free(job);
    free(b.data);
}

static void test_limits_default_values(void **state)
{
    (void)state;
    rb_limits lim;
    memset(&lim, 0xff, sizeof lim);
    rb_limits_default(&lim);
    assert_int_equal(lim.max_job_bytes, 8u << 20);
    assert_int_equal(lim.max_calls, 64);
    assert_int_equal(lim.default_timeout_ms, 10000);
    assert_int_equal(lim.max_timeout_ms, 60000);
}

static void test_map_get(void **state)
{
    (void)state;
    mpbuf b = mp("{a: 1, ab: 2, 3: 4, b'c': 5, c: 6}");
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, b.data, b.len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(rb_map_get(&u.data, "a")->via.u64, 1);
    assert_int_equal(rb_map_get(&u.data, "ab")->via.u64, 2);
    /* A bin key is not a str key. */
    assert_int_equal(rb_map_get(&u.data, "c")->via.u64, 6);
    assert_null(rb_map_get(&u.data, "abc"));
    assert_null(rb_map_get(&u.data, ""));
    assert_null(rb_map_get(&u.data.via.map.ptr[0].val, "a"));
    assert_null(rb_map_get(NULL, "a"));
    msgpack_unpacked_destroy(&u);
    free(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_job_defaults),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_every_value_type_in_args),
        cmocka_unit_test(test_job_outlives_body),
        cmocka_unit_test(test_timeout_default_and_cap),
        cmocka_unit_test(test_seed_range),
        cmocka_unit_test(test_nil_means_absent),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_first_duplicate_key_wins),
        cmocka_unit_test(test_limits_at_their_edges),
        cmocka_unit_test(test_limits_default_values),
        cmocka_unit_test(test_map_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
