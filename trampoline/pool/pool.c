/*
 * pool.c - the pool's API: the job queue, dispatching jobs to free slots,
 * the poll loop's fds and deadlines, finished results, and statistics.
 * Each slot's own machinery is in slot.c, the mother's (from the pool's
 * side) in mother_link.c, and what they share in pool_state.c.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pool_internal.h"

void rb_pool_config_default(rb_pool_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->slots = cpus > 0 ? (int)cpus : 1;
    cfg->mode = RB_MODE_NATIVE;
    cfg->preload = "numpy,lxml.etree,json,random,math";
    cfg->max_output_bytes = RB_DEFAULT_MAX_OUTPUT_BYTES;
    cfg->max_result_bytes = RB_DEFAULT_MAX_RESULT_BYTES;
    cfg->mem_limit_mb = 1024;
    cfg->tmp_mb = 256;
    cfg->tmp_inodes = 65536;
    cfg->run_as = "nobody";
    cfg->spawn_timeout_ms = 10000;
    cfg->start_timeout_ms = 60000;
}

static void dispatch(rb_pool *pool)
{
    for (int i = 0; i < pool->cfg.slots && pool->queue_head; i++) {
        slot *s = &pool->slots[i];
        if (!slot_is_free(s)) continue;
        pool_job *job = pool->queue_head;
        pool->queue_head = job->next;
        if (!pool->queue_head) pool->queue_tail = NULL;
        pool->queued--;
        job->next = NULL;
        slot_start_job(s, job);
    }
}

/* The job's distinct files (a few at most), for its zygote to compile
 * for the children after it (trampoline/call.c). Without them (no memory)
 * nothing is compiled ahead: no harm. */
static void pack_files(pool_job *j, const rb_job *job)
{
    enum { MAX_FILES = 8 };
    const char *files[MAX_FILES];
    size_t n = 0;
    for (size_t i = 0; i < job->ncalls && n < MAX_FILES; i++) {
        const char *f = job->calls[i].file;
        bool seen = !f;
        for (size_t k = 0; k < n && !seen; k++)
            seen = strcmp(files[k], f) == 0;
        if (!seen) files[n++] = f;
    }
    if (n == 0) return;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (size_t k = 0; k < n; k++)
        rb_pack_cstr(&pk, files[k]);
    if (sb.size > 8192) { /* paths that long are not worth a control message */
        msgpack_sbuffer_destroy(&sb);
        return;
    }
    j->files_len = sb.size;
    j->files = msgpack_sbuffer_release(&sb);
}

int rb_pool_submit(rb_pool *pool, uint64_t tag, const void *body, size_t len, const rb_job *job)
{
    pool_job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    j->done = calloc(1, sizeof *j->done);
    if (!j->done) {
        free(j);
        return -1;
    }
    j->tag = tag;
    j->ncalls = job->ncalls;
    j->timeout_ms = job->timeout_ms > 0 ? job->timeout_ms : RB_DEFAULT_TIMEOUT_MS;
    j->submit_ns = rb_mono_ns();

    /* What the child reads: a settings frame with the job's effective wall
     * limit (the body's own may have been defaulted or capped), then the
     * body as the consumer received it. */
    msgpack_sbuffer wire, settings;
    msgpack_packer pk;
    msgpack_sbuffer_init(&wire);
    msgpack_sbuffer_init(&settings);
    msgpack_packer_init(&pk, &settings, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    rb_pack_key(&pk, "timeout_ms");
    msgpack_pack_int64(&pk, j->timeout_ms);
    int rc = rb_frame_append(&wire, settings.data, settings.size);
    if (rc == 0) rc = rb_frame_append(&wire, body, len);
    msgpack_sbuffer_destroy(&settings);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&wire);
        pool_job_free(j);
        return -1;
    }
    j->len = wire.size;
    j->wire = msgpack_sbuffer_release(&wire);
    pack_files(j, job);

    if (pool->queue_tail)
        pool->queue_tail->next = j;
    else
        pool->queue_head = j;
    pool->queue_tail = j;
    pool->queued++;
    dispatch(pool);
    return 0;
}

int rb_pool_max_pollfds(const rb_pool *pool)
{
    return 1 + SLOT_MAX_FDS * pool->cfg.slots;
}

int rb_pool_pollfds(rb_pool *pool, struct pollfd *fds, int max)
{
    int n = 0;
    if (pool->mother_fd >= 0 && n < max) fds[n++] = (struct pollfd){pool->mother_fd, POLLIN, 0};
    for (int i = 0; i < pool->cfg.slots; i++)
        n += slot_pollfds(&pool->slots[i], fds + n, max - n);
    return n;
}

