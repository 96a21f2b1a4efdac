/* reply.c - one line for an AMQP RPC reply that was not normal. */
#include <stdio.h>

#include "rebound_amqp.h"

void rb_amqp_reply_text(amqp_rpc_reply_t r, char *out, size_t cap)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(out, cap, "ok");
        return;
    case AMQP_RESPONSE_NONE:
        snprintf(out, cap, "no reply from the broker");
        return;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(out, cap, "%s", amqp_error_string2(r.library_error));
        return;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *c = r.reply.decoded;
            snprintf(out, cap, "connection closed by the broker: %u %.*s", c->reply_code,
                     (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *c = r.reply.decoded;
            snprintf(out, cap, "channel closed by the broker: %u %.*s", c->reply_code,
                     (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        } else {
            snprintf(out, cap, "unexpected method 0x%08x from the broker", r.reply.id);
        }
        return;
    }
    snprintf(out, cap, "unknown reply type %d", (int)r.reply_type);
}
