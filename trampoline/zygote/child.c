/*
 * child.c - one job, then gone.
 *
 * Born from a zygote with the interpreter and its preloaded modules already
 * in memory, the child isolates itself, says it is ready, and blocks on its
 * job pipe. When the job arrives it runs the calls in order, reporting each
 * on its result pipe, and exits: nothing it did survives into the next job.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "pyconv.h"
#include "rebound_base.h"
#include "runner.h"
#include "trampoline.h"

static int result_fd = -1;

/*
 * Frames to the pool leave through the outbox, written out in one go: the
 * last call's report and "done" wake the pool once. A failed write means
 * the pool is gone or user code closed our pipe: nobody can be told
 * anything any more.
 */
static msgpack_sbuffer outbox;

static void queue_sbuf(const msgpack_sbuffer *sb)
{
    if (rb_frame_append(&outbox, sb->data, sb->size) != 0) _exit(71);
}

static void flush_outbox(void)
{
    size_t off = 0;
    while (off < outbox.size) {
        ssize_t n = write(result_fd, outbox.data + off, outbox.size - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(71);
        off += (size_t)n;
    }
    msgpack_sbuffer_clear(&outbox);
}

/* A frame {t: type, key: val, pid: pid} (key and pid optional), sent now. */
static void send_simple(ctl_type type, const char *key, const char *val, long long pid)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    ctl_msg_init(&sb, &pk, type, (key != NULL) + (pid != 0));
    if (key) {
        rb_pack_key(&pk, key);
        rb_pack_cstr(&pk, val);
    }
    if (pid) {
        rb_pack_key(&pk, "pid");
        msgpack_pack_int64(&pk, pid);
    }
    queue_sbuf(&sb);
    flush_outbox();
    msgpack_sbuffer_destroy(&sb);
}

/* What the job has cost since start (README, "Per-job accounting"):
 * this process and the processes it waited for. */
typedef struct job_clock {
    int64_t cpu_us; /* this process's and its waited-for children's, at the start */
    int64_t start_ns;
} job_clock;

/* CPU time of this process and of the children it waited for; the larger
 * peak RSS of the two into *rss_kb when not NULL. */
static int64_t cpu_so_far_us(long *rss_kb)
{
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    if (rss_kb) *rss_kb = self.ru_maxrss > children.ru_maxrss ? self.ru_maxrss : children.ru_maxrss;
    return tr_rusage_cpu_us(&self) + tr_rusage_cpu_us(&children);
}

static void job_clock_start(job_clock *jc)
{
    jc->cpu_us = cpu_so_far_us(NULL);
    jc->start_ns = rb_mono_ns();
}

/* "done", with what the job cost: cpu_us, rss_kb, wall_us. */
static void send_done(const job_clock *jc)
{
    long rss_kb;
    int64_t cpu_us = cpu_so_far_us(&rss_kb) - jc->cpu_us;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    ctl_msg_init(&sb, &pk, CTL_DONE, 3);
    rb_pack_key(&pk, "cpu_us");
    msgpack_pack_int64(&pk, cpu_us > 0 ? cpu_us : 0);
    rb_pack_key(&pk, "rss_kb");
    msgpack_pack_int64(&pk, rss_kb);
    rb_pack_key(&pk, "wall_us");
    msgpack_pack_int64(&pk, (rb_mono_ns() - jc->start_ns) / 1000);
    queue_sbuf(&sb);
    flush_outbox();
    msgpack_sbuffer_destroy(&sb);
}

static void fail_setup(const char *msg) __attribute__((noreturn));
static void fail_setup(const char *msg)
{
    send_simple(CTL_SETUP_FAILED, "err", msg, 0);
    _exit(70);
}

/* Join the code root and a relative path that rb_job_check_paths already
 * vetted in the consumer. */
static void under_root(const tr_state *st, const char *rel, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", st->cfg.code_root, rel);
}

typedef struct call_outcome {
    bool present;
    msgpack_sbuffer val;  /* packed value */
    msgpack_sbuffer args; /* packed args after the call (return_args) */
    bool has_args;
    char *etype, *emsg, *etb; /* set when the call failed */
    double ms;
} call_outcome;

static void take_error(call_outcome *out)
{
    runner_take_exception(&out->etype, &out->emsg, &out->etb);
}

/* Convert a Python value into sb, or record the conversion error. */
static int pack_value(PyObject *v, msgpack_sbuffer *sb, call_outcome *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (pyconv_to_msgpack(&pk, v) == 0) return 0;
    take_error(out);
    return -1;
}

