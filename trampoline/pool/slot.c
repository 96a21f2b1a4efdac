/*
 * slot.c - one slot: its zygote, the zygote's children, and the job.
 *
 * A slot has up to two children: `next`, forked ahead and waiting for a
 * job, and `run`, running the job. When a job starts, `next` becomes `run`
 * and the pool tells the zygote, which forks the following child at once:
 * it gets ready while the job runs (at the lowest CPU priority, so that it
 * does not slow the job down), and a job that follows another finds a
 * child waiting instead of waiting for a fork and a process exit.
 *
 * The zygote's control socket says when a child is born (with the child's
 * pipes) and how it ended; each child's own result pipe says when it is
 * ready and what each call returned. A job ends when its child says "done",
 * when its deadline passes (the child's process group is killed), or when
 * the child dies first (crashed). None of these costs the zygote.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pool_internal.h"

static short revents_of(const struct pollfd *fds, int n, int fd)
{
    for (int i = 0; fd >= 0 && i < n; i++)
        if (fds[i].fd == fd) return fds[i].revents;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void child_init(child *c)
{
    memset(c, 0, sizeof *c);
    c->job_fd = c->result_fd = c->capture_fd = -1;
    rb_framebuf_init(&c->rbuf, RB_FRAME_MAX);
}

/* Kill the child's process group: everything a job started goes with it. */
static void child_kill(const child *c)
{
    if (c->pid > 0) {
        kill(-c->pid, SIGKILL);
        kill(c->pid, SIGKILL);
    }
}

/* Forget the child (its zygote reports its end on its own). */
static void child_close(child *c)
{
    close_fd(&c->job_fd);
    close_fd(&c->result_fd);
    close_fd(&c->capture_fd);
    rb_framebuf_free(&c->rbuf);
    child_init(c);
}

void slot_init(slot *s, rb_pool *pool, int idx)
{
    memset(s, 0, sizeof *s);
    s->idx = idx;
    s->pool = pool;
    s->zctl = -1;
    child_init(&s->run);
    child_init(&s->next);
    rb_backoff_init(&s->respawn, ZYGOTE_RESPAWN_MIN_MS, ZYGOTE_RESPAWN_MAX_MS, false);
    capture_init(&s->cap, pool->cfg.max_output_bytes);
    msgpack_sbuffer_init(&s->calls);
}

void slot_free(slot *s)
{
    slot_abandon_job(s);
    child_kill(&s->next);
    child_close(&s->next);
    child_close(&s->run);
    if (s->zctl >= 0) close(s->zctl);
    s->zctl = -1;
    capture_free(&s->cap);
    msgpack_sbuffer_destroy(&s->calls);
}

bool slot_is_free(const slot *s)
{
    return s->next.ready && !s->job && s->next.job_fd >= 0;
}

/* The job is over. Its child is used up: kill its process group, whatever
 * it claims, so nothing the job started outlives the job. */
static void finish(slot *s, rb_status st, const char *etype, const char *emsg)
{
    pool_finish(s->pool, s, st, etype, emsg);
    child_kill(&s->run);
    child_close(&s->run);
    /* The next child may have been forked long ago, while a long job ran:
     * give it the full time from now. */
    if (!s->next.ready) s->child_due_ms = rb_mono_ms() + s->pool->cfg.spawn_timeout_ms;
}

/* The job goes back to the head of the queue, once: it was handed to a
 * child that died before it reported anything, most likely before it ran. */
static bool requeue(slot *s)
{
    if (!s->job || s->ncalls > 0 || s->job->retries > 0) return false;
    pool_job *job = s->job;
    s->job = NULL;
    job->retries++;
    pool_requeue_front(s->pool, job);
    return true;
}

void slot_abandon_job(slot *s)
{
    if (!s->job) return;
    pool_job_free(s->job);
    s->job = NULL;
    child_kill(&s->run);
    child_close(&s->run);
}

/* One more consecutive failure of the slot: its zygote dropped, or an idle
 * child of it dead. The first costs nothing; each further one doubles the
 * wait before a new zygote (pool_internal.h). Returns that wait. */
static int64_t count_failure(slot *s)
{
    return ++s->failures <= 1 ? 0 : rb_backoff_next(&s->respawn);
}

void slot_clear_failures(slot *s)
{
    s->failures = 0;
    rb_backoff_reset(&s->respawn);
}

