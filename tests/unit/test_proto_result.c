/*
 * test_proto_result.c - result messages and call results: their keys,
 * every value type carried through from a decoded job, the size cap, and
 * text that is not UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto_text.h"
#include "rebound_proto.h"

typedef struct decoded {
    msgpack_unpacked u;
    const msgpack_object *root;
} decoded;

/* Unpack exactly one object filling buf[0..len), after the pre-check. */
static void decode(decoded *d, const char *buf, size_t len)
{
    rb_err err = {""};
    if (rb_msgpack_check(buf, len, RB_MAX_DEPTH, &err) != 0)
        fail_msg("packed output fails the check: %s", err.msg);
    msgpack_unpacked_init(&d->u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&d->u, buf, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    d->root = &d->u.data;
    assert_int_equal(d->root->type, MSGPACK_OBJECT_MAP);
}

static const msgpack_object *key(const decoded *d, const char *k)
{
    const msgpack_object *o = rb_map_get(d->root, k);
    if (!o) fail_msg("key %s missing", k);
    return o;
}

static void assert_str(const msgpack_object *o, const char *s)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(s));
    assert_memory_equal(o->via.str.ptr, s, strlen(s));
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(rb_status_name(RB_STATUS_OK), "ok");
    assert_string_equal(rb_status_name(RB_STATUS_ERROR), "error");
    assert_string_equal(rb_status_name(RB_STATUS_TIMEOUT), "timeout");
    assert_string_equal(rb_status_name(RB_STATUS_CRASHED), "crashed");
    assert_string_equal(rb_status_name(RB_STATUS_REJECTED), "rejected");
    assert_string_equal(rb_status_name(RB_STATUS_COUNT), "unknown");
    assert_string_equal(rb_status_name((rb_status)-1), "unknown");
}

