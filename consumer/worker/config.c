/* config.c - flags, environment variables and defaults of rebound-worker. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rebound_health.h"
#include "worker_config.h"

typedef enum kind { K_STR, K_INT, K_I64, K_SIZE, K_BOOL, K_SPECIAL } kind;

typedef struct opt opt;
typedef int (*special_fn)(rb_worker_config *cfg, const char *val, rb_err *err);

struct opt {
    const char *flag;    /* without the leading "--" */
    const char *env;     /* environment variable */
    const char *metavar; /* NULL: a switch */
    const char *def;     /* the default as text; NULL when computed */
    const char *help;
    kind kind;
    size_t off; /* of the field in rb_worker_config */
    int64_t min, max;
    special_fn special;
};

#define OFF(f) offsetof(rb_worker_config, f)
#define MIB (1024 * 1024)

static int set_queue_type(rb_worker_config *cfg, const char *v, rb_err *err)
{
    if (strcmp(v, "quorum") == 0)
        cfg->queue_type = RB_QUEUE_QUORUM;
    else if (strcmp(v, "classic") == 0)
        cfg->queue_type = RB_QUEUE_CLASSIC;
    else
        return rb_err_set(err, "'%s' is not classic or quorum", v);
    return 0;
}

static int set_mode(rb_worker_config *cfg, const char *v, rb_err *err)
{
    if (rb_mode_parse(v, &cfg->mode) < 0)
        return rb_err_set(err, "'%s' is not internal, native or container", v);
    return 0;
}

static int set_log_format(rb_worker_config *cfg, const char *v, rb_err *err)
{
    if (rb_log_format_parse(v, &cfg->log_format) < 0)
        return rb_err_set(err, "'%s' is not text or json", v);
    return 0;
}

static int set_log_level(rb_worker_config *cfg, const char *v, rb_err *err)
{
    if (rb_log_level_parse(v, &cfg->log_level) < 0)
        return rb_err_set(err, "'%s' is not debug, info, warn or error", v);
    return 0;
}

