/*
 * sandbox_landlock.c - a Landlock domain per child, scoping signals and
 * abstract unix sockets to the job's own processes.
 *
 * The children of a pool share one network namespace (sandbox_net.c), and
 * abstract unix sockets live in the network namespace: two jobs running at
 * once could talk through one. And a signal needs only the same uid. A
 * Landlock domain with the abstract-socket and signal scopes (ABI 6, Linux
 * 6.12) confines both to the processes of the domain: the job and what it
 * starts. No file-system rule is added: sandbox_mount.c decides what a job
 * sees.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)
#define LL_ABI_SCOPES 6

/* struct landlock_ruleset_attr as of ABI 6 (older headers lack "scoped"). */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

int sandbox_landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : (int)abi;
}

int sandbox_landlock_apply(rb_err *err)
{
    int abi = sandbox_landlock_abi();
    if (abi < LL_ABI_SCOPES)
        return rb_err_set(err, "landlock: scopes need ABI %d, kernel has %d", LL_ABI_SCOPES, abi);
    struct ll_ruleset_attr attr = {0, 0, LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL};
    int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (fd < 0) return rb_err_set(err, "landlock_create_ruleset: %s", strerror(errno));
    long rc = syscall(SYS_landlock_restrict_self, fd, 0);
    int saved = errno;
    close(fd);
    if (rc != 0) return rb_err_set(err, "landlock_restrict_self: %s", strerror(saved));
    return 0;
}
