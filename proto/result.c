/* result.c - packing result messages and per-call results. */
#include <stdio.h>

#include "proto_internal.h"

const char *rb_status_name(rb_status st)
{
    static const char *const names[RB_STATUS_COUNT] = {
        [RB_STATUS_OK] = "ok",
        [RB_STATUS_ERROR] = "error",
        [RB_STATUS_TIMEOUT] = "timeout",
        [RB_STATUS_CRASHED] = "crashed",
        [RB_STATUS_REJECTED] = "rejected",
    };
    if ((unsigned)st >= RB_STATUS_COUNT) return "unknown";
    return names[st];
}

/* Pre-packed bytes go through the packer's own callback, so they land in
 * whatever the packer writes to (an sbuffer, or the size counter below). */
static int pack_raw(msgpack_packer *pk, const void *buf, size_t len)
{
    if (len == 0) return 0;
    return pk->callback(pk->data, buf, len);
}

static int pack_error_map(msgpack_packer *pk, const char *type, const char *message,
                          const char *traceback, bool with_traceback)
{
    int rc = msgpack_pack_map(pk, with_traceback ? 3 : 2);
    rc |= rb_pack_key(pk, "type");
    rc |= rb_pack_cstr(pk, type);
    rc |= rb_pack_key(pk, "message");
    rc |= rb_pack_cstr(pk, message ? message : "");
    if (with_traceback) {
        rc |= rb_pack_key(pk, "traceback");
        rc |= rb_pack_cstr(pk, traceback ? traceback : "");
    }
    return rc ? -1 : 0;
}

/* cpu_ms, max_rss_kb, wall_ms (those measured) and exit (when known). */
static int pack_usage(msgpack_packer *pk, const rb_usage *u, const rb_exit_info *e)
{
    int rc = 0;
    if (u->has_cpu) {
        rc |= rb_pack_key(pk, "cpu_ms");
        rc |= msgpack_pack_double(pk, u->cpu_ms);
        rc |= rb_pack_key(pk, "max_rss_kb");
        rc |= msgpack_pack_int64(pk, u->max_rss_kb);
    }
    if (u->has_wall) {
        rc |= rb_pack_key(pk, "wall_ms");
        rc |= msgpack_pack_double(pk, u->wall_ms);
    }
    if (e->known) {
        rc |= rb_pack_key(pk, "exit");
        if (e->signal) {
            rc |= msgpack_pack_map(pk, 2);
            rc |= rb_pack_key(pk, "signal");
            rc |= msgpack_pack_int(pk, e->signal);
            rc |= rb_pack_key(pk, "core");
            rc |= e->core ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        } else {
            rc |= msgpack_pack_map(pk, 1);
            rc |= rb_pack_key(pk, "code");
            rc |= msgpack_pack_int(pk, e->code);
        }
    }
    return rc;
}

int rb_result_pack(const rb_result *r, msgpack_sbuffer *sbuf)
{
    size_t start = sbuf->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);

    size_t nkeys = 6 + (r->error_type ? 1 : 0) + (r->redelivered ? 1 : 0) +
                   (r->usage.has_cpu ? 2 : 0) + r->usage.has_wall + r->exit.known +
                   (r->timing != NULL);
    int rc = msgpack_pack_map(&pk, nkeys);
    rc |= rb_pack_key(&pk, "v");
    rc |= msgpack_pack_int(&pk, RB_PROTO_VERSION);
    rc |= rb_pack_key(&pk, "id");
    rc |= rb_pack_cstr(&pk, r->id);
    rc |= rb_pack_key(&pk, "status");
    rc |= rb_pack_cstr(&pk, rb_status_name(r->status));
    rc |= rb_pack_key(&pk, "results");
    rc |= msgpack_pack_array(&pk, r->call_results ? r->ncalls : 0);
    if (r->call_results) rc |= pack_raw(&pk, r->call_results, r->call_results_len);
    if (r->error_type) {
        rc |= rb_pack_key(&pk, "error");
        rc |= pack_error_map(&pk, r->error_type, r->error_message, NULL, false);
    }
    rc |= rb_pack_key(&pk, "worker");
    rc |= rb_pack_cstr(&pk, r->worker);
    rc |= rb_pack_key(&pk, "ms");
    rc |= msgpack_pack_double(&pk, r->ms);
    if (r->redelivered) {
        rc |= rb_pack_key(&pk, "redelivered");
        rc |= msgpack_pack_true(&pk);
    }
    rc |= pack_usage(&pk, &r->usage, &r->exit);
    if (r->timing) {
        rc |= rb_pack_key(&pk, "timing");
        rc |= msgpack_pack_map(&pk, r->timing->n);
        for (size_t i = 0; i < r->timing->n; i++) {
            rc |= rb_pack_key(&pk, r->timing->stage[i]);
            rc |= msgpack_pack_int64(&pk, r->timing->us[i]);
        }
    }
    if (rc) {
        sbuf->size = start; /* no half-written message left behind */
        return -1;
    }
    return 0;
}

