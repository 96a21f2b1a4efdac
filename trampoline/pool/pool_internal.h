/*
 * pool_internal.h - the pool's state and each of its files' functions,
 * private to trampoline/pool/: pool.c (the API, the queue), slot.c (one
 * slot's zygote and child), mother_link.c (the mother, from the pool's
 * side), container.c (the mother's command line in container mode),
 * pool_state.c (what they share), capture.c, procmem.c.
 */
#ifndef REBOUND_POOL_INTERNAL_H
#define REBOUND_POOL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctl.h"
#include "rebound_base.h"
#include "rebound_pool.h"

typedef struct pool_done pool_done;

/* What keeps dying is started again ever more slowly (no jitter: these are
 * one pool's own processes, nothing shared waits on them): the mother after
 * 100 ms, doubling up to 10 s; a slot's zygote at once the first time, then
 * after 100 ms, doubling up to 3.2 s. A success starts over. */
#define MOTHER_RESPAWN_MIN_MS 100
#define MOTHER_RESPAWN_MAX_MS 10000
#define ZYGOTE_RESPAWN_MIN_MS 100
#define ZYGOTE_RESPAWN_MAX_MS 3200

typedef struct pool_job {
    struct pool_job *next;
    pool_done *done; /* owned: its result record, allocated with the job so
                        that finishing it cannot fail */
    uint64_t tag;
    char *wire; /* owned: the settings frame, then the body frame */
    size_t len;
    size_t ncalls; /* calls the job has: the most reports it may get */
    int64_t timeout_ms;
    int64_t submit_ns;
    int retries; /* times it went back to the queue after its zygote died */
    char *files; /* owned: msgpack array of the job's file paths, for its zygote */
    size_t files_len;
} pool_job;

struct pool_done {
    struct pool_done *next;
    rb_pool_result res;
};

/* Output of the running call, read from the capture pipe as it comes. */
typedef struct capture {
    char *data; /* owned, up to max bytes */
    size_t len;
    size_t max;
    bool truncated;
} capture;

/* A child of a slot's zygote, as the pool sees it: its three pipes. */
typedef struct child {
    pid_t pid; /* 0: none */
    int job_fd, result_fd, capture_fd;
    bool ready; /* said "ready": sandboxed and waiting for a job */
    rb_framebuf rbuf;
} child;

typedef struct slot {
    int idx;
    struct rb_pool *pool;

    /* The zygote: zctl < 0 when there is none. */
    int zctl;
    pid_t zygote_pid;      /* 0 until the mother says */
    int64_t respawn_at_ms; /* backoff: no new zygote before this */
    int failures;          /* consecutive zygote failures (and idle child deaths) */
    rb_backoff respawn;    /* each failure after the first takes its next wait */
    int64_t child_due_ms;  /* `next` must be ready by then */

    child run;  /* the child running the job (pid 0 when none) */
    child next; /* the child for the next job: starting, or ready */

    /* The job `run` runs, if any. */
    pool_job *job;
    size_t job_written;     /* bytes of job->wire written so far */
    int64_t job_started_ns; /* when the last of them was written */
    int64_t deadline_ms;
    msgpack_sbuffer calls; /* packed call results so far */
    size_t ncalls;
    bool call_failed;
    capture cap;
    rb_usage usage;    /* of the job, from the child's done or its exit */
    rb_exit_info exit; /* set when the job's child crashed */
} slot;

struct rb_pool {
    rb_pool_config cfg; /* strings below are owned copies */
    char *trampoline_path, *code_root, *preload, *run_as;
    char *container_cmd; /* NULL: bubblewrap */
    char **container_rw; /* split from cfg.container_rw */
    size_t ncontainer_rw;

    pid_t mother_pid;
    int mother_fd;
    bool mother_up; /* hello received */
    int64_t mother_due_ms;
    int64_t mother_respawn_at_ms;
    int mother_failures;       /* since her last hello */
    rb_backoff mother_respawn; /* the wait after her next failure */

    slot *slots;
    pool_job *queue_head, *queue_tail;
    int queued;
    pool_done *done_head, *done_tail;

    int job_nice; /* the priority a child runs its job at: ours */

    char *preload_failed;
    char python[32]; /* the embedded Python's version, from the mother's hello */
    char *sandbox;
    char *setup_error; /* the last child's "setup_failed" reason */
    bool sandbox_missing;

    uint64_t jobs[RB_STATUS_COUNT];
    uint64_t zygote_restarts;
    double recent_ms[64];
    unsigned recent_n;

    char msg[CTL_MAX_MSG];
};

/*
 * Who calls whom (tests/check_layers checks it): pool.c (the public API)
 * calls slot.c, mother_link.c, procmem.c and pool_state.c; mother_link.c
 * calls slot.c and container.c; slot.c calls capture.c; all of them call pool_state.c and
 * ../ctl.c. Nothing calls upward.
 */

/* pool_state.c: the log, job records. (The clock is base/'s rb_mono_ms.) */
void pool_log(const rb_pool *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A finished job's result, queued for rb_pool_next_result; frees the job. */
void pool_finish(rb_pool *pool, slot *s, rb_status st, const char *etype, const char *emsg);
void pool_job_free(pool_job *job);
/* Put a job back at the head of the queue. */
void pool_requeue_front(rb_pool *pool, pool_job *job);
/* The sandbox report of a ready child. */
void pool_note_sandbox(rb_pool *pool, const char *report);

/* mother_link.c: the mother, from the pool's side. */
int pool_start_mother(rb_pool *pool); /* 0, or -1 with errno */
void pool_process_mother(rb_pool *pool, const struct pollfd *fds, int n, int64_t now);
void pool_reap_mother(rb_pool *pool, int wait_ms); /* wait, then SIGKILL */

/* container.c: the command that starts the mother in a container, with
 * tail (the trampoline's arguments, NULL-terminated) appended. Returns a
 * NULL-terminated array (count in *argc), freed with container_argv_free;
 * NULL when memory ran out. */
char **container_argv(const rb_pool *pool, const char *const *tail, int *argc);
void container_argv_free(char **argv);

/* slot.c */
#define SLOT_MAX_FDS 5 /* what slot_pollfds can return */
void slot_init(slot *s, rb_pool *pool, int idx);
void slot_drop_zygote(slot *s, const char *why); /* kill, close, schedule respawn */
void slot_clear_failures(slot *s);               /* the next failure is a first one */
int slot_pollfds(slot *s, struct pollfd *fds, int max);
void slot_process(slot *s, const struct pollfd *fds, int n, int64_t now);
int slot_timeout_ms(slot *s, int64_t now); /* -1 when none */
void slot_start_job(slot *s, pool_job *job);
void slot_free(slot *s);        /* kill its children, close everything */
void slot_abandon_job(slot *s); /* kill the child; the job gets no result */
bool slot_is_free(const slot *s);

/* capture.c */
void capture_init(capture *c, size_t max);
void capture_reset(capture *c);
void capture_free(capture *c);
/* Read what fd holds now into c (discarding past max). Returns 0 on EOF,
 * 1 otherwise. */
int capture_drain(capture *c, int fd);
/* c's bytes as valid UTF-8 (rb_utf8_repair: bytes outside well-formed
 * sequences become U+FFFD); caller frees. */
char *capture_utf8(const capture *c, size_t *len);

/* procmem.c: RSS and PSS of one process in kB (0 when gone). */
void procmem_read(pid_t pid, uint64_t *rss_kb, uint64_t *pss_kb);

#endif
