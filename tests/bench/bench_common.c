#include "bench_common.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* Summed over pid and its descendants, live or reaped (the c* fields):
 * CPU clock ticks, or minor page faults. */
static unsigned long long tree_sum(pid_t pid, bool faults)
{
    char path[96], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long mf = 0, cmf = 0, ut = 0, st = 0, cut = 0, cst = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %llu %*u %*u %llu %llu %llu %llu",
                     &mf, &cmf, &ut, &st, &cut, &cst) != 6)
        return 0;
    unsigned long long sum = faults ? mf + cmf : ut + st + cut + cst;
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    f = fopen(path, "r");
    int child;
    while (f && fscanf(f, "%d", &child) == 1)
        sum += tree_sum(child, faults);
    if (f) fclose(f);
    return sum;
}

double bench_tree_cpu_ms(pid_t pid)
{
    return (double)tree_sum(pid, false) * 1000.0 / sysconf(_SC_CLK_TCK);
}

unsigned long long bench_tree_minflt(pid_t pid)
{
    return tree_sum(pid, true);
}

double bench_self_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

unsigned long bench_cold_pss_kb(const char *import_line)
{
    char code[1024];
    snprintf(code, sizeof code, "%s\nimport sys, time\nprint('up', flush=True)\ntime.sleep(120)\n",
             import_line);
    int fds[2];
    if (pipe(fds) != 0) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        execl("/usr/bin/python3", "python3", "-c", code, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[8];
    if (read(fds[0], buf, sizeof buf) <= 0) buf[0] = 0;
    close(fds[0]);
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    unsigned long pss = 0, v;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Pss: %lu kB", &v) == 1) pss = v;
    if (f) fclose(f);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return pss;
}

double bench_python_once(const char *code, const char *arg)
{
    double t0 = bench_now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl("/usr/bin/python3", "python3", "-c", code, arg, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return bench_now_ms() - t0;
}

bool bench_all_ready(void *ctx)
{
    rb_pool_stats st;
    rb_pool_get_stats(ctx, &st, false);
    return st.ready == st.slots;
}

typedef struct collect {
    rb_pool *pool;
    int want, got;
    int failed;
} collect;

static bool collected(void *ctx)
{
    collect *c = ctx;
    rb_pool_result r;
    while (rb_pool_next_result(c->pool, &r)) {
        if (r.status != RB_STATUS_OK) c->failed++;
        rb_pool_result_free(&r);
        c->got++;
    }
    return c->got >= c->want;
}

static char *decode(const char *json, size_t *len, rb_job **job)
{
    char *body = harness_json_to_msgpack(json, len);
    rb_limits lim;
    rb_limits_default(&lim);
    rb_err err;
    if (rb_job_decode(body, *len, &lim, job, NULL, &err) != 0) {
        fprintf(stderr, "bench: bad job %s: %s\n", json, err.msg);
        abort();
    }
    return body;
}

void bench_latency(rb_pool *pool, const char *json, int jobs, double *p50, double *p99, int *failed)
{
    size_t len;
    rb_job *job;
    char *body = decode(json, &len, &job);
    double *t = calloc((size_t)jobs, sizeof *t);
    collect c = {.pool = pool};
    for (int i = 0; i < jobs; i++) {
        harness_drive(pool, 30000, bench_all_ready, pool);
        double t0 = bench_now_ms();
        c.want = c.got + 1;
        rb_pool_submit(pool, (uint64_t)i, body, len, job);
        harness_drive(pool, 120000, collected, &c);
        t[i] = bench_now_ms() - t0;
    }
    *p50 = bench_pct(t, jobs, 0.5);
    *p99 = bench_pct(t, jobs, 0.99);
    if (failed) *failed += c.failed;
    free(t);
    rb_job_free(job);
    free(body);
}

double bench_throughput(rb_pool *pool, const char *json, int jobs, double *cpu_per_job,
                        double *cpu_pool_per_job, int *failed)
{
    size_t len;
    rb_job *job;
    char *body = decode(json, &len, &job);
    collect c = {.pool = pool, .want = jobs};
    double cpu0 = bench_tree_cpu_ms(getpid()), self0 = bench_self_cpu_ms();
    double t0 = bench_now_ms();
    for (int i = 0; i < jobs; i++)
        rb_pool_submit(pool, (uint64_t)i, body, len, job);
    harness_drive(pool, 600000, collected, &c);
    double secs = (bench_now_ms() - t0) / 1e3;
    int got = c.got ? c.got : 1;
    if (cpu_per_job) *cpu_per_job = (bench_tree_cpu_ms(getpid()) - cpu0) / got;
    if (cpu_pool_per_job) *cpu_pool_per_job = (bench_self_cpu_ms() - self0) / got;
    if (failed) *failed += c.failed;
    rb_job_free(job);
    free(body);
    return c.got / secs;
}
