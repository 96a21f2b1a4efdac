/* The order in which a child is isolated, and what it reports. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox.h"

static unsigned long own_vsz_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return pages * (unsigned long)(sysconf(_SC_PAGESIZE) / 1024);
}

void sandbox_prepare(const sandbox_config *cfg, sandbox_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->cfg = *cfg;
    if (!cfg->allow_network) {
        rb_err err = {{0}};
        if (sandbox_net_enter(&err) == 0)
            plan->netns = true;
        else
            snprintf(plan->netns_error, sizeof plan->netns_error, "%s", err.msg);
    }
    if (geteuid() == 0 && cfg->uid_base > 0) {
        /* A uid per slot needs no user of the system: each zygote sets its
         * own (sandbox_user_for_slot). */
        plan->switch_user = true;
        plan->uid = (uid_t)cfg->uid_base;
        plan->gid = (gid_t)cfg->uid_base;
    } else if (geteuid() == 0) {
        struct passwd *pw = getpwnam(cfg->run_as);
        if (pw && pw->pw_uid != 0) {
            plan->switch_user = true;
            plan->uid = pw->pw_uid;
            plan->gid = pw->pw_gid;
        } else {
            snprintf(plan->user_error, sizeof plan->user_error, "run-as user %s %s", cfg->run_as,
                     pw ? "is root" : "does not exist");
        }
    }
    /* Without a network namespace the filter also refuses inet sockets. */
    plan->bpf_denies_inet = !plan->netns && !cfg->allow_network;
    rb_err err = {{0}};
    if (sandbox_seccomp_build(plan->bpf_denies_inet, plan, &err) != 0)
        snprintf(plan->seccomp_error, sizeof plan->seccomp_error, "%s", err.msg);
    sandbox_spare_prepare(plan);
    /* Measured after the preload (the caller's order): what children inherit. */
    plan->base_vsz_kb = own_vsz_kb();
}

int sandbox_make_tmpdir(const sandbox_plan *plan, const char *path, rb_err *err)
{
    if (mkdir(path, 0700) != 0) return rb_err_set(err, "mkdir %s: %s", path, strerror(errno));
    if (plan->switch_user && chown(path, plan->uid, plan->gid) != 0)
        return rb_err_set(err, "chown %s: %s", path, strerror(errno));
    return 0;
}

/* Append "word" to a comma list. */
static void add(char *buf, size_t cap, const char *word)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%s", n ? "," : "", word);
}

int sandbox_apply(const sandbox_plan *plan, char *report, size_t cap, rb_err *err)
{
    char missing[512] = "";
    rb_err step = {{0}};
    report[0] = '\0';

    add(report, cap, "pgrp");
    if (plan->netns) {
        add(report, cap, "netns");
    } else if (plan->cfg.allow_network) {
        add(report, cap, "network-allowed");
    }

    /* As root, before the switch of user takes the right to. */
    if (sandbox_ipc_enter(&step) == 0) {
        add(report, cap, "ipcns");
    } else {
        add(missing, sizeof missing, step.msg);
    }

    if (sandbox_rlimits_apply(plan, &step) == 0) {
        add(report, cap, "rlimits");
    } else {
        add(missing, sizeof missing, step.msg);
    }

    if (plan->switch_user) {
        if (sandbox_user_switch(plan, &step) == 0) {
            char who[64];
            if (plan->cfg.uid_base > 0)
                snprintf(who, sizeof who, "user=uid-per-slot");
            else
                snprintf(who, sizeof who, "user=%s", plan->cfg.run_as);
            add(report, cap, who);
        } else {
            add(missing, sizeof missing, step.msg);
        }
    } else if (geteuid() == 0) {
        add(missing, sizeof missing, plan->user_error);
    }

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) {
        add(report, cap, "nnp");
    } else {
        snprintf(step.msg, sizeof step.msg, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        add(missing, sizeof missing, step.msg);
    }

    /* Last: from here on the child cannot undo any of the above. */
    if (sandbox_seccomp_apply(plan, &step) == 0) {
        add(report, cap, plan->bpf_denies_inet ? "seccomp,seccomp-inet" : "seccomp");
    } else {
        add(missing, sizeof missing, step.msg);
    }
    /* A missing network namespace is covered by the seccomp-inet rule, so
     * it is not "missing" unless that failed too (then seccomp is listed). */

    if (missing[0]) {
        size_t n = strlen(report);
        snprintf(report + n, cap - n, ";missing:%s", missing);
        if (plan->cfg.strict) return rb_err_set(err, "sandbox: cannot apply %s", missing);
    }
    return 0;
}
