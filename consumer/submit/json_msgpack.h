/*
 * json_msgpack.h - JSON <-> msgpack for rebound-submit.
 *
 * JSON to msgpack: objects become maps (keys in input order), arrays
 * arrays, strings str, integers int, reals float64, true/false bool, null
 * nil.
 *
 * msgpack to JSON, for printing results. JSON cannot say everything
 * msgpack can, so:
 *   bin                 -> {"$bin": "<base64>"}
 *   ext                 -> {"$ext": <type>, "$data": "<base64>"}
 *   NaN, +-Infinity     -> the strings "NaN", "Infinity", "-Infinity"
 *   integers > 2^63-1   -> the decimal digits as a string
 *   a non-str map key   -> its compact JSON text as the key
 *   invalid UTF-8 in str-> each bad byte becomes U+FFFD
 * A bin value is never printed as a bare base64 string, so that it cannot
 * be mistaken for a str.
 */
#ifndef REBOUND_SUBMIT_JSON_MSGPACK_H
#define REBOUND_SUBMIT_JSON_MSGPACK_H

#include <jansson.h>
#include <msgpack.h>

/* Append v packed as msgpack to pk. Returns 0, or -1 when packing failed
 * (out of memory). */
int rb_json_to_msgpack(const json_t *v, msgpack_packer *pk);

/* A new JSON value (caller owns the reference) for o, or NULL when out of
 * memory. */
json_t *rb_msgpack_to_json(const msgpack_object *o);

/* Standard base64 (with padding) of buf; malloc'd, NUL-terminated; NULL
 * when out of memory. */
char *rb_base64(const void *buf, size_t len);

#endif
