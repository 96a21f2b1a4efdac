/* A pool with many more slots than a fixed poll array would hold: every
 * slot gets a ready child, and jobs run on them. (The pool once polled
 * from an array of 1 + 4 * 256 entries while --slots allows 1024.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "harness.h"

#define SLOTS 600

static bool ready(void *ctx)
{
    rb_pool_stats st;
    rb_pool_get_stats(ctx, &st, false);
    return st.ready == st.slots;
}

static void test_600_slots_start_and_run(void **state)
{
    (void)state;
    /* The pool keeps a few descriptors per slot open. */
    struct rlimit nofile;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &nofile), 0);
    if (nofile.rlim_cur < 8 * SLOTS && nofile.rlim_max >= 8 * SLOTS) {
        nofile.rlim_cur = 8 * SLOTS;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &nofile), 0);
    }
    char *root = harness_code_root();
    harness_write(root, "f.py", "def f(x):\n    return x + 1\n");
    rb_pool_config cfg;
    harness_config(&cfg, "internal", SLOTS, root);
    cfg.preload = "json"; /* the slots are the point, not the preload */
    cfg.start_timeout_ms = 240000;
    cfg.spawn_timeout_ms = 240000;
    rb_pool *pool = harness_pool("internal", SLOTS, root, &cfg);
    assert_int_equal(rb_pool_max_pollfds(pool) >= 1 + SLOTS * 4, 1);
    rb_pool_stats st;
    rb_pool_get_stats(pool, &st, false);
    assert_int_equal(st.slots, SLOTS);
    assert_int_equal(st.ready, SLOTS);

    msgpack_unpacked res;
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"m\",\"calls\":[{\"file\":\"f.py\",\"fcn\":\"f\",\"args\":[41]}]}",
        &res, 60000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_int_equal(harness_get(&res.data, "results.0.val")->via.i64, 42);
    msgpack_unpacked_destroy(&res);
    /* The slot that ran it gets its next child: all are ready again. */
    harness_drive(pool, 60000, ready, pool);
    rb_pool_get_stats(pool, &st, false);
    assert_int_equal(st.ready, SLOTS);

    rb_pool_free(pool);
    harness_rmtree(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_600_slots_start_and_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
