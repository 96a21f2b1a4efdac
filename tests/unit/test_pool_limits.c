/* Two ways a pool once got stuck: a job whose results grew past the
 * result limit waited out its whole wall limit, and a pool whose base
 * directory was removed lost every zygote, again and again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static char *root;

static int setup(void **state)
{
    (void)state;
    root = harness_code_root();
    harness_write(root, "big.py",
                  "def chunk(n):\n"
                  "    return 'x' * n\n"
                  "def where():\n"
                  "    import os\n"
                  "    return os.environ['TMPDIR']\n"
                  "def write():\n"
                  "    import os, tempfile\n"
                  "    with tempfile.NamedTemporaryFile('w', delete=False) as f:\n"
                  "        f.write('ok')\n"
                  "    return os.path.dirname(f.name)\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_rmtree(root);
    free(root);
    return 0;
}

/* Three calls of 6 MiB each against the 16 MiB result limit: the third
 * does not fit. The job ends at once with an error on that call, not after
 * its 60 s wall limit (the child waited for an acknowledgement the pool
 * never sent). */
static void test_results_past_the_limit_end_the_job_at_once(void **state)
{
    (void)state;
    rb_pool *pool = harness_pool("internal", 1, root, NULL);
    const char *job = "{\"v\":1,\"id\":\"big\",\"timeout_ms\":60000,\"calls\":["
                      "{\"file\":\"big.py\",\"fcn\":\"chunk\",\"args\":[6291456]},"
                      "{\"file\":\"big.py\",\"fcn\":\"chunk\",\"args\":[6291456]},"
                      "{\"file\":\"big.py\",\"fcn\":\"chunk\",\"args\":[6291456]},"
                      "{\"file\":\"big.py\",\"fcn\":\"chunk\",\"args\":[1]}]}";
    msgpack_unpacked res;
    /* Well under the wall limit: a result that waits it out fails here. */
    assert_true(harness_run_json(pool, job, &res, 20000));
    assert_string_equal(harness_sget(&res.data, "status"), "error");
    const msgpack_object *results = harness_get(&res.data, "results");
    assert_non_null(results);
    assert_int_equal(results->via.array.size, 3);
    assert_non_null(strstr(harness_sget(&res.data, "results.2.error.message"), "too large"));
    msgpack_unpacked_destroy(&res);
    /* The slot goes on. */
    assert_true(harness_run_json(
        pool,
        "{\"v\":1,\"id\":\"s\",\"calls\":[{\"file\":\"big.py\",\"fcn\":\"chunk\",\"args\":[3]}]}",
        &res, 20000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_string_equal(harness_sget(&res.data, "results.0.val"), "xxx");
    msgpack_unpacked_destroy(&res);
    rb_pool_free(pool);
}

/* The pool's base directory removed under it (as a cleaner of /tmp
 * might): the zygotes make it again, and jobs keep running, with private
 * directories that work. */
static void test_a_removed_base_directory_is_made_again(void **state)
{
    (void)state;
    rb_pool *pool = harness_pool("native", 1, root, NULL);
    msgpack_unpacked res;
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"w\",\"calls\":[{\"file\":\"big.py\",\"fcn\":\"where\"}]}", &res,
        20000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    char base[512];
    snprintf(base, sizeof base, "%s", harness_sget(&res.data, "results.0.val"));
    msgpack_unpacked_destroy(&res);
    char *slash = strrchr(base, '/');
    assert_non_null(slash);
    *slash = '\0'; /* <base>/<zygote pid>-<n> -> <base> */
    assert_non_null(strstr(base, "/tmp/rebound."));

    harness_rmtree(base);
    /* The spare ready before the removal lost its directory; the ones after
     * it must have theirs. Several jobs, each bounded well below the time a
     * stuck pool would take. */
    for (int i = 0; i < 4; i++) {
        assert_true(harness_run_json(
            pool, "{\"v\":1,\"id\":\"t\",\"calls\":[{\"file\":\"big.py\",\"fcn\":\"write\"}]}",
            &res, 20000));
        if (i > 0) {
            assert_string_equal(harness_sget(&res.data, "status"), "ok");
            assert_non_null(strstr(harness_sget(&res.data, "results.0.val"), base));
        }
        msgpack_unpacked_destroy(&res);
    }
    rb_pool_stats st;
    rb_pool_get_stats(pool, &st, false);
    assert_int_equal(st.zygote_restarts, 0);
    rb_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_past_the_limit_end_the_job_at_once),
        cmocka_unit_test(test_a_removed_base_directory_is_made_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
