/* What one job sees and what it leaves behind: module globals live for the
 * job's calls only, seed, forbidden modules, captured output. */
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
    harness_write(root, "state.py",
                  "counter = 0\n"
                  "def bump():\n"
                  "    global counter\n"
                  "    counter += 1\n"
                  "    return counter\n");
    harness_write(root, "rand.py",
                  "import random\n"
                  "def draw():\n"
                  "    return [random.random(), random.gauss(0, 1)]\n"
                  "def draw_numpy():\n"
                  "    import numpy\n"
                  "    return [float(numpy.random.random()), float(numpy.random.normal())]\n");
    harness_write(root, "threads.py",
                  "import logging, threading\n"
                  "def run():\n"
                  "    seen = []\n"
                  "    t = threading.Thread(target=lambda: seen.append(threading.get_ident()))\n"
                  "    t.start()\n"
                  "    t.join(5)\n"
                  "    logging.getLogger('job').warning('logged from the job')\n"
                  "    return [threading.current_thread() is threading.main_thread(),\n"
                  "            len(seen), threading.active_count()]\n");
    harness_write(root, "imports.py",
                  "def use(name):\n"
                  "    import importlib\n"
                  "    importlib.import_module(name)\n"
                  "    return name\n");
    harness_write(root, "talk.py",
                  "import os, sys\n"
                  "def talk(n):\n"
                  "    print('out', n)\n"
                  "    print('err', n, file=sys.stderr)\n"
                  "    os.write(1, b'raw\\xff\\n')\n"
                  "    return n\n"
                  "def flood(n):\n"
                  "    sys.stdout.write('x' * n)\n"
                  "    return n\n");
    harness_write(root, "sub/where.py",
                  "import os\n"
                  "def cwd():\n"
                  "    return os.getcwd()\n");
    harness_write(root, "lib/helper_mod.py", "VALUE = 42\n");
    harness_write(root, "uses_lib.py",
                  "def value():\n"
                  "    import helper_mod\n"
                  "    return helper_mod.VALUE\n");
    rb_pool_config cfg;
    harness_config(&cfg, "internal", 1, root);
    cfg.max_output_bytes = 1000;
    pool = harness_pool("internal", 1, root, &cfg);
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

static void test_globals_persist_within_a_job_only(void **state)
{
    (void)state;
    const char *job = "{\"v\":1,\"id\":\"g\",\"calls\":["
                      "{\"file\":\"state.py\",\"fcn\":\"bump\"},"
                      "{\"file\":\"state.py\",\"fcn\":\"bump\"},"
                      "{\"source\":\"counter = 0\\ndef bump():\\n    global counter\\n"
                      "    counter += 10\\n    return counter\\n\",\"fcn\":\"bump\"}]}";
    for (int round = 0; round < 2; round++) {
        msgpack_unpacked res;
        assert_true(harness_run_json(pool, job, &res, 10000));
        assert_string_equal(harness_sget(&res.data, "status"), "ok");
        assert_int_equal(harness_get(&res.data, "results.0.val")->via.i64, 1);
        assert_int_equal(harness_get(&res.data, "results.1.val")->via.i64, 2);
        assert_int_equal(harness_get(&res.data, "results.2.val")->via.i64, 10);
        msgpack_unpacked_destroy(&res);
    }
}

/* A seeded job draws the same two numbers every time; unseeded jobs draw
 * different ones, and none starts from a cached gaussian of the zygote. */
