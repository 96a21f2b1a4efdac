/* rebound-worker settings: defaults, environment, flags, errors, AMQP URLs. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker_config.h"

static const char *const env_vars[] = {
    "REBOUND_AMQP_URL",  "REBOUND_QUEUE",         "REBOUND_QUEUE_TYPE",    "REBOUND_CONSUMERS",
    "REBOUND_SLOTS",     "REBOUND_PREFETCH",      "REBOUND_CODE_ROOT",     "REBOUND_MODE",
    "REBOUND_WORKER_ID", "REBOUND_REDIS_URL",     "REBOUND_TIMEOUT_MS",    "REBOUND_MAX_JOB_BYTES",
    "REBOUND_DRAIN_MS",  "REBOUND_ALLOW_NETWORK", "REBOUND_AMQP_URL_FILE", "REBOUND_REDIS_URL_FILE",
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
    return 0;
}

/* Parse argv (NULL-terminated, program name added); returns the result.
 * The arguments are copied: the parser masks passwords in argv in place. */
static rb_config_result parse(rb_worker_config *cfg, rb_err *err, ...)
{
    char *argv[32] = {"rebound-worker"};
    char copies[31][1024];
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31; argc++) {
        snprintf(copies[argc], sizeof copies[argc], "%s", a);
        argv[argc] = copies[argc];
    }
    va_end(ap);
    FILE *out = fopen("/dev/null", "w");
    assert_non_null(out);
    memset(err, 0, sizeof *err);
    rb_config_result r = rb_worker_config_parse(cfg, argc, argv, out, err);
    fclose(out);
    return r;
}

static int cpus(void)
{
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    return CPU_COUNT(&set);
}

static void test_defaults(void **state)
{
    (void)state;
    rb_worker_config cfg;
    rb_err err;
    assert_int_equal(parse(&cfg, &err, NULL), RB_CONFIG_RUN);
    assert_string_equal(cfg.amqp_url, RB_DEFAULT_AMQP_URL);
    assert_int_equal(cfg.nbrokers, 1);
    assert_string_equal(cfg.amqp[0].host, "127.0.0.1");
    assert_int_equal(cfg.amqp[0].port, 5672);
    assert_string_equal(cfg.amqp[0].vhost, "/");
    assert_false(cfg.amqp[0].tls);
    assert_string_equal(cfg.queue, "rebound.jobs");
    assert_int_equal(cfg.queue_type, RB_QUEUE_QUORUM);
    assert_int_equal(cfg.consumers, 1);
    assert_int_equal(cfg.slots, cpus());
    assert_int_equal(cfg.prefetch, cfg.slots);
    assert_int_equal(cfg.mode, RB_MODE_NATIVE);
    assert_string_equal(cfg.preload, "numpy,lxml.etree,json,random,math");
    assert_int_equal(cfg.timeout_ms, 10000);
    assert_int_equal(cfg.max_timeout_ms, 60000);
    assert_int_equal(cfg.max_job_bytes, 8 << 20);
    assert_int_equal(cfg.max_output_bytes, 1 << 20);
    assert_string_equal(cfg.redis_url, "");
    assert_string_equal(cfg.redis_prefix, "rebound");
    assert_int_equal(cfg.heartbeat_ms, 2000);
    assert_int_equal(cfg.log_format, RB_LOG_TEXT);
    assert_int_equal(cfg.log_level, RB_LOG_INFO);
    assert_int_equal(cfg.drain_ms, 30000);
    assert_int_equal(cfg.delivery_limit, 5);
    assert_int_equal(cfg.amqp_heartbeat_s, 10);
    assert_int_equal(cfg.mem_limit_mb, 1024);
    assert_string_equal(cfg.run_as, "nobody");
    assert_false(cfg.allow_network);
    assert_false(cfg.sandbox_best_effort);
    assert_null(cfg.tls_ca);

    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *real = realpath(cwd, NULL);
    assert_string_equal(cfg.code_root, real);
    free(real);

    char host[256] = "", want[320];
    gethostname(host, sizeof host - 1);
    snprintf(want, sizeof want, "%s-%ld", host, (long)getpid());
    assert_string_equal(cfg.worker_id, want);
    rb_worker_config_free(&cfg);
}

