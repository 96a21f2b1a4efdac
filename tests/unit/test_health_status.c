/*
 * test_health_status.c - rebound-status's pure parts: the command line,
 * turning Redis replies into rows, rates, exit code, table and JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "status.h"

/* ---- command line ---------------------------------------------------------- */

static int parse(rb_status_opts *o, rb_err *err, const char *env_url, int argc, ...)
{
    char *argv[16] = {"rebound-status"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    memset(err, 0, sizeof *err);
    return rb_status_parse_args(argc, argv, env_url, o, err);
}

static void test_args_defaults(void **state)
{
    rb_status_opts o;
    rb_err err;
    assert_int_equal(parse(&o, &err, NULL, 1), 0);
    assert_string_equal(o.url, "redis://127.0.0.1:6379/0");
    assert_string_equal(o.prefix, "rebound");
    assert_false(o.json);
    assert_true(o.watch_s == 0);
}

static void test_args_env_and_flag(void **state)
{
    rb_status_opts o;
    rb_err err;
    assert_int_equal(parse(&o, &err, "redis://10.1.1.1:7000/2", 1), 0);
    assert_string_equal(o.url, "redis://10.1.1.1:7000/2");
    /* the flag wins over the environment */
    assert_int_equal(parse(&o, &err, "redis://10.1.1.1:7000/2", 3, "--redis-url", "redis://h:1/0"),
                     0);
    assert_string_equal(o.url, "redis://h:1/0");
    assert_int_equal(parse(&o, &err, NULL, 5, "--prefix=staging", "--json", "--watch", "2.5"), 0);
    assert_string_equal(o.prefix, "staging");
    assert_true(o.json);
    assert_true(o.watch_s == 2.5);
}

static void expect_usage_error(const char *env_url, const char *want, int argc, ...)
{
    char *argv[16] = {"rebound-status"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    rb_status_opts o;
    rb_err err = {{0}};
    assert_int_equal(rb_status_parse_args(argc, argv, env_url, &o, &err), -1);
    if (strstr(err.msg, want) == NULL) fail_msg("error '%s' does not mention '%s'", err.msg, want);
    assert_null(strchr(err.msg, '\n')); /* one line */
}

static void test_args_usage_errors(void **state)
{
    expect_usage_error(NULL, "unknown option --bogus", 2, "--bogus");
    expect_usage_error(NULL, "--watch: 'abc'", 3, "--watch", "abc");
    expect_usage_error(NULL, "--watch: '0'", 2, "--watch=0");
    expect_usage_error(NULL, "--watch: '-1'", 3, "--watch", "-1");
    expect_usage_error(NULL, "--watch needs a value", 2, "--watch");
    expect_usage_error(NULL, "--prefix needs a value", 2, "--prefix");
    expect_usage_error(NULL, "--prefix: the prefix is empty", 2, "--prefix=");
    expect_usage_error(NULL, "--redis-url: redis URL: the scheme", 3, "--redis-url", "http://x");
    expect_usage_error("nonsense", "REBOUND_REDIS_URL: redis URL", 1);
    expect_usage_error(NULL, "unexpected argument 'extra'", 2, "extra");
}

/* ---- replies to rows ------------------------------------------------------------ */

#define MAXEL 64

typedef struct fake_reply {
    redisReply r;
    redisReply *el[MAXEL];
    redisReply items[MAXEL];
} fake_reply;

static void fake_array(fake_reply *f, const char *const *strs, size_t n)
{
    memset(f, 0, sizeof *f);
    f->r.type = REDIS_REPLY_ARRAY;
    f->r.elements = n;
    f->r.element = f->el;
    for (size_t i = 0; i < n; i++) {
        f->items[i].type = REDIS_REPLY_STRING;
        f->items[i].str = (char *)strs[i];
        f->items[i].len = strlen(strs[i]);
        f->el[i] = &f->items[i];
    }
}

/* Three workers: "b" ready, "a" draining, "c" lost (no hash). */
static void make_snapshot(rb_status_snapshot *s, int64_t look_ms, uint64_t b_ok)
{
    static fake_reply z, ha, hb, hc;
    static const char *const zs[] = {"b", "1000", "a", "1500", "c", "400"};
    static const char *const as[] = {"id",      "a",    "host",   "h1",   "state",       "draining",
                                     "slots",   "4",    "busy",   "0",    "jobs_ok",     "7",
                                     "beat_ms", "1600", "rss_kb", "2048", "redelivered", "1"};
    static char okbuf[32];
    snprintf(okbuf, sizeof okbuf, "%llu", (unsigned long long)b_ok);
    const char *bs[] = {
        "id",           "b",  "host",          "h2",  "state",      "ready", "slots",        "8",
        "busy",         "3",  "jobs_ok",       okbuf, "jobs_error", "2",     "jobs_timeout", "1",
        "jobs_crashed", "1",  "jobs_rejected", "1",   "beat_ms",    "1900",  "rss_kb",       "512",
        "version",      "10", "avg_run_ms",    "3.50"};
    fake_array(&z, zs, 6);
    fake_array(&ha, as, sizeof as / sizeof as[0]);
    fake_array(&hb, bs, sizeof bs / sizeof bs[0]);
    fake_array(&hc, NULL, 0);
    redisReply *hashes[] = {&hb.r, &ha.r, &hc.r};
    rb_err err = {{0}};
    assert_int_equal(rb_status_from_replies(&z.r, hashes, look_ms, s, &err), 0);
}

static void test_rows_sorted_parsed_and_lost(void **state)
{
    rb_status_snapshot s;
    make_snapshot(&s, 2000, 10);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.rows[0].id, "a");
    assert_string_equal(s.rows[1].id, "b");
    assert_string_equal(s.rows[2].id, "c");

    const rb_worker_row *a = &s.rows[0], *b = &s.rows[1], *c = &s.rows[2];
    assert_false(a->lost);
    assert_string_equal(a->state, "draining");
    assert_string_equal(a->host, "h1");
    assert_int_equal(a->beat_ms, 1600); /* from the hash, not the score */
    assert_int_equal(a->age_ms, 400);
    assert_int_equal(a->slots, 4);
    assert_int_equal(a->rss_kb, 2048);
    assert_int_equal(a->redelivered, 1);

    assert_int_equal(b->jobs[RB_JOB_OK], 10);
    assert_int_equal(b->jobs[RB_JOB_ERROR], 2);
    assert_int_equal(b->jobs[RB_JOB_REJECTED], 1);
    assert_int_equal(b->busy, 3);

    assert_true(c->lost);
    assert_string_equal(c->state, "lost");
    assert_int_equal(c->beat_ms, 400); /* the set's score */
    assert_int_equal(c->age_ms, 1600);
    assert_int_equal(c->nfields, 0);

    assert_int_equal(rb_status_exit_code(&s), 0);
    rb_status_snapshot_free(&s);
}

static void test_exit_code_without_ready(void **state)
{
    rb_status_snapshot s = {0};
    assert_int_equal(rb_status_exit_code(&s), 1);
    rb_worker_row rows[2] = {{.id = "x", .state = "draining"},
                             {.id = "y", .lost = true, .state = "lost"}};
    s.rows = rows;
    s.n = 2;
    assert_int_equal(rb_status_exit_code(&s), 1);
    rows[0].state = "ready";
    assert_int_equal(rb_status_exit_code(&s), 0);
}

static void test_rates(void **state)
{
    rb_status_snapshot prev, cur;
    make_snapshot(&prev, 2000, 10);
    make_snapshot(&cur, 4000, 30);
    prev.mono_ms = 1000;
    cur.mono_ms = 3000;
    rb_status_rates(&cur, &prev);
    /* b: (30+5) - (10+5) finished jobs in 2 s */
    assert_true(cur.rows[1].has_rate);
    assert_true(cur.rows[1].jobs_per_s > 9.99 && cur.rows[1].jobs_per_s < 10.01);
    /* a: unchanged counters */
    assert_true(cur.rows[0].has_rate);
    assert_true(cur.rows[0].jobs_per_s == 0);
    /* c is lost: no rate */
    assert_false(cur.rows[2].has_rate);
    rb_status_snapshot_free(&cur);

    /* counters that go back (restart under the same id) give no rate */
    make_snapshot(&cur, 4000, 1);
    cur.mono_ms = 3000;
    rb_status_rates(&cur, &prev);
    assert_false(cur.rows[1].has_rate);
    rb_status_snapshot_free(&cur);
    rb_status_snapshot_free(&prev);
}

/* ---- output ---------------------------------------------------------------------- */

static char *capture_table(const rb_status_snapshot *s, bool rates)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    rb_status_print_table(f, s, rates);
    fclose(f);
    return buf;
}