static void check_seeding(const char *fcn)
{
    char job[256];
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"s\",\"seed\":1234,\"calls\":["
             "{\"file\":\"rand.py\",\"fcn\":\"%s\"}]}",
             fcn);
    double first[2] = {0}, again[2] = {0};
    for (int round = 0; round < 2; round++) {
        msgpack_unpacked res;
        assert_true(harness_run_json(pool, job, &res, 10000));
        assert_string_equal(harness_sget(&res.data, "status"), "ok");
        double *dst = round ? again : first;
        dst[0] = harness_get(&res.data, "results.0.val.0")->via.f64;
        dst[1] = harness_get(&res.data, "results.0.val.1")->via.f64;
        msgpack_unpacked_destroy(&res);
    }
    assert_true(first[0] == again[0]);
    assert_true(first[1] == again[1]);

    /* Without a seed, two jobs differ. */
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"u\",\"calls\":[{\"file\":\"rand.py\",\"fcn\":\"%s\"}]}", fcn);
    msgpack_unpacked a, b;
    assert_true(harness_run_json(pool, job, &a, 10000));
    assert_true(harness_run_json(pool, job, &b, 10000));
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "results.0.val.%d", i);
        assert_false(harness_get(&a.data, key)->via.f64 == harness_get(&b.data, key)->via.f64);
    }
    msgpack_unpacked_destroy(&a);
    msgpack_unpacked_destroy(&b);
}

static void test_seed_gives_the_same_numbers(void **state)
{
    (void)state;
    check_seeding("draw");
}

/* numpy's generator too: it is not reseeded by fork on its own. */
static void test_numpy_is_seeded_too(void **state)
{
    (void)state;
    if (harness_lacks_module(pool, root, "numpy")) skip();
    check_seeding("draw_numpy");
}

/* Children are forked without Python's fork hooks (the zygote has no other
 * thread): threads, locks and logging must work as in any fresh process. */
static void test_threads_work_in_a_child(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"t\",\"calls\":[{\"file\":\"threads.py\",\"fcn\":\"run\"}]}", &res,
        10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_true(harness_get(&res.data, "results.0.val.0")->via.boolean);
    assert_int_equal(harness_get(&res.data, "results.0.val.1")->via.i64, 1);
    assert_int_equal(harness_get(&res.data, "results.0.val.2")->via.i64, 1);
    assert_non_null(strstr(harness_sget(&res.data, "results.0.output"), "logged from the job"));
    msgpack_unpacked_destroy(&res);
}

static void test_forbidden_modules_even_when_preloaded(void **state)
{
    (void)state;
    if (harness_lacks_module(pool, root, "numpy")) skip();
    const char *names[] = {"numpy", "numpy.linalg", "json"};
    for (size_t i = 0; i < 3; i++) {
        char job[512];
        snprintf(job, sizeof job,
                 "{\"v\":1,\"id\":\"f\",\"forbidden_modules\":[\"numpy\",\"json\"],\"calls\":["
                 "{\"file\":\"imports.py\",\"fcn\":\"use\",\"args\":[\"%s\"]}]}",
                 names[i]);
        msgpack_unpacked res;
        assert_true(harness_run_json(pool, job, &res, 10000));
        assert_string_equal(harness_sget(&res.data, "status"), "error");
        assert_string_equal(harness_sget(&res.data, "results.0.error.type"), "ImportError");
        assert_non_null(strstr(harness_sget(&res.data, "results.0.error.message"), "forbidden"));
        msgpack_unpacked_destroy(&res);
    }
    /* Other modules still import, and the next job may use numpy again. */
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"f2\",\"calls\":[{\"file\":\"imports.py\","
                                 "\"fcn\":\"use\",\"args\":[\"numpy.linalg\"]}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    msgpack_unpacked_destroy(&res);
}

static void test_output_is_captured_per_call(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"o\",\"calls\":["
                                 "{\"file\":\"talk.py\",\"fcn\":\"talk\",\"args\":[1]},"
                                 "{\"file\":\"talk.py\",\"fcn\":\"talk\",\"args\":[2]}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    const char *out = harness_sget(&res.data, "results.1.output");
    assert_non_null(strstr(out, "out 2\n"));
    assert_non_null(strstr(out, "err 2\n"));
    assert_null(strstr(out, "out 1"));
    /* A byte that is not UTF-8 arrives as U+FFFD. */
    assert_non_null(strstr(out, "raw\xef\xbf\xbd\n"));
    assert_null(harness_get(&res.data, "results.1.truncated"));
    msgpack_unpacked_destroy(&res);
}

