/*
 * check.c - validation of untrusted msgpack: the structural pre-check that
 * runs before msgpack-c sees the bytes, and the UTF-8 / key-type walk over
 * the decoded tree.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto_internal.h"

/* rb_msgpack_check keeps one counter per open container on the stack. */
#define CHECK_DEPTH_CAP 1024

static uint64_t read_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

enum kind { K_SCALAR, K_STR, K_BIN, K_ARRAY, K_MAP, K_EXT, K_INVALID };

static const char *kind_name(enum kind k, unsigned char b)
{
    switch (k) {
    case K_STR:
        return "str";
    case K_BIN:
        return "bin";
    case K_ARRAY:
        return "array";
    case K_MAP:
        return "map";
    default:
        return (b == 0xca || b == 0xcb) ? "float" : "int";
    }
}

/*
 * Classify the type byte b: what it is, how many bytes of length/count
 * follow it (lenbytes), and for scalars how many payload bytes (fixed).
 * Fix-sized types carry their count in b itself (*inline_n).
 */
static enum kind classify(unsigned char b, size_t *lenbytes, size_t *fixed, uint64_t *inline_n)
{
    *lenbytes = 0;
    *fixed = 0;
    *inline_n = 0;
    if (b <= 0x7f || b >= 0xe0) return K_SCALAR;
    if (b <= 0x8f) {
        *inline_n = b & 0x0f;
        return K_MAP;
    }
    if (b <= 0x9f) {
        *inline_n = b & 0x0f;
        return K_ARRAY;
    }
    if (b <= 0xbf) {
        *inline_n = b & 0x1f;
        return K_STR;
    }
    switch (b) {
    case 0xc0: /* nil */
    case 0xc2: /* false */
    case 0xc3: /* true */
        return K_SCALAR;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        *lenbytes = (size_t)1 << (b - 0xc4);
        return K_BIN;
    case 0xca:
        *fixed = 4;
        return K_SCALAR;
    case 0xcb:
        *fixed = 8;
        return K_SCALAR;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        *fixed = (size_t)1 << (b - 0xcc);
        return K_SCALAR;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        *fixed = (size_t)1 << (b - 0xd0);
        return K_SCALAR;
    case 0xd9:
    case 0xda:
    case 0xdb:
        *lenbytes = (size_t)1 << (b - 0xd9);
        return K_STR;
    case 0xdc:
    case 0xdd:
        *lenbytes = (size_t)2 << (b - 0xdc);
        return K_ARRAY;
    case 0xde:
    case 0xdf:
        *lenbytes = (size_t)2 << (b - 0xde);
        return K_MAP;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return K_EXT;
    default: /* 0xc1 is the only byte msgpack never uses */
        return K_INVALID;
    }
}

/*
 * The walk keeps, per open container, how many objects it still expects,
 * and the total of those (pending). Every object needs at least one byte,
 * so a container may only be opened when pending plus its own count fits
 * in the bytes that remain. That bound is what makes a 5-byte body that
 * declares 4 billion elements fail here, at once, instead of inside
 * msgpack-c's allocator.
 */
int rb_msgpack_check(const void *buf, size_t len, int max_depth, rb_err *err)
{
    uint64_t left[CHECK_DEPTH_CAP + 1];
    const unsigned char *p = buf;

    if (max_depth < 1 || max_depth > CHECK_DEPTH_CAP)
        return rb_err_set(err, "max_depth %d is outside 1-%d", max_depth, CHECK_DEPTH_CAP);
    if (len == 0 || !buf) return rb_err_set(err, "empty input");

    int depth = 0; /* open containers; level 0 holds the single top object */
    left[0] = 1;
    uint64_t pending = 1;
    size_t pos = 0;

    while (pending > 0) {
        if (pos >= len)
            return rb_err_set(err, "truncated at offset %zu: %" PRIu64 " more object%s expected",
                              pos, pending, pending == 1 ? "" : "s");
        size_t at = pos;
        unsigned char b = p[pos++];
        left[depth]--;
        pending--;

        size_t lenbytes, fixed;
        uint64_t n;
        enum kind k = classify(b, &lenbytes, &fixed, &n);
        if (k == K_EXT) return rb_err_set(err, "ext type at offset %zu", at);
        if (k == K_INVALID) return rb_err_set(err, "invalid type byte 0x%02x at offset %zu", b, at);

        size_t rem = len - pos;
        if (lenbytes + fixed > rem)
            return rb_err_set(err, "truncated %s at offset %zu", kind_name(k, b), at);
        if (lenbytes) {
            n = read_be(p + pos, lenbytes);
            pos += lenbytes;
            rem -= lenbytes;
        }
        pos += fixed;

        if (k == K_STR || k == K_BIN) {
            if (n > rem) return rb_err_set(err, "truncated %s at offset %zu", kind_name(k, b), at);
            pos += (size_t)n;
        } else if (k == K_ARRAY || k == K_MAP) {
            if (depth + 1 > max_depth) return rb_err_set(err, "nesting deeper than %d", max_depth);
            uint64_t items = k == K_MAP ? 2 * n : n;
            if (items > 0) {
                if (pending > rem || items > rem - pending)
                    return rb_err_set(err, "truncated %s at offset %zu", kind_name(k, b), at);
                left[++depth] = items;
                pending += items;
            }
        }
        while (depth > 0 && left[depth] == 0)
            depth--;
    }
    if (pos < len) {
        size_t extra = len - pos;
        return rb_err_set(err, "%zu trailing byte%s", extra, extra == 1 ? "" : "s");
    }
    return 0;
}

