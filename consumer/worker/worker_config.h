/*
 * worker_config.h - the settings of rebound-worker.
 *
 * Every setting is a flag (--amqp-url) and an environment variable
 * (REBOUND_AMQP_URL); a flag wins over the variable, the variable over the
 * default. Everything is checked here, before the worker connects to
 * anything: an unknown flag, a bad URL or a bad number is one line of error
 * text naming the flag or variable.
 */
#ifndef REBOUND_WORKER_CONFIG_H
#define REBOUND_WORKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rebound_pool.h"
#include "rebound_proto.h"
#include "worker_log.h"

#define RB_DEFAULT_AMQP_URL "amqp://guest:guest@127.0.0.1:5672/"
/* --amqp-url takes a comma-separated list of up to this many brokers. */
#define RB_MAX_BROKERS 16

/* An AMQP URL, taken apart. */
typedef struct rb_amqp_url {
    bool tls; /* amqps:// */
    char host[256];
    int port;
    char user[256];
    char password[256];
    char vhost[256]; /* percent-decoded; "/" when the URL has no path or "/" */
    char shown[300]; /* the URL with its password replaced by "***", for logs */
} rb_amqp_url;

/*
 * Parse amqp://[user[:password]@]host[:port][/vhost] (or amqps://). A URL
 * without a path, or with the path "/" alone, means the default virtual
 * host "/"; "%2F" spells "/" explicitly. Returns 0, or -1 with err set.
 */
int rb_amqp_url_parse(const char *url, rb_amqp_url *out, rb_err *err);

/*
 * Parse a comma-separated list of AMQP URLs (spaces around an entry are
 * ignored; a comma inside a password is written %2C) into out[0..max-1],
 * *n receiving their number. On error returns -1 with err set (without the
 * name of the setting) and *bad the 1-based number of the wrong entry, or 0
 * when the list as a whole is wrong (too long).
 */
int rb_amqp_url_list_parse(const char *list, rb_amqp_url *out, int max, int *n, int *bad,
                           rb_err *err);

/* Copy url into out (cap bytes, truncating) with the password replaced by
 * "***", for logs and error messages. */
void rb_amqp_url_redact(const char *url, char *out, size_t cap);
/* Overwrite a URL's password (amqp:// or redis://) with '*' in place, the
 * length kept: for the command line, which every user of the host can read
 * in /proc/<pid>/cmdline. */
void rb_url_mask_password(char *url);
/* The same for each entry of a comma-separated list of URLs. */
void rb_url_list_mask_passwords(char *list);

typedef enum rb_queue_type {
    RB_QUEUE_QUORUM = 0,
    RB_QUEUE_CLASSIC,
} rb_queue_type;

const char *rb_queue_type_name(rb_queue_type t);

/* All strings are owned by the config (rb_worker_config_free). */
typedef struct rb_worker_config {
    char *amqp_url;                   /* as given: one URL or a comma-separated list */
    char *amqp_url_file;              /* "" or the file --amqp-url was read from */
    rb_amqp_url amqp[RB_MAX_BROKERS]; /* the brokers, tried in this order */
    int nbrokers;                     /* 1..RB_MAX_BROKERS */
    char *tls_ca;                     /* NULL: the system's CA bundle */
    char *tls_cert;
    char *tls_key;
    char *queue;
    rb_queue_type queue_type;
    int consumers;
    int slots;       /* per consumer */
    char *code_root; /* absolute, symlinks resolved */
    rb_mode mode;
    char *preload;
    int64_t timeout_ms;
    int64_t max_timeout_ms;
    size_t max_job_bytes;
    size_t max_output_bytes;
    char *worker_id;
    char *redis_url;      /* "" = no heartbeat */
    char *redis_url_file; /* "" or the file --redis-url was read from */
    char *redis_prefix;
    int heartbeat_ms;
    rb_log_format log_format;
    rb_log_level log_level;
    int drain_ms;
    int restart_reset_ms; /* a consumer up this long starts its restart backoff over */
    int watchdog_ms;      /* a consumer silent this long is killed (watchdog.c); 0: off */
    int prefetch;         /* per consumer */
    int delivery_limit;   /* quorum queues; 0 = none */
    int amqp_heartbeat_s;
    int mem_limit_mb;
    int tmp_mb;                /* a job's tmpfs size, each of /tmp, /var/tmp, /dev/shm */
    int tmp_inodes;            /* and its inodes */
    int slot_offset;           /* consumer n's first slot: (n - 1) * slots (set by main.c) */
    const char *container_cmd; /* container mode: NULL or "": bubblewrap */
    const char *container_rw;  /* container mode: comma list, or NULL */
    char *run_as;
    int64_t uid_base; /* 0: every slot runs as run_as */
    bool allow_network;
    bool shared_cpus; /* no CPU per slot */
    bool sandbox_best_effort;
    bool quarantine; /* this consumer runs <queue>.suspects, alone (set by main.c) */
} rb_worker_config;

typedef enum rb_config_result {
    RB_CONFIG_ERROR = -1, /* err says why; exit 2 */
    RB_CONFIG_RUN = 0,    /* cfg is complete */
    RB_CONFIG_DONE = 1,   /* --help or --version was printed to out; exit 0 */
} rb_config_result;

/*
 * Fill cfg from the defaults, then the environment, then argv (argv[0] is
 * the program name). --help and --version print to out. On error cfg holds
 * whatever was set so far: rb_worker_config_free it all the same.
 */
rb_config_result rb_worker_config_parse(rb_worker_config *cfg, int argc, char **argv, FILE *out,
                                        rb_err *err);

void rb_worker_config_free(rb_worker_config *cfg);

/* Strict number parsing shared with the tests: the whole string must be a
 * decimal integer in [min, max]. rb_parse_size also takes a K, M or G
 * suffix (binary: KiB, MiB, GiB, with or without "iB"). Return 0 or -1. */
int rb_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);
int rb_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
