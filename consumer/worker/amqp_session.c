/* amqp_session.c - connect, declare, consume; publish, ack, reject, close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "amqp_session.h"

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* Check the reply of the RPC just made; describe a failure as "<what>: <why>". */
static int check_rpc(rb_amqp *a, const char *what, rb_err *err)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(a->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
    char why[300];
    rb_amqp_reply_text(r, why, sizeof why);
    return rb_err_set(err, "%s: %s", what, why);
}

static int open_socket(rb_amqp *a, const rb_amqp_params *p, rb_err *err)
{
    amqp_socket_t *sock;
    if (p->url->tls) {
        sock = amqp_ssl_socket_new(a->conn);
        if (!sock) return rb_err_set(err, "cannot create a TLS socket");
        const char *ca = p->tls_ca;
        if (!ca && access(SYSTEM_CA_BUNDLE, R_OK) == 0) ca = SYSTEM_CA_BUNDLE;
        if (ca && amqp_ssl_socket_set_cacert(sock, ca) != AMQP_STATUS_OK)
            return rb_err_set(err, "cannot load the CA bundle %s", ca);
        if (p->tls_cert && amqp_ssl_socket_set_key(sock, p->tls_cert, p->tls_key) != AMQP_STATUS_OK)
            return rb_err_set(err, "cannot load the client certificate %s / key %s", p->tls_cert,
                              p->tls_key);
        amqp_ssl_socket_set_verify_peer(sock, 1);
        amqp_ssl_socket_set_verify_hostname(sock, 1);
    } else {
        sock = amqp_tcp_socket_new(a->conn);
        if (!sock) return rb_err_set(err, "cannot create a socket");
    }
    struct timeval tv = {p->setup_timeout_ms / 1000, (p->setup_timeout_ms % 1000) * 1000};
    int rc = amqp_socket_open_noblock(sock, p->url->host, p->url->port, &tv);
    if (rc != AMQP_STATUS_OK)
        return rb_err_set(err, "cannot connect to %s:%d: %s", p->url->host, p->url->port,
                          amqp_error_string2(rc));
    amqp_set_handshake_timeout(a->conn, &tv);
    amqp_set_rpc_timeout(a->conn, &tv);
    a->fd = amqp_get_sockfd(a->conn);
    /* Room for results of a usual size, so that a publish fits whole in the
     * buffer (rb_amqp_write_room); the kernel caps what it grants. */
    int want = 4 << 20;
    setsockopt(a->fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    socklen_t l = sizeof a->sndbuf;
    if (getsockopt(a->fd, SOL_SOCKET, SO_SNDBUF, &a->sndbuf, &l) != 0) a->sndbuf = 0;
    return 0;
}

static int login(rb_amqp *a, const rb_amqp_params *p, rb_err *err)
{
    /* consumer_cancel_notify: the broker tells us (basic.cancel) when our
     * queue is deleted, instead of leaving us waiting forever. */
    /* connection.blocked: the broker says when a resource alarm blocks our
     * publishes (and when it lifts), so results wait instead of a write. */
    amqp_table_entry_t caps[2];
    caps[0].key = amqp_cstring_bytes("consumer_cancel_notify");
    caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[0].value.value.boolean = 1;
    caps[1].key = amqp_cstring_bytes("connection.blocked");
    caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[1].value.value.boolean = 1;
    amqp_table_entry_t props[4];
    props[0].key = amqp_cstring_bytes("capabilities");
    props[0].value.kind = AMQP_FIELD_KIND_TABLE;
    props[0].value.value.table.num_entries = 2;
    props[0].value.value.table.entries = caps;
    props[1].key = amqp_cstring_bytes("product");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes("rebound-worker");
    props[2].key = amqp_cstring_bytes("version");
    props[2].value.kind = AMQP_FIELD_KIND_UTF8;
    props[2].value.value.bytes = amqp_cstring_bytes(REBOUND_VERSION);
    props[3].key = amqp_cstring_bytes("connection_name");
    props[3].value.kind = AMQP_FIELD_KIND_UTF8;
    props[3].value.value.bytes = amqp_cstring_bytes(p->connection_name);
    amqp_table_t table = {4, props};

    amqp_rpc_reply_t r = amqp_login_with_properties(
        a->conn, p->url->vhost, AMQP_DEFAULT_MAX_CHANNELS, AMQP_DEFAULT_FRAME_SIZE, p->heartbeat_s,
        &table, AMQP_SASL_METHOD_PLAIN, p->url->user, p->url->password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char why[300];
        rb_amqp_reply_text(r, why, sizeof why);
        return rb_err_set(err, "login to vhost '%s' as '%s': %s", p->url->vhost, p->url->user, why);
    }
    a->heartbeat_s = amqp_get_heartbeat(a->conn);
    return 0;
}

void rb_amqp_suspects_queue(const char *queue, char *out, size_t cap)
{
    snprintf(out, cap, "%s.suspects", queue);
}

uint32_t rb_amqp_suspects_waiting(const rb_amqp *a)
{
    return a->suspects_waiting;
}

const char *rb_amqp_dead_queue_note(const rb_amqp *a)
{
    return a->dead_note;
}

/* The broker closed channel 1 over a failed RPC: confirm, and open it
 * again. */
static int reopen_channel(rb_amqp *a, rb_err *err)
{
    amqp_channel_close_ok_t ok;
    memset(&ok, 0, sizeof ok);
    int rc = amqp_send_method(a->conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    if (rc != AMQP_STATUS_OK)
        return rb_err_set(err, "channel.close-ok: %s", amqp_error_string2(rc));
    amqp_channel_open(a->conn, 1);
    return check_rpc(a, "opening the channel again", err);
}

static bool channel_closed(amqp_rpc_reply_t r)
{
    return r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
           r.reply.id == AMQP_CHANNEL_CLOSE_METHOD;
}

/* <queue>.dead, a classic queue. Its failure does not stop the worker:
 * in a cluster a classic queue lives on one node, and while that node is
 * down the queue cannot be declared from the others (404, "home node ...
 * is down"), though jobs can still run from a quorum queue. And an
 * operator may have declared it otherwise (a quorum queue: 406, other
 * arguments), which is used as it is. a->dead_note says what is wrong when
 * the queue cannot be used. */
static int declare_dead(rb_amqp *a, const char *dead, rb_err *err)
{
    amqp_queue_declare(a->conn, 1, amqp_cstring_bytes(dead), 0, 1, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(a->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
    if (!channel_closed(r)) return check_rpc(a, "declaring the dead-letter queue", err);
    char why[300];
    rb_amqp_reply_text(r, why, sizeof why);
    if (reopen_channel(a, err) < 0) return -1;
    amqp_queue_declare(a->conn, 1, amqp_cstring_bytes(dead), 1, 1, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(a->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0; /* there, declared otherwise */
    if (!channel_closed(r)) return check_rpc(a, "declaring the dead-letter queue", err);
    snprintf(a->dead_note, sizeof a->dead_note,
             "the dead-letter queue %s cannot be used (%s): the broker drops what would go "
             "there until it is back",
             dead, why);
    return reopen_channel(a, err);
}

static int declare(rb_amqp *a, const rb_amqp_params *p, rb_err *err)
{
    char dead[300], suspects[300];
    snprintf(dead, sizeof dead, "%s.dead", p->queue);
    rb_amqp_suspects_queue(p->queue, suspects, sizeof suspects);

    if (declare_dead(a, dead, err) < 0) return -1;

    amqp_table_entry_t args[4];
    int n = 0;
    args[n].key = amqp_cstring_bytes("x-queue-type");
    args[n].value.kind = AMQP_FIELD_KIND_UTF8;
    args[n++].value.value.bytes = amqp_cstring_bytes(rb_queue_type_name(p->queue_type));
    args[n].key = amqp_cstring_bytes("x-dead-letter-exchange");
    args[n].value.kind = AMQP_FIELD_KIND_UTF8;
    args[n++].value.value.bytes = amqp_cstring_bytes("");
    args[n].key = amqp_cstring_bytes("x-dead-letter-routing-key");
    args[n].value.kind = AMQP_FIELD_KIND_UTF8;
    args[n++].value.value.bytes = amqp_cstring_bytes(dead);
    if (p->queue_type == RB_QUEUE_QUORUM && p->delivery_limit > 0) {
        args[n].key = amqp_cstring_bytes("x-delivery-limit");
        args[n].value.kind = AMQP_FIELD_KIND_I64;
        args[n++].value.value.i64 = p->delivery_limit;
    }
    amqp_table_t table = {n, args};
    amqp_queue_declare(a->conn, 1, amqp_cstring_bytes(p->queue), 0, 1, 0, 0, table);
    if (check_rpc(a, "declaring the job queue", err) < 0) return -1;
    /* Same arguments: a suspect is dead-lettered where any job would be. */
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(a->conn, 1, amqp_cstring_bytes(suspects), 0, 1, 0, 0, table);
    if (check_rpc(a, "declaring the quarantine queue", err) < 0) return -1;
    a->suspects_waiting = ok ? ok->message_count : 0;
    return 0;
}

static int consume(rb_amqp *a, const rb_amqp_params *p, rb_err *err)
{
    amqp_basic_qos(a->conn, 1, 0, (uint16_t)p->prefetch, 0);
    if (check_rpc(a, "basic.qos", err) < 0) return -1;
    amqp_confirm_select(a->conn, 1);
    if (check_rpc(a, "confirm.select", err) < 0) return -1;
    a->next_seq = 1;
    if (!p->consume) return 0;
    char suspects[300];
    rb_amqp_suspects_queue(p->queue, suspects, sizeof suspects);
    amqp_basic_consume_ok_t *ok =
        amqp_basic_consume(a->conn, 1, amqp_cstring_bytes(p->quarantine ? suspects : p->queue),
                           amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (check_rpc(a, "basic.consume", err) < 0) return -1;
    snprintf(a->consumer_tag, sizeof a->consumer_tag, "%.*s", (int)ok->consumer_tag.len,
             (const char *)ok->consumer_tag.bytes);
    return 0;
}

rb_amqp *rb_amqp_open(const rb_amqp_params *p, rb_err *err)
{
    rb_amqp *a = calloc(1, sizeof *a);
    if (!a) {
        rb_err_set(err, "out of memory");
        return NULL;
    }
    a->fd = -1;
    a->max_body = p->max_body;
    a->conn = amqp_new_connection();
    if (!a->conn) {
        free(a);
        rb_err_set(err, "out of memory");
        return NULL;
    }
    if (open_socket(a, p, err) < 0 || login(a, p, err) < 0) {
        rb_amqp_close(a, false);
        return NULL;
    }
    amqp_channel_open(a->conn, 1);
    if (check_rpc(a, "channel.open", err) < 0 || declare(a, p, err) < 0 || consume(a, p, err) < 0) {
        rb_amqp_close(a, true);
        return NULL;
    }
    if (!amqp_frames_enqueued(a->conn)) amqp_maybe_release_buffers(a->conn);
    return a;
}

void rb_amqp_delivery_free(rb_amqp_delivery *d)
{
    free(d->content_type);
    free(d->reply_to);
    free(d->correlation_id);
    free(d->body);
    memset(d, 0, sizeof *d);
}

void rb_amqp_close(rb_amqp *a, bool graceful)
{
    if (!a) return;
    if (graceful && a->fd >= 0) {
        struct timeval tv = {2, 0};
        amqp_set_rpc_timeout(a->conn, &tv);
        amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(a->conn);
    rb_amqp_delivery_free(&a->rd);
    free(a);
}

int rb_amqp_fd(const rb_amqp *a)
{
    return a->fd;
}

bool rb_amqp_buffered(const rb_amqp *a)
{
    return amqp_frames_enqueued(a->conn) || amqp_data_in_buffer(a->conn);
}

int rb_amqp_max_sleep_ms(const rb_amqp *a)
{
    /* librabbitmq sends a heartbeat when one is due, but only from inside
     * its calls: wake up four times per interval. */
    return a->heartbeat_s > 0 ? a->heartbeat_s * 1000 / 4 : -1;
}

static int sent(int rc, const char *what, rb_err *err)
{
    if (rc == AMQP_STATUS_OK) return 0;
    return rb_err_set(err, "%s: %s", what, amqp_error_string2(rc));
}

int rb_amqp_publish(rb_amqp *a, const rb_amqp_pub *pub, uint64_t *seq, rb_err *err)
{
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/msgpack");
    props.delivery_mode = pub->persistent ? 2 : 1;
    if (pub->correlation_id) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id.bytes = (void *)pub->correlation_id;
        props.correlation_id.len = pub->correlation_id_len;
    }
    if (pub->reply_to) {
        props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        props.reply_to = amqp_cstring_bytes(pub->reply_to);
    }
    amqp_table_entry_t headers[2];
    int n = 0;
    if (pub->deliveries > 0) {
        headers[n].key = amqp_cstring_bytes(RB_AMQP_DELIVERIES_HEADER);
        headers[n].value.kind = AMQP_FIELD_KIND_I64;
        headers[n++].value.value.i64 = pub->deliveries;
    }
    if (pub->traceparent && pub->traceparent[0]) {
        headers[n].key = amqp_cstring_bytes("traceparent");
        headers[n].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[n++].value.value.bytes = amqp_cstring_bytes(pub->traceparent);
    }
    if (n > 0) {
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = n;
        props.headers.entries = headers;
    }
    amqp_bytes_t b = {pub->len, (void *)pub->body};
    int rc =
        /* mandatory: a result with no queue to go to comes back (basic.return)
         * instead of vanishing; the confirm follows it either way. */
        amqp_basic_publish(a->conn, 1, amqp_empty_bytes, amqp_cstring_bytes(pub->routing_key),
                           pub->mandatory, 0, &props, b);
    if (sent(rc, "basic.publish", err) < 0) return -1;
    *seq = a->next_seq++;
    return 0;
}

bool rb_amqp_write_room(const rb_amqp *a, size_t len)
{
    int queued = 0;
    if (ioctl(a->fd, SIOCOUTQ, &queued) != 0 || queued <= 0) return true;
    /* The kernel reports twice what it counts as payload room. */
    long room = (long)a->sndbuf / 2 - queued;
    return room > 0 && (size_t)room >= len + 1024; /* + the frames' headers */
}

int rb_amqp_ack(rb_amqp *a, uint64_t tag, rb_err *err)
{
    return sent(amqp_basic_ack(a->conn, 1, tag, 0), "basic.ack", err);
}

int rb_amqp_reject(rb_amqp *a, uint64_t tag, bool requeue, rb_err *err)
{
    return sent(amqp_basic_reject(a->conn, 1, tag, requeue), "basic.reject", err);
}

int rb_amqp_cancel(rb_amqp *a, rb_err *err)
{
    if (!a->consumer_tag[0]) return 0;
    amqp_basic_cancel_t req;
    req.consumer_tag = amqp_cstring_bytes(a->consumer_tag);
    req.nowait = 0;
    int rc =
        sent(amqp_send_method(a->conn, 1, AMQP_BASIC_CANCEL_METHOD, &req), "basic.cancel", err);
    /* Not consuming from here on, as far as our side goes: a second
     * cancel (a shutdown signal while draining) sends nothing. */
    a->consumer_tag[0] = '\0';
    return rc;
}