void slot_drop_zygote(slot *s, const char *why)
{
    rb_pool *pool = s->pool;
    child_kill(&s->run);
    child_kill(&s->next);
    if (s->job && requeue(s))
        child_close(&s->run);
    else if (s->job)
        finish(s, RB_STATUS_CRASHED, "Crashed", why);
    child_close(&s->run);
    child_close(&s->next);
    if (s->zygote_pid > 0) kill(s->zygote_pid, SIGKILL); /* the mother reaps it */
    close_fd(&s->zctl);
    s->zygote_pid = 0;
    pool->zygote_restarts++;
    /* The first replacement is immediate; a zygote that keeps failing is
     * retried ever more slowly. */
    int64_t delay = count_failure(s);
    s->respawn_at_ms = rb_mono_ms() + delay;
    pool_log(pool, "slot %d: replacing zygote: %s (retry in %lld ms)", s->idx, why,
             (long long)delay);
}

int slot_pollfds(slot *s, struct pollfd *fds, int max)
{
    int n = 0;
    if (s->zctl >= 0 && n < max) fds[n++] = (struct pollfd){s->zctl, POLLIN, 0};
    if (s->next.result_fd >= 0 && n < max) fds[n++] = (struct pollfd){s->next.result_fd, POLLIN, 0};
    if (s->run.result_fd >= 0 && n < max) fds[n++] = (struct pollfd){s->run.result_fd, POLLIN, 0};
    if (s->job && s->run.capture_fd >= 0 && n < max)
        fds[n++] = (struct pollfd){s->run.capture_fd, POLLIN, 0};
    /* Only while part of the job is still to be written: the pipe stays
     * open for acknowledgements, and an idle writable pipe would wake the
     * loop at once, every time. */
    if (s->job && s->run.job_fd >= 0 && s->job_written < s->job->len && n < max)
        fds[n++] = (struct pollfd){s->run.job_fd, POLLOUT, 0};
    return n;
}

int slot_timeout_ms(slot *s, int64_t now)
{
    int64_t due = -1;
    if (s->zctl >= 0 && !s->next.ready) due = s->child_due_ms;
    if (s->job && (due < 0 || s->deadline_ms < due)) due = s->deadline_ms;
    if (s->zctl < 0 && s->pool->mother_up) due = s->respawn_at_ms;
    if (due < 0) return -1;
    return due <= now ? 0 : (int)(due - now > 1000000 ? 1000000 : due - now);
}

/* Write as much of the job as the pipe takes now. */
static void write_job(slot *s)
{
    pool_job *j = s->job;
    while (s->job_written < j->len) {
        ssize_t n = write(s->run.job_fd, j->wire + s->job_written, j->len - s->job_written);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n < 0) {
            /* The child is gone; its exit report says how. */
            close_fd(&s->run.job_fd);
            return;
        }
        s->job_written += (size_t)n;
    }
    s->job_started_ns = rb_mono_ns();
}

