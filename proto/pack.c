/* pack.c - small msgpack helpers shared by the packers and decoders, and
 * the repair of text that is not UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "proto_internal.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* The length of s[0..n) once every byte outside well-formed UTF-8 is
 * replaced. */
static size_t repaired_len(const unsigned char *u, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        size_t k = rb__utf8_seq(u + i, n - i);
        out += k ? k : sizeof replacement - 1;
        i += k ? k : 1;
    }
    return out;
}

char *rb_utf8_repair(const void *s, size_t n, size_t *out_len)
{
    const unsigned char *u = s;
    bool valid = rb__utf8_valid(s, n); /* the usual case: one copy */
    size_t len = valid ? n : repaired_len(u, n);
    char *out = malloc(len + 1);
    *out_len = out ? len : 0;
    if (!out) return NULL;
    if (valid) {
        if (n > 0) memcpy(out, s, n);
        out[n] = '\0';
        return out;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = rb__utf8_seq(u + i, n - i);
        if (k) {
            memcpy(out + o, u + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, replacement, sizeof replacement - 1);
            o += sizeof replacement - 1;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

/*
 * Results carry text the worker does not control (a child's output, an
 * exception message, an error line cut at a byte limit). A str that is not
 * UTF-8 would make the client's decoder fail on the whole result, so bad
 * bytes are replaced rather than passed on. Valid text (the usual case) is
 * packed in one piece; otherwise the valid runs are streamed between
 * replacements, without a copy.
 */
int rb__pack_text(msgpack_packer *pk, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (rb__utf8_valid(s, n)) return msgpack_pack_str_with_body(pk, s, n);

    if (msgpack_pack_str(pk, repaired_len(u, n)) < 0) return -1;
    size_t run = 0; /* start of the current valid run */
    for (size_t i = 0; i < n;) {
        size_t k = rb__utf8_seq(u + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        if (msgpack_pack_str_body(pk, s + run, i - run) < 0 ||
            msgpack_pack_str_body(pk, replacement, sizeof replacement - 1) < 0)
            return -1;
        i++;
        run = i;
    }
    return msgpack_pack_str_body(pk, s + run, n - run);
}

int rb_pack_cstr(msgpack_packer *pk, const char *s)
{
    if (!s) return msgpack_pack_nil(pk);
    return rb__pack_text(pk, s, strlen(s));
}

int rb_pack_key(msgpack_packer *pk, const char *key)
{
    return msgpack_pack_str_with_body(pk, key, strlen(key));
}

const msgpack_object *rb_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        /* The first occurrence wins. Every reader of a job goes through
         * here, so the validator and the executor agree on duplicates. */
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}