static void test_ok_result_keys(void **state)
{
    (void)state;
    msgpack_sbuffer calls;
    msgpack_sbuffer_init(&calls);
    rb_call_result cr = {
        .present = true, .val = "\x2a", .val_len = 1, .output = "hi\n", .output_len = 3, .ms = 1.5};
    assert_int_equal(rb_call_result_pack(&cr, RB_DEFAULT_MAX_RESULT_BYTES, &calls), 0);
    cr.val = NULL;
    cr.present = false;
    assert_int_equal(rb_call_result_pack(&cr, RB_DEFAULT_MAX_RESULT_BYTES, &calls), 0);

    rb_result r = {.id = "job-7",
                   .status = RB_STATUS_OK,
                   .worker = "w1",
                   .ms = 12.25,
                   .call_results = calls.data,
                   .call_results_len = calls.size,
                   .ncalls = 2};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(rb_result_pack(&r, &sb), 0);
    decoded d;
    decode(&d, sb.data, sb.size);
    assert_int_equal(d.root->via.map.size, 6);
    assert_int_equal(key(&d, "v")->via.u64, 1);
    assert_str(key(&d, "id"), "job-7");
    assert_str(key(&d, "status"), "ok");
    assert_str(key(&d, "worker"), "w1");
    assert_int_equal(key(&d, "ms")->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(key(&d, "ms")->via.f64 == 12.25);
    assert_null(rb_map_get(d.root, "error"));
    assert_null(rb_map_get(d.root, "redelivered"));
    const msgpack_object *res = key(&d, "results");
    assert_int_equal(res->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(res->via.array.size, 2);
    assert_true(rb_map_get(&res->via.array.ptr[0], "present")->via.boolean);
    assert_int_equal(rb_map_get(&res->via.array.ptr[0], "val")->via.u64, 42);
    assert_false(rb_map_get(&res->via.array.ptr[1], "present")->via.boolean);
    assert_int_equal(rb_map_get(&res->via.array.ptr[1], "val")->type, MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&d.u);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&calls);
}

static void test_error_redelivered_nil_id(void **state)
{
    (void)state;
    rb_result r = {.id = NULL,
                   .status = RB_STATUS_TIMEOUT,
                   .error_type = "TimeoutError",
                   .error_message = "job exceeded 100 ms",
                   .worker = "w2",
                   .redelivered = true};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(rb_result_pack(&r, &sb), 0);
    decoded d;
    decode(&d, sb.data, sb.size);
    assert_int_equal(d.root->via.map.size, 8);
    assert_int_equal(key(&d, "id")->type, MSGPACK_OBJECT_NIL);
    assert_str(key(&d, "status"), "timeout");
    assert_int_equal(key(&d, "results")->via.array.size, 0);
    const msgpack_object *e = key(&d, "error");
    assert_int_equal(e->via.map.size, 2);
    assert_str(rb_map_get(e, "type"), "TimeoutError");
    assert_str(rb_map_get(e, "message"), "job exceeded 100 ms");
    assert_int_equal(key(&d, "redelivered")->type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(key(&d, "redelivered")->via.boolean);
    msgpack_unpacked_destroy(&d.u);
    msgpack_sbuffer_destroy(&sb);
}

static void test_rejected_result(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    /* Results are appended: what the buffer held stays in front. */
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    assert_int_equal(rb_result_pack_rejected("j9", "w3", "calls[0].fcn: required", &sb), 0);
    assert_int_equal((unsigned char)sb.data[0], 0xc0);
    decoded d;
    decode(&d, sb.data + 1, sb.size - 1);
    assert_str(key(&d, "id"), "j9");
    assert_str(key(&d, "status"), "rejected");
    assert_str(key(&d, "worker"), "w3");
    assert_int_equal(key(&d, "results")->via.array.size, 0);
    assert_str(rb_map_get(key(&d, "error"), "type"), "InvalidJob");
    assert_str(rb_map_get(key(&d, "error"), "message"), "calls[0].fcn: required");
    msgpack_unpacked_destroy(&d.u);
    msgpack_sbuffer_clear(&sb);

    assert_int_equal(rb_result_pack_rejected(NULL, "w3", "body is not a map", &sb), 0);
    decode(&d, sb.data, sb.size);
    assert_int_equal(key(&d, "id")->type, MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&d.u);
    msgpack_sbuffer_destroy(&sb);
}

static void pack_obj(msgpack_sbuffer *sb, const msgpack_object *o)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    assert_int_equal(msgpack_pack_object(&pk, *o), 0);
}

/* Each value a job can carry comes back unchanged as a call's val, and the
 * whole args array as its args. */
static void test_every_value_type_round_trip(void **state)
{
    (void)state;
    mpbuf body = mp("{v: 1, id: 'rt', calls: [{fcn: 'f', source: 's', return_args: true, args: ["
                    " nil, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295,"
                    " 4294967296, 18446744073709551615, -1, -32, -33, -128, -129, -32768, -32769,"
                    " -2147483648, -2147483649, -9223372036854775808, 0.0, -1.5, 1e300, 0.25f,"
                    " '', 'x', 'h\\xc3\\xa9llo \\xf0\\x9f\\x99\\x82', b'', b'\\x00\\xff',"
                    " [], [1, [2, [3, []]]], {}, {s: 1, 7: 'i', -3: 3, b'bk': [4], true: nil,"
                    " nil: {n: 1}, 2.5: 7}]}]}");
    rb_job *job = NULL;
    rb_err err = {""};
    assert_int_equal(rb_job_decode(body.data, body.len, NULL, &job, NULL, &err), 0);
    free(body.data);
    const msgpack_object *args = &job->calls[0].args;
    assert_int_equal(args->via.array.size, 37);

    msgpack_sbuffer packed_args;
    msgpack_sbuffer_init(&packed_args);
    pack_obj(&packed_args, args);

    for (uint32_t i = 0; i < args->via.array.size; i++) {
        const msgpack_object *want = &args->via.array.ptr[i];
        msgpack_sbuffer val, calls, msg;
        msgpack_sbuffer_init(&val);
        msgpack_sbuffer_init(&calls);
        msgpack_sbuffer_init(&msg);
        pack_obj(&val, want);
        rb_call_result cr = {.present = true,
                             .val = val.data,
                             .val_len = val.size,
                             .args = packed_args.data,
                             .args_len = packed_args.size,
                             .output = "",
                             .ms = 0.5};
        assert_int_equal(rb_call_result_pack(&cr, RB_DEFAULT_MAX_RESULT_BYTES, &calls), 0);
        rb_result r = {.id = job->id,
                       .status = RB_STATUS_OK,
                       .worker = "w",
                       .call_results = calls.data,
                       .call_results_len = calls.size,
                       .ncalls = 1};
        assert_int_equal(rb_result_pack(&r, &msg), 0);

        decoded d;
        decode(&d, msg.data, msg.size);
        const msgpack_object *c0 = &key(&d, "results")->via.array.ptr[0];
        const msgpack_object *got = rb_map_get(c0, "val");
        assert_non_null(got);
        if (!msgpack_object_equal(*got, *want)) fail_msg("value %u changed on the way through", i);
        assert_int_equal(got->type, want->type);
        assert_true(msgpack_object_equal(*rb_map_get(c0, "args"), *args));
        msgpack_unpacked_destroy(&d.u);
        msgpack_sbuffer_destroy(&val);
        msgpack_sbuffer_destroy(&calls);
        msgpack_sbuffer_destroy(&msg);
    }
    msgpack_sbuffer_destroy(&packed_args);
    rb_job_free(job);
}

static void test_call_result_keys(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    rb_call_result cr = {.present = false, .output = "out", .output_len = 3, .ms = 2.0};
    assert_int_equal(rb_call_result_pack(&cr, 0, &sb), 0);
    decoded d;
    decode(&d, sb.data, sb.size);
    assert_int_equal(d.root->via.map.size, 4);
    assert_false(key(&d, "present")->via.boolean);
    assert_int_equal(key(&d, "val")->type, MSGPACK_OBJECT_NIL);
    assert_str(key(&d, "output"), "out");
    assert_true(key(&d, "ms")->via.f64 == 2.0);
    assert_null(rb_map_get(d.root, "args"));
    assert_null(rb_map_get(d.root, "truncated"));
    assert_null(rb_map_get(d.root, "error"));
    msgpack_unpacked_destroy(&d.u);
    msgpack_sbuffer_clear(&sb);

    cr = (rb_call_result){.present = true,
                          .val = "\x90",
                          .val_len = 1,
                          .args = "\x91\x01",
                          .args_len = 2,
                          .output = "partial",
                          .output_len = 7,
                          .truncated = true,
                          .error_type = "KeyError",
                          .error_message = "'k'",
                          .error_traceback = "Traceback (most recent call last):\n"};
    assert_int_equal(rb_call_result_pack(&cr, 0, &sb), 0);
    decode(&d, sb.data, sb.size);
    assert_int_equal(d.root->via.map.size, 7);
    assert_int_equal(key(&d, "val")->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(key(&d, "args")->via.array.ptr[0].via.u64, 1);
    assert_true(key(&d, "truncated")->via.boolean);
    const msgpack_object *e = key(&d, "error");
    assert_int_equal(e->via.map.size, 3);
    assert_str(rb_map_get(e, "type"), "KeyError");
    assert_str(rb_map_get(e, "message"), "'k'");
    assert_str(rb_map_get(e, "traceback"), "Traceback (most recent call last):\n");
    msgpack_unpacked_destroy(&d.u);

    /* No output at all packs as an empty string. */
    msgpack_sbuffer_clear(&sb);
    cr = (rb_call_result){.present = true};
    assert_int_equal(rb_call_result_pack(&cr, 0, &sb), 0);
    decode(&d, sb.data, sb.size);
    assert_str(key(&d, "output"), "");
    msgpack_unpacked_destroy(&d.u);
    msgpack_sbuffer_destroy(&sb);
}

/* The size a call result packs to with no limit. */
static size_t full_size(const rb_call_result *cr)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(rb_call_result_pack(cr, 0, &sb), 0);
    size_t n = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return n;
}

static void test_too_large_result(void **state)
{
    (void)state;
    size_t vlen = 5000;
    char *val = malloc(vlen);
    val[0] = (char)0xda; /* str16 of 4997 bytes */
    val[1] = (char)((vlen - 3) >> 8);
    val[2] = (char)((vlen - 3) & 0xff);
    memset(val + 3, 'v', vlen - 3);
    rb_call_result cr = {.present = true,
                         .val = val,
                         .val_len = vlen,
                         .args = val,
                         .args_len = vlen,
                         .output = "printed\n",
                         .output_len = 8,
                         .ms = 3.0};
    size_t full = full_size(&cr);

    /* Exactly at the limit: kept. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(rb_call_result_pack(&cr, full, &sb), 0);
    assert_int_equal(sb.size, full);
    msgpack_sbuffer_clear(&sb);

    /* One byte over: val and args dropped, the error says why. */
    assert_int_equal(rb_call_result_pack(&cr, full - 1, &sb), 0);
    assert_true(sb.size <= full - 1);
    decoded d;
    decode(&d, sb.data, sb.size);
    assert_true(key(&d, "present")->via.boolean);
    assert_int_equal(key(&d, "val")->type, MSGPACK_OBJECT_NIL);
    assert_null(rb_map_get(d.root, "args"));
    assert_str(key(&d, "output"), "printed\n");
    assert_null(rb_map_get(d.root, "truncated"));
    const msgpack_object *e = key(&d, "error");
    char want[128];
    snprintf(want, sizeof want, "result too large: %zu bytes over the %zu-byte limit", full,
             full - 1);
    assert_str(rb_map_get(e, "type"), "ValueError");
    assert_str(rb_map_get(e, "message"), want);
    assert_str(rb_map_get(e, "traceback"), "");
    msgpack_unpacked_destroy(&d.u);

    /* The call's own error is replaced too. */
    msgpack_sbuffer_clear(&sb);
    cr.error_type = "RuntimeError";
    cr.error_message = "boom";
    cr.error_traceback = "tb";
    assert_int_equal(rb_call_result_pack(&cr, 1000, &sb), 0);
    decode(&d, sb.data, sb.size);
    assert_str(rb_map_get(key(&d, "error"), "type"), "ValueError");
    msgpack_unpacked_destroy(&d.u);
    msgpack_sbuffer_destroy(&sb);
    free(val);
}

static void test_too_large_output_is_cut(void **state)
{
    (void)state;
    /* 3000 x "é" (2 bytes each): any cut must fall between characters. */
    size_t n = 6000;
    char *out = malloc(n);
    for (size_t i = 0; i < n; i += 2)
        memcpy(out + i, "\xc3\xa9", 2);
    rb_call_result cr = {
        .present = true, .val = "\x01", .val_len = 1, .output = out, .output_len = n};
    for (size_t max = 200; max <= 1000; max += 97) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        assert_int_equal(rb_call_result_pack(&cr, max, &sb), 0);
        assert_true(sb.size <= max);
        decoded d;
        decode(&d, sb.data, sb.size);
        const msgpack_object *o = key(&d, "output");
        assert_true(o->via.str.size > 0);
        assert_int_equal(o->via.str.size % 2, 0);
        assert_memory_equal(o->via.str.ptr, out, o->via.str.size);
        assert_true(key(&d, "truncated")->via.boolean);
        assert_str(rb_map_get(key(&d, "error"), "type"), "ValueError");
        msgpack_unpacked_destroy(&d.u);
        msgpack_sbuffer_destroy(&sb);
    }
    free(out);
}