static void run_call(tr_state *st, const rb_call *c, const char *tmpdir, call_outcome *out)
{
    char file[PATH_MAX], cwd[PATH_MAX], dir[PATH_MAX];
    PyObject *args = NULL, *kwargs = NULL, *paths = NULL, *ret = NULL;

    if (c->file) {
        under_root(st, c->file, file, sizeof file);
        snprintf(dir, sizeof dir, "%s", file);
        dirname(dir);
    }
    if (c->cwd)
        under_root(st, c->cwd, cwd, sizeof cwd);
    else
        snprintf(cwd, sizeof cwd, "%s", c->file ? dir : tmpdir);

    args = pyconv_from_msgpack(&c->args);
    if (args && c->kwargs.type == MSGPACK_OBJECT_MAP) kwargs = pyconv_from_msgpack(&c->kwargs);
    paths = PyList_New(0);
    for (size_t i = 0; paths && i < c->npaths + (c->file != NULL); i++) {
        char p[PATH_MAX];
        if (i < c->npaths)
            under_root(st, c->paths[i], p, sizeof p);
        else
            snprintf(p, sizeof p, "%s", dir); /* the module's own directory, as for a script */
        PyObject *s = PyUnicode_DecodeFSDefault(p);
        if (!s || PyList_Append(paths, s) != 0) Py_CLEAR(paths);
        Py_XDECREF(s);
    }

    int64_t t0 = rb_mono_ns();
    if (args && paths && (kwargs || c->kwargs.type != MSGPACK_OBJECT_MAP))
        ret = call_run(c->file ? file : NULL, c->source, c->source_len, c->fcn, cwd, paths, args,
                       kwargs);
    out->ms = (double)(rb_mono_ns() - t0) / 1e6;

    if (!ret) {
        out->present = true;
        take_error(out);
    } else {
        pyconv_init(); /* numpy's types, if the call imported numpy itself */
        out->present = PyTuple_GET_ITEM(ret, 0) == Py_True;
        if (out->present && pack_value(PyTuple_GET_ITEM(ret, 1), &out->val, out) == 0 &&
            c->return_args) {
            out->has_args = true;
            pack_value(args, &out->args, out);
        }
    }
    Py_XDECREF(ret);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(paths);
}

static void send_call(const call_outcome *o)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    bool err = o->etype != NULL;
    bool with_val = o->present && !err;
    bool with_args = with_val && o->has_args;
    ctl_msg_init(&sb, &pk, CTL_CALL, 2 + with_val + with_args + err);
    rb_pack_key(&pk, "present");
    o->present ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    rb_pack_key(&pk, "ms");
    msgpack_pack_double(&pk, o->ms);
    if (with_val) {
        rb_pack_key(&pk, "val");
        msgpack_sbuffer_write(&sb, o->val.data, o->val.size);
    }
    if (with_args) {
        rb_pack_key(&pk, "args");
        msgpack_sbuffer_write(&sb, o->args.data, o->args.size);
    }
    if (err) {
        rb_pack_key(&pk, "error");
        msgpack_pack_map(&pk, 3);
        rb_pack_key(&pk, "type");
        rb_pack_cstr(&pk, o->etype);
        rb_pack_key(&pk, "message");
        rb_pack_cstr(&pk, o->emsg);
        rb_pack_key(&pk, "traceback");
        rb_pack_cstr(&pk, o->etb);
    }
    queue_sbuf(&sb);
    msgpack_sbuffer_destroy(&sb);
}

/* A value over the result limit fails its call here, before it is copied
 * through the pipe: the job stops as after any other error. */
static void check_size(const tr_state *st, call_outcome *o)
{
    size_t size = o->val.size + o->args.size;
    if (o->etype || size <= st->cfg.max_result_bytes) return;
    char msg[160];
    snprintf(msg, sizeof msg, "result too large: %zu bytes over the %zu-byte limit", size,
             st->cfg.max_result_bytes);
    o->etype = strdup("ValueError");
    o->emsg = strdup(msg);
    o->etb = strdup("");
}

/* After reporting a call, wait for the pool to say it has taken the call's
 * output from the capture pipe: output the next call writes can then not
 * be mistaken for this one's. */
