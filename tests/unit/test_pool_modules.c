/* How a call's module is loaded (trampoline/call.c): its attributes, coding
 * declarations, and the errors a module that cannot be loaded gives. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static char *root;
static rb_pool *pool;

static int setup(void **state)
{
    (void)state;
    root = harness_code_root();
    harness_write(root, "pkg/attrs.py",
                  "def attrs():\n"
                  "    return [__name__, __file__, '__builtins__' in globals()]\n");
    harness_write(root, "latin.py",
                  "# -*- coding: latin-1 -*-\n"
                  "def word():\n"
                  "    return 'caf\xe9'\n");
    harness_write(root, "env.py",
                  "import os, subprocess, tempfile\n"
                  "def tmp():\n"
                  "    shell = subprocess.run(['sh', '-c', 'echo $TMPDIR'], capture_output=True,\n"
                  "                           text=True).stdout.strip()\n"
                  "    return [os.environ['TMPDIR'], shell, tempfile.gettempdir()]\n"
                  "def home():\n"
                  "    home = os.path.expanduser('~')\n"
                  "    with open(os.path.join(home, 'mine.txt'), 'w') as f:\n"
                  "        f.write('x')\n"
                  "    shell = subprocess.run(['sh', '-c', 'echo $HOME'], capture_output=True,\n"
                  "                           text=True).stdout.strip()\n"
                  "    return [home, shell, os.environ['TMPDIR']]\n");
    harness_write(root, "picklable.py",
                  "import pickle, sys, sysconfig\n"
                  "def square(x):\n"
                  "    return x * x\n"
                  "def check():\n"
                  "    f = pickle.loads(pickle.dumps(square))\n"
                  "    import json\n"
                  "    return [sys.modules[__name__] is sys.modules['picklable'], f is square,\n"
                  "            'warm' in sys.modules,\n"
                  "            json.__file__.startswith(sysconfig.get_path('stdlib') + '/')]\n");
    harness_write(root, "json.py",
                  "def f():\n    import json, sys\n"
                  "    return [json is sys.modules['json'], hasattr(json, 'dumps')]\n");
    harness_write(root, "alloc.py",
                  "def name():\n"
                  "    try:\n"
                  "        from _testcapi import pymem_getallocatorsname\n"
                  "    except ImportError:  # 3.13 moved it\n"
                  "        from _testinternalcapi import pymem_getallocatorsname\n"
                  "    return pymem_getallocatorsname()\n");
    harness_write(root, "nones.py", "f = None\ndef g():\n    return 'g'\n");
    harness_write(root, "broken.py", "def f(:\n    pass\n");
    harness_write(root, "raises.py",
                  "def f():\n"
                  "    return 1\n"
                  "raise KeyError('at import')\n");
    /* A NUL byte, which compile() refuses. */
    char path[1024];
    snprintf(path, sizeof path, "%s/nul.py", root);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("def f():\n    return 1\n\0\n", 1, 24, f);
    fclose(f);
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

