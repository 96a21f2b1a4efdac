#include "harness.h"

#include <errno.h>
#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "harness: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    abort();
}

char *harness_code_root(void)
{
    char tmpl[] = "/tmp/rebound-code-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp: %s", strerror(errno));
    chmod(tmpl, 0755);
    return strdup(tmpl);
}

char *harness_shared_dir(void)
{
    /* Not under /tmp, /var/tmp or /dev/shm, which every job has its own
     * of, nor under a path the sandbox hides. */
    if (mkdir(HARNESS_SHARED_BASE, 0755) != 0 && errno != EEXIST)
        die("mkdir " HARNESS_SHARED_BASE ": %s", strerror(errno));
    char tmpl[] = HARNESS_SHARED_BASE "/shared-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp: %s", strerror(errno));
    if (chmod(tmpl, 01777) != 0) die("chmod shared dir: %s", strerror(errno));
    return strdup(tmpl);
}

void harness_write(const char *root, const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, name);
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    FILE *f = fopen(path, "w");
    if (!f) die("cannot write %s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, 0644);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

void harness_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void harness_config(rb_pool_config *cfg, const char *mode, int slots, const char *root)
{
    static char tramp[PATH_MAX];
    const char *bin = getenv("REBOUND_BIN_DIR");
    if (!bin) die("%s", "REBOUND_BIN_DIR is not set (run through ctest)");
    snprintf(tramp, sizeof tramp, "%s/rebound-trampoline", bin);
    rb_pool_config_default(cfg);
    cfg->trampoline_path = tramp;
    cfg->code_root = root;
    cfg->slots = slots;
    /* tests/run's runs against other Pythons, which have no numpy or lxml:
     * standard-library modules only. */
    const char *preload = getenv("REBOUND_TEST_PRELOAD");
    if (preload && *preload) cfg->preload = preload;
    if (rb_mode_parse(mode, &cfg->mode) != 0) die("bad mode %s", mode);
    /* In container mode the tests' shared directories and the sanitizers'
     * logs (tests/support/run_test) must be reachable from inside. */
    if (cfg->mode == RB_MODE_CONTAINER) {
        if (mkdir(HARNESS_SHARED_BASE, 0755) != 0 && errno != EEXIST)
            die("mkdir " HARNESS_SHARED_BASE ": %s", strerror(errno));
        cfg->container_rw = HARNESS_SHARED_BASE;
    }
}

rb_pool *harness_pool(const char *mode, int slots, const char *root, rb_pool_config *tweak)
{
    rb_pool_config cfg;
    if (tweak)
        cfg = *tweak;
    else
        harness_config(&cfg, mode, slots, root);
    rb_err err = {{0}};
    rb_pool *pool = rb_pool_new(&cfg, &err);
    if (!pool) die("rb_pool_new: %s", err.msg);
    return pool;
}

bool harness_lacks_module(rb_pool *pool, const char *root, const char *module)
{
    harness_write(root, "harness_probe.py",
                  "import importlib.util\n"
                  "def has(name):\n"
                  "    return importlib.util.find_spec(name) is not None\n");
    char job[512];
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"probe\",\"calls\":[{\"file\":\"harness_probe.py\","
             "\"fcn\":\"has\",\"args\":[\"%s\"]}]}",
             module);
    msgpack_unpacked res;
    if (!harness_run_json(pool, job, &res, 30000)) die("no answer to the probe for %s", module);
    const msgpack_object *has = harness_get(&res.data, "results.0.val");
    if (!has || has->type != MSGPACK_OBJECT_BOOLEAN)
        die("the probe for a module failed: %s", harness_sget(&res.data, "error.message"));
    bool lacks = !has->via.boolean;
    msgpack_unpacked_destroy(&res);
    /* run_test records this line as the skip's reason. */
    if (lacks)
        printf("cannot run here: %s is not installed for the embedded Python %s\n", module,
               REBOUND_PYTHON_VERSION);
    return lacks;
}

static void pack_json(msgpack_packer *pk, json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        msgpack_pack_nil(pk);
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(j));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(j));
        break;
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(j));
        msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
        break;
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(j));
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) pack_json(pk, v);
        break;
    }
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            msgpack_pack_str(pk, strlen(k));
            msgpack_pack_str_body(pk, k, strlen(k));
            pack_json(pk, v);
        }
        break;
    }
    }
}

char *harness_json_to_msgpack(const char *json, size_t *len)
{
    json_error_t e;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &e);
    if (!j) die("bad JSON in test: %s", e.text);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_json(&pk, j);
    json_decref(j);
    *len = sb.size;
    return msgpack_sbuffer_release(&sb);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void harness_drive(rb_pool *pool, int ms, bool (*done)(void *), void *ctx)
{
    long long deadline = now_ms() + ms;
    int max = rb_pool_max_pollfds(pool);
    struct pollfd *fds = calloc((size_t)max, sizeof *fds);
    if (!fds) die("%s", "out of memory");
    while (!(done && done(ctx))) {
        long long left = deadline - now_ms();
        if (left <= 0) break;
        int n = rb_pool_pollfds(pool, fds, max);
        int t = rb_pool_timeout_ms(pool);
        if (t < 0 || t > left) t = (int)left;
        poll(fds, (nfds_t)n, t);
        rb_pool_process(pool, fds, n);
    }
    free(fds);
}

