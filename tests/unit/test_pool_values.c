/* The pool runs calls in a real forked interpreter: values of every type
 * cross both ways, return_args, missing functions, exceptions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static char *root;
static rb_pool *pool;

static int setup(void **state)
{
    (void)state;
    root = harness_code_root();
    harness_write(
        root, "echo.py",
        "def echo(*args, **kwargs):\n"
        "    return [list(args), kwargs]\n"
        "def add(a, b):\n"
        "    return a + b\n"
        "def mutate(data):\n"
        "    data['params'] = {'x': 3}\n"
        "    data['list'].append(4)\n"
        "def boom():\n"
        "    def inner():\n"
        "        raise ValueError('no good')\n"
        "    inner()\n"
        "def np_values():\n"
        "    import numpy as np\n"
        "    return [np.int64(7), np.float32(0.5), np.arange(4).reshape(2, 2), np.bool_(True)]\n"
        "def other_types():\n"
        "    return [(1, 2), bytearray(b'ab'), {1: 'int key', None: 'nil', b'k': 1.5}]\n"
        "def bad_type():\n"
        "    return object()\n"
        "def too_big():\n"
        "    return 2 ** 70\n"
        "def deep():\n"
        "    v = 1\n"
        "    for _ in range(40):\n"
        "        v = [v]\n"
        "    return v\n");
    pool = harness_pool("internal", 1, root, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rb_pool_free(pool);
    harness_rmtree(root);
    free(root);
    return 0;
}

static void test_every_value_type_round_trips(void **state)
{
    (void)state;
    /* Built with the packer: JSON has no bin type. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    rb_pack_key(&pk, "v");
    msgpack_pack_int(&pk, 1);
    rb_pack_key(&pk, "id");
    rb_pack_cstr(&pk, "values");
    rb_pack_key(&pk, "calls");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 3);
    rb_pack_key(&pk, "file");
    rb_pack_cstr(&pk, "echo.py");
    rb_pack_key(&pk, "fcn");
    rb_pack_cstr(&pk, "echo");
    rb_pack_key(&pk, "args");
    msgpack_pack_array(&pk, 10);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_int64(&pk, -5);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_double(&pk, 2.5);
    rb_pack_cstr(&pk, "h\xc3\xa9llo");
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "\x00\x01\x02", 3);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_map(&pk, 2);
    rb_pack_cstr(&pk, "k");
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 9);
    rb_pack_cstr(&pk, "int key");
    msgpack_pack_int64(&pk, INT64_MIN);

    msgpack_unpacked res;
    assert_true(harness_run_body(pool, sb.data, sb.size, &res, 10000));
    msgpack_sbuffer_destroy(&sb);
    const msgpack_object *r = &res.data;
    assert_string_equal(harness_sget(r, "status"), "ok");
    assert_string_equal(harness_sget(r, "id"), "values");
    const msgpack_object *args = harness_get(r, "results.0.val.0");
    assert_non_null(args);
    assert_int_equal(args->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(args->via.array.size, 10);
    const msgpack_object *a = args->via.array.ptr;
    assert_int_equal(a[0].type, MSGPACK_OBJECT_NIL);
    assert_int_equal(a[1].type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(a[1].via.boolean);
    assert_int_equal(a[2].via.i64, -5);
    assert_true(a[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[3].via.u64 == UINT64_MAX);
    assert_true(a[4].type == MSGPACK_OBJECT_FLOAT64 && a[4].via.f64 == 2.5);
    assert_string_equal(harness_str(&a[5]), "h\xc3\xa9llo");
    assert_int_equal(a[6].type, MSGPACK_OBJECT_BIN);
    assert_memory_equal(a[6].via.bin.ptr, "\x00\x01\x02", 3);
    assert_int_equal(a[7].via.array.size, 2);
    assert_int_equal(a[8].type, MSGPACK_OBJECT_MAP);
    assert_int_equal(a[8].via.map.ptr[1].key.via.u64, 9);
    assert_int_equal(a[9].via.i64, INT64_MIN);
    msgpack_unpacked_destroy(&res);
}

static void test_kwargs_and_several_calls(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(
        pool,
        "{\"v\":1,\"id\":\"k\",\"calls\":["
        "{\"file\":\"echo.py\",\"fcn\":\"add\",\"args\":[2,3]},"
        "{\"file\":\"echo.py\",\"fcn\":\"add\",\"args\":[\"a\"],\"kwargs\":{\"b\":\"b\"}}]}",
        &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_int_equal(harness_get(&res.data, "results.0.val")->via.i64, 5);
    assert_string_equal(harness_sget(&res.data, "results.1.val"), "ab");
    assert_true(harness_get(&res.data, "results.1.present")->via.boolean);
    msgpack_unpacked_destroy(&res);
}

static void test_return_args_carries_mutations(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"m\",\"calls\":[{\"file\":\"echo.py\","
                                 "\"fcn\":\"mutate\",\"args\":[{\"list\":[1]}],"
                                 "\"return_args\":true}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_int_equal(harness_get(&res.data, "results.0.val")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(harness_get(&res.data, "results.0.args.0.params.x")->via.i64, 3);
    assert_int_equal(harness_get(&res.data, "results.0.args.0.list")->via.array.size, 2);
    msgpack_unpacked_destroy(&res);
}

static void test_missing_function_goes_on(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"x\",\"calls\":["
                                 "{\"file\":\"echo.py\",\"fcn\":\"nope\"},"
                                 "{\"file\":\"echo.py\",\"fcn\":\"add\",\"args\":[1,1]}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_false(harness_get(&res.data, "results.0.present")->via.boolean);
    assert_int_equal(harness_get(&res.data, "results.1.val")->via.i64, 2);
    msgpack_unpacked_destroy(&res);
}

static void test_exception_stops_the_job_with_traceback(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"e\",\"calls\":["
                                 "{\"file\":\"echo.py\",\"fcn\":\"boom\"},"
                                 "{\"file\":\"echo.py\",\"fcn\":\"add\",\"args\":[1,1]}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "error");
    assert_int_equal(harness_get(&res.data, "results")->via.array.size, 1);
    assert_string_equal(harness_sget(&res.data, "results.0.error.type"), "ValueError");
    assert_string_equal(harness_sget(&res.data, "results.0.error.message"), "no good");
    const char *tb = harness_sget(&res.data, "results.0.error.traceback");
    assert_non_null(strstr(tb, "in inner"));
    assert_non_null(strstr(tb, "echo.py"));
    assert_null(strstr(tb, "rebound-runner"));
    msgpack_unpacked_destroy(&res);
}

static void test_numpy_and_other_outbound_types(void **state)
{
    (void)state;
    if (harness_lacks_module(pool, root, "numpy")) skip();
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"n\",\"calls\":["
                                 "{\"file\":\"echo.py\",\"fcn\":\"np_values\"},"
                                 "{\"file\":\"echo.py\",\"fcn\":\"other_types\"}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_int_equal(harness_get(&res.data, "results.0.val.0")->via.i64, 7);
    assert_true(harness_get(&res.data, "results.0.val.1")->via.f64 == 0.5);
    assert_int_equal(harness_get(&res.data, "results.0.val.2.1.1")->via.i64, 3);
    assert_true(harness_get(&res.data, "results.0.val.3")->via.boolean);
    assert_int_equal(harness_get(&res.data, "results.1.val.0")->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(harness_get(&res.data, "results.1.val.1")->type, MSGPACK_OBJECT_BIN);
    assert_int_equal(harness_get(&res.data, "results.1.val.2")->via.map.size, 3);
    msgpack_unpacked_destroy(&res);
}

static void expect_call_error(const char *fcn, const char *type, const char *needle)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"v\":1,\"id\":\"t\",\"calls\":[{\"file\":\"echo.py\",\"fcn\":\"%s\"}]}", fcn);
    msgpack_unpacked res;
    assert_true(harness_run_json(pool, json, &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "error");
    assert_string_equal(harness_sget(&res.data, "results.0.error.type"), type);
    assert_non_null(strstr(harness_sget(&res.data, "results.0.error.message"), needle));
    msgpack_unpacked_destroy(&res);
}

static void test_unconvertible_values_fail_the_call(void **state)
{
    (void)state;
    expect_call_error("bad_type", "TypeError", "object");
    expect_call_error("too_big", "OverflowError", "int");
    expect_call_error("deep", "ValueError", "deeper than 32");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_value_type_round_trips),
        cmocka_unit_test(test_kwargs_and_several_calls),
        cmocka_unit_test(test_return_args_carries_mutations),
        cmocka_unit_test(test_missing_function_goes_on),
        cmocka_unit_test(test_exception_stops_the_job_with_traceback),
        cmocka_unit_test(test_numpy_and_other_outbound_types),
        cmocka_unit_test(test_unconvertible_values_fail_the_call),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
