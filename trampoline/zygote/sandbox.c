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
    plan->init_fd = -1;
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
    /* After the network namespace: unprivileged, its user namespace gives
     * the right to make these. */
    rb_err perr = {{0}};
    if (sandbox_pid_prepare(plan, &perr) == 0)
        plan->pidns = true;
    else
        snprintf(plan->pidns_error, sizeof plan->pidns_error, "%s", perr.msg);
    perr = (rb_err){{0}};
    if (sandbox_mount_prepare(plan, cfg->code_root, cfg->keep, cfg->nkeep, &perr) == 0)
        plan->mountns = true;
    else
        snprintf(plan->mountns_error, sizeof plan->mountns_error, "%s", perr.msg);
    perr = (rb_err){{0}};
    if (sandbox_cgroup_prepare(plan, &perr) == 0)
        sandbox_cgroup_sweep(plan);
    else
        snprintf(plan->cgroup_error, sizeof plan->cgroup_error, "%s", perr.msg);
    int abi = sandbox_landlock_abi();
    plan->landlock = abi >= 6;
    if (!plan->landlock)
        snprintf(plan->landlock_error, sizeof plan->landlock_error,
                 "landlock: signal and abstract-socket scopes need ABI 6, kernel has %d", abi);
    /* Without a network namespace the filter also refuses inet sockets;
     * without a PID namespace, leaving the process group. */
    plan->bpf_denies_inet = !plan->netns && !cfg->allow_network;
    rb_err err = {{0}};
    if (sandbox_seccomp_build(plan->bpf_denies_inet, !plan->pidns, plan, &err) != 0)
        snprintf(plan->seccomp_error, sizeof plan->seccomp_error, "%s", err.msg);
    sandbox_spare_prepare(plan);
    sandbox_cpu_prepare(plan); /* after: it divides the mother's CPUs */
    /* Measured after the preload (the caller's order): what children inherit. */
    plan->base_vsz_kb = own_vsz_kb();
}

/* Append "word" to a comma list. */
static void add(char *buf, size_t cap, const char *word)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%s", n ? "," : "", word);
}

int sandbox_apply(const sandbox_plan *plan, const char *jobdir, char *report, size_t cap,
                  rb_err *err)
{
    char missing[512] = "";
    rb_err step = {{0}};
    report[0] = '\0';

    if (plan->cfg.container) add(report, cap, "container");
    add(report, cap, "pgrp");
    if (plan->netns) {
        add(report, cap, "netns");
    } else if (plan->cfg.allow_network) {
        add(report, cap, "network-allowed");
    }

    /* Born in it (zygote.c): the job is pid 2, beside rebound-init. */
    if (plan->pidns && getpid() == 2) {
        add(report, cap, "pidns");
    } else {
        add(missing, sizeof missing, plan->pidns ? "pidns: not entered" : plan->pidns_error);
    }

    /* As root, before the switch of user takes the right to. */
    if (sandbox_ipc_enter(&step) == 0) {
        add(report, cap, "ipcns");
    } else {
        add(missing, sizeof missing, step.msg);
    }

    if (plan->mountns) {
        /* The zygote made no directory for this child: without its own
         * /tmp, the job has nowhere to work, whatever strict says. */
        if (sandbox_mount_enter(plan, &step) != 0 || sandbox_mount_jobdir(plan, jobdir, &step) != 0)
            return rb_err_set(err, "sandbox: %s", step.msg);
        add(report, cap, "mountns,tmpfs");
    } else {
        add(missing, sizeof missing, plan->mountns_error);
    }
    if (plan->init_fd >= 0) close(plan->init_fd);

    /* Born in the slot's group (the zygote's). */
    if (!plan->cgroups.ready) {
        add(missing, sizeof missing, plan->cgroup_error);
    } else if (sandbox_cgroup_child(&step) == 0) {
        add(report, cap, "cgroup");
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

    /* (One CPU, or --shared-cpus: nothing to pin, nothing missing.) */
    if (plan->pin && sandbox_cpu_pin(plan, &step) == 0)
        add(report, cap, "cpu-per-slot");
    else if (plan->pin)
        add(missing, sizeof missing, step.msg);

    if (!plan->landlock) {
        add(missing, sizeof missing, plan->landlock_error);
    } else if (sandbox_landlock_apply(&step) == 0) {
        add(report, cap, "landlock");
    } else {
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
