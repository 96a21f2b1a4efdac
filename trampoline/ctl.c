#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rebound_proto.h"

static const char *const type_names[] = {
    [CTL_UNKNOWN] = "?",
    [CTL_SPAWN] = "spawn",
    [CTL_HELLO] = "hello",
    [CTL_SPAWNED] = "spawned",
    [CTL_SPAWN_FAILED] = "spawn_failed",
    [CTL_TAKEN] = "taken",
    [CTL_CHILD] = "child",
    [CTL_EXIT] = "exit",
    [CTL_READY] = "ready",
    [CTL_SETUP_FAILED] = "setup_failed",
    [CTL_CALL] = "call",
    [CTL_DONE] = "done",
    [CTL_REFUSED] = "refused",
};

const char *ctl_type_name(ctl_type t)
{
    return (size_t)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "?";
}

int ctl_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
    if (len > CTL_MAX_MSG - CTL_HEADER || nfds < 0 || nfds > CTL_MAX_FDS) {
        errno = EMSGSIZE;
        return -1;
    }
    unsigned char hdr[4];
    rb_frame_len_encode(hdr, (uint32_t)len);
    struct iovec iov[2] = {{hdr, CTL_HEADER}, {(void *)buf, len}};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
    } cbuf;
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    if (nfds > 0) {
        memset(&cbuf, 0, sizeof(cbuf));
        msg.msg_control = cbuf.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0) return 0;
        if (errno == EINTR) continue;
        return -1;
    }
}

int ctl_send_sbuf(int sock, const msgpack_sbuffer *sbuf, const int *fds, int nfds)
{
    return ctl_send(sock, sbuf->data, sbuf->size, fds, nfds);
}

void ctl_msg_init(msgpack_sbuffer *sb, msgpack_packer *pk, ctl_type type, int nfields)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(pk, (size_t)nfields + 1);
    rb_pack_key(pk, "t");
    rb_pack_cstr(pk, ctl_type_name(type));
}

int ctl_send_int(int sock, ctl_type type, const char *key, long long value, const int *fds,
                 int nfds)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    ctl_msg_init(&sb, &pk, type, 1);
    rb_pack_key(&pk, key);
    msgpack_pack_int64(&pk, value);
    int rc = ctl_send_sbuf(sock, &sb, fds, nfds);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

ssize_t ctl_recv(int sock, void *buf, size_t cap, int *fds, int *nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
    } cbuf;
    struct iovec iov = {buf, cap};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf)};
    if (nfds) *nfds = 0;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return n;

    int got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int tmp[CTL_MAX_FDS * 2];
        if (count > (int)(sizeof(tmp) / sizeof(tmp[0]))) count = sizeof(tmp) / sizeof(tmp[0]);
        memcpy(tmp, CMSG_DATA(c), sizeof(int) * count);
        for (int i = 0; i < count; i++) {
            if (fds && nfds && got < CTL_MAX_FDS)
                fds[got++] = tmp[i];
            else
                close(tmp[i]);
        }
    }
    if (nfds) *nfds = got;

    const unsigned char *p = buf;
    size_t len = n >= 4 ? ((size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) : 0;
    if (n < 4 || (msg.msg_flags & MSG_TRUNC) || len != (size_t)n - 4) {
        for (int i = 0; fds && i < got; i++)
            close(fds[i]);
        if (nfds) *nfds = 0;
        errno = EBADMSG;
        return -1;
    }
    return (ssize_t)len;
}

int ctl_parse(const char *payload, size_t len, msgpack_unpacked *unp, ctl_type *type)
{
    msgpack_unpacked_init(unp);
    /* Control messages come from our own processes, but a child's frames
     * pass through code that user code could have tampered with: check
     * before msgpack-c allocates anything. */
    if (rb_msgpack_check(payload, len, RB_MAX_DEPTH + 8, NULL) != 0) return -1;
    size_t off = 0;
    if (msgpack_unpack_next(unp, payload, len, &off) != MSGPACK_UNPACK_SUCCESS) return -1;
    if (unp->data.type != MSGPACK_OBJECT_MAP) return -1;
    const msgpack_object *t = rb_map_get(&unp->data, "t");
    if (!t || t->type != MSGPACK_OBJECT_STR) return -1;
    *type = CTL_UNKNOWN;
    for (size_t i = 1; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strlen(type_names[i]) == t->via.str.size &&
            memcmp(type_names[i], t->via.str.ptr, t->via.str.size) == 0)
            *type = (ctl_type)i;
    return 0;
}

long long ctl_get_int(const msgpack_object *map, const char *key, long long def)
{
    const msgpack_object *o = rb_map_get(map, key);
    if (!o) return def;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (long long)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return o->via.i64;
    return def;
}

void ctl_get_str(const msgpack_object *map, const char *key, char *out, size_t cap)
{
    const msgpack_object *o = rb_map_get(map, key);
    out[0] = '\0';
    if (!o || o->type != MSGPACK_OBJECT_STR || cap == 0) return;
    size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    memcpy(out, o->via.str.ptr, n);
    out[n] = '\0';
}