int rb_pool_timeout_ms(rb_pool *pool)
{
    int64_t now = rb_mono_ms();
    int best = -1;
    if (pool->mother_fd < 0 || !pool->mother_up) {
        int64_t due = pool->mother_fd < 0 ? pool->mother_respawn_at_ms : pool->mother_due_ms;
        best = due <= now ? 0 : (int)(due - now);
    }
    for (int i = 0; i < pool->cfg.slots; i++) {
        int t = slot_timeout_ms(&pool->slots[i], now);
        if (t >= 0 && (best < 0 || t < best)) best = t;
    }
    return best;
}

void rb_pool_process(rb_pool *pool, const struct pollfd *fds, int n)
{
    int64_t now = rb_mono_ms();
    pool_process_mother(pool, fds, n, now);
    for (int i = 0; i < pool->cfg.slots; i++)
        slot_process(&pool->slots[i], fds, n, now);
    dispatch(pool);
}

bool rb_pool_next_result(rb_pool *pool, rb_pool_result *out)
{
    pool_done *d = pool->done_head;
    if (!d) return false;
    pool->done_head = d->next;
    if (!pool->done_head) pool->done_tail = NULL;
    *out = d->res;
    free(d);
    return true;
}

void rb_pool_result_free(rb_pool_result *res)
{
    free(res->error_type);
    free(res->error_message);
    free(res->call_results);
    memset(res, 0, sizeof *res);
}

/* ---- lifecycle -------------------------------------------------------- */

static bool all_ready(const rb_pool *pool)
{
    for (int i = 0; i < pool->cfg.slots; i++)
        if (!pool->slots[i].next.ready) return false;
    return true;
}

rb_pool *rb_pool_new(const rb_pool_config *cfg, rb_err *err)
{
    if (cfg->slots < 1 || !cfg->trampoline_path || !cfg->code_root) {
        rb_err_set(err, "pool: slots, trampoline_path and code_root are required");
        return NULL;
    }
    if (access(cfg->trampoline_path, X_OK) != 0) {
        rb_err_set(err, "pool: %s: %s", cfg->trampoline_path, strerror(errno));
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    rb_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        rb_err_set(err, "pool: out of memory");
        return NULL;
    }
    pool->cfg = *cfg;
    errno = 0;
    pool->job_nice = getpriority(PRIO_PROCESS, 0);
    if (errno != 0) pool->job_nice = 0;
    if (pool->cfg.spawn_timeout_ms <= 0) pool->cfg.spawn_timeout_ms = 10000;
    if (pool->cfg.start_timeout_ms <= 0) pool->cfg.start_timeout_ms = 60000;
    pool->trampoline_path = strdup(cfg->trampoline_path);
    pool->code_root = strdup(cfg->code_root);
    pool->preload = strdup(cfg->preload ? cfg->preload : "");
    pool->run_as = strdup(cfg->run_as ? cfg->run_as : "nobody");
    pool->preload_failed = strdup("");
    pool->mother_fd = -1;
    if (cfg->container_cmd) pool->container_cmd = strdup(cfg->container_cmd);
    pool->cfg.container_cmd = pool->container_cmd;
    if (cfg->container_rw && cfg->container_rw[0]) {
        char *list = strdup(cfg->container_rw);
        size_t words = 1;
        for (const char *c = cfg->container_rw; *c; c++)
            words += *c == ',';
        pool->container_rw = calloc(words, sizeof *pool->container_rw);
        for (char *save = NULL, *w = list ? strtok_r(list, ",", &save) : NULL;
             w && pool->container_rw; w = strtok_r(NULL, ",", &save))
            pool->container_rw[pool->ncontainer_rw++] = strdup(w);
        free(list);
    }
    pool->cfg.container_rw = NULL;
    rb_backoff_init(&pool->mother_respawn, MOTHER_RESPAWN_MIN_MS, MOTHER_RESPAWN_MAX_MS, false);
    pool->slots = calloc((size_t)cfg->slots, sizeof *pool->slots);
    if (!pool->slots || !pool->trampoline_path || !pool->code_root || !pool->preload ||
        !pool->run_as || !pool->preload_failed) {
        rb_pool_free(pool);
        rb_err_set(err, "pool: out of memory");
        return NULL;
    }
    for (int i = 0; i < cfg->slots; i++)
        slot_init(&pool->slots[i], pool, i);
    if (pool_start_mother(pool) != 0) {
        rb_err_set(err, "pool: cannot start %s: %s", cfg->trampoline_path, strerror(errno));
        rb_pool_free(pool);
        return NULL;
    }

    /* Wait for every slot's first child: the cold start happens here, not
     * on a job's time. */
    int64_t deadline = rb_mono_ms() + pool->cfg.start_timeout_ms;
    int maxfds = rb_pool_max_pollfds(pool);
    struct pollfd *fds = calloc((size_t)maxfds, sizeof *fds);
    while (fds && !all_ready(pool) && !pool->setup_error && pool->mother_failures == 0) {
        int64_t now = rb_mono_ms();
        if (now >= deadline) break;
        int n = rb_pool_pollfds(pool, fds, maxfds);
        int t = rb_pool_timeout_ms(pool);
        int wait = (int)(deadline - now);
        if (t >= 0 && t < wait) wait = t;
        poll(fds, (nfds_t)n, wait);
        rb_pool_process(pool, fds, n);
    }
    free(fds);
    if (!all_ready(pool)) {
        if (pool->setup_error)
            rb_err_set(err, "trampoline: %s", pool->setup_error);
        else if (pool->mother_failures)
            rb_err_set(err, "trampoline %s failed to start (its log is above)",
                       cfg->trampoline_path);
        else
            rb_err_set(err, "trampoline: no ready child within %d ms", pool->cfg.start_timeout_ms);
        rb_pool_free(pool);
        return NULL;
    }
    if (cfg->mode != RB_MODE_INTERNAL && pool->sandbox_missing && !cfg->sandbox_best_effort) {
        rb_err_set(err, "sandbox: %s (use --sandbox-best-effort to run without it)",
                   strstr(pool->sandbox, "missing:"));
        rb_pool_free(pool);
        return NULL;
    }
    return pool;
}

