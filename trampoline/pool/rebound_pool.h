/*
 * rebound_pool.h - a pool of preloaded Python zygotes, driven by a
 * single-threaded poll() loop.
 *
 * The pool starts one `rebound-trampoline` process (the mother), which
 * imports the preload list once and forks one zygote per slot; each zygote
 * keeps one forked, sandboxed child ready. A submitted job goes straight to
 * the ready child of a free slot over inherited pipes; the child runs it and
 * exits, and its zygote forks the next child at once.
 *
 * Nothing here blocks for long except rb_pool_new (which waits for the
 * slots to become ready, bounded by spawn_timeout_ms). The caller's loop:
 *
 *     n = rb_pool_pollfds(pool, fds, max);
 *     poll(fds, n, min(rb_pool_timeout_ms(pool), ...));
 *     rb_pool_process(pool, fds, n);
 *     while (rb_pool_next_result(pool, &res)) { ...; rb_pool_result_free(&res); }
 */
#ifndef REBOUND_POOL_H
#define REBOUND_POOL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rebound_proto.h"

typedef enum rb_mode {
    RB_MODE_INTERNAL = 0, /* plain forks, no isolation */
    RB_MODE_NATIVE,       /* sandboxed children (the default) */
    RB_MODE_CONTAINER,    /* native, with the mother in a container (container.c) */
} rb_mode;

/* "internal" / "native" / "container"; rb_mode_parse returns -1 for
 * anything else. */
const char *rb_mode_name(rb_mode m);
int rb_mode_parse(const char *s, rb_mode *out);