/* clang-format off */
static const opt opts[] = {
    {"amqp-url", "REBOUND_AMQP_URL", "URL", RB_DEFAULT_AMQP_URL,
     "broker URL, or several separated by commas (tried in order, the next on failure); "
     "amqps:// uses TLS; no path or \"/\" is the vhost \"/\"", K_STR, OFF(amqp_url), 0, 0, NULL},
    {"amqp-url-file", "REBOUND_AMQP_URL_FILE", "FILE", "",
     "read --amqp-url from FILE (not readable by group or others), out of sight of ps",
     K_STR, OFF(amqp_url_file), 0, 0, NULL},
    {"tls-ca", "REBOUND_TLS_CA", "FILE", "", "CA bundle for amqps:// (default: the system's)",
     K_STR, OFF(tls_ca), 0, 0, NULL},
    {"tls-cert", "REBOUND_TLS_CERT", "FILE", "", "client certificate for amqps://",
     K_STR, OFF(tls_cert), 0, 0, NULL},
    {"tls-key", "REBOUND_TLS_KEY", "FILE", "", "client key for amqps://",
     K_STR, OFF(tls_key), 0, 0, NULL},
    {"queue", "REBOUND_QUEUE", "NAME", "rebound.jobs", "job queue (rejected jobs go to NAME.dead; suspects run from NAME.suspects)",
     K_STR, OFF(queue), 0, 0, NULL},
    {"queue-type", "REBOUND_QUEUE_TYPE", "classic|quorum", "quorum", "type of the job queue",
     K_SPECIAL, 0, 0, 0, set_queue_type},
    {"consumers", "REBOUND_CONSUMERS", "N", "1", "consumer processes",
     K_INT, OFF(consumers), 1, 256, NULL},
    {"slots", "REBOUND_SLOTS", "N", NULL, "jobs run at once per consumer (default: CPUs / consumers, at least 1)",
     K_INT, OFF(slots), 1, 1024, NULL},
    {"prefetch", "REBOUND_PREFETCH", "N", NULL, "unacked jobs per consumer (default: slots)",
     K_INT, OFF(prefetch), 1, 65535, NULL},
    {"code-root", "REBOUND_CODE_ROOT", "DIR", NULL, "directory job files are relative to (default: current directory)",
     K_STR, OFF(code_root), 0, 0, NULL},
    {"mode", "REBOUND_MODE", "internal|native|container", "native",
     "native sandboxes every job; container also runs the pool in a container; internal: neither",
     K_SPECIAL, 0, 0, 0, set_mode},
    {"preload", "REBOUND_PRELOAD", "MODULES", "numpy,lxml.etree,json,random,math",
     "modules imported once, before forking", K_STR, OFF(preload), 0, 0, NULL},
    {"timeout-ms", "REBOUND_TIMEOUT_MS", "N", "10000", "job timeout when the job gives none",
     K_I64, OFF(timeout_ms), 1, 24LL * 3600 * 1000, NULL},
    {"max-timeout-ms", "REBOUND_MAX_TIMEOUT_MS", "N", "60000", "larger job timeouts are capped to this",
     K_I64, OFF(max_timeout_ms), 1, 24LL * 3600 * 1000, NULL},
    {"max-job-bytes", "REBOUND_MAX_JOB_BYTES", "SIZE", "8MiB", "larger jobs are rejected",
     K_SIZE, OFF(max_job_bytes), 1, RB_FRAME_MAX, NULL},
    {"max-output-bytes", "REBOUND_MAX_OUTPUT_BYTES", "SIZE", "1MiB", "captured output kept per call",
     K_SIZE, OFF(max_output_bytes), 0, RB_FRAME_MAX, NULL},
    {"mem-limit-mb", "REBOUND_MEM_LIMIT_MB", "N", "1024", "memory a job may add, in MiB (0: no limit)",
     K_INT, OFF(mem_limit_mb), 0, 1 << 24, NULL},
    {"tmp-mb", "REBOUND_TMP_MB", "N", "256",
     "native: size in MiB of a job's own /tmp, /var/tmp and /dev/shm (each a tmpfs)",
     K_INT, OFF(tmp_mb), 1, 1 << 20, NULL},
    {"tmp-inodes", "REBOUND_TMP_INODES", "N", "65536",
     "native: files and directories a job may make in each of them",
     K_INT, OFF(tmp_inodes), 16, 1 << 30, NULL},
    {"container-cmd", "REBOUND_CONTAINER_CMD", "CMD", "",
     "container mode: the runtime's command that starts the mother (empty: bubblewrap, see README)",
     K_STR, OFF(container_cmd), 0, 0, NULL},
    {"container-rw", "REBOUND_CONTAINER_RW", "DIRS", "",
     "container mode: host directories (comma list) bound read-write into the container",
     K_STR, OFF(container_rw), 0, 0, NULL},
    {"run-as", "REBOUND_RUN_AS", "USER", "nobody", "user jobs run as (when started as root) if --uid-base is 0",
     K_STR, OFF(run_as), 0, 0, NULL},
    {"uid-base", "REBOUND_UID_BASE", "N", "60000",
     "as root, slot i of consumer n runs jobs as uid/gid N + (n-1)*slots + i (0: all as --run-as)",
     K_I64, OFF(uid_base), 0, 2000000000, NULL},
    {"shared-cpus", "REBOUND_SHARED_CPUS", NULL, "false",
     "native: let every slot use every CPU (default: a CPU per slot, round the CPUs)",
     K_BOOL, OFF(shared_cpus), 0, 0, NULL},
    {"allow-network", "REBOUND_ALLOW_NETWORK", NULL, "false", "let native-mode jobs use the network",
     K_BOOL, OFF(allow_network), 0, 0, NULL},
    {"sandbox-best-effort", "REBOUND_SANDBOX_BEST_EFFORT", NULL, "false",
     "start even when a sandbox feature is missing", K_BOOL, OFF(sandbox_best_effort), 0, 0, NULL},
    {"worker-id", "REBOUND_WORKER_ID", "ID", NULL, "worker id (default: <hostname>-<pid>; consumer n of several is ID.n)",
     K_STR, OFF(worker_id), 0, 0, NULL},
    {"redis-url", "REBOUND_REDIS_URL", "URL", "", "Redis for heartbeats (empty: no heartbeat)",
     K_STR, OFF(redis_url), 0, 0, NULL},
    {"redis-url-file", "REBOUND_REDIS_URL_FILE", "FILE", "",
     "read --redis-url from FILE (not readable by group or others), out of sight of ps",
     K_STR, OFF(redis_url_file), 0, 0, NULL},
    {"redis-prefix", "REBOUND_REDIS_PREFIX", "PREFIX", "rebound", "prefix of the Redis keys",
     K_STR, OFF(redis_prefix), 0, 0, NULL},
    {"heartbeat-ms", "REBOUND_HEARTBEAT_MS", "N", "2000", "Redis heartbeat interval",
     K_INT, OFF(heartbeat_ms), 100, 3600 * 1000, NULL},
    {"amqp-heartbeat", "REBOUND_AMQP_HEARTBEAT", "SECONDS", "10", "AMQP heartbeat (0: off)",
     K_INT, OFF(amqp_heartbeat_s), 0, 600, NULL},
    {"delivery-limit", "REBOUND_DELIVERY_LIMIT", "N", "5", "x-delivery-limit of a quorum queue (0: none)",
     K_INT, OFF(delivery_limit), 0, 1000000, NULL},
    {"drain-ms", "REBOUND_DRAIN_MS", "N", "30000", "on SIGTERM, how long jobs in flight may take to finish",
     K_INT, OFF(drain_ms), 0, 24 * 3600 * 1000, NULL},
    {"restart-reset-ms", "REBOUND_RESTART_RESET_MS", "N", "30000",
     "a consumer that ran this long before it died is restarted after the shortest wait again",
     K_INT, OFF(restart_reset_ms), 0, 24 * 3600 * 1000, NULL},
    {"watchdog-ms", "REBOUND_WATCHDOG_MS", "MS", "60000",
     "the supervisor kills (and restarts) a consumer silent this long; 0: no watchdog",
     K_INT, OFF(watchdog_ms), 0, 24 * 3600 * 1000, NULL},
    {"log-format", "REBOUND_LOG_FORMAT", "text|json", "text", "log lines on stderr",
     K_SPECIAL, 0, 0, 0, set_log_format},
    {"log-level", "REBOUND_LOG_LEVEL", "debug|info|warn|error", "info", "least severe level logged",
     K_SPECIAL, 0, 0, 0, set_log_level},
};
/* clang-format on */

