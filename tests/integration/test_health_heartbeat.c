/*
 * test_health_heartbeat.c - the heartbeat library against the shared test
 * Redis (REBOUND_TEST_REDIS_URL): what a beat writes, refreshes, beat_now,
 * warm stop, and a writer that dies without stopping (expiry, shown as
 * lost by rebound-status, pruned by another writer).
 *
 * Each test uses its own key prefix, so tests never see each other's keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "health_itest.h"

#define INTERVAL 200 /* ms: TTL 600 ms, pruning after 2 s */

static const char *redis_url;

typedef struct fixture {
    char prefix[64];
    char key[128];     /* prefix:worker:<id> */
    char set_key[128]; /* prefix:workers */
    redisContext *c;
    it_worker w;
    rb_heartbeat *hb;
} fixture;

static int setup(void **state)
{
    static int n;
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->prefix, sizeof f->prefix, "rbtest-hb-%d-%d", (int)getpid(), ++n);
    it_worker_init(&f->w, "w-one");
    snprintf(f->key, sizeof f->key, "%s:worker:%s", f->prefix, f->w.id);
    snprintf(f->set_key, sizeof f->set_key, "%s:workers", f->prefix);
    f->c = it_connect(redis_url);
    if (f->c == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rb_heartbeat_free(f->hb);
    redisReply *keys = redisCommand(f->c, "KEYS %s:*", f->prefix);
    for (size_t i = 0; keys != NULL && i < keys->elements; i++)
        freeReplyObject(redisCommand(f->c, "DEL %s", keys->element[i]->str));
    if (keys != NULL) freeReplyObject(keys);
    redisFree(f->c);
    free(f);
    return 0;
}

static rb_heartbeat *new_hb(fixture *f, it_worker *w, int interval)
{
    rb_err err = {{0}};
    rb_heartbeat *hb = rb_heartbeat_new(redis_url, f->prefix, interval, it_fill, w, &err);
    if (hb == NULL) fail_msg("rb_heartbeat_new: %s", err.msg);
    return hb;
}

static void wait_exists(fixture *f, rb_heartbeat *hb, const char *key, bool want)
{
    it_keycheck k = {.c = f->c, .key = key, .want = want};
    if (!it_run_until(hb, 10000, it_key_exists_is, &k))
        fail_msg("%s: still %s after 10 s", key, want ? "missing" : "present");
}

static void wait_field(fixture *f, rb_heartbeat *hb, const char *field, const char *value)
{
    it_keycheck k = {.c = f->c, .key = f->key, .field = field, .value = value};
    if (!it_run_until(hb, 10000, it_field_is, &k)) {
        char *v = it_hget(f->c, f->key, field);
        fail_msg("%s: %s is '%s', waited 10 s for '%s'", f->key, field, v ? v : "(none)", value);
    }
}

static void expect_field(fixture *f, const char *field, const char *want)
{
    char *v = it_hget(f->c, f->key, field);
    if (v == NULL || strcmp(v, want) != 0)
        fail_msg("%s: %s is '%s', want '%s'", f->key, field, v ? v : "(none)", want);
    free(v);
}