void slot_start_job(slot *s, pool_job *job)
{
    child_close(&s->run); /* nothing left of the last job's child */
    s->run = s->next;     /* the pipes and buffer move over */
    child_init(&s->next);
    s->child_due_ms = rb_mono_ms() + s->pool->cfg.spawn_timeout_ms;
    /* The spare got ready at the lowest priority (zygote.c); its job runs
     * at the consumer's own. The zygote lowered it only if we may raise it
     * again (CAP_SYS_NICE). */
    setpriority(PRIO_PROCESS, (id_t)s->run.pid, s->pool->job_nice);
    /* The zygote compiles the job's files and forks the next spare now. A
     * full socket or a gone zygote shows up as no next child in time. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    ctl_msg_init(&sb, &pk, CTL_TAKEN, job->files ? 2 : 1);
    rb_pack_key(&pk, "pid");
    msgpack_pack_int64(&pk, s->run.pid);
    if (job->files) {
        rb_pack_key(&pk, "files");
        msgpack_sbuffer_write(&sb, job->files, job->files_len);
    }
    ctl_send_sbuf(s->zctl, &sb, NULL, 0);
    msgpack_sbuffer_destroy(&sb);

    s->job = job;
    s->job_written = 0;
    s->deadline_ms = rb_mono_ms() + job->timeout_ms;
    msgpack_sbuffer_clear(&s->calls);
    s->ncalls = 0;
    s->call_failed = false;
    capture_reset(&s->cap);
    write_job(s);
}

/* One "call" frame: the child's report of a call, plus the output the call
 * wrote, which is in the capture pipe by now (the child flushes before it
 * reports). Returns 0, -1 when packing failed, or 2 when the pool failed a
 * call the child reported as returned (the result would pass its limit)
 * and the child, waiting for its acknowledgement, must not go on. */
static int take_call(slot *s, const msgpack_object *m)
{
    rb_pool *pool = s->pool;
    child *c = &s->run;
    if (c->capture_fd >= 0 && capture_drain(&s->cap, c->capture_fd) == 0) close_fd(&c->capture_fd);

    msgpack_sbuffer val, args;
    msgpack_packer pk;
    msgpack_sbuffer_init(&val);
    msgpack_sbuffer_init(&args);
    rb_call_result cr = {0};
    const msgpack_object *o = rb_map_get(m, "present");
    cr.present = o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
    o = rb_map_get(m, "ms");
    if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32))
        cr.ms = o->via.f64;
    if ((o = rb_map_get(m, "val"))) {
        msgpack_packer_init(&pk, &val, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *o);
        cr.val = val.data;
        cr.val_len = val.size;
    }
    if ((o = rb_map_get(m, "args"))) {
        msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *o);
        cr.args = args.data;
        cr.args_len = args.size;
    }
    char etype[128], emsg[4096], *etb = NULL;
    const msgpack_object *e = rb_map_get(m, "error");
    if (e && e->type == MSGPACK_OBJECT_MAP) {
        ctl_get_str(e, "type", etype, sizeof etype);
        ctl_get_str(e, "message", emsg, sizeof emsg);
        const msgpack_object *tb = rb_map_get(e, "traceback");
        if (tb && tb->type == MSGPACK_OBJECT_STR) etb = strndup(tb->via.str.ptr, tb->via.str.size);
        cr.error_type = etype;
        cr.error_message = emsg;
        cr.error_traceback = etb ? etb : "";
        s->call_failed = true;
    }
    size_t out_len = 0;
    char *out = capture_utf8(&s->cap, &out_len);
    cr.output = out ? out : "";
    cr.output_len = out_len;
    cr.truncated = s->cap.truncated;
    /* The whole result stays within the limit: a call gets what the calls
     * before it left. One that does not fit fails, and the job with it. */
    size_t used = s->calls.size;
    size_t budget = used < pool->cfg.max_result_bytes ? pool->cfg.max_result_bytes - used : 0;
    bool too_large = cr.val_len + cr.args_len + cr.output_len + 256 > budget;
    bool pool_failed = too_large && !s->call_failed;
    if (too_large) s->call_failed = true;
    int rc = rb_call_result_pack(&cr, budget, &s->calls);
    s->ncalls++;
    capture_reset(&s->cap);
    /* The child waits for this before its next call, so that call's output
     * cannot be taken for this one's. */
    if (rc == 0 && !s->call_failed && s->ncalls < s->job->ncalls && c->job_fd >= 0 &&
        write(c->job_fd, "a", 1) != 1)
        close_fd(&c->job_fd);
    free(out);
    free(etb);
    msgpack_sbuffer_destroy(&val);
    msgpack_sbuffer_destroy(&args);
    /* The last call's "done" is on its way; before it, the child waits for
     * an acknowledgement that will not come. */
    if (rc == 0 && pool_failed && s->ncalls < s->job->ncalls) return 2;
    return rc;
}

/* text, cut to fit out, with every byte that is not printable ASCII as '?'. */
static void printable(const char *text, char *out, size_t cap)
{
    size_t n = 0;
    for (; text[n] && n + 1 < cap; n++)
        out[n] = (text[n] >= 0x20 && text[n] < 0x7f && text[n] != '"') ? text[n] : '?';
    out[n] = '\0';
}

/* A frame child c wrote on its result pipe. Returns 1 when the job ended,
 * -1 when the child broke the protocol, 0 otherwise. */
/* cpu_us and rss_kb of a child's "done" or its zygote's "exit". */
static void usage_from(slot *s, const msgpack_object *msg)
{
    s->usage.has_cpu = true;
    s->usage.cpu_ms = (double)ctl_get_int(msg, "cpu_us", 0) / 1000.0;
    s->usage.max_rss_kb = ctl_get_int(msg, "rss_kb", 0);
}