static void test_text_not_utf8_is_replaced(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    rb_call_result cr = {.present = true,
                         .output = "a\xff"
                                   "b\xe2\x82",
                         .output_len = 5,
                         .error_type = "E\xc3",
                         .error_message = "m\x80",
                         .error_traceback = "ok \xe2\x82\xac"};
    assert_int_equal(rb_call_result_pack(&cr, 0, &sb), 0);
    decoded d;
    decode(&d, sb.data, sb.size);
    assert_str(key(&d, "output"), "a\xef\xbf\xbd"
                                  "b\xef\xbf\xbd\xef\xbf\xbd");
    const msgpack_object *e = key(&d, "error");
    assert_str(rb_map_get(e, "type"), "E\xef\xbf\xbd");
    assert_str(rb_map_get(e, "message"), "m\xef\xbf\xbd");
    assert_str(rb_map_get(e, "traceback"), "ok \xe2\x82\xac");
    msgpack_unpacked_destroy(&d.u);
    msgpack_sbuffer_clear(&sb);

    /* An error line cut inside a character (as rb_err may cut one). */
    assert_int_equal(rb_result_pack_rejected("i", "w", "calls[0].kwargs: \xc3", &sb), 0);
    decode(&d, sb.data, sb.size);
    assert_str(rb_map_get(key(&d, "error"), "message"), "calls[0].kwargs: \xef\xbf\xbd");
    msgpack_unpacked_destroy(&d.u);
    msgpack_sbuffer_destroy(&sb);
}