#define NOPTS (sizeof opts / sizeof opts[0])

int rb_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!*s || (*s != '-' && (*s < '0' || *s > '9'))) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int rb_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    uint64_t mul = 1;
    if (*end) {
        switch (*end) {
        case 'k':
        case 'K':
            mul = 1024;
            break;
        case 'm':
        case 'M':
            mul = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mul = 1024ULL * 1024 * 1024;
            break;
        default:
            return -1;
        }
        end++;
        if (strcmp(end, "") != 0 && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0) return -1;
    }
    if (v > UINT64_MAX / mul) return -1;
    v *= mul;
    if (v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Store val into the field of o. err gets the reason without the name of
 * the flag; the caller prefixes it. */
static int apply(rb_worker_config *cfg, const opt *o, const char *val, rb_err *err)
{
    char *base = (char *)cfg;
    switch (o->kind) {
    case K_STR: {
        char *copy = strdup(val);
        if (!copy) return rb_err_set(err, "out of memory");
        char **field = (char **)(base + o->off);
        free(*field);
        *field = copy;
        return 0;
    }
    case K_INT:
    case K_I64: {
        int64_t v;
        if (rb_parse_int64(val, o->min, o->max, &v) < 0)
            return rb_err_set(err, "'%s' is not a whole number in %lld..%lld", val,
                              (long long)o->min, (long long)o->max);
        if (o->kind == K_INT)
            *(int *)(base + o->off) = (int)v;
        else
            *(int64_t *)(base + o->off) = v;
        return 0;
    }
    case K_SIZE: {
        uint64_t v;
        if (rb_parse_size(val, (uint64_t)o->min, (uint64_t)o->max, &v) < 0)
            return rb_err_set(err,
                              "'%s' is not a size in %lld..%lld bytes (K, M, G suffixes allowed)",
                              val, (long long)o->min, (long long)o->max);
        *(size_t *)(base + o->off) = (size_t)v;
        return 0;
    }
    case K_BOOL:
        if (parse_bool(val, (bool *)(base + o->off)) < 0)
            return rb_err_set(err, "'%s' is not true or false", val);
        return 0;
    case K_SPECIAL:
        return o->special(cfg, val, err);
    }
    return rb_err_set(err, "internal error: option kind");
}

static int apply_named(rb_worker_config *cfg, const opt *o, const char *name, const char *val,
                       rb_err *err)
{
    rb_err why = {{0}};
    if (apply(cfg, o, val, &why) < 0) return rb_err_set(err, "%s: %s", name, why.msg);
    return 0;
}

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [OPTION]...\n"
            "Run rebound jobs from a RabbitMQ queue in preloaded, forked Python processes.\n\n"
            "Every option can also be set by the environment variable shown; a flag wins.\n"
            "Switches take an optional =true/=false.\n\n",
            prog);
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        fprintf(out, "  --%s%s%s\n      %s\n", o->flag, o->metavar ? " " : "",
                o->metavar ? o->metavar : "", o->help);
        if (o->def)
            fprintf(out, "      [%s; default: %s]\n", o->env, o->def[0] ? o->def : "empty");
        else
            fprintf(out, "      [%s]\n", o->env);
    }
    fprintf(out, "  --help\n      show this text and exit\n"
                 "  --version\n      show the version and exit\n");
}

