/*
 * status_args.c - the command line of rebound-status. Every usage error is
 * one line naming the flag or value at fault; main turns it into exit 2.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "health_internal.h"
#include "status.h"

#define MAX_WATCH_S 86400.0

const char rb_status_usage[] =
    "usage: rebound-status [--redis-url URL] [--prefix P] [--worker ID]\n"
    "                      [--json] [--watch SECONDS] | [--prometheus]\n"
    "\n"
    "Show the consumers that write heartbeats to Redis.\n"
    "\n"
    "  --redis-url URL   redis://[:password@]host[:port][/db] or unix:///path\n"
    "                    (default: $REBOUND_REDIS_URL, else " RB_STATUS_DEFAULT_URL ")\n"
    "  --prefix P        key prefix (default: $REBOUND_REDIS_PREFIX, else rebound)\n"
    "  --worker ID       only worker ID and its consumers (ID.1, ID.2, ...): the\n"
    "                    exit status then says whether this worker is ready\n"
    "  --json            print JSON instead of a table (--watch adds jobs/s)\n"
    "  --prometheus      print one look in Prometheus' text format; exit 0 once\n"
    "                    Redis was read, whoever is ready\n"
    "  --watch SECONDS   redraw every SECONDS until interrupted; adds jobs/s\n"
    "\n"
    "Exit status: 0 at least one worker is ready, 1 none is, 2 usage error,\n"
    "3 Redis cannot be reached.\n";

/* "--flag=value" or "--flag value": the value, advancing *i past it. */
static int flag_value(int argc, char **argv, int *i, const char *flag, const char **value,
                      rb_err *err)
{
    const char *arg = argv[*i];
    size_t n = strlen(flag);
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 0;
    }
    if (*i + 1 >= argc) return rb_err_set(err, "%s needs a value", flag);
    *value = argv[++*i];
    return 0;
}

/* Is arg this flag, alone or as "flag=..."? */
static bool is_flag(const char *arg, const char *flag)
{
    size_t n = strlen(flag);
    return strncmp(arg, flag, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static int parse_watch(const char *v, double *out, rb_err *err)
{
    char *end;
    double s = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !isfinite(s) || s <= 0 || s > MAX_WATCH_S)
        return rb_err_set(err, "--watch: '%.64s' is not a number of seconds in (0, %.0f]", v,
                          MAX_WATCH_S);
    *out = s;
    return 0;
}

int rb_status_parse_args(int argc, char **argv, const char *env_url, rb_status_opts *o, rb_err *err)
{
    memset(o, 0, sizeof *o);
    o->prefix = "rebound";
    const char *url_flag = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        if (strcmp(arg, "--json") == 0) {
            o->json = true;
        } else if (strcmp(arg, "--prometheus") == 0) {
            o->prometheus = true;
        } else if (is_flag(arg, "--worker")) {
            if (flag_value(argc, argv, &i, "--worker", &v, err) < 0) return -1;
            if (*v == '\0') return rb_err_set(err, "--worker: the id is empty");
            o->worker = v;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            o->help = true;
        } else if (is_flag(arg, "--redis-url")) {
            if (flag_value(argc, argv, &i, "--redis-url", &url_flag, err) < 0) return -1;
        } else if (is_flag(arg, "--prefix")) {
            if (flag_value(argc, argv, &i, "--prefix", &v, err) < 0) return -1;
            if (*v == '\0') return rb_err_set(err, "--prefix: the prefix is empty");
            o->prefix = v;
            o->prefix_given = true;
        } else if (is_flag(arg, "--watch")) {
            if (flag_value(argc, argv, &i, "--watch", &v, err) < 0 ||
                parse_watch(v, &o->watch_s, err) < 0)
                return -1;
        } else if (arg[0] == '-') {
            return rb_err_set(err, "unknown option %.64s", arg);
        } else {
            return rb_err_set(err, "unexpected argument '%.64s'", arg);
        }
    }
    if (o->prometheus && (o->json || o->watch_s > 0))
        return rb_err_set(err, "--prometheus prints one look: not with %s",
                          o->json ? "--json" : "--watch");
    if (url_flag != NULL) {
        o->url = url_flag;
    } else if (env_url != NULL && env_url[0] != '\0') {
        o->url = env_url;
    } else {
        o->url = RB_STATUS_DEFAULT_URL;
    }
    /* check the URL now so that a bad one is a usage error, not exit 3 */
    rb_redis_url u;
    rb_err uerr;
    if (rb_redis_url_parse(o->url, &u, &uerr) < 0)
        return rb_err_set(err, "%s: %s", url_flag != NULL ? "--redis-url" : "REBOUND_REDIS_URL",
                          uerr.msg);
    return 0;
}
