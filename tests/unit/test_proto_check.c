/*
 * test_proto_check.c - rb_msgpack_check, the structural pre-check that
 * stands between untrusted bytes and msgpack-c: allocation bombs, nesting,
 * ext types, truncation, trailing bytes, and agreement with msgpack-c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto_text.h"
#include "rebound_proto.h"

/* ---- measuring allocations (AddressSanitizer builds only) ----------------- */

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ALLOC_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ALLOC_HOOKS 1
#endif
#endif

#ifdef HAVE_ALLOC_HOOKS
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static volatile int measuring;
static volatile size_t largest_alloc;

static void on_malloc(const volatile void *p, size_t size)
{
    (void)p;
    if (measuring && size > largest_alloc) largest_alloc = size;
}

static void on_free(const volatile void *p)
{
    (void)p;
}
#endif

static int setup_hooks(void **state)
{
    (void)state;
#ifdef HAVE_ALLOC_HOOKS
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
#endif
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

static void expect_ok(const mpbuf *b)
{
    rb_err err = {""};
    int rc = rb_msgpack_check(b->data, b->len, RB_MAX_DEPTH, &err);
    if (rc != 0) fail_msg("rejected: %s", err.msg);
}

static void expect_err(const mpbuf *b, const char *message)
{
    rb_err err = {""};
    assert_int_equal(rb_msgpack_check(b->data, b->len, RB_MAX_DEPTH, &err), -1);
    assert_string_equal(err.msg, message);
}

static void hex_ok(const char *hex)
{
    mpbuf b = hexbytes(hex);
    expect_ok(&b);
    free(b.data);
}

static void hex_err(const char *hex, const char *message)
{
    mpbuf b = hexbytes(hex);
    expect_err(&b, message);
    free(b.data);
}

/* n repetitions of byte c followed by tail bytes. */
static mpbuf repeated(unsigned char c, size_t n, const char *tail, size_t tail_len)
{
    mpbuf b = {malloc(n + tail_len), n + tail_len};
    memset(b.data, c, n);
    memcpy(b.data + n, tail, tail_len);
    return b;
}

/* msgpack-c decodes exactly the whole buffer. */
static void assert_msgpack_c_decodes(const mpbuf *b)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, b->data, b->len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b->len);
    msgpack_unpacked_destroy(&u);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_accepts_every_type(void **state)
{
    (void)state;
    mpbuf b = mp("{a: nil, b: true, c: false, d: 0, e: 127, f: 255, g: 65535, h: 4294967295,"
                 " i: 18446744073709551615, j: -1, k: -33, l: -32769, m: -2147483649,"
                 " n: -9223372036854775808, o: 1.5, p: 2.5f, q: 'str', r: b'\\x00\\xff',"
                 " s: [], t: {}, u: [[1, [2]], {x: {y: 'z'}}], 7: 'int key', true: 1,"
                 " nil: 2, 1.5: 3, b'k': 4}");
    expect_ok(&b);
    assert_msgpack_c_decodes(&b);
    free(b.data);
    /* The wide and non-minimal encodings msgpack-c would never produce. */
    hex_ok("d9 01 61");
    hex_ok("da 00 01 61");
    hex_ok("db 00 00 00 01 61");
    hex_ok("c4 01 00");
    hex_ok("c5 00 01 00");
    hex_ok("c6 00 00 00 01 00");
    hex_ok("dc 00 01 c0");
    hex_ok("dd 00 00 00 01 c0");
    hex_ok("de 00 01 c0 c0");
    hex_ok("df 00 00 00 01 c0 c0");
    hex_ok("dd 00 00 00 00");
    hex_ok("df 00 00 00 00");
    hex_ok("db 00 00 00 00");
    hex_ok("ca 3f c0 00 00");
    hex_ok("cb 3f f8 00 00 00 00 00 00");
    hex_ok("d3 80 00 00 00 00 00 00 00");
}

static void test_accepts_large_containers(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* array32, map32 and str32 at their smallest. */
    msgpack_pack_array(&pk, 3);
    msgpack_pack_array(&pk, 65536);
    for (int i = 0; i < 65536; i++)
        msgpack_pack_nil(&pk);
    msgpack_pack_map(&pk, 65536);
    for (int i = 0; i < 65536; i++) {
        msgpack_pack_int(&pk, i);
        msgpack_pack_nil(&pk);
    }
    char *s = calloc(1, 70000);
    memset(s, 'x', 70000);
    msgpack_pack_str_with_body(&pk, s, 70000);
    free(s);
    mpbuf b = {sb.data, sb.size};
    expect_ok(&b);
    assert_msgpack_c_decodes(&b);
    msgpack_sbuffer_destroy(&sb);
}

