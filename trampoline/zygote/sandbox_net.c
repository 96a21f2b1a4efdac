/* No network for children: a private network namespace with nothing in it.
 *
 * The mother enters it once, after its preload and before forking any
 * zygote, so every child is born inside it and pays nothing per job (a
 * namespace per child would cost a create and an asynchronous teardown each
 * time). The pool talks to the trampoline over inherited socketpairs and
 * pipes, which keep working across the switch. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sandbox.h"

int sandbox_net_enter(rb_err *err)
{
    if (geteuid() == 0) {
        if (unshare(CLONE_NEWNET) == 0) return 0;
        return rb_err_set(err, "unshare(CLONE_NEWNET): %s", strerror(errno));
    }
    /* Unprivileged: a user namespace grants the right to make the network
     * namespace. Map our own ids so files keep their owners. */
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
        return rb_err_set(err, "unshare(CLONE_NEWUSER|CLONE_NEWNET): %s", strerror(errno));
    char map[64];
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (sandbox_write_kfile("/proc/self/uid_map", map) != 0)
        return rb_err_set(err, "/proc/self/uid_map: %s", strerror(errno));
    if (sandbox_write_kfile("/proc/self/setgroups", "deny") != 0 && errno != ENOENT)
        return rb_err_set(err, "/proc/self/setgroups: %s", strerror(errno));
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if (sandbox_write_kfile("/proc/self/gid_map", map) != 0)
        return rb_err_set(err, "/proc/self/gid_map: %s", strerror(errno));
    return 0;
}
