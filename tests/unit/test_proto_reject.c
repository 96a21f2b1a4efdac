/*
 * test_proto_reject.c - every rule by which rb_job_decode rejects a body,
 * with its exact message, and the id handed back for the rejection result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto_text.h"
#include "rebound_proto.h"

#define CALL "{fcn: 'f', source: 'def f(): pass'}"

/* Decode bytes that must be rejected; check the message and the id. */
static void reject_bytes(const void *body, size_t len, const rb_limits *lim, const char *message,
                         const char *want_id)
{
    rb_job *job = (rb_job *)&job; /* anything but NULL: decode must clear it */
    char *id = (char *)&id;
    rb_err err = {""};
    int rc = rb_job_decode(body, len, lim, &job, &id, &err);
    if (rc != -1) fail_msg("accepted, expected \"%s\"", message);
    assert_null(job);
    assert_string_equal(err.msg, message);
    if (want_id) {
        assert_non_null(id);
        assert_string_equal(id, want_id);
    } else {
        assert_null(id);
    }
    free(id);
}

static void reject(const char *text, const char *message, const char *want_id)
{
    mpbuf b = mp(text);
    reject_bytes(b.data, b.len, NULL, message, want_id);
    free(b.data);
}

/* Same, with the id left out of the comparison where it does not matter. */
#define REJECT(text, message) reject(text, message, "a")

static void test_body_shape(void **state)
{
    (void)state;
    reject("[]", "body is not a map", NULL);
    reject("'x'", "body is not a map", NULL);
    reject("nil", "body is not a map", NULL);
    reject("[{v: 1, id: 'a', calls: [" CALL "]}]", "body is not a map", NULL);
}

static void test_version(void **state)
{
    (void)state;
    REJECT("{id: 'a', calls: [" CALL "]}", "v: required");
    REJECT("{v: 2, id: 'a', calls: [" CALL "]}", "v: must be 1");
    REJECT("{v: 0, id: 'a', calls: [" CALL "]}", "v: must be 1");
    REJECT("{v: -1, id: 'a', calls: [" CALL "]}", "v: must be 1");
    REJECT("{v: '1', id: 'a', calls: [" CALL "]}", "v: must be 1");
    REJECT("{v: 1.0, id: 'a', calls: [" CALL "]}", "v: must be 1");
    REJECT("{v: nil, id: 'a', calls: [" CALL "]}", "v: must be 1");
    REJECT("{v: true, id: 'a', calls: [" CALL "]}", "v: must be 1");
}

static void test_id(void **state)
{
    (void)state;
    reject("{v: 1, calls: [" CALL "]}", "id: required", NULL);
    reject("{v: 1, id: nil, calls: [" CALL "]}", "id: required", NULL);
    reject("{v: 1, id: '', calls: [" CALL "]}", "id: must be 1-128 bytes", NULL);
    reject("{v: 1, id: 5, calls: [" CALL "]}", "id: must be a string", NULL);
    reject("{v: 1, id: b'a', calls: [" CALL "]}", "id: must be a string", NULL);
    reject("{v: 1, id: 'a\\0b', calls: [" CALL "]}", "id: contains a NUL byte", NULL);
    reject("{v: 1, id: 'a\\xff', calls: [" CALL "]}", "id: not valid UTF-8", NULL);
    char text[512];
    char id[130];
    memset(id, 'x', 129);
    id[129] = '\0';
    snprintf(text, sizeof text, "{v: 1, id: '%s', calls: [" CALL "]}", id);
    reject(text, "id: must be 1-128 bytes", NULL);
    /* With both v and id wrong, v is reported; an invalid id is never echoed. */
    reject("{v: 2, id: '', calls: [" CALL "]}", "v: must be 1", NULL);
}

