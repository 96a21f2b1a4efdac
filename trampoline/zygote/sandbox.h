/*
 * sandbox.h - isolation of a trampoline child (native mode).
 *
 * One file per concern, each applying one thing and reporting failure
 * precisely:
 *   sandbox_net.c      no network: a private network namespace, entered once
 *                      by the mother so children inherit it for free; a
 *                      seccomp rule on socket(AF_INET*) where the kernel
 *                      refuses the namespace
 *   sandbox_ipc.c      a private IPC namespace per child: SysV IPC and POSIX
 *                      message queues die with the job
 *   sandbox_rlimits.c  address space, CPU, file size, open files, core, procs
 *   sandbox_user.c     switch to the unprivileged --run-as user when root
 *   sandbox_spare.c    a spare's limits and scheduling set back as it takes
 *                      a job (the job before it ran as the same user)
 *   sandbox_seccomp.c  deny ptrace, mount, namespaces, bpf, keyctl, perf,
 *                      io_uring, modules, reboot, and leaving the process group
 *   sandbox.c          the order they are applied in, and the report
 */
#ifndef REBOUND_SANDBOX_H
#define REBOUND_SANDBOX_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/filter.h>
#include <sys/types.h>

#include "rebound_proto.h"

typedef struct sandbox_config {
    int mem_limit_mb; /* address space a child may add to what it inherits */
    bool allow_network;
    const char *run_as; /* user to switch to when running as root */
    long uid_base;      /* > 0: slot i's children run as uid and gid uid_base + i */
    bool strict;        /* a feature that cannot be applied fails the child */
} sandbox_config;

/* Prepared once in the mother, copied into every child by fork. */
typedef struct sandbox_plan {
    sandbox_config cfg;
    bool netns; /* the mother entered a private network namespace */
    char netns_error[512];
    bool switch_user; /* running as root: children become run_as */
    uid_t uid;
    gid_t gid;
    char user_error[512];
    unsigned long base_vsz_kb; /* address space of the preloaded mother */
    struct sock_filter *bpf;   /* the seccomp program, or NULL */
    unsigned short bpf_len;
    bool bpf_denies_inet;
    char seccomp_error[512];
    cpu_set_t cpus; /* the mother's CPUs: every child gets them back */
    bool have_cpus;
} sandbox_plan;

/* Mother, once, before any fork: enter the network namespace, look up the
 * user, measure the address space. Never fails: what cannot be had is
 * recorded in the plan and reported by every child. */
void sandbox_prepare(const sandbox_config *cfg, sandbox_plan *plan);

/* Zygote, before each fork: the child's private temporary directory,
 * owned by the user it will run as. Returns 0 or -1 with err. */
int sandbox_make_tmpdir(const sandbox_plan *plan, const char *path, rb_err *err);

/* Child, before it reads a job. Writes what was applied (and what is
 * missing) into report. Returns 0, or -1 with err when a feature failed
 * and plan->cfg.strict is set. */
int sandbox_apply(const sandbox_plan *plan, char *report, size_t cap, rb_err *err);

/* The pieces, in the order sandbox_apply uses them. Each returns 0 or -1
 * with err saying which call failed and why. */
int sandbox_net_enter(rb_err *err); /* mother */
int sandbox_ipc_enter(rb_err *err);
int sandbox_rlimits_apply(const sandbox_plan *plan, rb_err *err);
int sandbox_user_switch(const sandbox_plan *plan, rb_err *err);
/* Zygote (see sandbox_user.c): no supplementary groups of root's; file
 * access as the run-as user (as_user) or as root again. Nothing to do
 * when the children do not switch user. */
int sandbox_user_drop_groups(const sandbox_plan *plan, rb_err *err);
void sandbox_user_fs(const sandbox_plan *plan, bool as_user);
/* Zygote of slot, at its start: with a uid base, its children's uid and
 * gid are the slot's own (sandbox_user.c). */
void sandbox_user_for_slot(sandbox_plan *plan, int slot);
int sandbox_seccomp_build(bool deny_inet, sandbox_plan *plan, rb_err *err); /* mother */
int sandbox_seccomp_apply(const sandbox_plan *plan, rb_err *err);

/* sandbox_spare.c: the mother records what a spare must be set back to;
 * a child that takes a job sets its limits, scheduling policy, CPUs and
 * I/O priority back to them (another job of its user may have changed
 * them). Returns 0, or -1 with err: the child must not run the job. */
void sandbox_spare_prepare(sandbox_plan *plan);
int sandbox_spare_reset(const sandbox_plan *plan, rb_err *err);

/* Lower RLIMIT_CPU once the job's wall limit is known. */
void sandbox_limit_cpu(long long timeout_ms, long cpus);

#endif