int harness_pack_result(const rb_pool_result *res, const char *id, const char *worker,
                        msgpack_sbuffer *sb)
{
    rb_result r = {.id = id,
                   .status = res->status,
                   .error_type = res->error_type,
                   .error_message = res->error_message,
                   .worker = worker,
                   .ms = res->ms,
                   .call_results = res->call_results,
                   .call_results_len = res->call_results_len,
                   .ncalls = res->ncalls,
                   .usage = res->usage,
                   .exit = res->exit};
    return rb_result_pack(&r, sb);
}

typedef struct wait_one {
    rb_pool *pool;
    rb_pool_result res;
    bool got;
} wait_one;

static bool got_result(void *ctx)
{
    wait_one *w = ctx;
    if (!w->got) w->got = rb_pool_next_result(w->pool, &w->res);
    return w->got;
}

bool harness_run_body(rb_pool *pool, const char *body, size_t len, msgpack_unpacked *out,
                      int wait_ms)
{
    rb_limits lim;
    rb_limits_default(&lim);
    rb_job *job = NULL;
    char *id = NULL;
    rb_err err = {{0}};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(out);
    if (rb_job_decode(body, len, &lim, &job, &id, &err) != 0) {
        /* What the worker does with a job it cannot run. */
        rb_result_pack_rejected(id, "test", err.msg, &sb);
        free(id);
    } else {
        wait_one w = {.pool = pool};
        rb_pool_submit(pool, 7, body, len, job);
        harness_drive(pool, wait_ms, got_result, &w);
        if (!w.got) {
            rb_job_free(job);
            msgpack_sbuffer_destroy(&sb);
            return false;
        }
        harness_pack_result(&w.res, job->id, "test", &sb);
        rb_pool_result_free(&w.res);
        rb_job_free(job);
    }
    /* msgpack-c's objects point into the bytes they were unpacked from:
     * keep a copy of them in the zone that the caller destroys. */
    msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    char *copy = msgpack_zone_malloc(zone, sb.size);
    memcpy(copy, sb.data, sb.size);
    size_t off = 0;
    msgpack_unpack(copy, sb.size, &off, zone, &out->data);
    out->zone = zone;
    msgpack_sbuffer_destroy(&sb);
    return true;
}

bool harness_run_json(rb_pool *pool, const char *json, msgpack_unpacked *out, int wait_ms)
{
    size_t len;
    char *body = harness_json_to_msgpack(json, &len);
    bool ok = harness_run_body(pool, body, len, out, wait_ms);
    free(body);
    return ok;
}

const msgpack_object *harness_get(const msgpack_object *root, const char *path)
{
    const msgpack_object *o = root;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *part = strtok_r(buf, ".", &save); part && o;
         part = strtok_r(NULL, ".", &save)) {
        if (o->type == MSGPACK_OBJECT_ARRAY) {
            char *end;
            unsigned long i = strtoul(part, &end, 10);
            o = (*end == '\0' && i < o->via.array.size) ? &o->via.array.ptr[i] : NULL;
        } else if (o->type == MSGPACK_OBJECT_MAP) {
            o = rb_map_get(o, part);
        } else {
            o = NULL;
        }
    }
    return o;
}

const char *harness_str(const msgpack_object *o)
{
    /* A few buffers in turn, so that several values can be printed in one
     * failure message. */
    static char bufs[4][65536];
    static unsigned turn;
    char *buf = bufs[turn++ % 4];
    if (!o || o->type != MSGPACK_OBJECT_STR) return "";
    size_t n = o->via.str.size < sizeof bufs[0] - 1 ? o->via.str.size : sizeof bufs[0] - 1;
    memcpy(buf, o->via.str.ptr, n);
    buf[n] = '\0';
    return buf;
}

const char *harness_sget(const msgpack_object *root, const char *path)
{
    return harness_str(harness_get(root, path));
}

/* The first child of pid whose name is comm, or 0. */
static pid_t child_named(pid_t pid, const char *comm)
{
    char path[96], kids[4096] = "";
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(kids, 1, sizeof kids - 1, f);
    fclose(f);
    kids[n] = '\0';
    for (char *save = NULL, *t = strtok_r(kids, " \n", &save); t;
         t = strtok_r(NULL, " \n", &save)) {
        char name[64] = "";
        snprintf(path, sizeof path, "/proc/%s/comm", t);
        FILE *c = fopen(path, "r");
        if (!c) continue;
        if (!fgets(name, sizeof name, c)) name[0] = '\0';
        fclose(c);
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, comm) == 0) return (pid_t)atoi(t);
    }
    return 0;
}

bool harness_pool_pids(pid_t owner, pid_t *mother, pid_t *zygote)
{
    *mother = child_named(owner, "rebound-mother");
    *zygote = *mother ? child_named(*mother, "rebound-zygote") : 0;
    return *mother > 0 && *zygote > 0;
}

int harness_procs_in_pidns(const char *link)
{
    DIR *d = opendir("/proc");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], got[128];
        snprintf(path, sizeof path, "/proc/%s/ns/pid", e->d_name);
        ssize_t k = readlink(path, got, sizeof got - 1);
        if (k <= 0) continue;
        got[k] = '\0';
        if (strcmp(got, link) == 0) n++;
    }
    closedir(d);
    return n;
}

bool harness_pidns_gone(const char *link, int ms)
{
    for (int waited = 0;; waited += 10) {
        if (harness_procs_in_pidns(link) == 0) return true;
        if (waited >= ms) return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
