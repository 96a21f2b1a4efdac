/*
 * proto_text.h - test helper: write msgpack as readable text.
 *
 *   {v: 1, id: 'j1', calls: [{fcn: 'f', source: 'def f(): pass'}]}
 *
 * Maps {k: v, ...} (a bare word key is a str; nil/true/false are values),
 * arrays [a, b], strings 'text' with escapes \\ \' \n \t \0 \xHH (so
 * invalid UTF-8 can be written), bin b'...', integers (123, -5, up to
 * uint64), floats 1.5 (float64) or 1.5f (float32), nil, true, false.
 * A syntax error aborts the test program: it is a bug in the test.
 */
#ifndef REBOUND_TEST_PROTO_TEXT_H
#define REBOUND_TEST_PROTO_TEXT_H

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

typedef struct mpbuf {
    char *data;
    size_t len;
} mpbuf;

typedef struct mptext {
    const char *src;
    const char *p;
} mptext;

static inline void mpt_die(const mptext *t, const char *what)
{
    fprintf(stderr, "proto_text: %s at offset %zu in: %s\n", what, (size_t)(t->p - t->src), t->src);
    abort();
}

static inline void mpt_ws(mptext *t)
{
    while (*t->p == ' ' || *t->p == '\n' || *t->p == '\t')
        t->p++;
}

static inline int mpt_hex(mptext *t, char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    mpt_die(t, "bad \\x escape");
    return 0;
}

/* Parse a quoted string body (t->p at the opening quote) into sb. */
static inline void mpt_quoted(mptext *t, msgpack_sbuffer *sb)
{
    t->p++;
    while (*t->p != '\'') {
        char c = *t->p++;
        if (c == '\0') mpt_die(t, "unterminated string");
        if (c == '\\') {
            char e = *t->p++;
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case '0':
                c = '\0';
                break;
            case 'x': {
                int hi = mpt_hex(t, t->p[0]);
                int lo = mpt_hex(t, t->p[1]);
                t->p += 2;
                c = (char)(hi * 16 + lo);
                break;
            }
            case '\\':
            case '\'':
                c = e;
                break;
            default:
                mpt_die(t, "unknown escape");
            }
        }
        msgpack_sbuffer_write(sb, &c, 1);
    }
    t->p++;
}

static inline void mpt_value(mptext *t, msgpack_packer *pk, int key_position);

/* Elements until the closing bracket, each packed into pk; returns count. */
static inline int mpt_elements(mptext *t, msgpack_packer *pk, char close, int is_map)
{
    int n = 0;
    t->p++;
    mpt_ws(t);
    while (*t->p != close) {
        mpt_value(t, pk, is_map);
        mpt_ws(t);
        if (is_map) {
            if (*t->p != ':') mpt_die(t, "expected ':'");
            t->p++;
            mpt_value(t, pk, 0);
            mpt_ws(t);
        }
        n++;
        if (*t->p == ',') {
            t->p++;
            mpt_ws(t);
        } else if (*t->p != close) {
            mpt_die(t, "expected ',' or closing bracket");
        }
    }
    t->p++;
    return n;
}

static inline void mpt_value(mptext *t, msgpack_packer *pk, int key_position)
{
    mpt_ws(t);
    const char *p = t->p;
    if (*p == '{' || *p == '[') {
        msgpack_sbuffer inner;
        msgpack_sbuffer_init(&inner);
        msgpack_packer ipk;
        msgpack_packer_init(&ipk, &inner, msgpack_sbuffer_write);
        int n = mpt_elements(t, &ipk, *p == '{' ? '}' : ']', *p == '{');
        if (*p == '{')
            msgpack_pack_map(pk, n);
        else
            msgpack_pack_array(pk, n);
        if (inner.size) pk->callback(pk->data, inner.data, inner.size);
        msgpack_sbuffer_destroy(&inner);
    } else if (*p == '\'' || (p[0] == 'b' && p[1] == '\'')) {
        int bin = *p == 'b';
        t->p += bin;
        msgpack_sbuffer s;
        msgpack_sbuffer_init(&s);
        mpt_quoted(t, &s);
        if (bin)
            msgpack_pack_bin_with_body(pk, s.data, s.size);
        else
            msgpack_pack_str_with_body(pk, s.data, s.size);
        msgpack_sbuffer_destroy(&s);
    } else if (*p == '-' || isdigit((unsigned char)*p)) {
        const char *q = p + (*p == '-');
        while (isdigit((unsigned char)*q))
            q++;
        if (*q == '.' || *q == 'e' || *q == 'E') {
            char *end;
            double d = strtod(p, &end);
            t->p = end;
            if (*t->p == 'f') {
                t->p++;
                msgpack_pack_float(pk, (float)d);
            } else {
                msgpack_pack_double(pk, d);
            }
        } else if (*p == '-') {
            errno = 0;
            long long v = strtoll(p, NULL, 10);
            if (errno) mpt_die(t, "integer out of range");
            msgpack_pack_int64(pk, v);
            t->p = q;
        } else {
            errno = 0;
            unsigned long long v = strtoull(p, NULL, 10);
            if (errno) mpt_die(t, "integer out of range");
            msgpack_pack_uint64(pk, v);
            t->p = q;
        }
    } else if (isalpha((unsigned char)*p) || *p == '_') {
        const char *q = p;
        while (isalnum((unsigned char)*q) || *q == '_')
            q++;
        size_t n = (size_t)(q - p);
        t->p = q;
        if (n == 3 && !memcmp(p, "nil", 3))
            msgpack_pack_nil(pk);
        else if (n == 4 && !memcmp(p, "true", 4))
            msgpack_pack_true(pk);
        else if (n == 5 && !memcmp(p, "false", 5))
            msgpack_pack_false(pk);
        else if (key_position)
            msgpack_pack_str_with_body(pk, p, n);
        else
            mpt_die(t, "unknown word");
    } else {
        mpt_die(t, "unexpected character");
    }
}

/* The msgpack for text; free .data. */
static inline mpbuf mp(const char *text)
{
    mptext t = {text, text};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    mpt_value(&t, &pk, 0);
    mpt_ws(&t);
    if (*t.p) mpt_die(&t, "trailing text");
    mpbuf b = {sb.data, sb.size};
    return b;
}

/* Bytes from hex text ("dd ff ff ff ff"); free .data. */
static inline mpbuf hexbytes(const char *hex)
{
    mptext t = {hex, hex};
    mpbuf b = {malloc(strlen(hex) / 2 + 1), 0};
    while (*t.p) {
        if (*t.p == ' ') {
            t.p++;
            continue;
        }
        int hi = mpt_hex(&t, t.p[0]);
        int lo = mpt_hex(&t, t.p[1]);
        b.data[b.len++] = (char)(hi * 16 + lo);
        t.p += 2;
    }
    return b;
}

#endif