static void test_flags(void **state)
{
    (void)state;
    rb_worker_config cfg;
    rb_err err;
    assert_int_equal(parse(&cfg, &err, "--queue", "q1", "--queue-type=classic", "--consumers", "3",
                           "--slots", "4", "--mode", "internal", "--max-job-bytes", "2M",
                           "--max-output-bytes=16KiB", "--allow-network",
                           "--sandbox-best-effort=no", "--worker-id", "w7", "--code-root", "/tmp",
                           "--log-level", "debug", "--log-format", "json", "--delivery-limit", "0",
                           NULL),
                     RB_CONFIG_RUN);
    assert_string_equal(cfg.queue, "q1");
    assert_int_equal(cfg.queue_type, RB_QUEUE_CLASSIC);
    assert_int_equal(cfg.consumers, 3);
    assert_int_equal(cfg.slots, 4);
    assert_int_equal(cfg.prefetch, 4); /* follows --slots */
    assert_int_equal(cfg.mode, RB_MODE_INTERNAL);
    assert_int_equal(cfg.max_job_bytes, 2 << 20);
    assert_int_equal(cfg.max_output_bytes, 16 << 10);
    assert_true(cfg.allow_network);
    assert_false(cfg.sandbox_best_effort);
    assert_string_equal(cfg.worker_id, "w7");
    assert_string_equal(cfg.code_root, "/tmp");
    assert_int_equal(cfg.log_level, RB_LOG_DEBUG);
    assert_int_equal(cfg.log_format, RB_LOG_JSON);
    assert_int_equal(cfg.delivery_limit, 0);
    rb_worker_config_free(&cfg);
}

static void test_slots_default_divides_cpus(void **state)
{
    (void)state;
    rb_worker_config cfg;
    rb_err err;
    assert_int_equal(parse(&cfg, &err, "--consumers", "1000", "--code-root", "/tmp", NULL),
                     RB_CONFIG_ERROR); /* above 256 */
    rb_worker_config_free(&cfg);
    assert_int_equal(parse(&cfg, &err, "--consumers", "256", "--prefetch", "9", NULL),
                     RB_CONFIG_RUN);
    int want = cpus() / 256;
    assert_int_equal(cfg.slots, want < 1 ? 1 : want);
    assert_int_equal(cfg.prefetch, 9);
    rb_worker_config_free(&cfg);
}

static void test_environment_and_precedence(void **state)
{
    (void)state;
    setenv("REBOUND_QUEUE", "from-env", 1);
    setenv("REBOUND_SLOTS", "7", 1);
    setenv("REBOUND_ALLOW_NETWORK", "yes", 1);
    setenv("REBOUND_TIMEOUT_MS", "", 1); /* empty: unset */
    rb_worker_config cfg;
    rb_err err;
    assert_int_equal(parse(&cfg, &err, "--slots", "2", NULL), RB_CONFIG_RUN);
    assert_string_equal(cfg.queue, "from-env");
    assert_int_equal(cfg.slots, 2); /* the flag wins */
    assert_true(cfg.allow_network);
    assert_int_equal(cfg.timeout_ms, 10000);
    rb_worker_config_free(&cfg);

    setenv("REBOUND_SLOTS", "lots", 1);
    assert_int_equal(parse(&cfg, &err, NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "REBOUND_SLOTS"));
    rb_worker_config_free(&cfg);

    unsetenv("REBOUND_SLOTS");
    setenv("REBOUND_AMQP_URL", "http://nope/", 1);
    assert_int_equal(parse(&cfg, &err, NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "REBOUND_AMQP_URL"));
    rb_worker_config_free(&cfg);
}

