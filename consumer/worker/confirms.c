/* confirms.c - held and pending result messages (see confirms.h). */
#include <stdlib.h>
#include <string.h>

#include "confirms.h"

rb_outmsg *rb_outmsg_new(const char *routing_key, const char *correlation_id,
                         size_t correlation_id_len, void *body, size_t len, bool persistent)
{
    rb_outmsg *m = calloc(1, sizeof *m);
    if (!m) {
        free(body);
        return NULL;
    }
    m->body = body;
    m->len = len;
    m->persistent = persistent;
    rb_backoff_init(&m->retry, RB_OUTMSG_RETRY_MIN_MS, RB_OUTMSG_RETRY_MAX_MS, false);
    m->routing_key = strdup(routing_key);
    if (correlation_id) {
        m->correlation_id = malloc(correlation_id_len + 1);
        if (m->correlation_id) {
            memcpy(m->correlation_id, correlation_id, correlation_id_len);
            m->correlation_id[correlation_id_len] = '\0';
            m->correlation_id_len = correlation_id_len;
        }
    }
    if (!m->routing_key || (correlation_id && !m->correlation_id)) {
        rb_outmsg_free(m);
        return NULL;
    }
    return m;
}

void rb_outmsg_free(rb_outmsg *m)
{
    if (!m) return;
    free(m->routing_key);
    free(m->correlation_id);
    free(m->job_id);
    free(m->reply_to);
    free(m->body);
    free(m);
}

void rb_outbox_init(rb_outbox *ob)
{
    memset(ob, 0, sizeof *ob);
}

static void free_list(rb_outmsg *m)
{
    while (m) {
        rb_outmsg *next = m->next;
        rb_outmsg_free(m);
        m = next;
    }
}

void rb_outbox_free(rb_outbox *ob)
{
    free_list(ob->held);
    free_list(ob->pending);
    free_list(ob->retry);
    rb_outbox_init(ob);
}

bool rb_outbox_empty(const rb_outbox *ob)
{
    return ob->nheld == 0 && ob->npending == 0 && ob->nretry == 0;
}

void rb_outbox_hold(rb_outbox *ob, rb_outmsg *m)
{
    m->next = NULL;
    if (ob->held_tail)
        ob->held_tail->next = m;
    else
        ob->held = m;
    ob->held_tail = m;
    ob->nheld++;
}

void rb_outbox_hold_front(rb_outbox *ob, rb_outmsg *m)
{
    m->next = ob->held;
    ob->held = m;
    if (!ob->held_tail) ob->held_tail = m;
    ob->nheld++;
}

rb_outmsg *rb_outbox_take_held(rb_outbox *ob)
{
    rb_outmsg *m = ob->held;
    if (!m) return NULL;
    ob->held = m->next;
    if (!ob->held) ob->held_tail = NULL;
    ob->nheld--;
    m->next = NULL;
    return m;
}

void rb_outbox_published(rb_outbox *ob, rb_outmsg *m, uint64_t seq)
{
    m->seq = seq;
    m->returned = false; /* published again: whether it routes is for this time to say */
    m->next = NULL;
    if (ob->pending_tail)
        ob->pending_tail->next = m;
    else
        ob->pending = m;
    ob->pending_tail = m;
    ob->npending++;
}

size_t rb_outbox_confirm(rb_outbox *ob, uint64_t seq, bool multiple, rb_outbox_fn fn, void *ctx)
{
    size_t n = 0;
    rb_outmsg **link = &ob->pending;
    rb_outmsg *prev = NULL;
    while (*link) {
        rb_outmsg *m = *link;
        bool match = multiple ? m->seq <= seq : m->seq == seq;
        if (!match) {
            /* Pending seqs ascend: past seq nothing can match any more. */
            if (m->seq > seq) break;
            prev = m;
            link = &m->next;
            continue;
        }
        *link = m->next;
        if (ob->pending_tail == m) ob->pending_tail = prev;
        ob->npending--;
        m->next = NULL;
        n++;
        fn(ctx, m);
        if (!multiple) break;
    }
    return n;
}

void rb_outbox_requeue_pending(rb_outbox *ob)
{
    if (!ob->pending) return;
    ob->pending_tail->next = ob->held;
    if (!ob->held) ob->held_tail = ob->pending_tail;
    ob->held = ob->pending;
    ob->nheld += ob->npending;
    ob->pending = ob->pending_tail = NULL;
    ob->npending = 0;
}

void rb_outbox_retry_later(rb_outbox *ob, rb_outmsg *m, int64_t at_ms)
{
    m->retry_at_ms = at_ms;
    m->next = ob->retry;
    ob->retry = m;
    ob->nretry++;
}

int64_t rb_outbox_release_due(rb_outbox *ob, int64_t now_ms)
{
    int64_t next = -1;
    rb_outmsg **link = &ob->retry;
    while (*link) {
        rb_outmsg *m = *link;
        if (m->retry_at_ms <= now_ms) {
            *link = m->next;
            ob->nretry--;
            rb_outbox_hold(ob, m);
            continue;
        }
        if (next < 0 || m->retry_at_ms < next) next = m->retry_at_ms;
        link = &m->next;
    }
    return next;
}

rb_outmsg *rb_outbox_find_pending(rb_outbox *ob, const char *routing_key,
                                  const char *correlation_id, size_t correlation_id_len)
{
    for (rb_outmsg *m = ob->pending; m; m = m->next) {
        if (m->returned || strcmp(m->routing_key, routing_key) != 0) continue;
        bool same = correlation_id
                        ? m->correlation_id && m->correlation_id_len == correlation_id_len &&
                              memcmp(m->correlation_id, correlation_id, correlation_id_len) == 0
                        : !m->correlation_id;
        if (same) return m;
    }
    return NULL;
}
