/*
 * amqp_read.c - turn incoming frames into events, without blocking.
 *
 * librabbitmq's own amqp_consume_message assembles a delivery by waiting
 * for its header and body frames; with a zero timeout a half-received
 * delivery would be lost. Here a delivery is assembled across calls
 * instead, so rb_amqp_next can always return at once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_session.h"
#include "rebound_base.h"

static char *dup_bytes(amqp_bytes_t b)
{
    char *s = malloc(b.len + 1);
    if (!s) return NULL;
    memcpy(s, b.bytes, b.len);
    s[b.len] = '\0';
    return s;
}

static rb_amqp_event_type lost(rb_amqp_event *ev, bool graceful, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rb_amqp_event_type lost(rb_amqp_event *ev, bool graceful, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->reason, sizeof ev->reason, fmt, ap);
    va_end(ap);
    ev->type = RB_EV_LOST;
    ev->graceful = graceful;
    return RB_EV_LOST;
}

/* Hand the assembled delivery over to the caller. */
static rb_amqp_event_type deliver(rb_amqp *a, rb_amqp_event *ev)
{
    bool discard = a->rd_discard, returned = a->rd_returned;
    a->rd_state = RB_RD_IDLE;
    a->rd_discard = false;
    a->rd_returned = false;
    a->rd_got = 0;
    if (returned) {
        ev->type = RB_EV_RETURNED;
        ev->delivery = a->rd;
        memset(&a->rd, 0, sizeof a->rd);
        return RB_EV_RETURNED;
    }
    if (discard) {
        rb_amqp_delivery_free(&a->rd);
        return RB_EV_NONE;
    }
    ev->type = RB_EV_DELIVERY;
    a->rd.assembled_ns = rb_mono_ns();
    ev->delivery = a->rd;
    memset(&a->rd, 0, sizeof a->rd);
    return RB_EV_DELIVERY;
}

/* The header called name, or NULL. */
static const amqp_field_value_t *find_header(const amqp_basic_properties_t *p, const char *name)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG)) return NULL;
    size_t n = strlen(name);
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len == n && memcmp(e->key.bytes, name, n) == 0) return &e->value;
    }
    return NULL;
}

/* An integer header (x-delivery-count, which a quorum queue sets on a
 * redelivery; x-rebound-deliveries, which admit.c sets), or -1. */
static int64_t int_header(const amqp_basic_properties_t *p, const char *name)
{
    const amqp_field_value_t *v = find_header(p, name);
    if (!v) return -1;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        return v->value.i8;
    case AMQP_FIELD_KIND_U8:
        return v->value.u8;
    case AMQP_FIELD_KIND_I16:
        return v->value.i16;
    case AMQP_FIELD_KIND_U16:
        return v->value.u16;
    case AMQP_FIELD_KIND_I32:
        return v->value.i32;
    case AMQP_FIELD_KIND_U32:
        return v->value.u32;
    case AMQP_FIELD_KIND_I64:
        return v->value.i64;
    case AMQP_FIELD_KIND_U64:
        return v->value.u64 > INT64_MAX ? INT64_MAX : (int64_t)v->value.u64;
    default:
        return -1;
    }
}

/* The traceparent header into out, when it is a valid one (trace.c says
 * why nothing else is passed on); else out is "". */
static void traceparent_header(const amqp_basic_properties_t *p, char *out)
{
    out[0] = '\0';
    const amqp_field_value_t *v = find_header(p, "traceparent");
    if (!v || (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES)) return;
    amqp_bytes_t b = v->value.bytes;
    if (!rb_traceparent_valid(b.bytes, b.len)) return;
    memcpy(out, b.bytes, b.len);
    out[b.len] = '\0';
}

static rb_amqp_event_type on_header(rb_amqp *a, const amqp_frame_t *f, rb_amqp_event *ev)
{
    if (a->rd_state != RB_RD_HEADER)
        return lost(ev, true, "protocol error: content header without a delivery");
    const amqp_basic_properties_t *p = f->payload.properties.decoded;
    rb_amqp_delivery *d = &a->rd;
    bool nomem = false;
    if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
        nomem |= !(d->content_type = dup_bytes(p->content_type));
    if (!a->rd_returned && (p->_flags & AMQP_BASIC_REPLY_TO_FLAG) && p->reply_to.len > 0)
        nomem |= !(d->reply_to = dup_bytes(p->reply_to));
    if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        nomem |= !(d->correlation_id = dup_bytes(p->correlation_id));
        d->correlation_id_len = p->correlation_id.len;
    }
    d->delivery_count = int_header(p, "x-delivery-count");
    d->earlier_deliveries = int_header(p, RB_AMQP_DELIVERIES_HEADER);
    traceparent_header(p, d->traceparent);
    uint64_t size = f->payload.properties.body_size;
    d->len = (size_t)size;
    d->oversize = size > a->max_body;
    if (!d->oversize && size > 0 && !a->rd_discard) nomem |= !(d->body = malloc((size_t)size));
    if (nomem) /* the broker requeues what we cannot take */
        return lost(ev, true, "out of memory receiving a %llu-byte delivery",
                    (unsigned long long)size);
    a->rd_state = RB_RD_BODY;
    a->rd_got = 0;
    if (size == 0) return deliver(a, ev);
    return RB_EV_NONE;
}