static void test_beat_writes_the_contract(void **state)
{
    fixture *f = *state;
    f->w.busy = 1;
    f->w.ok = 7;
    f->w.error = 1;
    f->w.timeout = 2;
    f->w.crashed = 3;
    f->w.rejected = 4;
    f->w.redelivered = 5;
    f->w.last_job_ms = 1700000000123;
    f->w.avg_run_ms = 12.5;
    f->hb = new_hb(f, &f->w, INTERVAL);
    int64_t before = rb_hb_unix_ms();
    wait_exists(f, f->hb, f->key, true);

    expect_field(f, "id", "w-one");
    expect_field(f, "host", "testhost");
    expect_field(f, "pid", "4242");
    expect_field(f, "queue", "rebound.jobs");
    expect_field(f, "mode", "fork");
    expect_field(f, "version", "9.9.9");
    expect_field(f, "state", "ready");
    expect_field(f, "started_ms", "1700000000000");
    expect_field(f, "slots", "4");
    expect_field(f, "busy", "1");
    expect_field(f, "jobs_ok", "7");
    expect_field(f, "jobs_error", "1");
    expect_field(f, "jobs_timeout", "2");
    expect_field(f, "jobs_crashed", "3");
    expect_field(f, "jobs_rejected", "4");
    expect_field(f, "redelivered", "5");
    expect_field(f, "last_job_ms", "1700000000123");
    expect_field(f, "avg_run_ms", "12.50");
    expect_field(f, "rss_kb", "65536");
    expect_field(f, "preload_failed", "lxml");
    expect_field(f, "sandbox", "none");
    assert_int_equal(it_int(f->c, "HLEN %s", f->key), RB_HB_NFIELDS);

    /* beat_ms is wall-clock ms, and the set's score is the same number */
    char *beat = it_hget(f->c, f->key, "beat_ms");
    assert_non_null(beat);
    long long beat_ms = atoll(beat);
    assert_true(beat_ms >= before - 1000 && beat_ms <= rb_hb_unix_ms() + 1000);
    redisReply *score = it_cmd(f->c, "ZSCORE %s %s", f->set_key, "w-one");
    assert_non_null(score);
    assert_int_equal(score->type, REDIS_REPLY_STRING);
    assert_int_equal(atoll(score->str), beat_ms);
    freeReplyObject(score);
    free(beat);

    /* the hash expires unless refreshed: TTL 3 x interval */
    long long pttl = it_int(f->c, "PTTL %s", f->key);
    assert_true(pttl > 0 && pttl <= 3 * INTERVAL);
}

static void test_beats_refresh_and_counters_move(void **state)
{
    fixture *f = *state;
    f->hb = new_hb(f, &f->w, INTERVAL);
    wait_exists(f, f->hb, f->key, true);
    char *first = it_hget(f->c, f->key, "beat_ms");
    assert_non_null(first);

    f->w.ok = 41;
    f->w.crashed = 2;
    f->w.busy = 3;
    f->w.rss_kb = 99999;
    wait_field(f, f->hb, "jobs_ok", "41");
    expect_field(f, "jobs_crashed", "2");
    expect_field(f, "busy", "3");
    expect_field(f, "rss_kb", "99999");

    /* a later beat carries a later beat_ms and a fresh TTL */
    char *later = it_hget(f->c, f->key, "beat_ms");
    assert_non_null(later);
    assert_true(atoll(later) > atoll(first));
    long long pttl = it_int(f->c, "PTTL %s", f->key);
    assert_true(pttl > 0 && pttl <= 3 * INTERVAL);
    free(first);
    free(later);

    /* the writer keeps its member alive while it beats */
    it_run_for(f->hb, 12 * INTERVAL);
    it_keycheck k = {.c = f->c, .key = f->set_key, .member = "w-one", .want = true};
    assert_true(it_member_is(&k));
    assert_int_equal(it_int(f->c, "EXISTS %s", f->key), 1);
}

static void test_beat_now_sends_without_waiting_for_the_interval(void **state)
{
    fixture *f = *state;
    /* with a one-minute interval, only beat_now can bring the new state
     * within the wait below */
    f->hb = new_hb(f, &f->w, 60000);
    wait_exists(f, f->hb, f->key, true);
    expect_field(f, "state", "ready");
    /* (the first beat's reply may still be on its way: then the forced
     * beat follows it, rather than being skipped like a regular one) */
    f->w.state = "draining";
    rb_heartbeat_beat_now(f->hb);
    wait_field(f, f->hb, "state", "draining");
}

static void test_stop_removes_hash_and_member(void **state)
{
    fixture *f = *state;
    f->hb = new_hb(f, &f->w, INTERVAL);
    wait_exists(f, f->hb, f->key, true);
    it_keycheck k = {.c = f->c, .key = f->set_key, .member = "w-one", .want = true};
    assert_true(it_member_is(&k));

    /* a beat queued just before the stop must not resurrect the hash */
    f->w.state = "draining";
    rb_heartbeat_beat_now(f->hb);
    assert_int_equal(rb_heartbeat_stop(f->hb, 2000), 0);

    assert_int_equal(it_int(f->c, "EXISTS %s", f->key), 0);
    k.want = false;
    assert_true(it_member_is(&k));
    /* and nothing comes back afterwards */
    it_run_for(f->hb, 3 * INTERVAL);
    assert_int_equal(it_int(f->c, "EXISTS %s", f->key), 0);
    assert_true(it_member_is(&k));
    assert_int_equal(rb_heartbeat_pollfd(f->hb, &(struct pollfd){0}), 0);
}