static void test_each_call_gets_its_own_output(void **state)
{
    (void)state;
    /* Twenty calls that print at once: each result carries its own line
     * and nothing of its neighbours'. */
    char job[4096] = "{\"v\":1,\"id\":\"o20\",\"calls\":[";
    for (int i = 0; i < 20; i++) {
        char call[128];
        snprintf(call, sizeof call, "%s{\"file\":\"talk.py\",\"fcn\":\"talk\",\"args\":[%d]}",
                 i ? "," : "", i);
        strcat(job, call);
    }
    strcat(job, "]}");
    for (int round = 0; round < 5; round++) {
        msgpack_unpacked res;
        assert_true(harness_run_json(pool, job, &res, 10000));
        assert_string_equal(harness_sget(&res.data, "status"), "ok");
        for (int i = 0; i < 20; i++) {
            char path[64], out[32], err[32];
            snprintf(path, sizeof path, "results.%d.output", i);
            snprintf(out, sizeof out, "out %d\n", i);
            snprintf(err, sizeof err, "err %d\n", i);
            /* stdout, stderr and the raw write may interleave in any order,
             * but only these three lines may be there. */
            const char *got = harness_sget(&res.data, path);
            assert_non_null(strstr(got, out));
            assert_non_null(strstr(got, err));
            assert_non_null(strstr(got, "raw\xef\xbf\xbd\n"));
            assert_int_equal(strlen(got), strlen(out) + strlen(err) + 7);
        }
        msgpack_unpacked_destroy(&res);
    }
}

static void test_output_is_capped(void **state)
{
    (void)state;
    msgpack_unpacked res;
    /* 300 kB: far over the 1000-byte cap, and over a pipe's buffer, so the
     * pool must keep reading while the call runs. */
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"c\",\"calls\":["
                                 "{\"file\":\"talk.py\",\"fcn\":\"flood\",\"args\":[300000]}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_int_equal(strlen(harness_sget(&res.data, "results.0.output")), 1000);
    assert_true(harness_get(&res.data, "results.0.truncated")->via.boolean);
    msgpack_unpacked_destroy(&res);
}

static void test_cwd_and_paths(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"p\",\"calls\":["
                                 "{\"file\":\"sub/where.py\",\"fcn\":\"cwd\"},"
                                 "{\"file\":\"sub/where.py\",\"fcn\":\"cwd\",\"cwd\":\"lib\"},"
                                 "{\"file\":\"uses_lib.py\",\"fcn\":\"value\",\"paths\":[\"lib\"]},"
                                 "{\"source\":\"import os\\ndef f():\\n    return os.getcwd()\\n\","
                                 "\"fcn\":\"f\"}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    char want[512];
    snprintf(want, sizeof want, "%s/sub", root);
    assert_string_equal(harness_sget(&res.data, "results.0.val"), want);
    snprintf(want, sizeof want, "%s/lib", root);
    assert_string_equal(harness_sget(&res.data, "results.1.val"), want);
    assert_int_equal(harness_get(&res.data, "results.2.val")->via.i64, 42);
    assert_non_null(strstr(harness_sget(&res.data, "results.3.val"), "/tmp/rebound."));
    msgpack_unpacked_destroy(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_globals_persist_within_a_job_only),
        cmocka_unit_test(test_seed_gives_the_same_numbers),
        cmocka_unit_test(test_numpy_is_seeded_too),
        cmocka_unit_test(test_threads_work_in_a_child),
        cmocka_unit_test(test_forbidden_modules_even_when_preloaded),
        cmocka_unit_test(test_output_is_captured_per_call),
        cmocka_unit_test(test_each_call_gets_its_own_output),
        cmocka_unit_test(test_output_is_capped),
        cmocka_unit_test(test_cwd_and_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