static void test_table(void **state)
{
    rb_status_snapshot s;
    make_snapshot(&s, 2000, 10);
    char *out = capture_table(&s, false);
    /* header, three workers, totals; every line as long as the header
     * (right-aligned last column), columns line up */
    char *lines[8];
    int n = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l != NULL && n < 8;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    assert_int_equal(n, 5);
    assert_non_null(strstr(lines[0], "ID"));
    assert_non_null(strstr(lines[0], "JOBS/S"));
    assert_true(strncmp(lines[1], "a ", 2) == 0);
    assert_true(strncmp(lines[2], "b ", 2) == 0);
    assert_true(strncmp(lines[3], "c ", 2) == 0);
    assert_true(strncmp(lines[4], "TOTAL", 5) == 0);
    for (int i = 1; i < n; i++)
        assert_int_equal(strlen(lines[i]), strlen(lines[0]));
    size_t state_col = (size_t)(strstr(lines[0], "STATE") - lines[0]);
    assert_true(strncmp(lines[1] + state_col, "draining", 8) == 0);
    assert_true(strncmp(lines[2] + state_col, "ready", 5) == 0);
    assert_true(strncmp(lines[3] + state_col, "lost", 4) == 0);
    assert_true(strncmp(lines[4] + state_col, "1 ready, 1 lost", 15) == 0);
    assert_non_null(strstr(lines[2], "3/8"));
    assert_non_null(strstr(lines[4], "3/12")); /* totals over the live ones */
    assert_non_null(strstr(lines[4], "2.5M")); /* 2048K + 512K */
    /* the JOBS/S column shows '-' outside --watch */
    size_t rate_end = (size_t)(strstr(lines[0], "JOBS/S") - lines[0]) + 5;
    for (int i = 1; i < n; i++)
        assert_int_equal(lines[i][rate_end], '-');
    free(out);
    rb_status_snapshot_free(&s);
}