int rb_result_pack_rejected(const char *id, const char *worker, const char *message,
                            msgpack_sbuffer *sbuf)
{
    rb_result r = {
        .id = id,
        .status = RB_STATUS_REJECTED,
        .error_type = "InvalidJob",
        .error_message = message,
        .worker = worker,
    };
    return rb_result_pack(&r, sbuf);
}

/* ---- call results ---------------------------------------------------------- */

static int count_bytes(void *data, const char *buf, size_t len)
{
    (void)buf;
    *(size_t *)data += len;
    return 0;
}

/*
 * What actually goes into the map: the call result as given, or its
 * replacement when it is too large (val nil, no args, the size error, and
 * possibly a shortened output).
 */
typedef struct cr_view {
    const rb_call_result *cr;
    bool dropped;
    const char *drop_message;
    size_t output_len;
    bool truncated;
} cr_view;

static int pack_cr(msgpack_packer *pk, const cr_view *v)
{
    const rb_call_result *cr = v->cr;
    bool with_args = !v->dropped && cr->args;
    bool with_error = v->dropped || cr->error_type;
    size_t nkeys = 4 + (with_args ? 1 : 0) + (v->truncated ? 1 : 0) + (with_error ? 1 : 0);

    int rc = msgpack_pack_map(pk, nkeys);
    rc |= rb_pack_key(pk, "present");
    rc |= cr->present ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    rc |= rb_pack_key(pk, "val");
    if (!v->dropped && cr->val)
        rc |= pack_raw(pk, cr->val, cr->val_len);
    else
        rc |= msgpack_pack_nil(pk);
    if (with_args) {
        rc |= rb_pack_key(pk, "args");
        rc |= pack_raw(pk, cr->args, cr->args_len);
    }
    rc |= rb_pack_key(pk, "output");
    rc |= rb__pack_text(pk, cr->output ? cr->output : "", cr->output ? v->output_len : 0);
    if (v->truncated) {
        rc |= rb_pack_key(pk, "truncated");
        rc |= msgpack_pack_true(pk);
    }
    if (with_error) {
        rc |= rb_pack_key(pk, "error");
        if (v->dropped)
            rc |= pack_error_map(pk, "ValueError", v->drop_message, "", true);
        else
            rc |= pack_error_map(pk, cr->error_type, cr->error_message, cr->error_traceback, true);
    }
    rc |= rb_pack_key(pk, "ms");
    rc |= msgpack_pack_double(pk, cr->ms);
    return rc ? -1 : 0;
}

static size_t packed_size(const cr_view *v)
{
    size_t n = 0;
    msgpack_packer counter;
    msgpack_packer_init(&counter, &n, count_bytes);
    pack_cr(&counter, v);
    return n;
}

/* Largest k <= n such that s[0..k) does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n)
{
    size_t k = n;
    for (int back = 0; back < 3 && k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80; back++)
        k--;
    return k;
}

/*
 * Sizes are measured by packing into a byte counter first, so the limit is
 * exact and nothing large is copied twice. When the real result does not
 * fit, the replacement keeps the output (which the caller capped already)
 * and is shortened further only if even that would not fit.
 */
int rb_call_result_pack(const rb_call_result *cr, size_t max_bytes, msgpack_sbuffer *sbuf)
{
    cr_view v = {.cr = cr, .output_len = cr->output_len, .truncated = cr->truncated};
    char message[128];

    size_t full = packed_size(&v);
    if (max_bytes && full > max_bytes) {
        snprintf(message, sizeof message, "result too large: %zu bytes over the %zu-byte limit",
                 full, max_bytes);
        v.dropped = true;
        v.drop_message = message;
        size_t size = packed_size(&v);
        while (size > max_bytes && v.output_len > 0) {
            size_t excess = size - max_bytes + 8; /* +8: the str header may shrink less */
            size_t keep = excess >= v.output_len ? 0 : v.output_len - excess;
            v.output_len = utf8_cut(cr->output, keep);
            v.truncated = true;
            size = packed_size(&v);
        }
        /* A limit smaller than the fixed part of the map cannot be met;
         * the smallest form is packed regardless. */
    }

    size_t start = sbuf->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    if (pack_cr(&pk, &v) < 0) {
        sbuf->size = start;
        return -1;
    }
    return 0;
}
