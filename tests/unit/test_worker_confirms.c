/* Publisher-confirm bookkeeping of rebound-worker: held and pending results,
 * single and multiple acks, nacks, and a lost connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "confirms.h"

static rb_outmsg *msg(const char *name)
{
    char *body = strdup(name);
    rb_outmsg *m = rb_outmsg_new("reply-q", name, strlen(name), body, strlen(name), true);
    assert_non_null(m);
    return m;
}

/* Collects what a confirm hands over, in order. */
typedef struct seen {
    char names[16][32];
    int n;
} seen;

static void collect(void *ctx, rb_outmsg *m)
{
    seen *s = ctx;
    assert_true(s->n < 16);
    strcpy(s->names[s->n++], m->correlation_id);
    rb_outmsg_free(m);
}

/* Publish every held message with consecutive seqs from first. */
static void publish_all(rb_outbox *ob, uint64_t first)
{
    rb_outmsg *m;
    while ((m = rb_outbox_take_held(ob)))
        rb_outbox_published(ob, m, first++);
}

static void test_new_copies_and_owns(void **state)
{
    (void)state;
    char cid[] = {'a', '\0', 'b'}; /* a correlation id may hold any byte */
    rb_outmsg *m = rb_outmsg_new("rk", cid, 3, strdup("body"), 4, false);
    assert_non_null(m);
    assert_string_equal(m->routing_key, "rk");
    assert_int_equal(m->correlation_id_len, 3);
    assert_memory_equal(m->correlation_id, cid, 3);
    assert_false(m->persistent);
    assert_int_equal(m->settle, RB_SETTLE_NONE);
    rb_outmsg_free(m);

    m = rb_outmsg_new("rk", NULL, 0, NULL, 0, true);
    assert_non_null(m);
    assert_null(m->correlation_id);
    rb_outmsg_free(m);
}

static void test_hold_order(void **state)
{
    (void)state;
    rb_outbox ob;
    rb_outbox_init(&ob);
    assert_true(rb_outbox_empty(&ob));
    rb_outbox_hold(&ob, msg("a"));
    rb_outbox_hold(&ob, msg("b"));
    rb_outbox_hold_front(&ob, msg("z"));
    assert_int_equal(ob.nheld, 3);
    const char *want[] = {"z", "a", "b"};
    for (int i = 0; i < 3; i++) {
        rb_outmsg *m = rb_outbox_take_held(&ob);
        assert_string_equal(m->correlation_id, want[i]);
        rb_outmsg_free(m);
    }
    assert_null(rb_outbox_take_held(&ob));
    assert_true(rb_outbox_empty(&ob));
    rb_outbox_hold_front(&ob, msg("only")); /* front of an empty list */
    rb_outbox_hold(&ob, msg("next"));
    rb_outmsg *m = rb_outbox_take_held(&ob);
    assert_string_equal(m->correlation_id, "only");
    rb_outmsg_free(m);
    rb_outbox_free(&ob);
    assert_true(rb_outbox_empty(&ob));
}

static void test_single_confirms(void **state)
{
    (void)state;
    rb_outbox ob;
    rb_outbox_init(&ob);
    rb_outbox_hold(&ob, msg("a"));
    rb_outbox_hold(&ob, msg("b"));
    rb_outbox_hold(&ob, msg("c"));
    publish_all(&ob, 1);
    assert_int_equal(ob.npending, 3);

    seen s = {0};
    /* Confirms may come out of order when not multiple. */
    assert_int_equal(rb_outbox_confirm(&ob, 2, false, collect, &s), 1);
    assert_int_equal(rb_outbox_confirm(&ob, 2, false, collect, &s), 0); /* already settled */
    assert_int_equal(rb_outbox_confirm(&ob, 9, false, collect, &s), 0); /* unknown */
    assert_int_equal(rb_outbox_confirm(&ob, 3, false, collect, &s), 1);
    assert_int_equal(ob.npending, 1);
    /* The tail was removed: a new publish must still append correctly. */
    rb_outbox_hold(&ob, msg("d"));
    publish_all(&ob, 4);
    assert_int_equal(rb_outbox_confirm(&ob, 1, false, collect, &s), 1);
    assert_int_equal(rb_outbox_confirm(&ob, 4, false, collect, &s), 1);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.names[0], "b");
    assert_string_equal(s.names[1], "c");
    assert_string_equal(s.names[2], "a");
    assert_string_equal(s.names[3], "d");
    assert_true(rb_outbox_empty(&ob));
    rb_outbox_free(&ob);
}