static void test_calls(void **state)
{
    (void)state;
    REJECT("{v: 1, id: 'a'}", "calls: required");
    REJECT("{v: 1, id: 'a', calls: nil}", "calls: required");
    REJECT("{v: 1, id: 'a', calls: []}", "calls: must be an array of 1-64 calls");
    REJECT("{v: 1, id: 'a', calls: {}}", "calls: must be an array of 1-64 calls");
    REJECT("{v: 1, id: 'a', calls: " CALL "}", "calls: must be an array of 1-64 calls");
    REJECT("{v: 1, id: 'a', calls: [5]}", "calls[0]: must be a map");
    REJECT("{v: 1, id: 'a', calls: [" CALL ", [" CALL "]]}", "calls[1]: must be a map");

    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "{v: 1, id: 'a', calls: [");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s" CALL, i ? ", " : "");
    snprintf(text + n, sizeof text - n, "]}");
    REJECT(text, "calls: must be an array of 1-64 calls");

    /* The cap is configurable. */
    mpbuf b = mp("{v: 1, id: 'a', calls: [" CALL ", " CALL ", " CALL "]}");
    rb_limits lim;
    rb_limits_default(&lim);
    lim.max_calls = 2;
    reject_bytes(b.data, b.len, &lim, "calls: must be an array of 1-2 calls", "a");
    free(b.data);
}

static void test_fcn(void **state)
{
    (void)state;
    REJECT("{v: 1, id: 'a', calls: [" CALL ", " CALL ", " CALL ", {source: 'x'}]}",
           "calls[3].fcn: required");
    REJECT("{v: 1, id: 'a', calls: [{fcn: nil, source: 'x'}]}", "calls[0].fcn: required");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 5, source: 'x'}]}", "calls[0].fcn: must be a string");
    REJECT("{v: 1, id: 'a', calls: [{fcn: b'f', source: 'x'}]}", "calls[0].fcn: must be a string");
    const char *bad[] = {"''",   "'1abc'", "'a-b'", "'a.b'", "'f\\0'", "'\\xc3\\xa9t\\xc3\\xa9'",
                         "' f'", "'f '",   "'f()'"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{v: 1, id: 'a', calls: [{fcn: %s, source: 'x'}]}", bad[i]);
        REJECT(text, "calls[0].fcn: not a Python identifier");
    }
}

static void test_file_and_source(void **state)
{
    (void)state;
    REJECT("{v: 1, id: 'a', calls: [" CALL ", {fcn: 'f', source: 'x', file: 'f.py'}]}",
           "calls[1]: exactly one of file and source");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f'}]}", "calls[0]: exactly one of file and source");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', file: nil, source: nil}]}",
           "calls[0]: exactly one of file and source");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 5}]}", "calls[0].source: must be a string");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: b'x'}]}",
           "calls[0].source: must be a string");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', file: 5}]}", "calls[0].file: must be a string");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', file: 'a\\0.py'}]}",
           "calls[0].file: contains a NUL byte");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', file: ''}]}", "calls[0].file: must not be empty");

    const char *escapes[] = {"'/etc/x.py'", "'../x.py'", "'a/../../x.py'", "'a/../b.py'",
                             "'..'",        "'a/..'",    "'//x.py'"};
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{v: 1, id: 'a', calls: [" CALL ", " CALL ", {fcn: 'f', file: %s}]}", escapes[i]);
        REJECT(text, "calls[2].file: path escapes the code root");
    }
    const char *not_py[] = {"'x.txt'", "'x'", "'.py'", "'dir/.py'", "'x.py/'", "'x.pyc'"};
    for (size_t i = 0; i < sizeof not_py / sizeof not_py[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{v: 1, id: 'a', calls: [{fcn: 'f', file: %s}]}", not_py[i]);
        REJECT(text, "calls[0].file: must name a .py file");
    }
}

static void test_args_and_kwargs(void **state)
{
    (void)state;
    REJECT("{v: 1, id: 'a', calls: [" CALL ", " CALL ", " CALL ","
           " {fcn: 'f', source: 'x', args: {}}]}",
           "calls[3].args: must be an array");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: 'x'}]}",
           "calls[0].args: must be an array");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', kwargs: []}]}",
           "calls[0].kwargs: must be a map");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', kwargs: {a: 1, 2: 3}}]}",
           "calls[0].kwargs: keys must be strings");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', kwargs: {b'k': 1}}]}",
           "calls[0].kwargs: keys must be strings");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', kwargs: {nil: 1}}]}",
           "calls[0].kwargs: keys must be strings");
}