static const opt *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0) return &opts[i];
    }
    return NULL;
}

static size_t opt_index(const char *flag)
{
    const opt *o = find_flag(flag, strlen(flag));
    return o ? (size_t)(o - opts) : 0;
}

static int online_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Where a setting came from, so that an error names what the user wrote. */
typedef enum source { SRC_DEFAULT = 0, SRC_ENV, SRC_FLAG } source;

typedef struct origin {
    source src[NOPTS];
    char name[NOPTS][48]; /* "--flag" or "REBOUND_VAR" */
} origin;

static void mark(origin *og, size_t i, source src)
{
    og->src[i] = src;
    if (src == SRC_ENV)
        snprintf(og->name[i], sizeof og->name[i], "%s", opts[i].env);
    else
        snprintf(og->name[i], sizeof og->name[i], "--%s", opts[i].flag);
}

static int parse_argv(rb_worker_config *cfg, int argc, char **argv, FILE *out, origin *og,
                      rb_err *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(out, argv[0]);
            return RB_CONFIG_DONE;
        }
        if (strcmp(a, "--version") == 0) {
            fprintf(out, "rebound-worker %s (Python %s)\n", REBOUND_VERSION,
                    REBOUND_PYTHON_VERSION);
            return RB_CONFIG_DONE;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
            return rb_err_set(err, "unexpected argument '%s' (see --help)", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = find_flag(name, len);
        if (!o) return rb_err_set(err, "unknown flag '--%.*s' (see --help)", (int)len, name);
        char shown[128];
        snprintf(shown, sizeof shown, "--%s", o->flag);
        const char *val;
        if (eq) {
            val = eq + 1;
        } else if (!o->metavar) {
            val = "true";
        } else {
            if (i + 1 >= argc) return rb_err_set(err, "%s needs a value (%s)", shown, o->metavar);
            val = argv[++i];
        }
        if (apply_named(cfg, o, shown, val, err) < 0) return RB_CONFIG_ERROR;
        mark(og, (size_t)(o - opts), SRC_FLAG);
        /* The value is copied: what ps shows of it need not say the password
         * (argv's strings are this process's own memory; consumers fork
         * after this). REBOUND_AMQP_URL in the environment is not shown at
         * all (/proc/<pid>/environ is the owner's only). */
        if (strcmp(o->flag, "amqp-url") == 0) rb_url_list_mask_passwords((char *)val);
        if (strcmp(o->flag, "redis-url") == 0) rb_url_mask_password((char *)val);
    }
    return RB_CONFIG_RUN;
}

