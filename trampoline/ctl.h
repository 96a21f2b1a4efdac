/*
 * ctl.h - control messages between the pool, the mother, the zygotes and
 * their children: the one piece trampoline/pool/ and trampoline/zygote/
 * share (built once, as rebound_ctl).
 *
 * Control channels are AF_UNIX SOCK_SEQPACKET sockets: one message is one
 * packet, so a message and the descriptors passed with it (SCM_RIGHTS)
 * arrive together and never merge with the next. Each packet holds one
 * frame: a 4-byte big-endian length, then a msgpack map whose "t" key names
 * the message.
 *
 *   pool -> mother   spawn {slot}                    + fds: zygote's ctl end
 *   mother -> pool   hello {pid, preload_failed}      after the preload
 *                    spawned {slot, pid} | spawn_failed {slot, err}
 *   pool -> zygote   taken {pid}                     the spare got a job: fork the next
 *   zygote -> pool   child {pid}                     + fds: job (w), result (r), capture (r)
 *                    exit {pid, status, cpu_us, rss_kb}  raw wait status of that
 *                                                    child, and its wait4 rusage
 *   child -> pool    (on its result pipe, as stream frames)
 *                    ready {pid, sandbox} | setup_failed {err}
 *                    call {present, val, args?, error?, ms} ...
 *                    done {cpu_us, rss_kb, wall_us}  what the job cost (child.c)
 *                    refused {err}   the job's state could not be set right
 *                                    (sandbox_spare.c): it did not run
 */
#ifndef REBOUND_CTL_H
#define REBOUND_CTL_H

#include <stddef.h>

#include <msgpack.h>

#define CTL_MAX_MSG 65536
#define CTL_MAX_FDS 4
#define CTL_HEADER 4 /* the frame's length prefix */

/* The messages, by their "t" (the wire carries the names above). */
typedef enum ctl_type {
    CTL_UNKNOWN = 0, /* a name not listed here */
    CTL_SPAWN,
    CTL_HELLO,
    CTL_SPAWNED,
    CTL_SPAWN_FAILED,
    CTL_TAKEN,
    CTL_CHILD,
    CTL_EXIT,
    CTL_READY,
    CTL_SETUP_FAILED,
    CTL_CALL,
    CTL_DONE,
    CTL_REFUSED,
} ctl_type;

/* The wire name of t ("spawn", ...). */
const char *ctl_type_name(ctl_type t);

/* Where a received message's payload starts in the buffer ctl_recv filled. */
static inline const char *ctl_payload(const void *buf)
{
    return (const char *)buf + CTL_HEADER;
}

/* Send one message (frame of buf/len) with nfds descriptors. Returns 0 or
 * -1 with errno. Blocks only while the socket buffer is full. */
int ctl_send(int sock, const void *buf, size_t len, const int *fds, int nfds);

/* Start a message in sb: a map of nfields + 1 entries whose first is
 * t: type; the caller packs the other nfields key/value pairs with pk. The
 * caller destroys sb. */
void ctl_msg_init(msgpack_sbuffer *sb, msgpack_packer *pk, ctl_type type, int nfields);

/* Send {t: type, key: value} with nfds descriptors: the common small
 * message. Same return as ctl_send. */
int ctl_send_int(int sock, ctl_type type, const char *key, long long value, const int *fds,
                 int nfds);

/* Send the packed contents of sbuf. */
int ctl_send_sbuf(int sock, const msgpack_sbuffer *sbuf, const int *fds, int nfds);

/*
 * Receive one message into buf (cap bytes). Returns the payload length
 * (without the length prefix), 0 on EOF, -1 with errno (EAGAIN when none
 * is waiting, EBADMSG for a malformed packet). Received descriptors are
 * stored in fds (*nfds set, at most CTL_MAX_FDS, close-on-exec); the caller
 * owns them. The payload starts at ctl_payload(buf).
 */
ssize_t ctl_recv(int sock, void *buf, size_t cap, int *fds, int *nfds);

/* Parse a payload as a msgpack map into *unp (caller destroys it) and
 * set *type from its "t" (CTL_UNKNOWN for a name not in ctl_type).
 * Returns 0, or -1 when the payload is not a map with a str "t". */
int ctl_parse(const char *payload, size_t len, msgpack_unpacked *unp, ctl_type *type);

/* Integer field of a map, or def when absent or not an integer. */
long long ctl_get_int(const msgpack_object *map, const char *key, long long def);
/* String field copied into out (cap bytes, truncated); "" when absent. */
void ctl_get_str(const msgpack_object *map, const char *key, char *out, size_t cap);

#endif