void rb_pool_abandon_running(rb_pool *pool)
{
    for (int i = 0; i < pool->cfg.slots; i++)
        slot_abandon_job(&pool->slots[i]);
}

void rb_pool_free(rb_pool *pool)
{
    if (!pool) return;
    /* Closing a zygote's socket tells it to kill its child, remove the
     * child's directory and exit; closing the mother's then tells her to
     * wait for them and exit. Signals would skip the cleaning up. */
    for (int i = 0; pool->slots && i < pool->cfg.slots; i++) {
        slot_free(&pool->slots[i]);
    }
    if (pool->mother_fd >= 0) close(pool->mother_fd);
    pool_reap_mother(pool, 3000);
    while (pool->queue_head) {
        pool_job *j = pool->queue_head;
        pool->queue_head = j->next;
        pool_job_free(j);
    }
    rb_pool_result r;
    while (rb_pool_next_result(pool, &r))
        rb_pool_result_free(&r);
    free(pool->slots);
    free(pool->trampoline_path);
    free(pool->code_root);
    free(pool->preload);
    free(pool->run_as);
    free(pool->container_cmd);
    for (size_t i = 0; i < pool->ncontainer_rw; i++)
        free(pool->container_rw[i]);
    free(pool->container_rw);
    free(pool->preload_failed);
    free(pool->sandbox);
    free(pool->setup_error);
    free(pool);
}

/* ---- statistics --------------------------------------------------------- */

void rb_pool_get_stats(rb_pool *pool, rb_pool_stats *out, bool with_memory)
{
    memset(out, 0, sizeof *out);
    out->slots = pool->cfg.slots;
    out->queued = pool->queued;
    memcpy(out->jobs, pool->jobs, sizeof out->jobs);
    out->zygote_restarts = pool->zygote_restarts;
    unsigned n = pool->recent_n < 64 ? pool->recent_n : 64;
    for (unsigned i = 0; i < n; i++)
        out->avg_run_ms += pool->recent_ms[i];
    if (n) out->avg_run_ms /= n;
    for (int i = 0; i < pool->cfg.slots; i++) {
        slot *s = &pool->slots[i];
        if (s->job)
            out->busy++;
        else if (slot_is_free(s))
            out->ready++;
    }
    if (!with_memory) return;
    uint64_t rss, pss;
    procmem_read(pool->mother_pid, &rss, &pss);
    out->rss_kb += rss;
    out->pss_kb += pss;
    for (int i = 0; i < pool->cfg.slots; i++) {
        procmem_read(pool->slots[i].zygote_pid, &rss, &pss);
        out->rss_kb += rss;
        out->pss_kb += pss;
        procmem_read(pool->slots[i].run.pid, &rss, &pss);
        out->rss_kb += rss;
        out->pss_kb += pss;
        procmem_read(pool->slots[i].next.pid, &rss, &pss);
        out->rss_kb += rss;
        out->pss_kb += pss;
    }
}

const char *rb_pool_preload_failed(const rb_pool *pool)
{
    return pool->preload_failed ? pool->preload_failed : "";
}

const char *rb_pool_python(const rb_pool *pool)
{
    return pool->python[0] ? pool->python : REBOUND_PYTHON_VERSION;
}

const char *rb_pool_sandbox(const rb_pool *pool)
{
    return pool->sandbox ? pool->sandbox : "";
}