static void test_cwd_paths_flags(void **state)
{
    (void)state;
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', cwd: '/tmp'}]}",
           "calls[0].cwd: path escapes the code root");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', cwd: 'a/../..'}]}",
           "calls[0].cwd: path escapes the code root");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', cwd: ''}]}",
           "calls[0].cwd: must not be empty");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', cwd: 3}]}",
           "calls[0].cwd: must be a string");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', cwd: 'a\\0'}]}",
           "calls[0].cwd: contains a NUL byte");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', paths: 'lib'}]}",
           "calls[0].paths: must be an array of strings");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', paths: ['lib', 5]}]}",
           "calls[0].paths[1]: must be a string");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', paths: ['lib', '../up']}]}",
           "calls[0].paths[1]: path escapes the code root");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', paths: ['/usr/lib']}]}",
           "calls[0].paths[0]: path escapes the code root");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', paths: ['']}]}",
           "calls[0].paths[0]: must not be empty");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', return_args: 1}]}",
           "calls[0].return_args: must be a boolean");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', return_args: 'yes'}]}",
           "calls[0].return_args: must be a boolean");
}

static void test_timeout_seed_forbidden(void **state)
{
    (void)state;
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x'}], timing: 1}",
           "timing: must be a boolean");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x'}], seed: 'x', timing: 1}",
           "seed: must be an integer in the signed 64-bit range");
    const char *bad_timeouts[] = {"0", "-5", "-9223372036854775808", "1.5", "'100'", "true", "[]"};
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof bad_timeouts[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{v: 1, id: 'a', calls: [" CALL "], timeout_ms: %s}",
                 bad_timeouts[i]);
        REJECT(text, "timeout_ms: must be a positive integer");
    }
    const char *bad_seeds[] = {"'x'", "1.5", "9223372036854775808", "18446744073709551615",
                               "false"};
    for (size_t i = 0; i < sizeof bad_seeds / sizeof bad_seeds[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{v: 1, id: 'a', calls: [" CALL "], seed: %s}", bad_seeds[i]);
        REJECT(text, "seed: must be an integer in the signed 64-bit range");
    }
    REJECT("{v: 1, id: 'a', calls: [" CALL "], forbidden_modules: 'os'}",
           "forbidden_modules: must be an array of strings");
    REJECT("{v: 1, id: 'a', calls: [" CALL "], forbidden_modules: ['os', 5]}",
           "forbidden_modules[1]: must be a string");
    REJECT("{v: 1, id: 'a', calls: [" CALL "], forbidden_modules: ['os', 'a\\0b']}",
           "forbidden_modules[1]: contains a NUL byte");
    const char *bad_modules[] = {"''", "'os..path'", "'.os'", "'os.'", "'1os'", "'o s'"};
    for (size_t i = 0; i < sizeof bad_modules / sizeof bad_modules[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{v: 1, id: 'a', calls: [" CALL "], forbidden_modules: [%s]}",
                 bad_modules[i]);
        REJECT(text, "forbidden_modules[0]: not a module name");
    }
}

static void test_invalid_utf8_anywhere(void **state)
{
    (void)state;
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: ['ok', '\\xff']}]}",
           "calls[0].args[1]: not valid UTF-8");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', kwargs: {name: 'x\\xc3'}}]}",
           "calls[0].kwargs.name: not valid UTF-8");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', kwargs: {'\\xc3\\x28': 1}}]}",
           "calls[0].kwargs: map key is not valid UTF-8");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: [{'\\xff': 1}]}]}",
           "calls[0].args[0]: map key is not valid UTF-8");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: [[[['\\xff']]]]}]}",
           "calls[0].args[0][0][0][0]: not valid UTF-8");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: [{5: '\\xff'}]}]}",
           "calls[0].args[0][5]: not valid UTF-8");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: [{'a b': '\\xff'}]}]}",
           "calls[0].args[0].a b: not valid UTF-8");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: [{'\\n': '\\xff'}]}]}",
           "calls[0].args[0][?]: not valid UTF-8");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: '\\xfe'}]}",
           "calls[0].source: not valid UTF-8");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f\\xff', source: 'x'}]}",
           "calls[0].fcn: not valid UTF-8");
    /* Unknown keys are ignored, but their strings are still checked. */
    REJECT("{v: 1, id: 'a', extra: '\\xff', calls: [" CALL "]}", "extra: not valid UTF-8");
    REJECT("{v: 1, id: 'a', '\\xff': 1, calls: [" CALL "]}", "body: map key is not valid UTF-8");
    /* Overlong, surrogate, above U+10FFFF, lone continuation, cut short. */
    const char *bad[] = {"'\\xc0\\x80'",           "'\\xe0\\x80\\x80'", "'\\xed\\xa0\\x80'",
                         "'\\xf4\\x90\\x80\\x80'", "'\\x80'",           "'\\xe2\\x82'",
                         "'\\xf8\\x88\\x80'"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: [%s]}]}",
                 bad[i]);
        REJECT(text, "calls[0].args[0]: not valid UTF-8");
    }
}

