/*
 * test_health_url.c - parsing of the Redis URLs accepted by the heartbeat
 * and rebound-status, and the address shown in messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "health_internal.h"
#include "rebound_health.h"

static rb_redis_url parse_ok(const char *url)
{
    rb_redis_url u;
    rb_err err = {{0}};
    int rc = rb_redis_url_parse(url, &u, &err);
    if (rc != 0) fail_msg("%s: unexpected error: %s", url, err.msg);
    return u;
}

/* Parsing fails and the message contains want. */
static void parse_bad(const char *url, const char *want)
{
    rb_redis_url u;
    rb_err err = {{0}};
    assert_int_equal(rb_redis_url_parse(url, &u, &err), -1);
    if (strstr(err.msg, want) == NULL)
        fail_msg("%s: error '%s' does not mention '%s'", url, err.msg, want);
    /* nothing (in particular no password) is left behind */
    assert_string_equal(u.password, "");
    assert_string_equal(u.host, "");
}

static void test_tcp_defaults(void **state)
{
    rb_redis_url u = parse_ok("redis://127.0.0.1");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_string_equal(u.unix_path, "");
}

static void test_tcp_full(void **state)
{
    rb_redis_url u = parse_ok("redis://:s3cret@redis.example:6380/5");
    assert_string_equal(u.host, "redis.example");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 5);
    assert_string_equal(u.password, "s3cret");
}

static void test_tcp_trailing_slash_and_default_user(void **state)
{
    rb_redis_url u = parse_ok("redis://default:pw@localhost:7000/");
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "pw");
}

static void test_scheme_case_insensitive(void **state)
{
    rb_redis_url u = parse_ok("REDIS://h:1/2");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 2);
}

static void test_password_percent_encoded(void **state)
{
    /* '@', ':' and '/' inside a password must be escaped; '@' also works raw
     * because the last '@' ends the user info */
    rb_redis_url u = parse_ok("redis://:p%40ss%3Aw%2Frd@h");
    assert_string_equal(u.password, "p@ss:w/rd");
    u = parse_ok("redis://:a@b@h:6390");
    assert_string_equal(u.password, "a@b");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 6390);
}

static void test_ipv6(void **state)
{
    rb_redis_url u = parse_ok("redis://[::1]:6390/3");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 3);
    char addr[300];
    rb_redis_url_addr(&u, addr, sizeof addr);
    assert_string_equal(addr, "[::1]:6390");
}

static void test_unix(void **state)
{
    rb_redis_url u = parse_ok("unix:///run/redis/redis.sock");
    assert_string_equal(u.unix_path, "/run/redis/redis.sock");
    assert_string_equal(u.host, "");
    assert_int_equal(u.db, 0);
    u = parse_ok("unix://:pw@/tmp/r.sock?db=4");
    assert_string_equal(u.unix_path, "/tmp/r.sock");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 4);
    char addr[300];
    rb_redis_url_addr(&u, addr, sizeof addr);
    assert_string_equal(addr, "unix:/tmp/r.sock");
}

static void test_addr_has_no_password(void **state)
{
    rb_redis_url u = parse_ok("redis://:topsecret@10.0.0.7:6400/1");
    char addr[300];
    rb_redis_url_addr(&u, addr, sizeof addr);
    assert_string_equal(addr, "10.0.0.7:6400");
}

static void test_bad_urls(void **state)
{
    parse_bad("", "empty");
    parse_bad("http://h:1", "scheme");
    parse_bad("127.0.0.1:6379", "scheme");
    parse_bad("rediss://h", "TLS");
    parse_bad("redis://", "host is empty");
    parse_bad("redis://:pw@", "host is empty");
    parse_bad("redis://h:0", "port '0'");
    parse_bad("redis://h:65536", "port '65536'");
    parse_bad("redis://h:12ab", "port '12ab'");
    parse_bad("redis://h:", "port ''");
    parse_bad("redis://h/x", "db 'x'");
    parse_bad("redis://h/-1", "db '-1'");
    parse_bad("redis://h/1?x=1", "unexpected '?x=1'");
    parse_bad("redis://user:pw@h", "'default' user");
    parse_bad("redis://pw@h", "':password@'");
    parse_bad("redis://:p%4@h", "bad %-escape");
    parse_bad("redis://:p%zz@h", "bad %-escape");
    parse_bad("redis://:p%00@h", "NUL");
    parse_bad("redis://[::1:6379", "']'");
    parse_bad("unix://", "absolute socket path");
    parse_bad("unix://relative.sock", "absolute socket path");
    parse_bad("unix:///tmp/r.sock?dbx=1", "'?db=N'");
    parse_bad("unix:///tmp/r.sock?db=", "db ''");
    parse_bad("unix:///tmp/r.sock?db=a", "db 'a'");
}

static void test_error_does_not_echo_password(void **state)
{
    rb_redis_url u;
    rb_err err = {{0}};
    assert_int_equal(rb_redis_url_parse("redis://:hunter2@h:99999", &u, &err), -1);
    assert_null(strstr(err.msg, "hunter2"));
}

static void test_long_host_rejected(void **state)
{
    char url[600] = "redis://";
    memset(url + 8, 'a', 300);
    url[308] = '\0';
    parse_bad(url, "host is longer than");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_defaults),
        cmocka_unit_test(test_tcp_full),
        cmocka_unit_test(test_tcp_trailing_slash_and_default_user),
        cmocka_unit_test(test_scheme_case_insensitive),
        cmocka_unit_test(test_password_percent_encoded),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_addr_has_no_password),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_error_does_not_echo_password),
        cmocka_unit_test(test_long_host_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