static int take_frame(slot *s, child *c, const char *frame, size_t len)
{
    msgpack_unpacked unp;
    ctl_type type;
    int rc = 0;
    bool is_run = c == &s->run && s->job;
    if (ctl_parse(frame, len, &unp, &type) != 0) {
        rc = -1;
    } else if (type == CTL_READY && c == &s->next && !c->ready) {
        char report[512];
        ctl_get_str(&unp.data, "sandbox", report, sizeof report);
        c->ready = true;
        slot_clear_failures(s);
        pool_note_sandbox(s->pool, report);
        /* Whatever reached its capture pipe so far is no job's output. */
        capture cap;
        capture_init(&cap, 0);
        if (c->capture_fd >= 0 && capture_drain(&cap, c->capture_fd) == 0) close_fd(&c->capture_fd);
    } else if (type == CTL_SETUP_FAILED && c == &s->next && !c->ready) {
        /* Only a child still setting itself up may say so; from a child
         * that runs a job, user code could have written it. The text is
         * still shown quoted and printable only. */
        char why[512], shown[256];
        ctl_get_str(&unp.data, "err", why, sizeof why);
        printable(why, shown, sizeof shown);
        pool_log(s->pool, "slot %d: child could not start: \"%s\"", s->idx, shown);
        free(s->pool->setup_error);
        s->pool->setup_error = strdup(why);
    } else if (type == CTL_REFUSED && is_run && s->ncalls == 0) {
        /* The child could not set its state right before the job ran
         * (sandbox_spare.c): the job goes to the next child, once. A job
         * that forges this only runs again, once (requeue() counts). */
        char why[512], shown[256];
        ctl_get_str(&unp.data, "err", why, sizeof why);
        printable(why, shown, sizeof shown);
        pool_log(s->pool, "slot %d: a child refused its job: \"%s\"", s->idx, shown);
        child_kill(&s->run);
        if (requeue(s))
            child_close(&s->run);
        else
            finish(s, RB_STATUS_CRASHED, "Crashed", "the job's process could not be prepared");
        rc = 1;
    } else if (type == CTL_CALL && is_run && s->ncalls < s->job->ncalls && !s->call_failed) {
        rc = take_call(s, &unp.data);
        if (rc == 2) { /* the job ends here, with the call that did not fit */
            finish(s, RB_STATUS_ERROR, NULL, NULL);
            rc = 1;
        }
    } else if (type == CTL_DONE && is_run &&
               (s->ncalls == s->job->ncalls || (s->call_failed && s->ncalls > 0))) {
        /* The child measured these itself: user code could have written
         * them, but they only describe that job, to its own sender. */
        usage_from(s, &unp.data);
        s->usage.has_wall = true;
        s->usage.wall_ms = (double)ctl_get_int(&unp.data, "wall_us", 0) / 1000.0;
        finish(s, s->call_failed ? RB_STATUS_ERROR : RB_STATUS_OK, NULL, NULL);
        rc = 1;
    } else {
        rc = -1;
    }
    msgpack_unpacked_destroy(&unp);
    return rc;
}

/* Read c's result pipe and act on every whole frame in it. */
static void read_results(slot *s, child *c)
{
    for (;;) {
        ssize_t n = rb_framebuf_fill(&c->rbuf, c->result_fd);
        if (n == 0) {
            close_fd(&c->result_fd); /* the exit report says the rest */
            break;
        }
        if (n < 0) break;
    }
    const char *frame;
    size_t len;
    int got;
    while ((got = rb_framebuf_next(&c->rbuf, &frame, &len)) == 1) {
        int rc = take_frame(s, c, frame, len);
        if (rc == 1) return; /* done: the rest of this child does not matter */
        if (rc < 0) {
            got = -1;
            break;
        }
    }
    if (got < 0) {
        child_kill(c);
        if (c == &s->run && s->job)
            finish(s, RB_STATUS_CRASHED, "Crashed", "the child broke the result protocol");
        else
            child_close(c);
    }
}

/* A crashed job's figures: the zygote's wait4 of its child. */
static void crash_usage(slot *s, int status, const msgpack_object *exit_msg)
{
    usage_from(s, exit_msg);
    s->exit.known = true;
    if (WIFSIGNALED(status)) {
        s->exit.signal = WTERMSIG(status);
        s->exit.core = WCOREDUMP(status) != 0;
    } else {
        s->exit.code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    }
}

static void take_exit(slot *s, pid_t pid, int status, const msgpack_object *exit_msg)
{
    char how[160];
    rb_wait_text(status, RB_SIG_DESCRIBED, how, sizeof how);
    if (pid == s->run.pid) {
        if (s->run.result_fd >= 0) read_results(s, &s->run); /* it may have finished */
        if (s->job && s->run.pid == pid) {
            if (s->run.capture_fd >= 0) capture_drain(&s->cap, s->run.capture_fd);
            /* A child that died before it had the whole job did not run it:
             * that is no outcome of the job's. */
            if (s->job_written == s->job->len || !requeue(s)) {
                crash_usage(s, status, exit_msg);
                finish(s, RB_STATUS_CRASHED, "Crashed", how);
            } else {
                child_close(&s->run);
            }
        } else {
            child_close(&s->run);
        }
    } else if (pid == s->next.pid) {
        /* A child that dies before it has a job: its zygote forks another,
         * but one whose children keep dying is replaced. */
        pool_log(s->pool, "slot %d: idle child %d %s", s->idx, (int)pid, how);
        child_close(&s->next);
        count_failure(s);
        if (s->failures >= 3) slot_drop_zygote(s, "its children keep dying before a job");
    }
}

