/*
 * fuzz_job.c - libFuzzer target for the path every untrusted body takes:
 * rb_msgpack_check, rb_job_decode, and the results built from what was
 * decoded (or from the rejection).
 *
 * Besides crashes and sanitizer reports, it aborts when an invariant fails:
 * the pre-check accepts something msgpack-c cannot decode completely, a
 * decoded job breaks a documented guarantee, or a packed result would not
 * pass the pre-check itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rebound_proto.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF),
 * written independently of the library's own validator. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < k) return false;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += k;
    }
    return true;
}

static void check_strings(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        CHECK(utf8_ok((const unsigned char *)o->via.str.ptr, o->via.str.size));
        break;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            check_strings(&o->via.array.ptr[i]);
        break;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            check_strings(&o->via.map.ptr[i].key);
            check_strings(&o->via.map.ptr[i].val);
        }
        break;
    default:
        break;
    }
}

/* A packed result is itself acceptable msgpack and all its text decodes. */
static void check_packed(const msgpack_sbuffer *sb)
{
    rb_err err;
    CHECK(rb_msgpack_check(sb->data, sb->size, RB_MAX_DEPTH, &err) == 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    CHECK(msgpack_unpack_next(&u, sb->data, sb->size, &off) == MSGPACK_UNPACK_SUCCESS);
    check_strings(&u.data);
    msgpack_unpacked_destroy(&u);
}

static void check_job(const rb_job *job, const rb_limits *lim)
{
    CHECK(job->id && strlen(job->id) >= 1 && strlen(job->id) <= RB_MAX_ID_BYTES);
    CHECK(job->ncalls >= 1 && job->ncalls <= lim->max_calls);
    CHECK(job->timeout_ms >= 1 && job->timeout_ms <= lim->max_timeout_ms);
    for (size_t i = 0; i < job->nforbidden; i++)
        CHECK(job->forbidden_modules[i] && job->forbidden_modules[i][0]);

    for (size_t i = 0; i < job->ncalls; i++) {
        const rb_call *c = &job->calls[i];
        CHECK(c->fcn && c->fcn[0]);
        CHECK(!c->file != !c->source);
        CHECK(!c->file || (c->file[0] && c->file[0] != '/'));
        CHECK(c->args.type == MSGPACK_OBJECT_ARRAY);
        CHECK(c->kwargs.type == MSGPACK_OBJECT_NIL || c->kwargs.type == MSGPACK_OBJECT_MAP);
        for (size_t j = 0; j < c->npaths; j++)
            CHECK(c->paths[j] && c->paths[j][0] && c->paths[j][0] != '/');

        /* What a child would send back for this call: its args as both the
         * value and the echoed args, once within a roomy limit and once
         * within a tight one (which forces the too-large path). */
        msgpack_sbuffer args;
        msgpack_sbuffer_init(&args);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
        CHECK(msgpack_pack_object(&pk, c->args) == 0);
        rb_call_result cr = {
            .present = true,
            .val = args.data,
            .val_len = args.size,
            .args = args.data,
            .args_len = args.size,
            .output = c->source ? c->source : c->fcn,
            .output_len = c->source ? c->source_len : strlen(c->fcn),
            .error_type = c->file,
            .error_message = c->cwd,
            .error_traceback = c->fcn,
        };
        size_t limits[] = {RB_DEFAULT_MAX_RESULT_BYTES, 200};
        for (size_t k = 0; k < 2; k++) {
            msgpack_sbuffer calls, msg;
            msgpack_sbuffer_init(&calls);
            msgpack_sbuffer_init(&msg);
            CHECK(rb_call_result_pack(&cr, limits[k], &calls) == 0);
            check_packed(&calls);
            rb_result r = {.id = job->id,
                           .status = RB_STATUS_OK,
                           .worker = "fuzz",
                           .call_results = calls.data,
                           .call_results_len = calls.size,
                           .ncalls = 1};
            CHECK(rb_result_pack(&r, &msg) == 0);
            check_packed(&msg);
            msgpack_sbuffer_destroy(&calls);
            msgpack_sbuffer_destroy(&msg);
        }
        msgpack_sbuffer_destroy(&args);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rb_limits lim;
    rb_limits_default(&lim);
    rb_err err;

    /* Whatever the pre-check accepts, msgpack-c decodes to the last byte. */
    bool structural_ok = rb_msgpack_check(data, size, RB_MAX_DEPTH, &err) == 0;
    if (structural_ok) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        CHECK(msgpack_unpack_next(&u, (const char *)data, size, &off) == MSGPACK_UNPACK_SUCCESS);
        CHECK(off == size);
        msgpack_unpacked_destroy(&u);
    } else {
        CHECK(err.msg[0] != '\0');
    }

    rb_job *job = NULL;
    char *id = NULL;
    err.msg[0] = '\0';
    if (rb_job_decode(data, size, &lim, &job, &id, &err) == 0) {
        CHECK(structural_ok);
        CHECK(job != NULL && id == NULL);
        check_job(job, &lim);
        rb_job_free(job);
        return 0;
    }

    CHECK(job == NULL);
    CHECK(err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL);
    if (!structural_ok) CHECK(strncmp(err.msg, "body is not valid msgpack: ", 27) == 0);
    if (id) CHECK(strlen(id) >= 1 && strlen(id) <= RB_MAX_ID_BYTES);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK(rb_result_pack_rejected(id, "fuzz", err.msg, &sb) == 0);
    check_packed(&sb);
    msgpack_sbuffer_destroy(&sb);
    free(id);
    return 0;
}