static void expect_error(const char *what, const char *a, const char *b)
{
    rb_worker_config cfg;
    rb_err err;
    rb_config_result r = parse(&cfg, &err, a, b, NULL);
    rb_worker_config_free(&cfg);
    if (r != RB_CONFIG_ERROR || !strstr(err.msg, what) || strchr(err.msg, '\n'))
        fail_msg("%s %s: got %d '%s', want an error naming %s", a, b ? b : "", r, err.msg, what);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("--bogus", "--bogus", NULL);
    expect_error("'extra'", "extra", NULL);
    expect_error("--slots", "--slots", "0");
    expect_error("--slots", "--slots", "1.5");
    expect_error("--slots", "--slots", "");
    expect_error("--slots", "--slots", NULL); /* no value */
    expect_error("--timeout-ms", "--timeout-ms", "99999999999999999999");
    expect_error("--max-job-bytes", "--max-job-bytes", "1T");
    expect_error("--max-job-bytes", "--max-job-bytes", "0");
    expect_error("--queue-type", "--queue-type", "stream");
    expect_error("--mode", "--mode", "vm");
    expect_error("--log-level", "--log-level", "trace");
    expect_error("--allow-network", "--allow-network=perhaps", NULL);
    expect_error("--code-root", "--code-root", "/nonexistent/rebound");
    expect_error("--code-root", "--code-root", "/etc/hostname"); /* not a directory */
    expect_error("--amqp-url", "--amqp-url", "amqp://h/a/b");
    expect_error("--redis-url", "--redis-url", "http://h");
    expect_error("--worker-id", "--worker-id", "a b");
    expect_error("--queue", "--queue", "");
    expect_error("--tls-key", "--tls-cert", "/tmp/cert.pem");
    expect_error("--max-timeout-ms", "--max-timeout-ms", "5000"); /* < --timeout-ms 10000 */
}

static void test_help(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    char *argv[] = {"rebound-worker", "--help", NULL};
    rb_worker_config cfg;
    rb_err err = {{0}};
    assert_int_equal(rb_worker_config_parse(&cfg, 2, argv, out, &err), RB_CONFIG_DONE);
    fclose(out);
    assert_non_null(strstr(text, "--amqp-url URL"));
    assert_non_null(strstr(text, "[REBOUND_QUEUE; default: rebound.jobs]"));
    assert_non_null(strstr(text, "[REBOUND_SLOTS]"));
    free(text);
    rb_worker_config_free(&cfg);
}

static void url_ok(const char *url, bool tls, const char *host, int port, const char *user,
                   const char *password, const char *vhost)
{
    rb_amqp_url u;
    rb_err err = {{0}};
    if (rb_amqp_url_parse(url, &u, &err) < 0) fail_msg("%s: %s", url, err.msg);
    assert_int_equal(u.tls, tls);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_string_equal(u.user, user);
    assert_string_equal(u.password, password);
    assert_string_equal(u.vhost, vhost);
}

static void test_amqp_urls(void **state)
{
    (void)state;
    /* No path and a lone "/" both mean the default vhost "/". */
    url_ok("amqp://h", false, "h", 5672, "guest", "guest", "/");
    url_ok("amqp://h/", false, "h", 5672, "guest", "guest", "/");
    url_ok("amqp://h:1234/%2F", false, "h", 1234, "guest", "guest", "/");
    url_ok("amqp://h/%2fprod", false, "h", 5672, "guest", "guest", "/prod");
    url_ok("amqp://u:p%40ss@h/v", false, "h", 5672, "u", "p@ss", "v");
    url_ok("amqps://h", true, "h", 5671, "guest", "guest", "/");
    url_ok("amqp://[::1]:5673/x", false, "::1", 5673, "guest", "guest", "x");

    const char *bad[] = {"http://h/",
                         "amqp://h:0/",
                         "amqp://h:70000/",
                         "amqp://h:x/",
                         "amqp://h/a/b",
                         "amqp://h/%zz",
                         "",
                         "amqp:/h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rb_amqp_url u;
        rb_err err = {{0}};
        if (rb_amqp_url_parse(bad[i], &u, &err) == 0) fail_msg("'%s' parsed", bad[i]);
        assert_true(err.msg[0] != '\0');
    }
}

