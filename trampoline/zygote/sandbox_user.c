/* Drop root: the child runs as the unprivileged --run-as user. */
#include <errno.h>
#include <grp.h>
#include <string.h>
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
