/*
 * test_health_outage.c - the heartbeat when Redis goes away or stalls, and
 * the connection options (password, db, unix socket). These tests start
 * their own redis-server on a free port so that stopping it does not
 * disturb the shared one; they still run only under tests/run
 * (REBOUND_TEST_REDIS_URL set).
 *
 * "Never blocks" is checked as a bound on the longest
 * rb_heartbeat_process call (200 ms, far above the microseconds a
 * non-blocking call takes and far below the connect and reply timeouts a
 * blocking implementation would sit in).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "health_itest.h"

#define INTERVAL 200
#define BLOCK_BOUND_MS 200

typedef struct fixture {
    it_redis r;
    redisContext *c;
    it_worker w;
    rb_heartbeat *hb;
    char key[128];
} fixture;

static int setup_with(void **state, const char *password)
{
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    if (!it_redis_start(&f->r, password)) return -1;
    it_worker_init(&f->w, "w-out");
    snprintf(f->key, sizeof f->key, "rebound:worker:%s", f->w.id);
    f->c = it_connect(f->r.url);
    it_max_process_ms = 0;
    return f->c != NULL ? 0 : -1;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

static int setup_password(void **state)
{
    return setup_with(state, "pa:ss@word");
}

static int teardown(void **state)
{
    fixture *f = *state;
    rb_heartbeat_free(f->hb);
    if (f->c != NULL) redisFree(f->c);
    it_redis_cleanup(&f->r);
    free(f);
    return 0;
}

static rb_heartbeat *new_hb(const char *url, it_worker *w)
{
    rb_err err = {{0}};
    rb_heartbeat *hb = rb_heartbeat_new(url, "rebound", INTERVAL, it_fill, w, &err);
    if (hb == NULL) fail_msg("rb_heartbeat_new: %s", err.msg);
    return hb;
}

/* Reconnect the test's own connection (after a restart). */
static void reconnect(fixture *f)
{
    if (f->c != NULL) redisFree(f->c);
    f->c = it_connect(f->r.url);
    assert_non_null(f->c);
}

static void wait_key(fixture *f, bool want, int timeout_ms)
{
    it_keycheck k = {.c = f->c, .key = f->key, .want = want};
    if (!it_run_until(f->hb, timeout_ms, it_key_exists_is, &k))
        fail_msg("%s: still %s after %d ms", f->key, want ? "missing" : "present", timeout_ms);
}

static void test_redis_stopped_and_restarted(void **state)
{
    fixture *f = *state;
    f->hb = new_hb(f->r.url, &f->w);
    wait_key(f, true, 10000);

    it_stderr cap;
    it_stderr_begin(&cap);
    assert_true(it_redis_shutdown(&f->r));
    /* several seconds down: many beats due, several reconnect attempts */
    int fills = f->w.fills;
    it_run_for(f->hb, 3000);
    int max_down = (int)it_max_process_ms;
    /* beats are skipped while disconnected, but the worker is not asked
     * more often than once per interval plus one per reconnect */
    int asked = f->w.fills - fills;

    assert_true(it_redis_start(&f->r, NULL)); /* same port, empty */
    reconnect(f);
    wait_key(f, true, 15000);
    /* the key shows the write; the log line comes with its reply */
    it_grep again = {&cap, "heartbeat: redis reachable again\n"};
    bool logged = it_run_until(f->hb, 5000, it_stderr_has, &again);
    char *log = it_stderr_end(&cap);

    char unreachable[128];
    snprintf(unreachable, sizeof unreachable,
             "heartbeat: redis 127.0.0.1:%d unreachable: ", f->r.port);
    bool ok = logged && it_count(log, unreachable) == 1 && it_count(log, "; retrying\n") == 1 &&
              it_count(log, "heartbeat: redis reachable again\n") == 1 &&
              strstr(log, unreachable) < strstr(log, "reachable again");
    free(log); /* (it_stderr_end echoed it) */
    if (!ok) fail_msg("want one 'unreachable ...; retrying' line, then one 'reachable again'");
    if (max_down >= BLOCK_BOUND_MS || it_max_process_ms >= BLOCK_BOUND_MS)
        fail_msg("rb_heartbeat_process blocked for %d ms (overall max %lld ms)", max_down,
                 (long long)it_max_process_ms);
    assert_true(asked <= 3000 / INTERVAL + 2);

    /* and it keeps beating on the new server */
    char *a = it_hget(f->c, f->key, "beat_ms");
    it_keycheck k = {.c = f->c, .key = f->key, .field = "beat_ms", .value = a};
    assert_non_null(a);
    it_run_for(f->hb, 3 * INTERVAL);
    assert_false(it_field_is(&k));
    free(a);
}

