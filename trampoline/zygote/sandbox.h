/*
 * sandbox.h - isolation of a trampoline child (native mode).
 *
 * One file per concern, each applying one thing and reporting failure
 * precisely:
 *   sandbox_net.c      no network: a private network namespace, entered once
 *                      by the mother so children inherit it for free; a
 *                      seccomp rule on socket(AF_INET*) where the kernel
 *                      refuses the namespace
 *   sandbox_pid.c      a PID namespace per child, rebound-init its pid 1:
 *                      whatever the job starts dies with it
 *   sandbox_ipc.c      a private IPC namespace per child: SysV IPC and POSIX
 *                      message queues die with the job
 *   sandbox_mount.c    host paths hidden and the code root read-only (once,
 *                      in the mother); a private bounded tmpfs at /tmp,
 *                      /var/tmp and /dev/shm and a /proc of its own per child
 *   sandbox_rlimits.c  address space, CPU, file size, open files, core, procs
 *   sandbox_cgroup.c   memory and tasks of the whole job: a control group
 *                      per slot, the zygote's (v2, or v1's hierarchies)
 *   sandbox_user.c     switch to the unprivileged --run-as user when root
 *   sandbox_spare.c    a spare's limits and scheduling set back as it takes
 *                      a job (the job before it ran as the same user)
 *   sandbox_landlock.c signals and abstract unix sockets scoped to the job
 *   sandbox_seccomp.c  deny ptrace, mount, namespaces, bpf, keyctl, perf,
 *                      io_uring, modules, reboot, and (without a PID
 *                      namespace) leaving the process group
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
    const char *run_as;      /* user to switch to when running as root */
    long uid_base;           /* > 0: slot i's children run as uid and gid uid_base + i */
    bool strict;             /* a feature that cannot be applied fails the child */
    bool container;          /* the mother runs in a container (reported first) */
    const char *code_root;   /* made read-only and kept visible */
    const char *const *keep; /* more directories kept visible (the interpreter's) */
    size_t nkeep;
    long tmp_mb;      /* size of each of a child's /tmp, /var/tmp, /dev/shm */
    long tmp_inodes;  /* files and directories in each */
    long slot_offset; /* this pool's first slot among the worker's (CPU per slot) */
    bool shared_cpus; /* no CPU per slot */
} sandbox_config;

/* The groups of sandbox_cgroup.c: one directory per pool in each
 * hierarchy (v2: one), under which each zygote has its slot's group. */
#define SANDBOX_CGROUP_TASKS 128        /* processes and threads of one slot */
#define SANDBOX_CGROUP_SLOT_EXTRA_MB 64 /* the zygote and its spare, on top of the job's */
typedef struct sandbox_cgroups {
    bool ready;
    bool v2;
    int ndirs;
    char pool_dir[3][512];
} sandbox_cgroups;

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
    bool pidns;  /* children are born in a PID namespace of their own */
    int init_fd; /* rebound-init, opened before paths were hidden */
    char pidns_error[512];
    bool mountns; /* the mother's paths hidden; a tmpfs per child */
    char mountns_error[512];
    char tmp_keep[4096]; /* the code root, when under /tmp: bound back per child */
    bool landlock;
    char landlock_error[512];
    sandbox_cgroups cgroups;
    char cgroup_error[512];
    bool pin;                    /* a CPU per slot (sandbox_cpu.c) */
    cpu_set_t slot_cpus;         /* the slot's CPU, set in its zygote */
    struct sock_filter *pin_bpf; /* denies sched_setaffinity to the child */
    unsigned short pin_bpf_len;
} sandbox_plan;

/* Mother, once, before any fork: enter the network namespace, hide host
 * paths, look up the user, measure the address space. Never fails: what
 * cannot be had is recorded in the plan and reported by every child. */
void sandbox_prepare(const sandbox_config *cfg, sandbox_plan *plan);

/* Zygote, before each fork: the child's private temporary directory,
 * owned by the user it will run as. Returns 0 or -1 with err. */
int sandbox_make_tmpdir(const sandbox_plan *plan, const char *path, rb_err *err);

/* Child, before it reads a job. With a mount namespace, makes the job's
 * directory jobdir in its private /tmp (else the zygote made it). Writes
 * what was applied (and what is missing) into report. Returns 0, or -1 with
 * err when a feature failed and plan->cfg.strict is set, or the job's
 * directory could not be made. */
