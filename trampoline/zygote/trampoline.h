/*
 * trampoline.h - the rebound-trampoline program (private to trampoline/).
 *
 * One process tree per pool:
 *
 *   pool (in the consumer)
 *    `- mother      imports the preload list once, then only forks zygotes
 *        `- zygote  one per slot; keeps one child forked and ready
 *            `- child   sandboxes itself, runs one job, exits
 *
 * Zygotes are forked from the mother rather than started cold, so they
 * share the preloaded interpreter's pages and replacing one costs a fork.
 * The zygote never runs user code: it forks, reaps, reports, hands each new
 * child's pipes to the pool (which then talks to the child directly), and
 * compiles (never runs) the files jobs use, for the children after them.
 */
#ifndef REBOUND_TRAMPOLINE_H
#define REBOUND_TRAMPOLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "caches.h"
#include "rebound_proto.h"
#include "rng.h"
#include "sandbox.h"

typedef struct tr_config {
    int control_fd;        /* SOCK_SEQPACKET to the pool */
    const char *code_root; /* absolute, resolved */
    bool native;           /* sandbox children */
    const char *preload;   /* comma list */
    size_t max_result_bytes;
    bool huge_pages; /* arenas.c; off with --no-huge-pages */
    sandbox_config sandbox;
} tr_config;

/* main.c: everything the forked processes need, set up once by the mother. */
typedef struct tr_state {
    tr_config cfg;
    sandbox_plan plan;         /* prepared once, applied in every child */
    rng_state rng;             /* where the random generators' state lives */
    caches caches;             /* library caches shared by the jobs (caches.h) */
    char preload_failed[1024]; /* "name: reason; ..." */
    char warm_file[160];       /* the children's warm-up module (runner.h) */
    long cpus;                 /* online CPUs, read once (sysconf reads /sys) */
    pid_t mother_pid;
    pid_t zygote_pid; /* set in each zygote */
    bool fork_hooks;  /* run Python's fork hooks around each fork (main.c) */
} tr_state;

/* mother.c: serve spawn requests until the pool goes away. Returns the
 * process exit code. */
int mother_run(tr_state *st);

/* zygote.c: keep one ready child for the pool on zctl. Never returns. */
void zygote_run(tr_state *st, int slot, int zctl) __attribute__((noreturn));

/* child.c: sandbox, announce readiness, run one job, exit. Never returns. */
void child_run(tr_state *st, int job_fd, int result_fd, int capture_fd, const char *tmpdir)
    __attribute__((noreturn));

/* tmpdirs.c: children's private temporary directories. */
int tmpdir_make_base(rb_err *err); /* the mother's, once */
/* The base again if it was removed (by a cleaner of /tmp, say): 1 when it
 * was made again, 0 when it is there, -1 with err when the name is taken
 * by something that is not the pool's. */
int tmpdir_restore_base(rb_err *err);
/* A file in the base, readable by every child (not writable). */
int tmpdir_base_file(const char *name, const char *text, char *path, size_t cap, rb_err *err);
void tmpdir_remove_base(void);
void tmpdir_path(char *out, size_t cap, pid_t zygote, unsigned long seq);
void tmpdir_remove(const char *path);
void tmpdir_remove_zygote(pid_t zygote); /* all of a dead zygote's */
void tmpdir_sweep_orphans(void);         /* all whose zygote is gone */

/* SIGCHLD blocked and delivered through the returned signalfd (-1 with
 * errno on failure): how the mother and the zygotes learn of a death. */
int tr_sigchld_fd(void);

/* True when this process has no other thread (read from /proc): then it
 * can fork without Python's fork hooks (see main.c). */
bool tr_single_threaded(void);

/* User + system time in a rusage, in microseconds: what a job cost
 * (child.c from getrusage, zygote.c from wait4). */
struct rusage;
int64_t tr_rusage_cpu_us(const struct rusage *ru);

/* Log one line to stderr with the process role and pid. */
void tr_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern const char *tr_role;

#endif