#define SECRET_FILE_MAX 65536

/* The one line of a secret file into *out (malloc'd). Like ssh with a
 * private key, a file that group or others may read or write is refused:
 * the secret would be no better kept than on the command line. */
static int read_secret_file(const char *path, const char *name, char **out, rb_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return rb_err_set(err, "%s: %s: %s", name, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rb_err_set(err, "%s: %s is not a regular file", name, path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return rb_err_set(err,
                          "%s: %s: permissions %04o are too open (group or others may read "
                          "or write it); chmod 600 it",
                          name, path, (unsigned)(st.st_mode & 07777));
    }
    char *buf = malloc(SECRET_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return rb_err_set(err, "out of memory");
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rb_err_set(err, "%s: %s: %s", name, path, strerror(errno));
            goto fail;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len > SECRET_FILE_MAX) {
            rb_err_set(err, "%s: %s is larger than %d bytes", name, path, SECRET_FILE_MAX);
            goto fail;
        }
    }
    close(fd);
    buf[len] = '\0';
    while (len > 0 && strchr(" \t\r\n", buf[len - 1]))
        buf[--len] = '\0';
    if (len == 0 || strlen(buf) != len || strpbrk(buf, "\r\n")) {
        rb_err_set(err, "%s: %s must hold one line, the URL", name, path);
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
fail:
    close(fd);
    free(buf);
    return -1;
}

/* --amqp-url-file and --redis-url-file: the more specific source wins (a
 * flag over a variable), and a file named as specifically as the URL
 * itself is a contradiction. After this, the URL's errors are named after
 * the file setting. */
static int url_from_file(rb_worker_config *cfg, origin *og, const char *url_flag,
                         const char *file_flag, rb_err *err)
{
    size_t iu = opt_index(url_flag), iff = opt_index(file_flag);
    char **url = (char **)((char *)cfg + opts[iu].off);
    const char *file = *(char **)((char *)cfg + opts[iff].off);
    if (og->src[iff] == SRC_DEFAULT || !file[0]) return 0;
    if (og->src[iu] == og->src[iff])
        return rb_err_set(err, "%s and %s both given: use one of them", og->name[iu],
                          og->name[iff]);
    if (og->src[iu] > og->src[iff]) return 0;
    char *text = NULL;
    if (read_secret_file(file, og->name[iff], &text, err) < 0) return -1;
    free(*url);
    *url = text;
    memcpy(og->name[iu], og->name[iff], sizeof og->name[iu]);
    return 0;
}

/* Defaults that depend on other settings or on the machine. */
static int finish(rb_worker_config *cfg, origin *og, rb_err *err)
{
    size_t i_slots = opt_index("slots"), i_prefetch = opt_index("prefetch");
    size_t i_root = opt_index("code-root"), i_id = opt_index("worker-id");
    if (og->src[i_slots] == SRC_DEFAULT) {
        int n = online_cpus() / cfg->consumers;
        cfg->slots = n < 1 ? 1 : n;
    }
    if (og->src[i_prefetch] == SRC_DEFAULT) cfg->prefetch = cfg->slots;

    if (og->src[i_id] == SRC_DEFAULT) {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        char id[320];
        snprintf(id, sizeof id, "%s-%ld", host, (long)getpid());
        if (apply(cfg, &opts[i_id], id, err) < 0) return -1;
    }
    /* Room for the ".n" suffix of consumer n within RB_MAX_ID_BYTES. */
    if (!cfg->worker_id[0] || strlen(cfg->worker_id) > 100)
        return rb_err_set(err, "%s: must be 1..100 bytes", og->name[i_id]);
    for (const char *p = cfg->worker_id; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return rb_err_set(err, "%s: '%s' contains a space or control character", og->name[i_id],
                              cfg->worker_id);
    }

    const char *root = og->src[i_root] != SRC_DEFAULT ? cfg->code_root : ".";
    char *abs = realpath(root, NULL);
    if (!abs) return rb_err_set(err, "%s: %s: %s", og->name[i_root], root, strerror(errno));
    struct stat st;
    if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode)) {
        rb_err_set(err, "%s: %s is not a directory", og->name[i_root], abs);
        free(abs);
        return -1;
    }
    free(cfg->code_root);
    cfg->code_root = abs;

    if (!cfg->queue[0] || strlen(cfg->queue) > 200)
        return rb_err_set(err, "%s: a queue name is 1..200 bytes", og->name[opt_index("queue")]);
    if (cfg->timeout_ms > cfg->max_timeout_ms)
        return rb_err_set(err, "%s (%lld) is larger than %s (%lld)",
                          og->name[opt_index("timeout-ms")], (long long)cfg->timeout_ms,
                          og->name[opt_index("max-timeout-ms")], (long long)cfg->max_timeout_ms);

    if (url_from_file(cfg, og, "amqp-url", "amqp-url-file", err) < 0 ||
        url_from_file(cfg, og, "redis-url", "redis-url-file", err) < 0)
        return -1;
    rb_err why = {{0}};
    int bad;
    if (rb_amqp_url_list_parse(cfg->amqp_url, cfg->amqp, RB_MAX_BROKERS, &cfg->nbrokers, &bad,
                               &why) < 0) {
        const char *name = og->name[opt_index("amqp-url")];
        if (bad > 0) return rb_err_set(err, "%s[%d]: %s", name, bad, why.msg);
        return rb_err_set(err, "%s: %s", name, why.msg);
    }
    if (cfg->redis_url[0]) {
        rb_redis_url ru;
        if (rb_redis_url_parse(cfg->redis_url, &ru, &why) < 0)
            return rb_err_set(err, "%s: %s", og->name[opt_index("redis-url")], why.msg);
    }
    /* Empty TLS paths mean "not given". */
    char **tls[] = {&cfg->tls_ca, &cfg->tls_cert, &cfg->tls_key};
    for (size_t i = 0; i < 3; i++) {
        if (*tls[i] && !**tls[i]) {
            free(*tls[i]);
            *tls[i] = NULL;
        }
    }
    if (!cfg->tls_cert != !cfg->tls_key)
        return rb_err_set(err, "--tls-cert and --tls-key go together");
    return 0;
}

