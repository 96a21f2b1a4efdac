/*
 * proto_internal.h - helpers shared between the files of proto/ only.
 * Not installed and not included from outside this folder.
 */
#ifndef REBOUND_PROTO_INTERNAL_H
#define REBOUND_PROTO_INTERNAL_H

#include "rebound_proto.h"

/* Length (1-4) of the well-formed UTF-8 sequence at s, or 0 when s[0..n)
 * does not start with one (overlongs, surrogates and code points above
 * U+10FFFF are not well-formed). n must be >= 1. */
size_t rb__utf8_seq(const unsigned char *s, size_t n);

/* True when s[0..n) is well-formed UTF-8. */
bool rb__utf8_valid(const void *s, size_t n);

/*
 * Walk a decoded msgpack tree and reject what the protocol forbids beyond
 * structure: strings (values and map keys) that are not valid UTF-8, and
 * arrays or maps used as map keys. The message names the key path
 * ("calls[0].args[2]: not valid UTF-8"). root is the top-level map.
 */
int rb__check_values(const msgpack_object *root, rb_err *err);

/* Pack s[0..n) as a msgpack str, replacing every byte that is not part of
 * well-formed UTF-8 with U+FFFD so that the receiver can always decode it. */
int rb__pack_text(msgpack_packer *pk, const char *s, size_t n);

/* Lexical path rules for file/cwd/paths: not empty, relative, no ".."
 * component. key names the value in the message ("calls[2].file"). */
int rb__path_lexical(const char *path, const char *key, rb_err *err);

#endif