static void test_url_redaction(void **state)
{
    (void)state;
    char out[128];
    rb_amqp_url_redact("amqp://bob:s3cret@h:1/v", out, sizeof out);
    assert_string_equal(out, "amqp://bob:***@h:1/v");
    rb_amqp_url_redact("amqp://bob@h/", out, sizeof out);
    assert_string_equal(out, "amqp://bob@h/");
    rb_amqp_url_redact("amqp://h/a@b", out, sizeof out);
    assert_string_equal(out, "amqp://h/a@b");

    rb_amqp_url u;
    rb_err err = {{0}};
    assert_int_equal(rb_amqp_url_parse("amqp://bob:s3cret@h:0/", &u, &err), -1);
    assert_null(strstr(err.msg, "s3cret"));
}

/* What ps shows of the command line does not say the passwords: the
 * parsed config keeps them, argv's copies are masked in place. */
static void test_passwords_leave_the_command_line(void **state)
{
    (void)state;
    char a0[] = "rebound-worker", a1[] = "--amqp-url", a2[] = "amqp://bob:s3cret@h:5672/v",
         a3[] = "--redis-url=redis://:hunter2@127.0.0.1:6379/0", a4[] = "--queue", a5[] = "q";
    char *argv[] = {a0, a1, a2, a3, a4, a5, NULL};
    rb_worker_config cfg;
    rb_err err = {{0}};
    assert_int_equal(rb_worker_config_parse(&cfg, 6, argv, stdout, &err), RB_CONFIG_RUN);
    assert_string_equal(cfg.amqp_url, "amqp://bob:s3cret@h:5672/v");
    assert_string_equal(cfg.redis_url, "redis://:hunter2@127.0.0.1:6379/0");
    assert_string_equal(a2, "amqp://bob:******@h:5672/v");
    assert_string_equal(a3, "--redis-url=redis://:*******@127.0.0.1:6379/0");
    assert_string_equal(a5, "q");
    rb_worker_config_free(&cfg);
}

/* Several brokers: each entry parsed, in order; a wrong entry is named by
 * its number; each password is masked on the command line. */