rb_config_result rb_worker_config_parse(rb_worker_config *cfg, int argc, char **argv, FILE *out,
                                        rb_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    origin og;
    for (size_t i = 0; i < NOPTS; i++)
        mark(&og, i, SRC_DEFAULT);

    for (size_t i = 0; i < NOPTS; i++) {
        const char *def = opts[i].def;
        if (!def) def = opts[i].kind == K_STR ? "" : "1";
        if (apply_named(cfg, &opts[i], "default", def, err) < 0) return RB_CONFIG_ERROR;
    }
    for (size_t i = 0; i < NOPTS; i++) {
        /* An empty variable counts as unset, as with most tools. */
        const char *v = getenv(opts[i].env);
        if (!v || !*v) continue;
        if (apply_named(cfg, &opts[i], opts[i].env, v, err) < 0) return RB_CONFIG_ERROR;
        mark(&og, i, SRC_ENV);
    }
    int rc = parse_argv(cfg, argc, argv, out, &og, err);
    if (rc != RB_CONFIG_RUN) return rc == RB_CONFIG_DONE ? RB_CONFIG_DONE : RB_CONFIG_ERROR;
    if (finish(cfg, &og, err) < 0) return RB_CONFIG_ERROR;
    return RB_CONFIG_RUN;
}

void rb_worker_config_free(rb_worker_config *cfg)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].kind == K_STR) {
            char **field = (char **)((char *)cfg + opts[i].off);
            free(*field);
            *field = NULL;
        }
    }
}

const char *rb_queue_type_name(rb_queue_type t)
{
    return t == RB_QUEUE_CLASSIC ? "classic" : "quorum";
}