typedef struct rb_pool_config {
    int slots;                   /* >= 1 */
    const char *trampoline_path; /* the rebound-trampoline binary */
    const char *code_root;       /* absolute path */
    rb_mode mode;
    const char *preload;     /* comma-separated module names */
    size_t max_output_bytes; /* per call */
    size_t max_result_bytes; /* per call result */
    int mem_limit_mb;        /* address space the child may add; 0: no limit */
    int tmp_mb;              /* native: size of a job's own /tmp, /var/tmp, /dev/shm (each) */
    int tmp_inodes;          /* native: files and directories in each */
    int slot_offset;         /* native: this pool's first slot among the worker's (CPU per slot) */
    /* container mode: the runtime's command in place of bubblewrap's (NULL:
     * bubblewrap), and host directories bound read-write into it (comma
     * list, e.g. where sanitizer logs go; NULL: none). */
    const char *container_cmd;
    const char *container_rw;
    bool allow_network;
    bool shared_cpus;         /* native: no CPU per slot (sandbox_cgroup.c) */
    const char *run_as;       /* user children switch to when running as root */
    long uid_base;            /* > 0: slot i runs as uid/gid uid_base + i instead */
    bool sandbox_best_effort; /* start even when a sandbox feature is missing */
    bool no_huge_pages;       /* Python's own arenas and plain malloc (arenas.c), for A/B */
    int spawn_timeout_ms;     /* a child not ready by then: replace the zygote */
    int start_timeout_ms;     /* rb_pool_new gives up after this (cold start) */
    /* Where the pool's log lines go (one line, no newline); NULL: stderr. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} rb_pool_config;

/* Defaults: slots = CPUs, mode native, preload "numpy,lxml.etree,json,random,math",
 * output 1 MiB, result 16 MiB, mem 1024 MB, run_as "nobody", spawn 10 s,
 * start 60 s.
 * trampoline_path and code_root are left NULL. */
void rb_pool_config_default(rb_pool_config *cfg);

typedef struct rb_pool rb_pool;

/*
 * The pool ignores SIGPIPE for the process (it writes to pipes of children
 * that may be gone) and reaps only the processes it started, by pid: the
 * caller must not reap with waitpid(-1).
 *
 * Start the mother and all slots and wait until each slot has a ready child
 * (or spawn_timeout_ms passes). Returns NULL with err set when the
 * trampoline cannot start, or when mode is native, a sandbox feature is
 * missing and sandbox_best_effort is false. The config's strings are copied.
 */
rb_pool *rb_pool_new(const rb_pool_config *cfg, rb_err *err);

/* Kill every process of the pool (children, zygotes, mother), reap them and
 * free everything. Jobs still queued or running produce no result. */
void rb_pool_free(rb_pool *pool);

/*
 * Queue a job. body/len are the validated job body (copied); job is its
 * decoded form (only timeout_ms is read; not kept). tag is the caller's,
 * returned with the result. Jobs start in FIFO order as slots free up.
 * Returns 0, or -1 on allocation failure.
 */
int rb_pool_submit(rb_pool *pool, uint64_t tag, const void *body, size_t len, const rb_job *job);

/* Fill fds (at most max) with what the pool needs polled. Returns the count. */
int rb_pool_pollfds(rb_pool *pool, struct pollfd *fds, int max);

/* The most fds rb_pool_pollfds can return for this pool (it grows with
 * the slots): size the caller's array with it. */
int rb_pool_max_pollfds(const rb_pool *pool);

/* Milliseconds until the pool next needs rb_pool_process (a deadline, a
 * respawn backoff), or -1 when it only waits on fds. */
int rb_pool_timeout_ms(rb_pool *pool);

/* Handle whatever is ready in fds (as filled by rb_pool_pollfds and set by
 * poll) and any deadline that has passed. fds may be NULL with n == 0. */
void rb_pool_process(rb_pool *pool, const struct pollfd *fds, int n);

typedef struct rb_pool_result {
    uint64_t tag;
    rb_status status; /* ok, error, timeout or crashed */
    char *error_type; /* owned; NULL when status is ok/error */
    char *error_message;
    char *call_results; /* owned; ncalls packed call-result maps, back to back */
    size_t call_results_len;
    size_t ncalls;
    double ms;          /* submit to finish, wall */
    rb_usage usage;     /* what the job cost, as far as measured */
    rb_exit_info exit;  /* a crashed job's child: how it ended */
    int64_t started_ns; /* rb_mono_ns: the job was written to its child (0: never) */
    int64_t done_ns;    /* rb_mono_ns: the pool finished it */
} rb_pool_result;

/* Take the next finished job, oldest first. Returns false when none. */
bool rb_pool_next_result(rb_pool *pool, rb_pool_result *out);
void rb_pool_result_free(rb_pool_result *res);

/* Kill the running child of every busy slot (cold shutdown). Their jobs
 * produce no result. */
void rb_pool_abandon_running(rb_pool *pool);

typedef struct rb_pool_stats {
    int slots;
    int busy;                       /* slots running a job */
    int ready;                      /* slots with a ready child and no job */
    int queued;                     /* submitted, not yet started */
    uint64_t jobs[RB_STATUS_COUNT]; /* finished, by status */
    uint64_t zygote_restarts;
    uint64_t rss_kb; /* mother + zygotes + children */
    uint64_t pss_kb;
    double avg_run_ms; /* mean of the last 64 jobs */
} rb_pool_stats;

/* Counters are cheap; memory is read from /proc only when with_memory. */
void rb_pool_get_stats(rb_pool *pool, rb_pool_stats *out, bool with_memory);

/* Comma-separated preload modules that failed to import ("" when none);
 * owned by the pool. */
const char *rb_pool_preload_failed(const rb_pool *pool);

/* The embedded Python's version ("3.13.0"): as the mother reported it, or
 * before she has, the one the trampoline was built against. Owned by the
 * pool. */
const char *rb_pool_python(const rb_pool *pool);

/* What the sandbox applies in this mode, e.g. "pgrp,nnp,seccomp,netns,
 * rlimits,user=nobody", with "missing:..." appended for features the
 * kernel refused. Owned by the pool. */
const char *rb_pool_sandbox(const rb_pool *pool);

#endif
