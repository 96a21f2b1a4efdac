/* url.c - what an AMQP URL's path means. */
#include "rebound_amqp.h"

const char *rb_amqp_vhost(const struct amqp_connection_info *ci)
{
    /* amqp_parse_url reads the path "/" (and no path) as the empty vhost.
     * Nobody means that, and RabbitMQ has no such vhost: most AMQP clients
     * read it as the default vhost "/", and so do we. */
    return ci->vhost && ci->vhost[0] ? ci->vhost : "/";
}