static void test_json(void **state)
{
    rb_status_snapshot prev, s;
    make_snapshot(&prev, 1000, 4);
    make_snapshot(&s, 2000, 10);
    prev.mono_ms = 0;
    s.mono_ms = 2000;
    rb_status_rates(&s, &prev);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(rb_status_print_json(f, &s, true), 0);
    fclose(f);

    json_error_t jerr;
    json_t *root = json_loads(buf, 0, &jerr);
    if (root == NULL) fail_msg("not JSON: %s\n%s", jerr.text, buf);
    json_t *workers = json_object_get(root, "workers");
    assert_int_equal(json_array_size(workers), 3);

    json_t *b = json_array_get(workers, 1);
    assert_string_equal(json_string_value(json_object_get(b, "id")), "b");
    assert_true(json_is_integer(json_object_get(b, "jobs_ok")));
    assert_int_equal(json_integer_value(json_object_get(b, "jobs_ok")), 10);
    assert_true(json_is_real(json_object_get(b, "avg_run_ms")));
    /* text by contract even when it looks like a number */
    assert_true(json_is_string(json_object_get(b, "version")));
    assert_true(json_is_false(json_object_get(b, "lost")));
    assert_int_equal(json_integer_value(json_object_get(b, "age_ms")), 100);
    assert_true(json_real_value(json_object_get(b, "jobs_per_s")) == 3.0);

    json_t *c = json_array_get(workers, 2);
    assert_string_equal(json_string_value(json_object_get(c, "id")), "c");
    assert_true(json_is_true(json_object_get(c, "lost")));
    assert_int_equal(json_integer_value(json_object_get(c, "beat_ms")), 400);
    assert_int_equal(json_integer_value(json_object_get(c, "age_ms")), 1600);
    assert_null(json_object_get(c, "state"));

    json_t *t = json_object_get(root, "totals");
    assert_int_equal(json_integer_value(json_object_get(t, "workers")), 3);
    assert_int_equal(json_integer_value(json_object_get(t, "ready")), 1);
    assert_int_equal(json_integer_value(json_object_get(t, "lost")), 1);
    assert_int_equal(json_integer_value(json_object_get(t, "jobs_ok")), 17);
    assert_int_equal(json_integer_value(json_object_get(t, "slots")), 12);
    assert_int_equal(json_integer_value(json_object_get(t, "rss_kb")), 2560);
    json_decref(root);
    free(buf);
    rb_status_snapshot_free(&s);
    rb_status_snapshot_free(&prev);
}

static void test_formats(void **state)
{
    char b[32];
    rb_status_fmt_age(b, sizeof b, 400);
    assert_string_equal(b, "0.4s");
    rb_status_fmt_age(b, sizeof b, 12999);
    assert_string_equal(b, "12s");
    rb_status_fmt_age(b, sizeof b, 185000);
    assert_string_equal(b, "3m05s");
    rb_status_fmt_age(b, sizeof b, 7620000);
    assert_string_equal(b, "2h07m");
    rb_status_fmt_age(b, sizeof b, 273600000);
    assert_string_equal(b, "3d04h");
    rb_status_fmt_kb(b, sizeof b, 512);
    assert_string_equal(b, "512K");
    rb_status_fmt_kb(b, sizeof b, 12595);
    assert_string_equal(b, "12.3M");
    rb_status_fmt_kb(b, sizeof b, 1572864);
    assert_string_equal(b, "1.5G");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_defaults),
        cmocka_unit_test(test_args_env_and_flag),
        cmocka_unit_test(test_args_usage_errors),
        cmocka_unit_test(test_rows_sorted_parsed_and_lost),
        cmocka_unit_test(test_exit_code_without_ready),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