/* Parse rebound-status --json; returns the entry for id (a new reference). */
static json_t *status_entry(fixture *f, const char *id, int *exit_code)
{
    const char *args[] = {"--redis-url", redis_url, "--prefix", f->prefix, "--json", NULL};
    char *out;
    *exit_code = it_run_status(&out, args);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    if (root == NULL)
        fail_msg("rebound-status --json (exit %d) printed no JSON: %s\n%s", *exit_code, jerr.text,
                 out);
    free(out);
    json_t *found = NULL, *w;
    size_t i;
    json_array_foreach(json_object_get(root, "workers"), i, w)
    {
        if (strcmp(json_string_value(json_object_get(w, "id")), id) == 0) found = json_incref(w);
    }
    json_decref(root);
    return found;
}

static void test_killed_writer_is_lost_then_pruned(void **state)
{
    fixture *f = *state;
    f->hb = new_hb(f, &f->w, INTERVAL);
    wait_exists(f, f->hb, f->key, true);
    char *beat = it_hget(f->c, f->key, "beat_ms");
    assert_non_null(beat);

    int code;
    json_t *e = status_entry(f, "w-one", &code);
    assert_non_null(e);
    assert_int_equal(code, 0); /* a ready worker */
    assert_true(json_is_false(json_object_get(e, "lost")));
    json_decref(e);

    /* as after kill -9: no stop, no more beats */
    rb_heartbeat_free(f->hb);
    f->hb = NULL;
    free(beat);
    wait_exists(f, NULL, f->key, false); /* the TTL (600 ms) ends it */

    it_keycheck member = {.c = f->c, .key = f->set_key, .member = "w-one", .want = true};
    assert_true(it_member_is(&member));
    redisReply *score = it_cmd(f->c, "ZSCORE %s %s", f->set_key, "w-one");
    long long score_ms = atoll(score->str);
    freeReplyObject(score);

    e = status_entry(f, "w-one", &code);
    assert_non_null(e);
    assert_int_equal(code, 1); /* nobody ready */
    assert_true(json_is_true(json_object_get(e, "lost")));
    assert_int_equal(json_integer_value(json_object_get(e, "beat_ms")), score_ms);
    assert_true(json_integer_value(json_object_get(e, "age_ms")) >= 0);
    assert_null(json_object_get(e, "state"));
    json_decref(e);

    /* the table says so too */
    const char *args[] = {"--redis-url", redis_url, "--prefix", f->prefix, NULL};
    char *table;
    assert_int_equal(it_run_status(&table, args), 1);
    char *row = strstr(table, "\nw-one ");
    if (row == NULL || strstr(row, " lost ") == NULL)
        fail_msg("no lost row for w-one in:\n%s", table);
    free(table);

    /* another writer prunes members older than 10 intervals */
    it_worker other;
    it_worker_init(&other, "w-two");
    rb_heartbeat *hb2 = new_hb(f, &other, INTERVAL);
    member.want = false;
    bool pruned = it_run_until(hb2, 20000, it_member_is, &member);
    it_keycheck mine = {.c = f->c, .key = f->set_key, .member = "w-two", .want = true};
    bool kept = it_member_is(&mine);
    /* the prune goes by score: it must not happen before 10 intervals */
    long long pruned_at = rb_hb_unix_ms();
    assert_int_equal(rb_heartbeat_stop(hb2, 2000), 0);
    rb_heartbeat_free(hb2);
    assert_true(pruned);
    assert_true(kept);
    assert_true(pruned_at - score_ms >= 10 * INTERVAL);
}

int main(void)
{
    redis_url = getenv("REBOUND_TEST_REDIS_URL");
    if (redis_url == NULL || redis_url[0] == '\0') {
        fprintf(stderr, "REBOUND_TEST_REDIS_URL is not set: skipped\n");
        return IT_SKIP;
    }
    if (getenv("REBOUND_BIN_DIR") == NULL) {
        fprintf(stderr, "REBOUND_BIN_DIR is not set: skipped\n");
        return IT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_beat_writes_the_contract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beats_refresh_and_counters_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beat_now_sends_without_waiting_for_the_interval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_removes_hash_and_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_writer_is_lost_then_pruned, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
