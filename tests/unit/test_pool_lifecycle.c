/* The pool's processes: preload failures are reported, jobs queue in FIFO
 * order, and when the pool's process dies every process it started dies
 * too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char *root;

static int setup(void **state)
{
    (void)state;
    root = harness_code_root();
    harness_write(root, "f.py", "def f(x):\n    return x\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_rmtree(root);
    free(root);
    return 0;
}

static void test_preload_failures_are_reported(void **state)
{
    (void)state;
    rb_pool_config cfg;
    harness_config(&cfg, "internal", 1, root);
    /* "this" prints as it is imported: that must not show up in jobs. */
    cfg.preload = "json,no_such_module_xyz,this,math";
    rb_pool *pool = harness_pool("internal", 1, root, &cfg);
    const char *failed = rb_pool_preload_failed(pool);
    assert_non_null(strstr(failed, "no_such_module_xyz: No module named"));
    assert_null(strstr(failed, "json"));
    /* And the pool works without it. */
    msgpack_unpacked res;
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"p\",\"calls\":[{\"file\":\"f.py\",\"fcn\":\"f\",\"args\":[5]}]}",
        &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_string_equal(harness_sget(&res.data, "results.0.output"), "");
    msgpack_unpacked_destroy(&res);
    rb_pool_free(pool);
}

/* The mother reports the version of the Python she runs (the worker, which
 * does not link Python, puts it in its heartbeat): the one the build chose,
 * and what a job sees. */
static void test_the_python_version_is_reported(void **state)
{
    (void)state;
    rb_pool *pool = harness_pool("internal", 1, root, NULL);
    assert_string_equal(rb_pool_python(pool), REBOUND_PYTHON_VERSION);
    msgpack_unpacked res;
    assert_true(
        harness_run_json(pool,
                         "{\"v\":1,\"id\":\"v\",\"calls\":[{\"source\":"
                         "\"import platform\\ndef v():\\n    return platform.python_version()\","
                         "\"fcn\":\"v\"}]}",
                         &res, 10000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_string_equal(harness_sget(&res.data, "results.0.val"), rb_pool_python(pool));
    msgpack_unpacked_destroy(&res);
    rb_pool_free(pool);
}

typedef struct order {
    rb_pool *pool;
    uint64_t tags[16];
    int n, want;
} order;

static bool got_all(void *ctx)
{
    order *o = ctx;
    rb_pool_result r;
    while (rb_pool_next_result(o->pool, &r)) {
        assert_int_equal(r.status, RB_STATUS_OK);
        o->tags[o->n++] = r.tag;
        rb_pool_result_free(&r);
    }
    return o->n >= o->want;
}

static int descendants(pid_t pid, pid_t *out, int max);

/* How many temporary directories of the trampoline with this pid exist:
 * /tmp/rebound.<pid>.XXXXXX. */
static int tmpdirs_of(pid_t pid)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "rebound.%d.", (int)pid);
    DIR *d = opendir("/tmp");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    if (d) closedir(d);
    return n;
}

static void test_jobs_queue_in_fifo_order(void **state)
{
    (void)state;
    rb_pool *pool = harness_pool("internal", 1, root, NULL);
    size_t len;
    char *body = harness_json_to_msgpack(
        "{\"v\":1,\"id\":\"q\",\"calls\":[{\"file\":\"f.py\",\"fcn\":\"f\",\"args\":[1]}]}", &len);
    rb_limits lim;
    rb_limits_default(&lim);
    rb_job *job;
    rb_err err;
    assert_int_equal(rb_job_decode(body, len, &lim, &job, NULL, &err), 0);
    for (uint64_t t = 1; t <= 6; t++)
        assert_int_equal(rb_pool_submit(pool, t, body, len, job), 0);
    rb_pool_stats st;
    rb_pool_get_stats(pool, &st, false);
    assert_int_equal(st.busy, 1);
    assert_int_equal(st.queued, 5);
    order o = {.pool = pool, .want = 6};
    harness_drive(pool, 30000, got_all, &o);
    assert_int_equal(o.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(o.tags[i], (uint64_t)i + 1);
    rb_pool_get_stats(pool, &st, true);
    assert_int_equal(st.jobs[RB_STATUS_OK], 6);
    assert_true(st.rss_kb > 0 && st.pss_kb > 0);
    rb_job_free(job);
    free(body);
    /* Every child's private directory is gone once the pool is. */
    pid_t procs[16];
    int nprocs = descendants(getpid(), procs, 16);
    assert_true(nprocs >= 2);
    rb_pool_free(pool);
    for (int i = 0; i < nprocs; i++)
        assert_int_equal(tmpdirs_of(procs[i]), 0);
}

/* All descendants of pid (children, grandchildren, ...). */
static int descendants(pid_t pid, pid_t *out, int max)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int n = 0, c;
    while (f && n < max && fscanf(f, "%d", &c) == 1) {
        out[n++] = c;
        n += descendants(c, out + n, max - n);
    }
    if (f) fclose(f);
    return n;
}