static rb_amqp_event_type on_body(rb_amqp *a, const amqp_frame_t *f, rb_amqp_event *ev)
{
    if (a->rd_state != RB_RD_BODY)
        return lost(ev, true, "protocol error: content body without a header");
    amqp_bytes_t b = f->payload.body_fragment;
    if (b.len > a->rd.len - a->rd_got)
        return lost(ev, true, "protocol error: content body longer than announced");
    if (a->rd.body) memcpy((char *)a->rd.body + a->rd_got, b.bytes, b.len);
    a->rd_got += b.len;
    if (a->rd_got == a->rd.len) return deliver(a, ev);
    return RB_EV_NONE;
}

static rb_amqp_event_type on_method(rb_amqp *a, const amqp_frame_t *f, rb_amqp_event *ev)
{
    const amqp_method_t *m = &f->payload.method;
    if (a->rd_state != RB_RD_IDLE)
        return lost(ev, true, "protocol error: method 0x%08x inside a delivery", m->id);
    switch (m->id) {
    case AMQP_BASIC_DELIVER_METHOD: {
        const amqp_basic_deliver_t *d = m->decoded;
        memset(&a->rd, 0, sizeof a->rd);
        a->rd.tag = d->delivery_tag;
        a->rd.redelivered = d->redelivered != 0;
        a->rd_state = RB_RD_HEADER;
        return RB_EV_NONE;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        /* A result published mandatory had no queue to go to (its sender's
         * reply queue is gone). Its content follows: the header names it
         * (correlation id), the body is dropped. */
        const amqp_basic_return_t *r = m->decoded;
        memset(&a->rd, 0, sizeof a->rd);
        a->rd.reply_to = dup_bytes(r->routing_key);
        a->rd_state = RB_RD_HEADER;
        a->rd_discard = true;
        a->rd_returned = a->rd.reply_to != NULL;
        return RB_EV_NONE;
    }
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *ack = m->decoded;
        ev->type = RB_EV_ACK;
        ev->seq = ack->delivery_tag;
        ev->multiple = ack->multiple != 0;
        return RB_EV_ACK;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *nack = m->decoded;
        ev->type = RB_EV_NACK;
        ev->seq = nack->delivery_tag;
        ev->multiple = nack->multiple != 0;
        return RB_EV_NACK;
    }
    case AMQP_BASIC_CANCEL_OK_METHOD:
        ev->type = RB_EV_CANCEL_OK;
        return RB_EV_CANCEL_OK;
    case AMQP_BASIC_CANCEL_METHOD:
        /* consumer_cancel_notify: the queue was deleted (or its leader
         * moved); start over on a new connection, which redeclares it. */
        return lost(ev, true, "the broker cancelled our consumer (queue deleted?)");
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *c = m->decoded;
        return lost(ev, true, "channel closed by the broker: %u %.*s", c->reply_code,
                    (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    }
    case AMQP_CONNECTION_BLOCKED_METHOD: {
        const amqp_connection_blocked_t *b = m->decoded;
        ev->type = RB_EV_BLOCKED;
        snprintf(ev->reason, sizeof ev->reason, "%.*s", (int)b->reason.len,
                 (const char *)b->reason.bytes);
        return RB_EV_BLOCKED;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        ev->type = RB_EV_UNBLOCKED;
        return RB_EV_UNBLOCKED;
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *c = m->decoded;
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(a->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        return lost(ev, false, "connection closed by the broker: %u %.*s", c->reply_code,
                    (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    }
    default:
        return RB_EV_NONE; /* e.g. a late basic.qos-ok: nothing to do */
    }
}

rb_amqp_event_type rb_amqp_next(rb_amqp *a, rb_amqp_event *ev)
{
    memset(ev, 0, sizeof *ev);
    for (;;) {
        amqp_frame_t f;
        struct timeval zero = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(a->conn, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT) return RB_EV_NONE;
        if (rc != AMQP_STATUS_OK) return lost(ev, false, "%s", amqp_error_string2(rc));

        rb_amqp_event_type t = RB_EV_NONE;
        if (f.channel != 1 && f.channel != 0) {
            /* not ours; nothing is opened there */
        } else if (f.frame_type == AMQP_FRAME_METHOD) {
            t = on_method(a, &f, ev);
        } else if (f.frame_type == AMQP_FRAME_HEADER) {
            t = on_header(a, &f, ev);
        } else if (f.frame_type == AMQP_FRAME_BODY) {
            t = on_body(a, &f, ev);
        }
        /* Everything from the frame has been copied out: the frame memory
         * can go back, unless frames queued inside librabbitmq (during a
         * publish or an RPC) still live in it. */
        if (t != RB_EV_LOST && !amqp_frames_enqueued(a->conn)) amqp_maybe_release_buffers(a->conn);
        if (t != RB_EV_NONE) return t;
    }
}