static void test_redis_stalled(void **state)
{
    fixture *f = *state;
    f->hb = new_hb(f->r.url, &f->w);
    wait_key(f, true, 10000);

    it_stderr cap;
    it_stderr_begin(&cap);
    /* Redis accepts connections but answers nothing for 2 s */
    redisContext *admin = it_connect(f->r.url);
    assert_non_null(admin);
    redisReply *r = redisCommand(admin, "CLIENT PAUSE 2000 ALL");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(admin);
    it_run_for(f->hb, 1500);
    int max_stalled = (int)it_max_process_ms;

    /* after the pause, a beat's reply comes back in time again, and the
     * counter change it carried is there */
    f->w.ok = 1234;
    it_grep again = {&cap, "heartbeat: redis reachable again\n"};
    bool resumed = it_run_until(f->hb, 15000, it_stderr_has, &again);
    char *log = it_stderr_end(&cap);
    bool ok = resumed &&
              it_count(log, "unreachable: no reply within 200 ms; retrying\n") +
                      it_count(log, "unreachable: connect timed out after 200 ms; retrying\n") ==
                  1 &&
              it_count(log, "reachable again\n") == 1;
    free(log);
    if (!ok) fail_msg("want one timeout line, then one 'reachable again'");
    it_keycheck k = {.c = f->c, .key = f->key, .field = "jobs_ok", .value = "1234"};
    assert_true(it_field_is(&k));
    if (max_stalled >= BLOCK_BOUND_MS)
        fail_msg("rb_heartbeat_process blocked for %d ms while Redis stalled", max_stalled);
}

static void test_stop_while_redis_is_down(void **state)
{
    fixture *f = *state;
    f->hb = new_hb(f->r.url, &f->w);
    wait_key(f, true, 10000);
    it_stderr cap;
    it_stderr_begin(&cap);
    assert_true(it_redis_shutdown(&f->r));
    int64_t t0 = rb_hb_mono_ms();
    int rc = rb_heartbeat_stop(f->hb, 500);
    int64_t took = rb_hb_mono_ms() - t0;
    char *log = it_stderr_end(&cap);
    bool logged = strstr(log, "heartbeat: could not remove this worker from redis 127.0.0.1:");
    free(log);
    assert_int_equal(rc, -1);
    assert_true(logged);
    /* bounded by its timeout (plus slack for a loaded machine) */
    assert_true(took < 500 + 1000);
}

static void test_password_and_db(void **state)
{
    fixture *f = *state;
    char url[256];
    /* ':' and '@' in the password travel percent-encoded */
    snprintf(url, sizeof url, "redis://:pa%%3Ass%%40word@127.0.0.1:%d/3", f->r.port);
    f->hb = new_hb(url, &f->w);
    redisReply *r = redisCommand(f->c, "SELECT 3");
    assert_non_null(r);
    freeReplyObject(r);
    wait_key(f, true, 10000);
    r = redisCommand(f->c, "SELECT 0");
    freeReplyObject(r);
    assert_int_equal(it_int(f->c, "EXISTS %s", f->key), 0);
    assert_int_equal(rb_heartbeat_stop(f->hb, 2000), 0);
    r = redisCommand(f->c, "SELECT 3");
    freeReplyObject(r);
    assert_int_equal(it_int(f->c, "EXISTS %s", f->key), 0);
}

static void test_wrong_password_is_reported_once(void **state)
{
    fixture *f = *state;
    char url[256];
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d/0", f->r.port);
    it_stderr cap;
    it_stderr_begin(&cap);
    f->hb = new_hb(url, &f->w);
    it_run_for(f->hb, 2000);
    char *log = it_stderr_end(&cap);
    bool ok = it_count(log, "unreachable: AUTH: ") == 1 && it_count(log, "; retrying\n") == 1;
    free(log);
    if (!ok) fail_msg("want one 'unreachable: AUTH: ...; retrying' line");
    assert_int_equal(it_int(f->c, "EXISTS %s", f->key), 0);
    assert_true(it_max_process_ms < BLOCK_BOUND_MS);
}

static void test_unix_socket(void **state)
{
    fixture *f = *state;
    char url[256];
    snprintf(url, sizeof url, "unix://%s?db=2", f->r.sock);
    f->hb = new_hb(url, &f->w);
    redisReply *r = redisCommand(f->c, "SELECT 2");
    freeReplyObject(r);
    wait_key(f, true, 10000);
    assert_int_equal(rb_heartbeat_stop(f->hb, 2000), 0);
    assert_int_equal(it_int(f->c, "EXISTS %s", f->key), 0);
}

static void test_no_server_at_all(void **state)
{
    fixture *f = *state;
    char url[256];
    snprintf(url, sizeof url, "unix://%s/nonexistent.sock", f->r.dir);
    it_stderr cap;
    it_stderr_begin(&cap);
    f->hb = new_hb(url, &f->w);
    it_run_for(f->hb, 1000);
    char *log = it_stderr_end(&cap);
    bool ok = it_count(log, "unreachable: ") == 1 && strstr(log, "nonexistent.sock") != NULL;
    free(log);
    if (!ok) fail_msg("want one 'unreachable' line naming the socket");
    assert_true(it_max_process_ms < BLOCK_BOUND_MS);
}

int main(void)
{
    const char *url = getenv("REBOUND_TEST_REDIS_URL");
    if (url == NULL || url[0] == '\0') {
        fprintf(stderr, "REBOUND_TEST_REDIS_URL is not set: skipped\n");
        return IT_SKIP;
    }
    if (access("/usr/bin/redis-server", X_OK) != 0) {
        fprintf(stderr, "/usr/bin/redis-server is missing: skipped\n");
        return IT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_stopped_and_restarted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_stalled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_redis_is_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_and_db, setup_password, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password_is_reported_once, setup_password,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_server_at_all, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