static void test_pack_helpers(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(rb_pack_cstr(&pk, NULL), 0);
    assert_int_equal(rb_pack_cstr(&pk, "abc"), 0);
    assert_int_equal(rb_pack_key(&pk, "k"), 0);
    assert_int_equal(sb.size, 1 + 4 + 2);
    assert_memory_equal(sb.data,
                        "\xc0\xa3"
                        "abc\xa1k",
                        7);
    msgpack_sbuffer_destroy(&sb);
}

static void test_err_set(void **state)
{
    (void)state;
    rb_err err;
    assert_int_equal(rb_err_set(&err, "%s: %d", "x", 5), -1);
    assert_string_equal(err.msg, "x: 5");
    assert_int_equal(rb_err_set(NULL, "ignored"), -1);
    /* One line, however long. */
    char big[1024];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    rb_err_set(&err, "a\nb\r%s", big);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
    assert_null(strchr(err.msg, '\n'));
    assert_null(strchr(err.msg, '\r'));
    assert_memory_equal(err.msg, "a b z", 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_ok_result_keys),
        cmocka_unit_test(test_error_redelivered_nil_id),
        cmocka_unit_test(test_rejected_result),
        cmocka_unit_test(test_every_value_type_round_trip),
        cmocka_unit_test(test_call_result_keys),
        cmocka_unit_test(test_too_large_result),
        cmocka_unit_test(test_too_large_output_is_cut),
        cmocka_unit_test(test_text_not_utf8_is_replaced),
        cmocka_unit_test(test_pack_helpers),
        cmocka_unit_test(test_err_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