static void test_bombs_rejected(void **state)
{
    (void)state;
    hex_err("dd ff ff ff ff", "truncated array at offset 0");
    hex_err("df ff ff ff ff", "truncated map at offset 0");
    hex_err("db ff ff ff ff", "truncated str at offset 0");
    hex_err("c6 ff ff ff ff", "truncated bin at offset 0");
    hex_err("91 dd ff ff ff ff", "truncated array at offset 1");
    /* Each count fits on its own, but not together with what the outer
     * array still expects. */
    hex_err("92 dd 00 00 00 01 c0", "truncated array at offset 1");
    /* A map entry needs two bytes, not one. */
    hex_err("81 c0", "truncated map at offset 0");
    hex_err("dd 00 00 00 02 c0", "truncated array at offset 0");
}

static void test_bombs_allocate_nothing_large(void **state)
{
    (void)state;
#ifndef HAVE_ALLOC_HOOKS
    fprintf(stderr, "cannot run here: counting allocations needs the sanitizer build's hooks\n");
    skip();
#else
    /* "dd 01 00 00 00" declares 16M elements: msgpack-c alone would
     * allocate 512 MB for it; the others would ask it for ~96 GB. */
    const char *bombs[] = {"dd ff ff ff ff", "df ff ff ff ff", "db ff ff ff ff",
                           "c6 ff ff ff ff", "dd 01 00 00 00", "81 a2 69 64 dd ff ff ff ff"};
    const size_t limit = 1u << 20;

    /* The measurement itself works: a large allocation is seen. */
    largest_alloc = 0;
    measuring = 1;
    void *big = malloc(2 * limit);
    measuring = 0;
    free(big);
    assert_true(largest_alloc >= 2 * limit);

    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        mpbuf b = hexbytes(bombs[i]);
        rb_job *job = NULL;
        char *id = NULL;
        rb_err err = {""};
        largest_alloc = 0;
        measuring = 1;
        int rc = rb_job_decode(b.data, b.len, NULL, &job, &id, &err);
        measuring = 0;
        assert_int_equal(rc, -1);
        assert_null(job);
        assert_true(strncmp(err.msg, "body is not valid msgpack: truncated ", 37) == 0);
        assert_true(largest_alloc < limit);
        free(b.data);
    }

    mpbuf deep = repeated(0x91, 100000, "\xc0", 1);
    rb_job *job = NULL;
    rb_err err = {""};
    largest_alloc = 0;
    measuring = 1;
    int rc = rb_job_decode(deep.data, deep.len, NULL, &job, NULL, &err);
    measuring = 0;
    assert_int_equal(rc, -1);
    assert_string_equal(err.msg, "body is not valid msgpack: nesting deeper than 32");
    assert_true(largest_alloc < limit);
    free(deep.data);
#endif
}

static void test_deep_nesting_rejected(void **state)
{
    (void)state;
    mpbuf deep = repeated(0x91, 100000, "\xc0", 1);
    expect_err(&deep, "nesting deeper than 32");
    free(deep.data);

    /* Truncated as well as deep: depth is what is reported first. */
    deep = repeated(0x91, 100000, "", 0);
    expect_err(&deep, "nesting deeper than 32");
    free(deep.data);

    /* Maps: {'a': {'a': ...}} */
    mpbuf maps = {malloc(3 * 40 + 1), 3 * 40 + 1};
    for (int i = 0; i < 40; i++)
        memcpy(maps.data + 3 * i, "\x81\xa1\x61", 3);
    maps.data[120] = (char)0xc0;
    expect_err(&maps, "nesting deeper than 32");
    free(maps.data);
}

static void test_depth_boundary_matches_msgpack_c(void **state)
{
    (void)state;
    /* 32 containers deep is accepted, and msgpack-c (whose own stack holds
     * 32) decodes it; 33 is refused here before msgpack-c would fail. */
    mpbuf b = repeated(0x91, 32, "\xc0", 1);
    expect_ok(&b);
    assert_msgpack_c_decodes(&b);
    free(b.data);

    b = repeated(0x91, 31, "\x90", 1);
    expect_ok(&b);
    assert_msgpack_c_decodes(&b);
    free(b.data);

    b = repeated(0x91, 33, "\xc0", 1);
    expect_err(&b, "nesting deeper than 32");
    free(b.data);

    /* An empty container still counts as a level. */
    b = repeated(0x91, 32, "\x90", 1);
    expect_err(&b, "nesting deeper than 32");
    free(b.data);

    /* Scalars inside the deepest container are fine. */
    b = repeated(0x91, 31, "\x82\x01\xc0\x02\xc3", 5);
    expect_ok(&b);
    free(b.data);
}

static void test_max_depth_parameter(void **state)
{
    (void)state;
    rb_err err = {""};
    assert_int_equal(rb_msgpack_check("\xc0", 1, 1, &err), 0);
    assert_int_equal(rb_msgpack_check("\x90", 1, 1, &err), 0);
    assert_int_equal(rb_msgpack_check("\x91\x90", 2, 1, &err), -1);
    assert_string_equal(err.msg, "nesting deeper than 1");
    assert_int_equal(rb_msgpack_check("\xc0", 1, 0, &err), -1);
    assert_string_equal(err.msg, "max_depth 0 is outside 1-1024");
}