static void test_module_attributes(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(
        harness_run_json(pool,
                         "{\"v\":1,\"id\":\"a\",\"calls\":["
                         "{\"file\":\"pkg/attrs.py\",\"fcn\":\"attrs\"},"
                         "{\"source\":\"def attrs():\\n    return [__name__, __file__]\\n\","
                         "\"fcn\":\"attrs\"}]}",
                         &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_string_equal(harness_sget(&res.data, "results.0.val.0"), "attrs");
    char want[1024];
    snprintf(want, sizeof want, "%s/pkg/attrs.py", root);
    assert_string_equal(harness_sget(&res.data, "results.0.val.1"), want);
    assert_true(harness_get(&res.data, "results.0.val.2")->via.boolean);
    assert_string_equal(harness_sget(&res.data, "results.1.val.0"), "__source__");
    assert_string_equal(harness_sget(&res.data, "results.1.val.1"), "<source>");
    msgpack_unpacked_destroy(&res);
}

/* The job's module is in sys.modules under its name, as an import would
 * put it (pickle, and so multiprocessing, find its functions there), but
 * never in place of a module of the same name that is loaded already; the
 * warm-up leaves nothing there. */
static void test_the_module_is_in_sys_modules(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"p\",\"calls\":["
                                 "{\"file\":\"picklable.py\",\"fcn\":\"check\"},"
                                 "{\"file\":\"json.py\",\"fcn\":\"f\"}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_true(harness_get(&res.data, "results.0.val.0")->via.boolean);
    assert_true(harness_get(&res.data, "results.0.val.1")->via.boolean);
    assert_false(harness_get(&res.data, "results.0.val.2")->via.boolean);
    assert_true(harness_get(&res.data, "results.0.val.3")->via.boolean);
    /* json.py of the job did not replace the library's json. */
    assert_true(harness_get(&res.data, "results.1.val.0")->via.boolean);
    assert_true(harness_get(&res.data, "results.1.val.1")->via.boolean);
    msgpack_unpacked_destroy(&res);
}

/* The interpreter's allocator is the build's: Python's debug hooks with
 * REBOUND_PYMALLOC_DEBUG (tests/run's build), pymalloc otherwise. */
static void test_the_allocator_is_the_builds(void **state)
{
    (void)state;
#ifdef REBOUND_PYMALLOC_DEBUG
    const char *want = "pymalloc_debug";
#else
    const char *want = "pymalloc";
#endif
    msgpack_unpacked res;
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"m\",\"calls\":[{\"file\":\"alloc.py\",\"fcn\":\"name\"}]}", &res,
        10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_string_equal(harness_sget(&res.data, "results.0.val"), want);
    msgpack_unpacked_destroy(&res);
}

static void test_a_coding_declaration_is_honoured(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"c\",\"calls\":[{\"file\":\"latin.py\",\"fcn\":\"word\"}]}", &res,
        10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_string_equal(harness_sget(&res.data, "results.0.val"), "caf\xc3\xa9");
    msgpack_unpacked_destroy(&res);
}

/* A name bound to None is a missing function, as a lookup with .get() sees
 * it: the job goes on. */
static void test_a_function_bound_to_none_is_not_present(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"n\",\"calls\":["
                                 "{\"file\":\"nones.py\",\"fcn\":\"f\"},"
                                 "{\"file\":\"nones.py\",\"fcn\":\"g\"}]}",
                                 &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_false(harness_get(&res.data, "results.0.present")->via.boolean);
    assert_string_equal(harness_sget(&res.data, "results.1.val"), "g");
    msgpack_unpacked_destroy(&res);
}

static long long run_version(void)
{
    msgpack_unpacked res;
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"v\",\"calls\":[{\"file\":\"ver.py\",\"fcn\":\"v\"}]}", &res,
        10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    long long v = harness_get(&res.data, "results.0.val")->via.i64;
    msgpack_unpacked_destroy(&res);
    return v;
}

/* The zygote keeps the files jobs used compiled for the children after
 * them; a file edited in place, even to the same size at once, is compiled
 * again. */
static void test_an_edited_file_is_compiled_again(void **state)
{
    (void)state;
    harness_write(root, "ver.py", "def v():\n    return 1\n");
    assert_int_equal(run_version(), 1);
    assert_int_equal(run_version(), 1); /* a child forked after the zygote compiled it */
    char path[1024];
    snprintf(path, sizeof path, "%s/ver.py", root);
    FILE *f = fopen(path, "r+"); /* the same file, the same size */
    assert_non_null(f);
    assert_int_equal(fseek(f, 20, SEEK_SET), 0); /* the 1 */
    assert_int_equal(fputc('2', f), '2');
    fclose(f);
    assert_int_equal(run_version(), 2);
    assert_int_equal(run_version(), 2);
}

/* TMPDIR is the child's own directory, for Python and what it starts. */
static void test_tmpdir_everywhere(void **state)
{
    (void)state;
    msgpack_unpacked res;
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"t\",\"calls\":[{\"file\":\"env.py\",\"fcn\":\"tmp\"}]}", &res,
        10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    const char *dir = harness_sget(&res.data, "results.0.val.0");
    assert_non_null(strstr(dir, "/tmp/rebound."));
    assert_string_equal(harness_sget(&res.data, "results.0.val.1"), dir);
    assert_string_equal(harness_sget(&res.data, "results.0.val.2"), dir);
    msgpack_unpacked_destroy(&res);

    /* HOME is the job's private directory too: writable, never the
     * worker's own home. */
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"h\",\"calls\":[{\"file\":\"env.py\",\"fcn\":\"home\"}]}", &res,
        10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    const char *home = harness_sget(&res.data, "results.0.val.0");
    assert_non_null(strstr(home, "/tmp/rebound."));
    assert_string_equal(harness_sget(&res.data, "results.0.val.1"), home);
    assert_string_equal(harness_sget(&res.data, "results.0.val.2"), home);
    msgpack_unpacked_destroy(&res);
}

/* One call whose module cannot be loaded: the job stops with that error. */
static void expect_load_error(const char *file, const char *type, const char *in_text)
{
    char job[256];
    snprintf(job, sizeof job, "{\"v\":1,\"id\":\"l\",\"calls\":[{\"file\":\"%s\",\"fcn\":\"f\"}]}",
             file);
    msgpack_unpacked res;
    assert_true(harness_run_json(pool, job, &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "error");
    assert_string_equal(harness_sget(&res.data, "results.0.error.type"), type);
    const char *tb = harness_sget(&res.data, "results.0.error.traceback");
    if (!strstr(tb, in_text)) fail_msg("traceback of %s lacks \"%s\": %s", file, in_text, tb);
    msgpack_unpacked_destroy(&res);
}

static void test_modules_that_cannot_be_loaded(void **state)
{
    (void)state;
    expect_load_error("broken.py", "SyntaxError", "broken.py");
    expect_load_error("raises.py", "KeyError", "at import");
    expect_load_error("nul.py", "ValueError", "null bytes");
    /* A file that is missing or not a regular file is rejected before it
     * reaches a child (rb_job_check_paths). */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_module_attributes),
        cmocka_unit_test(test_the_module_is_in_sys_modules),
        cmocka_unit_test(test_the_allocator_is_the_builds),
        cmocka_unit_test(test_a_coding_declaration_is_honoured),
        cmocka_unit_test(test_tmpdir_everywhere),
        cmocka_unit_test(test_a_function_bound_to_none_is_not_present),
        cmocka_unit_test(test_an_edited_file_is_compiled_again),
        cmocka_unit_test(test_modules_that_cannot_be_loaded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
