#include "bench_amqp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp_tcp_socket.h>

#define SETUP_TIMEOUT_S 10

int bench_check_rpc(const char *prog, amqp_connection_state_t conn, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
    char why[300];
    rb_amqp_reply_text(r, why, sizeof why);
    fprintf(stderr, "%s: %s: %s\n", prog, what, why);
    return -1;
}

amqp_connection_state_t bench_connect(const char *prog, const char *url)
{
    char *buf = strdup(url);
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    if (!buf || amqp_parse_url(buf, &ci) != AMQP_STATUS_OK || ci.ssl) {
        fprintf(stderr, "%s: --amqp-url: not an amqp://user:pass@host:port/vhost URL\n", prog);
        free(buf);
        return NULL;
    }
    const char *vhost = rb_amqp_vhost(&ci);
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = conn ? amqp_tcp_socket_new(conn) : NULL;
    struct timeval tv = {SETUP_TIMEOUT_S, 0};
    int rc = sock ? amqp_socket_open_noblock(sock, ci.host, ci.port, &tv) : AMQP_STATUS_NO_MEMORY;
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "%s: cannot connect to %s:%d: %s\n", prog, ci.host, ci.port,
                amqp_error_string2(rc));
        goto fail;
    }
    amqp_set_rpc_timeout(conn, &tv);
    amqp_set_handshake_timeout(conn, &tv);
    amqp_rpc_reply_t r = amqp_login(conn, vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0,
                                    AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char why[300];
        rb_amqp_reply_text(r, why, sizeof why);
        fprintf(stderr, "%s: login to vhost '%s': %s\n", prog, vhost, why);
        goto fail;
    }
    amqp_channel_open(conn, 1);
    if (bench_check_rpc(prog, conn, "channel.open") < 0) goto fail;
    free(buf);
    return conn;
fail:
    free(buf);
    if (conn) amqp_destroy_connection(conn);
    return NULL;
}