static bool dead(pid_t pid)
{
    char path[64], buf[512] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return true;
    if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
    fclose(f);
    char *rp = strrchr(buf, ')');
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

static void test_pool_death_takes_every_process_along(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t parent = getpid();
    pid_t owner = fork();
    if (owner == 0) {
        /* Should this test fail before it kills the owner, the owner (and
         * so its pool) must not outlive the test program. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        close(p[0]);
        rb_pool *pool = harness_pool("native", 2, root, NULL);
        (void)pool;
        char c = 'r';
        if (write(p[1], &c, 1) != 1) _exit(1);
        for (;;)
            pause();
    }
    /* Only the owner may hold the write end: if it dies before it writes
     * (harness_pool aborts when the pool does not start), the read sees
     * end-of-file at once instead of waiting for ctest's timeout. The
     * poll bounds the wait for an owner that neither writes nor dies. */
    close(p[1]);
    struct pollfd pfd = {p[0], POLLIN, 0};
    char c = 0;
    bool told = poll(&pfd, 1, 120000) == 1 && read(p[0], &c, 1) == 1 && c == 'r';
    close(p[0]);
    if (!told) {
        kill(owner, SIGKILL);
        waitpid(owner, NULL, 0);
        fail_msg("the pool's owner died or did not start its pool within 120 s");
    }
    pid_t procs[64];
    int n = descendants(owner, procs, 64);
    /* The mother, two zygotes, two ready children. */
    assert_true(n >= 5);
    kill(owner, SIGKILL);
    waitpid(owner, NULL, 0);
    bool all = false;
    for (int tries = 0; tries < 500 && !all; tries++) {
        all = true;
        for (int i = 0; i < n; i++)
            all = all && dead(procs[i]);
        struct timespec ts = {0, 10 * 1000 * 1000};
        if (!all) nanosleep(&ts, NULL);
    }
    assert_true(all);
}

static void test_stopped_zygote_is_replaced(void **state)
{
    (void)state;
    rb_pool_config cfg;
    harness_config(&cfg, "internal", 1, root);
    cfg.spawn_timeout_ms = 1000;
    rb_pool *pool = harness_pool("internal", 1, root, &cfg);
    pid_t procs[16];
    int n = descendants(getpid(), procs, 16);
    /* procs: the mother, then the zygote, then its ready child. */
    assert_true(n >= 3);
    pid_t zygote = procs[1];
    assert_int_equal(kill(zygote, SIGSTOP), 0);
    const char *job =
        "{\"v\":1,\"id\":\"z\",\"calls\":[{\"file\":\"f.py\",\"fcn\":\"f\",\"args\":[1]}]}";
    for (int i = 0; i < 2; i++) {
        /* The first runs on the child that was ready; the second needs a
         * zygote that answers, so the stopped one must have been replaced. */
        msgpack_unpacked res;
        assert_true(harness_run_json(pool, job, &res, 15000));
        assert_string_equal(harness_sget(&res.data, "status"), "ok");
        msgpack_unpacked_destroy(&res);
    }
    rb_pool_stats st;
    rb_pool_get_stats(pool, &st, false);
    assert_true(st.zygote_restarts >= 1);
    kill(zygote, SIGCONT);
    rb_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preload_failures_are_reported),
        cmocka_unit_test(test_the_python_version_is_reported),
        cmocka_unit_test(test_jobs_queue_in_fifo_order),
        cmocka_unit_test(test_pool_death_takes_every_process_along),
        cmocka_unit_test(test_stopped_zygote_is_replaced),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