static void test_multiple_confirms(void **state)
{
    (void)state;
    rb_outbox ob;
    rb_outbox_init(&ob);
    const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++)
        rb_outbox_hold(&ob, msg(names[i]));
    publish_all(&ob, 10);
    seen s = {0};
    assert_int_equal(rb_outbox_confirm(&ob, 12, true, collect, &s), 3); /* 10, 11, 12 */
    assert_int_equal(ob.npending, 2);
    assert_int_equal(rb_outbox_confirm(&ob, 12, true, collect, &s), 0);
    assert_int_equal(rb_outbox_confirm(&ob, 100, true, collect, &s), 2);
    assert_int_equal(s.n, 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(s.names[i], names[i]);
    assert_null(ob.pending);
    assert_null(ob.pending_tail);
    rb_outbox_free(&ob);
}

/* A nack hands the message back; holding it again publishes it anew. */
static rb_outbox *g_ob;
static void hold_again(void *ctx, rb_outmsg *m)
{
    (void)ctx;
    rb_outbox_hold(g_ob, m);
}

static void test_nack_holds_again(void **state)
{
    (void)state;
    rb_outbox ob;
    rb_outbox_init(&ob);
    g_ob = &ob;
    rb_outbox_hold(&ob, msg("a"));
    rb_outbox_hold(&ob, msg("b"));
    publish_all(&ob, 1);
    assert_int_equal(rb_outbox_confirm(&ob, 2, true, hold_again, NULL), 2);
    assert_int_equal(ob.nheld, 2);
    assert_int_equal(ob.npending, 0);
    rb_outmsg *m = rb_outbox_take_held(&ob);
    assert_string_equal(m->correlation_id, "a");
    rb_outbox_published(&ob, m, 3);
    seen s = {0};
    assert_int_equal(rb_outbox_confirm(&ob, 3, false, collect, &s), 1);
    assert_string_equal(s.names[0], "a");
    rb_outbox_free(&ob);
}

static void test_connection_lost(void **state)
{
    (void)state;
    rb_outbox ob;
    rb_outbox_init(&ob);
    rb_outbox_hold(&ob, msg("p1"));
    rb_outbox_hold(&ob, msg("p2"));
    publish_all(&ob, 1);
    rb_outbox_hold(&ob, msg("h1")); /* not yet published */
    rb_outbox_requeue_pending(&ob);
    assert_int_equal(ob.npending, 0);
    assert_int_equal(ob.nheld, 3);
    /* Published ones first, in publish order, then the rest. */
    const char *want[] = {"p1", "p2", "h1"};
    for (int i = 0; i < 3; i++) {
        rb_outmsg *m = rb_outbox_take_held(&ob);
        assert_string_equal(m->correlation_id, want[i]);
        /* New connection: seqs start at 1 again. */
        rb_outbox_published(&ob, m, (uint64_t)i + 1);
    }
    seen s = {0};
    assert_int_equal(rb_outbox_confirm(&ob, 3, true, collect, &s), 3);
    rb_outbox_requeue_pending(&ob); /* nothing pending: a no-op */
    assert_true(rb_outbox_empty(&ob));

    /* Lost with nothing held: the pending list becomes the held list. */
    rb_outbox_hold(&ob, msg("x"));
    publish_all(&ob, 1);
    rb_outbox_requeue_pending(&ob);
    assert_non_null(ob.held_tail);
    rb_outbox_hold(&ob, msg("y"));
    rb_outmsg *m = rb_outbox_take_held(&ob);
    assert_string_equal(m->correlation_id, "x");
    rb_outmsg_free(m);
    rb_outbox_free(&ob);
}

static void test_retry_later(void **state)
{
    (void)state;
    rb_outbox ob;
    rb_outbox_init(&ob);
    assert_int_equal(rb_outbox_release_due(&ob, 0), -1);
    rb_outbox_retry_later(&ob, msg("late"), 300);
    rb_outbox_retry_later(&ob, msg("soon"), 100);
    rb_outbox_retry_later(&ob, msg("mid"), 200);
    assert_false(rb_outbox_empty(&ob)); /* waiting still counts */
    assert_int_equal(rb_outbox_release_due(&ob, 50), 100);
    assert_int_equal(ob.nheld, 0);
    assert_int_equal(rb_outbox_release_due(&ob, 200), 300);
    assert_int_equal(ob.nheld, 2);
    assert_int_equal(ob.nretry, 1);
    rb_outmsg *m = rb_outbox_take_held(&ob);
    assert_string_equal(m->correlation_id, "mid");
    rb_outmsg_free(m);
    m = rb_outbox_take_held(&ob);
    assert_string_equal(m->correlation_id, "soon");
    rb_outmsg_free(m);
    /* A lost connection leaves waiting messages where they are. */
    rb_outbox_requeue_pending(&ob);
    assert_int_equal(ob.nretry, 1);
    rb_outbox_free(&ob); /* frees "late" too (ASan would tell) */
    assert_true(rb_outbox_empty(&ob));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_copies_and_owns), cmocka_unit_test(test_hold_order),
        cmocka_unit_test(test_single_confirms),     cmocka_unit_test(test_multiple_confirms),
        cmocka_unit_test(test_nack_holds_again),    cmocka_unit_test(test_connection_lost),
        cmocka_unit_test(test_retry_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