static void test_broker_list(void **state)
{
    (void)state;
    rb_worker_config cfg;
    rb_err err;
    assert_int_equal(parse(&cfg, &err, "--amqp-url",
                           "amqp://a:pa@h1:5001/%2f, amqp://b:pb@h2:5002/v ,amqps://h3", NULL),
                     RB_CONFIG_RUN);
    assert_int_equal(cfg.nbrokers, 3);
    assert_string_equal(cfg.amqp[0].host, "h1");
    assert_int_equal(cfg.amqp[0].port, 5001);
    assert_string_equal(cfg.amqp[0].password, "pa");
    assert_string_equal(cfg.amqp[0].vhost, "/");
    assert_string_equal(cfg.amqp[1].host, "h2");
    assert_string_equal(cfg.amqp[1].user, "b");
    assert_string_equal(cfg.amqp[1].vhost, "v");
    assert_string_equal(cfg.amqp[1].shown, "amqp://b:***@h2:5002/v");
    assert_true(cfg.amqp[2].tls);
    assert_int_equal(cfg.amqp[2].port, 5671);
    rb_worker_config_free(&cfg);

    /* A comma in a password is percent-encoded. */
    assert_int_equal(parse(&cfg, &err, "--amqp-url", "amqp://u:a%2Cb@h/", NULL), RB_CONFIG_RUN);
    assert_int_equal(cfg.nbrokers, 1);
    assert_string_equal(cfg.amqp[0].password, "a,b");
    rb_worker_config_free(&cfg);

    assert_int_equal(parse(&cfg, &err, "--amqp-url", "amqp://h1/,http://u:sec@h2/,amqp://h3", NULL),
                     RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--amqp-url[2]: "));
    assert_null(strstr(err.msg, "sec"));
    rb_worker_config_free(&cfg);
    assert_int_equal(parse(&cfg, &err, "--amqp-url", "amqp://h1/,,amqp://h3", NULL),
                     RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--amqp-url[2]: empty entry"));
    rb_worker_config_free(&cfg);
    assert_int_equal(parse(&cfg, &err, "--amqp-url", "amqp://h1/,amqp://h2:0/", NULL),
                     RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--amqp-url[2]: "));
    rb_worker_config_free(&cfg);
    assert_int_equal(parse(&cfg, &err, "--amqp-url", "amqp://h1/,", NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--amqp-url[2]: empty entry"));
    rb_worker_config_free(&cfg);
    setenv("REBOUND_AMQP_URL", "amqp://h1/,amqp://h2/a/b", 1);
    assert_int_equal(parse(&cfg, &err, NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "REBOUND_AMQP_URL[2]: "));
    rb_worker_config_free(&cfg);
    unsetenv("REBOUND_AMQP_URL");
    char many[40 * 20] = "amqp://h";
    for (int i = 1; i < 17; i++)
        strcat(many, ",amqp://h");
    assert_int_equal(parse(&cfg, &err, "--amqp-url", many, NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--amqp-url: 17 brokers given, at most 16"));
    rb_worker_config_free(&cfg);

    char a0[] = "rebound-worker", a1[] = "--amqp-url",
         a2[] = "amqp://a:pa1@h1/,amqp://h2/,amqp://b:pb22@h3:1/v";
    char *argv[] = {a0, a1, a2, NULL};
    memset(&err, 0, sizeof err);
    assert_int_equal(rb_worker_config_parse(&cfg, 3, argv, stdout, &err), RB_CONFIG_RUN);
    assert_string_equal(a2, "amqp://a:***@h1/,amqp://h2/,amqp://b:****@h3:1/v");
    assert_string_equal(cfg.amqp[2].password, "pb22");
    rb_worker_config_free(&cfg);
}

/* A file of mode m holding text; its path in path (cap 64). */
static void secret_file(char *path, const char *text, mode_t m)
{
    snprintf(path, 64, "/tmp/rb-secret-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, m), 0);
    close(fd);
}

/* --amqp-url-file and --redis-url-file: the URL from a file only its owner
 * may read; a more specific source wins; both at once is an error. */
static void test_url_files(void **state)
{
    (void)state;
    char amqp[64], redis[64], open_file[64], two_lines[64];
    secret_file(amqp, "amqp://u:filepw@h1/,amqp://u:filepw@h2/\n", 0600);
    secret_file(redis, "redis://:redispw@127.0.0.1:6379/0\n", 0400);
    secret_file(open_file, "amqp://u:pw@h/\n", 0640);
    secret_file(two_lines, "amqp://h1/\namqp://h2/\n", 0600);
    rb_worker_config cfg;
    rb_err err;
    assert_int_equal(parse(&cfg, &err, "--amqp-url-file", amqp, "--redis-url-file", redis, NULL),
                     RB_CONFIG_RUN);
    assert_int_equal(cfg.nbrokers, 2);
    assert_string_equal(cfg.amqp[1].password, "filepw");
    assert_string_equal(cfg.redis_url, "redis://:redispw@127.0.0.1:6379/0");
    rb_worker_config_free(&cfg);

    /* From the environment too; a flag's URL wins over a variable's file. */
    setenv("REBOUND_AMQP_URL_FILE", amqp, 1);
    assert_int_equal(parse(&cfg, &err, NULL), RB_CONFIG_RUN);
    assert_string_equal(cfg.amqp[0].host, "h1");
    rb_worker_config_free(&cfg);
    assert_int_equal(parse(&cfg, &err, "--amqp-url", "amqp://h9/", NULL), RB_CONFIG_RUN);
    assert_string_equal(cfg.amqp[0].host, "h9");
    rb_worker_config_free(&cfg);
    setenv("REBOUND_AMQP_URL", "amqp://h8/", 1);
    assert_int_equal(parse(&cfg, &err, NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "REBOUND_AMQP_URL and REBOUND_AMQP_URL_FILE"));
    rb_worker_config_free(&cfg);
    unsetenv("REBOUND_AMQP_URL");
    unsetenv("REBOUND_AMQP_URL_FILE");
    assert_int_equal(parse(&cfg, &err, "--amqp-url", "amqp://h9/", "--amqp-url-file", amqp, NULL),
                     RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--amqp-url and --amqp-url-file"));
    rb_worker_config_free(&cfg);

    assert_int_equal(parse(&cfg, &err, "--amqp-url-file", open_file, NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--amqp-url-file: "));
    assert_non_null(strstr(err.msg, "permissions 0640 are too open"));
    rb_worker_config_free(&cfg);
    assert_int_equal(parse(&cfg, &err, "--redis-url-file", open_file, NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--redis-url-file: "));
    rb_worker_config_free(&cfg);
    assert_int_equal(parse(&cfg, &err, "--amqp-url-file", two_lines, NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "must hold one line"));
    rb_worker_config_free(&cfg);
    assert_int_equal(parse(&cfg, &err, "--amqp-url-file", "/nonexistent/rb", NULL),
                     RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--amqp-url-file: /nonexistent/rb: "));
    rb_worker_config_free(&cfg);
    /* A bad URL in the file is named after the file setting, masked. */
    chmod(open_file, 0600);
    FILE *f = fopen(open_file, "w");
    assert_non_null(f);
    fputs("amqp://h1/,http://u:pw7@h/\n", f);
    fclose(f);
    assert_int_equal(parse(&cfg, &err, "--amqp-url-file", open_file, NULL), RB_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--amqp-url-file[2]: "));
    assert_null(strstr(err.msg, "pw7"));
    rb_worker_config_free(&cfg);
    unlink(amqp);
    unlink(redis);
    unlink(open_file);
    unlink(two_lines);
}

static void test_numbers(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(rb_parse_size("8MiB", 1, UINT64_MAX, &v), 0);
    assert_int_equal(v, 8u << 20);
    assert_int_equal(rb_parse_size("3k", 1, UINT64_MAX, &v), 0);
    assert_int_equal(v, 3072);
    assert_int_equal(rb_parse_size("2G", 1, UINT64_MAX, &v), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(rb_parse_size("12", 1, UINT64_MAX, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(rb_parse_size("-1", 0, UINT64_MAX, &v), -1);
    assert_int_equal(rb_parse_size("1Mx", 0, UINT64_MAX, &v), -1);
    assert_int_equal(rb_parse_size("99999999999999G", 0, UINT64_MAX, &v), -1);
    assert_int_equal(rb_parse_size("2K", 0, 1024, &v), -1);
    int64_t i;
    assert_int_equal(rb_parse_int64("-5", -10, 10, &i), 0);
    assert_int_equal(i, -5);
    assert_int_equal(rb_parse_int64(" 5", 0, 10, &i), -1);
    assert_int_equal(rb_parse_int64("5 ", 0, 10, &i), -1);
    assert_int_equal(rb_parse_int64("11", 0, 10, &i), -1);
    assert_int_equal(rb_parse_int64("0x5", 0, 10, &i), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_flags, clear_env),
        cmocka_unit_test_setup(test_slots_default_divides_cpus, clear_env),
        cmocka_unit_test_setup(test_environment_and_precedence, clear_env),
        cmocka_unit_test_setup(test_errors, clear_env),
        cmocka_unit_test_setup(test_help, clear_env),
        cmocka_unit_test(test_amqp_urls),
        cmocka_unit_test_setup(test_broker_list, clear_env),
        cmocka_unit_test_setup(test_url_files, clear_env),
        cmocka_unit_test(test_url_redaction),
        cmocka_unit_test_setup(test_passwords_leave_the_command_line, clear_env),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
