/*
 * test_health_fields.c - the layout of the heartbeat hash (the Redis
 * contract dashboards read) and the key names.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "health_internal.h"

static const char *value_of(const rb_hb_fields *f, const char *name)
{
    for (int i = 0; i < RB_HB_NFIELDS; i++)
        if (strcmp(f->name[i], name) == 0) return f->value[i];
    fail_msg("no field %s", name);
    return NULL;
}

static void test_every_contract_field_once(void **state)
{
    static const char *const contract[] = {"id",
                                           "host",
                                           "pid",
                                           "queue",
                                           "mode",
                                           "version",
                                           "python",
                                           "state",
                                           "started_ms",
                                           "beat_ms",
                                           "slots",
                                           "busy",
                                           "jobs_ok",
                                           "jobs_error",
                                           "jobs_timeout",
                                           "jobs_crashed",
                                           "jobs_rejected",
                                           "redelivered",
                                           "results_unroutable",
                                           "last_job_ms",
                                           "avg_run_ms",
                                           "cpu_ms_total",
                                           "rss_kb",
                                           "preload_failed",
                                           "sandbox"};
    assert_int_equal(sizeof contract / sizeof contract[0], RB_HB_NFIELDS);
    rb_hb_info info = {.id = "w"};
    rb_hb_fields f;
    rb_hb_fields_make(&f, &info, 1);
    for (size_t c = 0; c < RB_HB_NFIELDS; c++) {
        int seen = 0;
        for (int i = 0; i < RB_HB_NFIELDS; i++)
            seen += strcmp(f.name[i], contract[c]) == 0;
        if (seen != 1) fail_msg("field %s appears %d times", contract[c], seen);
    }
}

static void test_values(void **state)
{
    rb_hb_info info = {
        .id = "host1-42",
        .host = "host1",
        .pid = 42,
        .queue = "jobs",
        .mode = "fork",
        .version = "0.1.0",
        .state = "ready",
        .started_ms = 1700000000000,
        .slots = 8,
        .busy = 3,
        .jobs_ok = 18446744073709551615ULL, /* counters are unsigned 64-bit */
        .jobs_error = 2,
        .jobs_timeout = 3,
        .jobs_crashed = 4,
        .jobs_rejected = 5,
        .redelivered = 6,
        .last_job_ms = 1700000001234,
        .avg_run_ms = 12.25,
        .rss_kb = 123456,
        .preload_failed = "numpy,lxml",
        .sandbox = "seccomp",
    };
    rb_hb_fields f;
    rb_hb_fields_make(&f, &info, 1700000002000);
    assert_string_equal(value_of(&f, "id"), "host1-42");
    assert_string_equal(value_of(&f, "host"), "host1");
    assert_string_equal(value_of(&f, "pid"), "42");
    assert_string_equal(value_of(&f, "queue"), "jobs");
    assert_string_equal(value_of(&f, "mode"), "fork");
    assert_string_equal(value_of(&f, "version"), "0.1.0");
    assert_string_equal(value_of(&f, "state"), "ready");
    assert_string_equal(value_of(&f, "started_ms"), "1700000000000");
    assert_string_equal(value_of(&f, "beat_ms"), "1700000002000");
    assert_string_equal(value_of(&f, "slots"), "8");
    assert_string_equal(value_of(&f, "busy"), "3");
    assert_string_equal(value_of(&f, "jobs_ok"), "18446744073709551615");
    assert_string_equal(value_of(&f, "jobs_error"), "2");
    assert_string_equal(value_of(&f, "jobs_timeout"), "3");
    assert_string_equal(value_of(&f, "jobs_crashed"), "4");
    assert_string_equal(value_of(&f, "jobs_rejected"), "5");
    assert_string_equal(value_of(&f, "redelivered"), "6");
    assert_string_equal(value_of(&f, "last_job_ms"), "1700000001234");
    assert_string_equal(value_of(&f, "avg_run_ms"), "12.25");
    assert_string_equal(value_of(&f, "rss_kb"), "123456");
    assert_string_equal(value_of(&f, "preload_failed"), "numpy,lxml");
    assert_string_equal(value_of(&f, "sandbox"), "seccomp");
}

static void test_null_strings_and_nan(void **state)
{
    rb_hb_info info = {.id = "w", .avg_run_ms = NAN};
    rb_hb_fields f;
    rb_hb_fields_make(&f, &info, 0);
    assert_string_equal(value_of(&f, "host"), "");
    assert_string_equal(value_of(&f, "preload_failed"), "");
    assert_string_equal(value_of(&f, "state"), "");
    assert_string_equal(value_of(&f, "last_job_ms"), "0");
    /* readers parse numbers: never "nan" */
    assert_string_equal(value_of(&f, "avg_run_ms"), "0.00");
}

static void test_keys(void **state)
{
    char buf[64];
    assert_int_equal(rb_hb_worker_key(buf, sizeof buf, "rebound", "w-1"), 0);
    assert_string_equal(buf, "rebound:worker:w-1");
    assert_int_equal(rb_hb_set_key(buf, sizeof buf, "staging"), 0);
    assert_string_equal(buf, "staging:workers");
    char small[16];
    assert_int_equal(rb_hb_worker_key(small, sizeof small, "rebound", "w-1"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_contract_field_once),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_null_strings_and_nan),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
