/* json_msgpack.c - JSON <-> msgpack conversion (see json_msgpack.h). */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_msgpack.h"

int rb_json_to_msgpack(const json_t *v, msgpack_packer *pk)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (msgpack_pack_map(pk, json_object_size(v)) < 0) return -1;
        const char *key;
        size_t klen;
        json_t *val;
        /* jansson keeps insertion order: keys come out as they were read. */
        json_object_keylen_foreach((json_t *)v, key, klen, val)
        {
            if (msgpack_pack_str_with_body(pk, key, klen) < 0 || rb_json_to_msgpack(val, pk) < 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (msgpack_pack_array(pk, n) < 0) return -1;
        for (size_t i = 0; i < n; i++) {
            if (rb_json_to_msgpack(json_array_get(v, i), pk) < 0) return -1;
        }
        return 0;
    }
    case JSON_STRING:
        return msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }
    return -1;
}

char *rb_base64(const void *buf, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = buf;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* Length of the well-formed UTF-8 sequence at s (n >= 1 bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* A JSON string from bytes that may not be valid UTF-8. */
static json_t *text(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j) return j;
    char *clean = malloc(n * 3 + 1);
    if (!clean) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            memcpy(clean + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(clean + o, s + i, k);
            o += k;
            i += k;
        }
    }
    j = json_stringn(clean, o);
    free(clean);
    return j;
}

static json_t *bin(const void *buf, size_t len)
{
    char *b64 = rb_base64(buf, len);
    if (!b64) return NULL;
    json_t *j = json_pack("{s:s}", "$bin", b64);
    free(b64);
    return j;
}

static json_t *number(double d)
{
    if (isnan(d)) return json_string("NaN");
    if (isinf(d)) return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

/* The key a msgpack map key becomes in a JSON object. */
static char *key_text(const msgpack_object *k, size_t *len)
{
    if (k->type == MSGPACK_OBJECT_STR) {
        json_t *s = text(k->via.str.ptr, k->via.str.size);
        if (!s) return NULL;
        *len = json_string_length(s);
        char *out = malloc(*len + 1);
        if (out) memcpy(out, json_string_value(s), *len + 1);
        json_decref(s);
        return out;
    }
    json_t *j = rb_msgpack_to_json(k);
    if (!j) return NULL;
    char *out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    if (out) *len = strlen(out);
    return out;
}

json_t *rb_msgpack_to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX) {
            char digits[24];
            snprintf(digits, sizeof digits, "%" PRIu64, o->via.u64);
            return json_string(digits);
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return number(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return text(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return bin(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT: {
        char *b64 = rb_base64(o->via.ext.ptr, o->via.ext.size);
        if (!b64) return NULL;
        json_t *j = json_pack("{s:i,s:s}", "$ext", (int)o->via.ext.type, "$data", b64);
        free(b64);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            if (json_array_append_new(a, rb_msgpack_to_json(&o->via.array.ptr[i])) < 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            size_t klen = 0;
            char *key = key_text(&kv->key, &klen);
            json_t *val = key ? rb_msgpack_to_json(&kv->val) : NULL;
            /* setn_new takes val over even when it fails. */
            if (!val || json_object_setn_new(m, key, klen, val) < 0) {
                json_decref(m);
                m = NULL;
            }
            free(key);
        }
        return m;
    }
    }
    return NULL;
}
