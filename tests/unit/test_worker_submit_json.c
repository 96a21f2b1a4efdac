/* rebound-submit's JSON <-> msgpack conversion. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_msgpack.h"

/* JSON text -> msgpack -> JSON text (compact, sorted keys). */
static char *round_trip(const char *json_text)
{
    json_error_t jerr;
    json_t *in = json_loads(json_text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!in) fail_msg("bad test JSON %s: %s", json_text, jerr.text);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(rb_json_to_msgpack(in, &pk), 0);
    json_decref(in);

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    json_t *out = rb_msgpack_to_json(&u.data);
    assert_non_null(out);
    char *text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(out);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    return text;
}

static void expect_round_trip(const char *in, const char *want)
{
    char *got = round_trip(in);
    int same = strcmp(got, want) == 0;
    if (!same) print_error("%s -> %s, want %s\n", in, got, want);
    free(got);
    assert_true(same);
}

static void test_json_types(void **state)
{
    (void)state;
    expect_round_trip("{\"v\":1,\"id\":\"x\",\"calls\":[{\"fcn\":\"f\",\"args\":[1,-2,2.5,"
                      "true,false,null,\"s\"]}]}",
                      "{\"v\":1,\"id\":\"x\",\"calls\":[{\"fcn\":\"f\",\"args\":[1,-2,2.5,true,"
                      "false,null,\"s\"]}]}");
    /* Reals print with enough digits to read back the same double. */
    expect_round_trip("[9223372036854775807,-9223372036854775808,0.0,0.5,1e300]",
                      "[9223372036854775807,-9223372036854775808,0.0,0.5,1.0000000000000001e300]");
    expect_round_trip("\"caf\\u00e9 \\u0000 end\"", "\"caf\xc3\xa9 \\u0000 end\"");
    expect_round_trip("{}", "{}");
}

static void test_integers_stay_integers(void **state)
{
    (void)state;
    json_t *j = json_loads("[3, 3.0]", 0, NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(rb_json_to_msgpack(j, &pk), 0);
    json_decref(j);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.via.array.ptr[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(u.data.via.array.ptr[1].type, MSGPACK_OBJECT_FLOAT64);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

/* msgpack built by hand -> compact JSON text. */
static void expect_json(msgpack_sbuffer *sb, const char *want)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb->data, sb->size, NULL), MSGPACK_UNPACK_SUCCESS);
    json_t *j = rb_msgpack_to_json(&u.data);
    assert_non_null(j);
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    int same = strcmp(text, want) == 0;
    if (!same) print_error("got %s, want %s\n", text, want);
    free(text);
    assert_true(same);
    json_decref(j);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_clear(sb);
}

static void test_what_json_cannot_say(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    msgpack_pack_bin_with_body(&pk, "\x00\xffhi", 4);
    expect_json(&sb, "{\"$bin\":\"AP9oaQ==\"}");

    msgpack_pack_ext_with_body(&pk, "ab", 2, 5);
    expect_json(&sb, "{\"$ext\":5,\"$data\":\"YWI=\"}");

    msgpack_pack_array(&pk, 3);
    msgpack_pack_double(&pk, NAN);
    msgpack_pack_double(&pk, INFINITY);
    msgpack_pack_float(&pk, -INFINITY);
    expect_json(&sb, "[\"NaN\",\"Infinity\",\"-Infinity\"]");

    msgpack_pack_uint64(&pk, UINT64_MAX);
    expect_json(&sb, "\"18446744073709551615\"");

    msgpack_pack_map(&pk, 3);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "one", 3);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_false(&pk);
    expect_json(&sb, "{\"1\":\"one\",\"null\":true,\"[2]\":false}");

    /* Invalid UTF-8: each bad byte becomes U+FFFD; good text is kept. */
    msgpack_pack_str_with_body(&pk, "a\xff\xc3\xa9\xc3", 5);
    expect_json(&sb, "\"a\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\"");
    msgpack_sbuffer_destroy(&sb);
}

static void test_base64(void **state)
{
    (void)state;
    /* RFC 4648 test vectors. */
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *b = rb_base64(in[i], strlen(in[i]));
        assert_string_equal(b, out[i]);
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_types),
        cmocka_unit_test(test_integers_stay_integers),
        cmocka_unit_test(test_what_json_cannot_say),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
