/* rpc.c - publish one job and wait for its result (see rpc.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "rebound_amqp.h"
#include "rebound_base.h"
#include "rpc.h"

#define DIRECT_REPLY_TO "amq.rabbitmq.reply-to"
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define SETUP_TIMEOUT_S 5

static rb_rpc_status fail(rb_rpc_status st, char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static rb_rpc_status fail(rb_rpc_status st, char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return st;
}

static void new_correlation_id(char out[33])
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != sizeof r) {
        /* No entropy source: time and pid still keep concurrent clients apart. */
        uint64_t t = (uint64_t)rb_mono_ms() ^ ((uint64_t)getpid() << 40);
        memcpy(r, &t, sizeof t);
        memcpy(r + 8, &t, sizeof t);
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static rb_rpc_status connect_broker(amqp_connection_state_t conn, const char *url, char *err,
                                    size_t cap)
{
    char *buf = strdup(url);
    if (!buf) return fail(RB_RPC_BROKER, err, cap, "out of memory");
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(buf, &ci) != AMQP_STATUS_OK || ci.port < 1 || ci.port > 65535) {
        free(buf);
        return fail(RB_RPC_BAD_URL, err, cap,
                    "--amqp-url: not a valid amqp[s]://[user[:password]@]host[:port][/vhost] URL");
    }
    const char *vhost = rb_amqp_vhost(&ci);
    amqp_socket_t *sock = ci.ssl ? amqp_ssl_socket_new(conn) : amqp_tcp_socket_new(conn);
    rb_rpc_status st = RB_RPC_REPLIED;
    if (!sock) {
        st = fail(RB_RPC_BROKER, err, cap, "cannot create a socket");
        goto out;
    }
    if (ci.ssl && access(SYSTEM_CA_BUNDLE, R_OK) == 0)
        amqp_ssl_socket_set_cacert(sock, SYSTEM_CA_BUNDLE);
    struct timeval tv = {SETUP_TIMEOUT_S, 0};
    int rc = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        st = fail(RB_RPC_BROKER, err, cap, "cannot connect to %s:%d: %s", ci.host, ci.port,
                  amqp_error_string2(rc));
        goto out;
    }
    amqp_set_rpc_timeout(conn, &tv);
    amqp_set_handshake_timeout(conn, &tv);
    char why[300];
    amqp_rpc_reply_t r = amqp_login(conn, vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0,
                                    AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        rb_amqp_reply_text(r, why, sizeof why);
        st = fail(RB_RPC_BROKER, err, cap, "login to vhost '%s': %s", vhost, why);
        goto out;
    }
    amqp_channel_open(conn, 1);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        rb_amqp_reply_text(r, why, sizeof why);
        st = fail(RB_RPC_BROKER, err, cap, "channel.open: %s", why);
    }
out:
    free(buf);
    return st;
}

/* A frame other than a delivery arrived while waiting for the reply. */
static rb_rpc_status other_frame(amqp_connection_state_t conn, const char *queue, char *err,
                                 size_t cap)
{
    amqp_frame_t f;
    struct timeval tv = {SETUP_TIMEOUT_S, 0};
    int rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);
    if (rc != AMQP_STATUS_OK)
        return fail(RB_RPC_BROKER, err, cap, "reading from the broker: %s", amqp_error_string2(rc));
    if (f.frame_type != AMQP_FRAME_METHOD)
        return RB_RPC_REPLIED; /* nothing to act on: keep waiting */
    switch (f.payload.method.id) {
    case AMQP_BASIC_RETURN_METHOD: {
        const amqp_basic_return_t *ret = f.payload.method.decoded;
        char text[200];
        snprintf(text, sizeof text, "%u %.*s", ret->reply_code, (int)ret->reply_text.len,
                 (const char *)ret->reply_text.bytes);
        amqp_message_t msg;
        amqp_read_message(conn, 1, &msg, 0);
        amqp_destroy_message(&msg);
        return fail(RB_RPC_UNROUTABLE, err, cap, "no queue '%s' took the job (%s)", queue, text);
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_channel_close_t *c = f.payload.method.decoded;
        return fail(RB_RPC_BROKER, err, cap, "closed by the broker: %u %.*s", c->reply_code,
                    (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    }
    default:
        return RB_RPC_REPLIED;
    }
}

static rb_rpc_status wait_reply(amqp_connection_state_t conn, const rb_rpc_request *req,
                                const char *cid, void **reply, size_t *reply_len, char *err,
                                size_t cap)
{
    int64_t deadline = rb_mono_ms() + req->timeout_ms;
    for (;;) {
        int64_t left = deadline - rb_mono_ms();
        if (left <= 0) break;
        amqp_maybe_release_buffers(conn);
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
        amqp_envelope_t env;
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            const amqp_basic_properties_t *p = &env.message.properties;
            bool ours = (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) &&
                        p->correlation_id.len == strlen(cid) &&
                        memcmp(p->correlation_id.bytes, cid, strlen(cid)) == 0;
            if (ours) {
                size_t n = env.message.body.len;
                *reply = malloc(n ? n : 1);
                if (*reply) memcpy(*reply, env.message.body.bytes, n);
                *reply_len = n;
            }
            amqp_destroy_envelope(&env);
            if (ours)
                return *reply ? RB_RPC_REPLIED : fail(RB_RPC_BROKER, err, cap, "out of memory");
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            break;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            rb_rpc_status st = other_frame(conn, req->queue, err, cap);
            if (st != RB_RPC_REPLIED) return st;
            continue;
        }
        char why[300];
        rb_amqp_reply_text(r, why, sizeof why);
        return fail(RB_RPC_BROKER, err, cap, "waiting for the result: %s", why);
    }
    return fail(RB_RPC_NO_REPLY, err, cap, "no result within %d ms", req->timeout_ms);
}

rb_rpc_status rb_rpc_call(const rb_rpc_request *req, void **reply, size_t *reply_len, char *err,
                          size_t errcap)
{
    *reply = NULL;
    *reply_len = 0;
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) return fail(RB_RPC_BROKER, err, errcap, "out of memory");
    rb_rpc_status st = connect_broker(conn, req->url, err, errcap);
    if (st != RB_RPC_REPLIED) goto out;

    /* Direct reply-to: consume the pseudo-queue before publishing. */
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(DIRECT_REPLY_TO), amqp_empty_bytes, 0, 1, 0,
                       amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char why[300];
        rb_amqp_reply_text(r, why, sizeof why);
        st = fail(RB_RPC_BROKER, err, errcap, "consuming %s: %s", DIRECT_REPLY_TO, why);
        goto out;
    }
    char cid[33];
    new_correlation_id(cid);
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    props.content_type = amqp_cstring_bytes("application/msgpack");
    props.delivery_mode = 2;
    props.reply_to = amqp_cstring_bytes(DIRECT_REPLY_TO);
    props.correlation_id = amqp_cstring_bytes(cid);
    amqp_bytes_t body = {req->len, (void *)req->body};
    int rc = amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(req->queue), 1, 0,
                                &props, body);
    if (rc != AMQP_STATUS_OK) {
        st = fail(RB_RPC_BROKER, err, errcap, "publishing the job: %s", amqp_error_string2(rc));
        goto out;
    }
    st = wait_reply(conn, req, cid, reply, reply_len, err, errcap);
out:
    if (st != RB_RPC_BROKER && st != RB_RPC_BAD_URL)
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return st;
}
