/* Drop root: the child runs as the unprivileged --run-as user. */
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox.h"

int sandbox_user_switch(const sandbox_plan *plan, rb_err *err)
{
    if (setgroups(0, NULL) != 0) return rb_err_set(err, "setgroups: %s", strerror(errno));
    if (setresgid(plan->gid, plan->gid, plan->gid) != 0)
        return rb_err_set(err, "setresgid(%u): %s", (unsigned)plan->gid, strerror(errno));
    if (setresuid(plan->uid, plan->uid, plan->uid) != 0)
        return rb_err_set(err, "setresuid(%u): %s", (unsigned)plan->uid, strerror(errno));
    return 0;
}

/*
 * The zygote runs as root and reads the files jobs name, to compile them
 * for the children after it. It must read nothing the run-as user could
 * not: a child that inherited the code of a root-only file could find its
 * text in its own memory. So it reads with the run-as user's file-system
 * identity (setfsuid/setfsgid: the kernel then also drops the capabilities
 * that bypass permissions) and without root's supplementary groups.
 */
int sandbox_user_drop_groups(const sandbox_plan *plan, rb_err *err)
{
    if (!plan->switch_user) return 0;
    if (setgroups(0, NULL) != 0) return rb_err_set(err, "setgroups: %s", strerror(errno));
    return 0;
}

void sandbox_user_fs(const sandbox_plan *plan, bool as_user)
{
    if (!plan->switch_user) return;
    if (as_user) {
        setfsgid(plan->gid);
        setfsuid(plan->uid);
    } else {
        setfsuid(0);
        setfsgid(0);
    }
}

/*
 * A uid per slot (like isolate's uid per box): with one user for all slots,
 * a job could signal, prlimit, re-schedule or read the files of the jobs of
 * the other slots, which ran as the same user, and the per-user process
 * limit of one slot's fork bomb was every slot's. The ids need no entry in
 * /etc/passwd; jobs find their home in HOME.
 */
void sandbox_user_for_slot(sandbox_plan *plan, int slot)
{
    if (!plan->switch_user || plan->cfg.uid_base <= 0) return;
    plan->uid = (uid_t)(plan->cfg.uid_base + slot);
    plan->gid = (gid_t)(plan->cfg.uid_base + slot);
}

/* A job's directory, owned by the user it runs as. */
int sandbox_make_tmpdir(const sandbox_plan *plan, const char *path, rb_err *err)
{
    if (mkdir(path, 0700) != 0) return rb_err_set(err, "mkdir %s: %s", path, strerror(errno));
    if (plan->switch_user && chown(path, plan->uid, plan->gid) != 0)
        return rb_err_set(err, "chown %s: %s", path, strerror(errno));
    return 0;
}