static void take_zygote_msg(slot *s, const char *payload, size_t len, int *fds, int nfds)
{
    msgpack_unpacked unp;
    ctl_type type;
    if (ctl_parse(payload, len, &unp, &type) != 0) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        msgpack_unpacked_destroy(&unp);
        slot_drop_zygote(s, "unreadable control message");
        return;
    }
    pid_t pid = (pid_t)ctl_get_int(&unp.data, "pid", 0);
    if (type == CTL_CHILD && nfds == 3) {
        child_kill(&s->next); /* a zygote forks one spare at a time */
        child_close(&s->next);
        s->next.pid = pid;
        s->next.job_fd = fds[0];
        s->next.result_fd = fds[1];
        s->next.capture_fd = fds[2];
        for (int i = 0; i < 3; i++)
            fcntl(fds[i], F_SETFL, O_NONBLOCK);
    } else {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        if (type == CTL_EXIT && pid > 0)
            take_exit(s, pid, (int)ctl_get_int(&unp.data, "status", 0), &unp.data);
    }
    msgpack_unpacked_destroy(&unp);
}
/* Ask the mother for a zygote for s: s->zctl gets the pool's end of a
 * fresh control socket, the mother the other. */
static int request_zygote(rb_pool *pool, slot *s)
{
    if (!pool->mother_up) return -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return -1;
    int rc = ctl_send_int(pool->mother_fd, CTL_SPAWN, "slot", s->idx, &sv[1], 1);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        return -1;
    }
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    s->zctl = sv[0];
    s->zygote_pid = 0;
    return 0;
}

void slot_process(slot *s, const struct pollfd *fds, int n, int64_t now)
{
    rb_pool *pool = s->pool;
    /* Zygote messages first: a child's "exit" must be seen before anything
     * of the next child. */
    if (s->zctl >= 0 && revents_of(fds, n, s->zctl)) {
        for (;;) {
            int got[CTL_MAX_FDS], ngot = 0;
            ssize_t len = ctl_recv(s->zctl, pool->msg, sizeof pool->msg, got, &ngot);
            if (len < 0 && errno == EAGAIN) break;
            if (len <= 0) {
                /* A zygote that died with our message unread resets the
                 * socket: that is its exit too, not a fault of the socket. */
                bool exited = len == 0 || errno == ECONNRESET;
                slot_drop_zygote(s, exited ? "zygote exited" : strerror(errno));
                return;
            }
            take_zygote_msg(s, ctl_payload(pool->msg), (size_t)len, got, ngot);
            if (s->zctl < 0) return; /* the message cost the zygote its place */
        }
    }
    if (s->run.result_fd >= 0 && revents_of(fds, n, s->run.result_fd)) read_results(s, &s->run);
    if (s->job && s->run.capture_fd >= 0 && revents_of(fds, n, s->run.capture_fd)) {
        if (capture_drain(&s->cap, s->run.capture_fd) == 0) close_fd(&s->run.capture_fd);
    }
    if (s->job && s->run.job_fd >= 0 && revents_of(fds, n, s->run.job_fd)) write_job(s);
    if (s->next.result_fd >= 0 && revents_of(fds, n, s->next.result_fd)) read_results(s, &s->next);

    if (s->job && now >= s->deadline_ms) {
        /* Calls that completed right at the deadline still count. */
        if (s->run.result_fd >= 0) read_results(s, &s->run);
        if (s->job) {
            char msg[128];
            snprintf(msg, sizeof msg, "the job exceeded its %lld ms wall limit",
                     (long long)s->job->timeout_ms);
            child_kill(&s->run);
            finish(s, RB_STATUS_TIMEOUT, "Timeout", msg);
        }
    }
    /* While a job runs the zygote may be slow to fork (the job has the
     * CPU): it is judged once the slot is idle. */
    if (s->zctl >= 0 && !s->next.ready && !s->job && now >= s->child_due_ms) {
        char why[96];
        snprintf(why, sizeof why, "no ready child within %d ms", pool->cfg.spawn_timeout_ms);
        slot_drop_zygote(s, why);
    }
    if (s->zctl < 0 && now >= s->respawn_at_ms && request_zygote(pool, s) == 0)
        s->child_due_ms = now + pool->cfg.spawn_timeout_ms;
}