int sandbox_apply(const sandbox_plan *plan, const char *jobdir, char *report, size_t cap,
                  rb_err *err);

/* The pieces, in the order sandbox_apply uses them. Each returns 0 or -1
 * with err saying which call failed and why. */
int sandbox_net_enter(rb_err *err); /* mother */
int sandbox_ipc_enter(rb_err *err);
int sandbox_landlock_apply(rb_err *err);
int sandbox_landlock_abi(void); /* 0 without Landlock */
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
int sandbox_seccomp_build(bool deny_inet, bool deny_setsid, sandbox_plan *plan,
                          rb_err *err); /* mother */
int sandbox_seccomp_apply(const sandbox_plan *plan, rb_err *err);
/* The BPF program of a libseccomp filter (ctx: a scmp_filter_ctx), made
 * once: *bpf is malloc'd and owned by the caller (a plan keeps it for the
 * process's life). And installing such a program in the calling process.
 * 0, or -1 with err. */
int sandbox_seccomp_export(void *ctx, struct sock_filter **bpf, unsigned short *len, rb_err *err);
int sandbox_seccomp_install(const struct sock_filter *bpf, unsigned short len, rb_err *err);

/* sandbox_spare.c: the mother records what a spare must be set back to;
 * a child that takes a job sets its limits, scheduling policy, CPUs and
 * I/O priority back to them (another job of its user may have changed
 * them). Returns 0, or -1 with err: the child must not run the job. */
void sandbox_spare_prepare(sandbox_plan *plan);
int sandbox_spare_reset(const sandbox_plan *plan, rb_err *err);

/* sandbox_pid.c. Mother: find rebound-init beside this program and try a
 * namespace once (0, or -1 with err). Zygote: start (own namespace and
 * pidfd, 0 or -1 with err); per child, start an init (its pid, and
 * its pidfd in *pidfd, owned by the caller; or -1 with err), enter its
 * namespace for the fork, and leave it after. Child: whether its zygote
 * still lives, and close what it inherited of this. */
int sandbox_pid_prepare(sandbox_plan *plan, rb_err *err);
int sandbox_pid_zygote_start(rb_err *err);
pid_t sandbox_pid_start_init(const sandbox_plan *plan, int *pidfd, rb_err *err);
int sandbox_pid_enter(int init_pidfd, rb_err *err);
void sandbox_pid_leave(void);
bool sandbox_pid_zygote_alive(void);
void sandbox_pid_close(void); /* what zygote_start opened, or a child inherited */

/* sandbox_mount.c. Mother: a mount namespace with host paths hidden and
 * the code root read-only. Child: its own tmpfs and /proc; then its job
 * directory (and the directories above it) in it. 0, or -1 with err. */
int sandbox_mount_prepare(sandbox_plan *plan, const char *code_root, const char *const *keep,
                          size_t nkeep, rb_err *err);
int sandbox_mount_enter(const sandbox_plan *plan, rb_err *err);
int sandbox_mount_jobdir(const sandbox_plan *plan, const char *path, rb_err *err);

/* sandbox_kfile.c: write text to a kernel control file in one write.
 * 0, or -1 with errno. */
int sandbox_write_kfile(const char *path, const char *text);

/* sandbox_cgroup.c. Mother: the pool's directories (0, or -1 with err),
 * the directories of pools whose mother died, and at the end the pool's
 * own. Zygote: make and limit its slot's group and move into it (0, or -1
 * with err). Child: be the OOM killer's first choice (0, or -1 with err). */
int sandbox_cgroup_prepare(sandbox_plan *plan, rb_err *err);
void sandbox_cgroup_sweep(const sandbox_plan *plan);
void sandbox_cgroup_remove(const sandbox_plan *plan);
int sandbox_cgroup_zygote(const sandbox_plan *plan, int slot, rb_err *err);
int sandbox_cgroup_child(rb_err *err);

/* sandbox_cpu.c. Mother: decide on a CPU per slot and build the filter
 * that keeps a job on it. Zygote: the slot's CPU. Child, before it says
 * ready: onto the slot's CPU, for good. 0, or -1 with err. */
void sandbox_cpu_prepare(sandbox_plan *plan);
void sandbox_cpu_for_slot(sandbox_plan *plan, int slot);
int sandbox_cpu_pin(const sandbox_plan *plan, rb_err *err);

/* Lower RLIMIT_CPU once the job's wall limit is known. */
void sandbox_limit_cpu(long long timeout_ms, long cpus);

#endif