static void wait_ack(int job_fd)
{
    char ack;
    ssize_t n;
    do {
        n = read(job_fd, &ack, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(0); /* the pool has let go of this job */
}

static void free_outcome(call_outcome *o)
{
    msgpack_sbuffer_destroy(&o->val);
    msgpack_sbuffer_destroy(&o->args);
    free(o->etype);
    free(o->emsg);
    free(o->etb);
}

static void run_job(tr_state *st, const rb_job *job, int job_fd, const char *tmpdir)
{
    if (runner_prepare(job) != 0) {
        call_outcome o = {.present = true};
        msgpack_sbuffer_init(&o.val);
        msgpack_sbuffer_init(&o.args);
        take_error(&o);
        send_call(&o);
        free_outcome(&o);
        return;
    }
    for (size_t i = 0; i < job->ncalls; i++) {
        call_outcome o = {0};
        msgpack_sbuffer_init(&o.val);
        msgpack_sbuffer_init(&o.args);
        run_call(st, &job->calls[i], tmpdir, &o);
        runner_flush();
        check_size(st, &o);
        send_call(&o);
        bool failed = o.etype != NULL;
        free_outcome(&o);
        if (failed || i + 1 == job->ncalls) return; /* "done" goes with this report */
        flush_outbox();
        wait_ack(job_fd);
    }
}

/* The pool's settings for this job: its effective wall limit. */
static long long read_settings(int job_fd)
{
    void *buf = NULL;
    size_t len = 0;
    int rc = rb_frame_read(job_fd, 1024, &buf, &len);
    if (rc != 1) _exit(rc == 0 ? 0 : 72); /* 0: the pool closed our pipe: retire */
    msgpack_unpacked unp;
    long long timeout_ms = RB_DEFAULT_TIMEOUT_MS;
    msgpack_unpacked_init(&unp);
    size_t off = 0;
    if (rb_msgpack_check(buf, len, 4, NULL) == 0 &&
        msgpack_unpack_next(&unp, buf, len, &off) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *t = rb_map_get(&unp.data, "timeout_ms");
        if (t && t->type == MSGPACK_OBJECT_POSITIVE_INTEGER) timeout_ms = (long long)t->via.u64;
    }
    msgpack_unpacked_destroy(&unp);
    free(buf);
    return timeout_ms;
}

void child_run(tr_state *st, int job_fd, int res_fd, int capture_fd, const char *tmpdir)
{
    result_fd = res_fd;
    tr_role = "child";

    /* The same kind of work the job will do, done now: the pages it writes
     * are copied from the zygote before the job arrives, not on its time.
     * Before the sandbox: the warm-up's module is in the pool's directory,
     * which a child's own /tmp covers. */
    char mplconfig[PATH_MAX];
    bool has_mpl = caches_job_mplconfig(&st->caches, tmpdir, mplconfig, sizeof mplconfig);
    if (runner_job_environment(tmpdir, has_mpl ? mplconfig : NULL) != 0)
        fail_setup("cannot set the job's environment");
    runner_warm(st->warm_file);

    char report[512];
    rb_err err = {{0}};
    if (st->cfg.native) {
        if (sandbox_apply(&st->plan, tmpdir, report, sizeof report, &err) != 0) fail_setup(err.msg);
        /* Made in the child's own /tmp: the child links the cache itself. */
        if (st->plan.mountns && caches_seed_job(&st->caches, tmpdir, false, 0, 0) != 0)
            tr_log("matplotlib's cache link in %s: %s", tmpdir, strerror(errno));
    } else {
        snprintf(report, sizeof report, "pgrp;mode=internal");
    }
    /* Crashes of user code are the job's outcome, reported by the pool as
     * "killed by signal N": no handler of ours (or a sanitizer's) may turn
     * them into something else. */
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], SIG_DFL);
    /* A change of user clears the parent-death signal: set it again, and
     * make sure the zygote did not die in between (in a PID namespace, the
     * zygote is outside it and getppid() says 0: its pidfd tells). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    bool zygote_alive = getpid() == 2 ? sandbox_pid_zygote_alive() : getppid() == st->zygote_pid;
    sandbox_pid_close();
    if (!zygote_alive) _exit(0);

    /* User code writes to fds 1 and 2; they lead to the capture pipe and
     * nowhere else. The protocol fds sit at unremarkable high numbers. */
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(capture_fd, 1) < 0 || dup2(capture_fd, 2) < 0)
        fail_setup("cannot redirect stdio");
    close(devnull);
    close(capture_fd);

    msgpack_sbuffer_init(&outbox);
    send_simple(CTL_READY, "sandbox", report, (long long)getpid());

    long long timeout_ms = read_settings(job_fd);
    /* Before anything of the job runs (sandbox_spare.c says why). */
    if (st->cfg.native && sandbox_spare_reset(&st->plan, &err) != 0) {
        send_simple(CTL_REFUSED, "err", err.msg, 0);
        _exit(73);
    }
    void *body = NULL;
    size_t len = 0;
    if (rb_frame_read(job_fd, RB_FRAME_MAX, &body, &len) != 1) _exit(72);
    job_clock jc;
    job_clock_start(&jc);
    sandbox_limit_cpu(timeout_ms, st->cpus);

    /* The consumer validated this body against its limits already; here it
     * only needs decoding. */
    rb_limits lim;
    rb_limits_default(&lim);
    lim.max_job_bytes = RB_FRAME_MAX;
    lim.max_calls = SIZE_MAX;
    lim.max_timeout_ms = INT64_MAX;
    rb_job *job = NULL;
    if (rb_job_decode(body, len, &lim, &job, NULL, &err) != 0) fail_setup(err.msg);
    free(body);

    run_job(st, job, job_fd, tmpdir);
    rb_job_free(job);

    /* Leaves with the last call's report, in one write. */
    send_done(&jc);
    /* Tearing down the address space is the costliest part of exiting:
     * like the zygote's work, it waits for CPU time nobody else wants. */
    setpriority(PRIO_PROCESS, 0, 19);
    /* No interpreter teardown: the process is thrown away, and finalizers of
     * user objects must not run after the result is reported. */
    _exit(0);
}