static void test_ext_rejected(void **state)
{
    (void)state;
    hex_err("d4 01 00", "ext type at offset 0");
    hex_err("d5 01 00 00", "ext type at offset 0");
    hex_err("d6 ff 00 00 00 00", "ext type at offset 0");
    hex_err("d7 01 00 00 00 00 00 00 00 00", "ext type at offset 0");
    hex_err("d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", "ext type at offset 0");
    hex_err("c7 01 05 00", "ext type at offset 0");
    hex_err("c8 00 01 05 00", "ext type at offset 0");
    hex_err("c9 00 00 00 01 05 00", "ext type at offset 0");
    /* {'a': 1, 'b': <timestamp>} */
    hex_err("82 a1 61 01 a1 62 d6 ff 00 00 00 00", "ext type at offset 6");
    hex_err("81 a3 61 62 63 d4 01 00", "ext type at offset 5");
    hex_err("93 01 02 c7 00 01", "ext type at offset 3");
}

static void test_truncation_messages(void **state)
{
    (void)state;
    hex_err("81 a1 76 a5 61", "truncated str at offset 3");
    hex_err("a5 61 62", "truncated str at offset 0");
    hex_err("d9", "truncated str at offset 0");
    hex_err("da 00", "truncated str at offset 0");
    hex_err("c5 00 05 00", "truncated bin at offset 0");
    hex_err("cd 01", "truncated int at offset 0");
    hex_err("cf 00 00 00", "truncated int at offset 0");
    hex_err("d3 00", "truncated int at offset 0");
    hex_err("cb 00", "truncated float at offset 0");
    hex_err("ca 00 00 00", "truncated float at offset 0");
    hex_err("92 01", "truncated array at offset 0");
    hex_err("dc 00", "truncated array at offset 0");
    hex_err("93 01 cd 00 01", "truncated at offset 5: 1 more object expected");
    hex_err("92 cf 00 00 00 00 00 00 00 01", "truncated at offset 10: 1 more object expected");
    hex_err("94 cf 00 00 00 00 00 00 00 01 c0", "truncated at offset 11: 2 more objects expected");
}

static void test_trailing_and_empty(void **state)
{
    (void)state;
    hex_err("c0 c0 c0 c0 c0", "4 trailing bytes");
    hex_err("c0 c0", "1 trailing byte");
    hex_err("91 c0 00", "1 trailing byte");
    rb_err err = {""};
    assert_int_equal(rb_msgpack_check("", 0, RB_MAX_DEPTH, &err), -1);
    assert_string_equal(err.msg, "empty input");
    assert_int_equal(rb_msgpack_check(NULL, 0, RB_MAX_DEPTH, &err), -1);
    assert_string_equal(err.msg, "empty input");
}

static void test_invalid_byte(void **state)
{
    (void)state;
    hex_err("c1", "invalid type byte 0xc1 at offset 0");
    hex_err("92 01 c1", "invalid type byte 0xc1 at offset 2");
}

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/*
 * Whatever the check accepts, msgpack-c must decode completely, to the last
 * byte. Random short byte strings and random mutations of a valid body.
 */
static void test_agrees_with_msgpack_c(void **state)
{
    (void)state;
    mpbuf base = mp("{v: 1, id: 'job', calls: [{fcn: 'f', source: 'x', args: [1, -2, 3.5,"
                    " 'str', b'bin', [nil, true], {k: false}]}], timeout_ms: 1000}");
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    unsigned char buf[128];
    int accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len;
        if (iter % 2) {
            len = base.len;
            memcpy(buf, base.data, len);
            int flips = 1 + (int)(rng_next(&seed) % 4);
            for (int f = 0; f < flips; f++)
                buf[rng_next(&seed) % len] = (unsigned char)rng_next(&seed);
            if (rng_next(&seed) % 4 == 0) len = rng_next(&seed) % (len + 1);
        } else {
            len = 1 + rng_next(&seed) % 16;
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)rng_next(&seed);
        }
        rb_err err;
        if (rb_msgpack_check(buf, len, RB_MAX_DEPTH, &err) == 0) {
            mpbuf b = {(char *)buf, len};
            assert_msgpack_c_decodes(&b);
            accepted++;
        }
    }
    /* The mutations are not all rejected, or the loop proves nothing. */
    assert_true(accepted > 1000);
    free(base.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_every_type),
        cmocka_unit_test(test_accepts_large_containers),
        cmocka_unit_test(test_bombs_rejected),
        cmocka_unit_test(test_bombs_allocate_nothing_large),
        cmocka_unit_test(test_deep_nesting_rejected),
        cmocka_unit_test(test_depth_boundary_matches_msgpack_c),
        cmocka_unit_test(test_max_depth_parameter),
        cmocka_unit_test(test_ext_rejected),
        cmocka_unit_test(test_truncation_messages),
        cmocka_unit_test(test_trailing_and_empty),
        cmocka_unit_test(test_invalid_byte),
        cmocka_unit_test(test_agrees_with_msgpack_c),
    };
    return cmocka_run_group_tests(tests, setup_hooks, NULL);
}