static void test_map_keys(void **state)
{
    (void)state;
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: [{[1]: 2}]}]}",
           "calls[0].args[0]: map keys must not be arrays or maps");
    REJECT("{v: 1, id: 'a', calls: [{fcn: 'f', source: 'x', args: [{{}: 2}]}]}",
           "calls[0].args[0]: map keys must not be arrays or maps");
}

static void test_size_limit(void **state)
{
    (void)state;
    size_t len = (8u << 20) + 1;
    char *big = calloc(1, len);
    reject_bytes(big, len, NULL, "body is 8388609 bytes, over the 8388608-byte limit", NULL);
    free(big);

    mpbuf b = mp("{v: 1, id: 'a', calls: [" CALL "]}");
    rb_limits lim;
    rb_limits_default(&lim);
    lim.max_job_bytes = b.len - 1;
    char message[128];
    snprintf(message, sizeof message, "body is %zu bytes, over the %zu-byte limit", b.len,
             b.len - 1);
    reject_bytes(b.data, b.len, &lim, message, NULL);
    free(b.data);
}

static void test_invalid_msgpack_messages(void **state)
{
    (void)state;
    reject_bytes("", 0, NULL, "body is not valid msgpack: empty input", NULL);
    mpbuf b = hexbytes("81 a1 76 a5 61");
    reject_bytes(b.data, b.len, NULL, "body is not valid msgpack: truncated str at offset 3", NULL);
    free(b.data);
    b = hexbytes("dd ff ff ff ff");
    reject_bytes(b.data, b.len, NULL, "body is not valid msgpack: truncated array at offset 0",
                 NULL);
    free(b.data);
    b = hexbytes("82 a1 76 01 a1 78 d6 ff 00 00 00 00");
    reject_bytes(b.data, b.len, NULL, "body is not valid msgpack: ext type at offset 6", NULL);
    free(b.data);

    /* A valid job followed by four stray bytes. */
    mpbuf job = mp("{v: 1, id: 'a', calls: [" CALL "]}");
    char *padded = malloc(job.len + 4);
    memcpy(padded, job.data, job.len);
    memcpy(padded + job.len, "\xc0\xc0\xc0\xc0", 4);
    reject_bytes(padded, job.len + 4, NULL, "body is not valid msgpack: 4 trailing bytes", NULL);
    free(padded);
    free(job.data);

    /* Values one level too deep: body 1, calls 2, call 3, args 4, +29. */
    char text[512];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "{v: 1, id: 'a', calls: [{fcn: 'f', source: 's', args: ");
    for (int i = 0; i < 30; i++)
        text[n++] = '[';
    for (int i = 0; i < 30; i++)
        text[n++] = ']';
    snprintf(text + n, sizeof text - n, "}]}");
    reject(text, "body is not valid msgpack: nesting deeper than 32", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_shape),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_id),
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_fcn),
        cmocka_unit_test(test_file_and_source),
        cmocka_unit_test(test_args_and_kwargs),
        cmocka_unit_test(test_cwd_paths_flags),
        cmocka_unit_test(test_timeout_seed_forbidden),
        cmocka_unit_test(test_invalid_utf8_anywhere),
        cmocka_unit_test(test_map_keys),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_invalid_msgpack_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