/* ---- UTF-8 -------------------------------------------------------------- */

size_t rb__utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
    }
    return need;
}

bool rb__utf8_valid(const void *buf, size_t n)
{
    const unsigned char *s = buf;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = rb__utf8_seq(s + i, n - i);
        if (k == 0) return false;
        i += k;
    }
    return true;
}

/* ---- the value walk ------------------------------------------------------- */

typedef struct keypath {
    char buf[256];
    size_t len;
} keypath;

static void kp_append(keypath *kp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void kp_append(keypath *kp, const char *fmt, ...)
{
    size_t room = sizeof kp->buf - kp->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(kp->buf + kp->len, room, fmt, ap);
    va_end(ap);
    if (n > 0) kp->len += (size_t)n < room ? (size_t)n : room - 1;
}

static const char *kp_str(const keypath *kp)
{
    return kp->len ? kp->buf : "body";
}

/* Map keys become path segments; only short printable ones are spelled out,
 * so that the message stays one readable line whatever the key holds. */
static void kp_append_key(keypath *kp, const msgpack_object *key)
{
    if (key->type == MSGPACK_OBJECT_STR) {
        const char *s = key->via.str.ptr;
        uint32_t n = key->via.str.size;
        bool plain = n > 0 && n <= 64;
        for (uint32_t i = 0; plain && i < n; i++)
            plain = s[i] >= 0x20 && s[i] <= 0x7e;
        if (plain)
            kp_append(kp, "%s%.*s", kp->len ? "." : "", (int)n, s);
        else
            kp_append(kp, "[?]");
    } else if (key->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        kp_append(kp, "[%" PRIu64 "]", key->via.u64);
    } else if (key->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        kp_append(kp, "[%" PRId64 "]", key->via.i64);
    } else {
        kp_append(kp, "[?]");
    }
}

static int walk(const msgpack_object *o, keypath *kp, int depth, rb_err *err)
{
    /* rb_msgpack_check already bounds the depth; this keeps the recursion
     * safe should the walk ever see a tree from elsewhere. */
    if (depth > RB_MAX_DEPTH)
        return rb_err_set(err, "%s: nesting deeper than %d", kp_str(kp), RB_MAX_DEPTH);
    size_t mark = kp->len;
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        if (!rb__utf8_valid(o->via.str.ptr, o->via.str.size))
            return rb_err_set(err, "%s: not valid UTF-8", kp_str(kp));
        return 0;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            kp_append(kp, "[%" PRIu32 "]", i);
            if (walk(&o->via.array.ptr[i], kp, depth + 1, err) < 0) return -1;
            kp->len = mark;
            kp->buf[mark] = '\0';
        }
        return 0;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_ARRAY || kv->key.type == MSGPACK_OBJECT_MAP)
                return rb_err_set(err, "%s: map keys must not be arrays or maps", kp_str(kp));
            if (kv->key.type == MSGPACK_OBJECT_STR &&
                !rb__utf8_valid(kv->key.via.str.ptr, kv->key.via.str.size))
                return rb_err_set(err, "%s: map key is not valid UTF-8", kp_str(kp));
            kp_append_key(kp, &kv->key);
            if (walk(&kv->val, kp, depth + 1, err) < 0) return -1;
            kp->len = mark;
            kp->buf[mark] = '\0';
        }
        return 0;
    case MSGPACK_OBJECT_EXT:
        return rb_err_set(err, "%s: ext types are not allowed", kp_str(kp));
    default:
        return 0;
    }
}

int rb__check_values(const msgpack_object *root, rb_err *err)
{
    keypath kp = {.len = 0};
    kp.buf[0] = '\0';
    return walk(root, &kp, 1, err);
}
