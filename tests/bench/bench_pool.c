/*
 * bench_pool: the trampoline pool on its own (no broker), side by side with
 * what a naive worker does (a fresh /usr/bin/python3 per job).
 *
 *   bench_pool [--jobs N] [--naive-jobs N]
 *
 * Prints tables: per-job overhead (submit to collected result) p50/p99 for
 * a trivial call, throughput with 2 slots, and the pool's PSS for 1, 2, 4, 8
 * slots. Medians and ratios from one run: these machines are noisy.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static double now_ms(void)
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

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
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

static const char *JOB = "{\"v\":1,\"id\":\"b\",\"calls\":[{\"file\":\"f.py\",\"fcn\":\"f\"}]}";
static const char *NP_JOB =
    "{\"v\":1,\"id\":\"b\",\"calls\":[{\"file\":\"f.py\",\"fcn\":\"g\",\"args\":[50]}]}";

/* Sequential: one job at a time, submit to collected. */
static void latency(rb_pool *pool, const char *json, int jobs, double *p50, double *p99)
{
    size_t len;
    char *body = harness_json_to_msgpack(json, &len);
    rb_limits lim;
    rb_limits_default(&lim);
    rb_job *job;
    rb_err err;
    rb_job_decode(body, len, &lim, &job, NULL, &err);
    double *t = calloc((size_t)jobs, sizeof *t);
    collect c = {.pool = pool};
    for (int i = 0; i < jobs; i++) {
        /* The next child is forked after each job: wait until it is ready,
         * as a job arriving at a steady rate would find it. */
        rb_pool_stats st;
        for (;;) {
            rb_pool_get_stats(pool, &st, false);
            if (st.ready == st.slots) break;
            harness_drive(pool, 1, NULL, NULL);
        }
        double t0 = now_ms();
        c.want = c.got + 1;
        rb_pool_submit(pool, (uint64_t)i, body, len, job);
        harness_drive(pool, 10000, collected, &c);
        t[i] = now_ms() - t0;
    }
    *p50 = pct(t, jobs, 0.5);
    *p99 = pct(t, jobs, 0.99);
    if (c.failed) fprintf(stderr, "bench: %d jobs failed\n", c.failed);
    free(t);
    rb_job_free(job);
    free(body);
}

/* CPU time (user + system, ms) used by pid and all its descendants, live
 * or reaped: on a loaded machine this stays honest where wall time does not. */
static double tree_cpu_ms(pid_t pid)
{
    char path[96], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0, cut = 0, cst = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ut,
                     &st, &cut, &cst) != 4)
        return 0;
    double ms = (double)(ut + st + cut + cst) * 1000.0 / sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    f = fopen(path, "r");
    int child;
    while (f && fscanf(f, "%d", &child) == 1)
        ms += tree_cpu_ms(child);
    if (f) fclose(f);
    return ms;
}

static double cpu_per_job, cpu_pool_per_job;

/* CPU time (ms) of this process alone: the pool's side. */
static double self_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Throughput: all jobs queued at once, time to drain. */
static double throughput(rb_pool *pool, const char *json, int jobs)
{
    size_t len;
    char *body = harness_json_to_msgpack(json, &len);
    rb_limits lim;
    rb_limits_default(&lim);
    rb_job *job;
    rb_err err;
    rb_job_decode(body, len, &lim, &job, NULL, &err);
    collect c = {.pool = pool, .want = jobs};
    double cpu0 = tree_cpu_ms(getpid()), self0 = self_cpu_ms();
    double t0 = now_ms();
    for (int i = 0; i < jobs; i++)
        rb_pool_submit(pool, (uint64_t)i, body, len, job);
    harness_drive(pool, 600000, collected, &c);
    double secs = (now_ms() - t0) / 1e3;
    cpu_per_job = (tree_cpu_ms(getpid()) - cpu0) / (c.got ? c.got : 1);
    cpu_pool_per_job = (self_cpu_ms() - self0) / (c.got ? c.got : 1);
    if (c.failed) fprintf(stderr, "bench: %d jobs failed\n", c.failed);
    rb_job_free(job);
    free(body);
    return c.got / secs;
}

/* The naive way: a fresh interpreter per job, importing the same modules. */
static const char *NAIVE = "import numpy, lxml.etree, json, random, math, sys\n"
                           "sys.path.insert(0, sys.argv[1])\n"
                           "import f\n"
                           "f.f()\n";

static double naive_one(const char *root)
{
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        execl("/usr/bin/python3", "python3", "-c", NAIVE, root, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return now_ms() - t0;
}

static void naive(const char *root, int jobs, double *p50, double *p99, double *rate2)
{
    double *t = calloc((size_t)jobs, sizeof *t);
    for (int i = 0; i < jobs; i++)
        t[i] = naive_one(root);
    *p50 = pct(t, jobs, 0.5);
    *p99 = pct(t, jobs, 0.99);
    /* Two at a time, as two slots would. */
    double t0 = now_ms();
    for (int i = 0; i < jobs; i += 2) {
        pid_t a = fork();
        if (a == 0) {
            naive_one(root);
            _exit(0);
        }
        naive_one(root);
        waitpid(a, NULL, 0);
    }
    *rate2 = jobs / ((now_ms() - t0) / 1e3);
    free(t);
}

/* The floor the issue names: CPU (ms) of one fork plus exit of a python3
 * that has imported the preload list, parent and child together. */
static double fork_floor_ms(int forks)
{
    int fds[2];
    char count[16];
    snprintf(count, sizeof count, "%d", forks);
    if (pipe(fds) != 0) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        execl("/usr/bin/python3", "python3", "-c",
              "import numpy, lxml.etree, json, random, math, gc, os, resource, sys\n"
              "gc.freeze()\n"
              "n = int(sys.argv[1])\n"
              "def cpu(who):\n"
              "    r = resource.getrusage(who)\n"
              "    return r.ru_utime + r.ru_stime\n"
              "a = cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN)\n"
              "for i in range(n):\n"
              "    pid = os.fork()\n"
              "    if pid == 0:\n"
              "        os._exit(0)\n"
              "    os.waitpid(pid, 0)\n"
              "b = cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN)\n"
              "print((b - a) / n * 1e3)\n",
              count, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[64] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return n > 0 ? atof(buf) : 0;
}

/* PSS of a cold-started interpreter with the preload list: what each slot
 * would cost if zygotes were started separately. */
static unsigned long cold_pss_kb(void)
{
    int fds[2];
    if (pipe(fds) != 0) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        execl("/usr/bin/python3", "python3", "-c",
              "import numpy, lxml.etree, json, random, math, sys, time\n"
              "print('up', flush=True)\n"
              "time.sleep(30)\n",
              (char *)NULL);
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

static bool all_ready(void *ctx)
{
    rb_pool_stats st;
    rb_pool_get_stats(ctx, &st, false);
    return st.ready == st.slots;
}

int main(int argc, char **argv)
{
    int jobs = 3000, naive_jobs = 40;
    const char *only = ""; /* "throughput" or "latency": that row alone, for profiling */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--jobs") == 0) jobs = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--naive-jobs") == 0) naive_jobs = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--only") == 0) only = argv[i + 1];
    }
    const char *mode = getenv("REBOUND_BENCH_MODE") ? getenv("REBOUND_BENCH_MODE") : "native";
    char *root = harness_code_root();
    harness_write(root, "f.py",
                  "import numpy as np\n"
                  "def f():\n"
                  "    return 1\n"
                  "def g(n):\n"
                  "    a = np.arange(n * n, dtype=float).reshape(n, n)\n"
                  "    return float((a @ a.T).trace())\n");

    printf("rebound pool benchmark (mode %s, %d jobs per row; medians of one run)\n\n", mode, jobs);

    if (strcmp(only, "throughput") == 0) {
        rb_pool *two = harness_pool(mode, 2, root, NULL);
        harness_drive(two, 10000, all_ready, two);
        double rate = throughput(two, JOB, jobs);
        printf("jobs/s %.0f, CPU per job %.2f ms (pool %.2f ms)\n", rate, cpu_per_job,
               cpu_pool_per_job);
        rb_pool_free(two);
        harness_rmtree(root);
        free(root);
        return 0;
    }
    if (strcmp(only, "latency") == 0) {
        rb_pool *one = harness_pool(mode, 1, root, NULL);
        double p50, p99;
        latency(one, JOB, jobs, &p50, &p99);
        printf("latency p50 %.3f ms, p99 %.3f ms\n", p50, p99);
        rb_pool_free(one);
        harness_rmtree(root);
        free(root);
        return 0;
    }
    rb_pool *one = harness_pool(mode, 1, root, NULL);
    double p50, p99, np50, np99, n50, n99, nrate2;
    latency(one, JOB, jobs, &p50, &p99);
    latency(one, NP_JOB, jobs / 4, &np50, &np99);
    rb_pool_free(one);

    rb_pool *two = harness_pool(mode, 2, root, NULL);
    harness_drive(two, 10000, all_ready, two);
    double rate = throughput(two, JOB, jobs);
    double cpu_trivial = cpu_per_job, cpu_pool_trivial = cpu_pool_per_job;
    harness_drive(two, 10000, all_ready, two);
    double nprate = throughput(two, NP_JOB, jobs / 2);
    rb_pool_free(two);

    naive(root, naive_jobs, &n50, &n99, &nrate2);
    double floor_ms = fork_floor_ms(jobs / 2);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    printf(
        "| trivial job `def f(): return 1`     | rebound pool | fresh python3 per job | ratio |\n");
    printf("|---|---:|---:|---:|\n");
    printf("| latency p50 (ms), 1 slot            | %.3f | %.1f | %.0fx |\n", p50, n50, n50 / p50);
    printf("| latency p99 (ms), 1 slot            | %.3f | %.1f | %.0fx |\n", p99, n99, n99 / p99);
    printf("| jobs/s, 2 slots                     | %.0f | %.1f | %.0fx |\n", rate, nrate2,
           rate / nrate2);
    printf("| CPU per job, all processes (ms)     | %.2f | - | - |\n", cpu_trivial);
    printf("| of which the pool's own (ms)        | %.2f | - | - |\n", cpu_pool_trivial);
    printf("| jobs/s that CPU allows on %ld cores  | %.0f | - | - |\n", cores,
           cores * 1000.0 / cpu_trivial);
    printf("\n| the floor: fork + exit of a preloaded python3 | floor | rebound pool | ratio |\n");
    printf("|---|---:|---:|---:|\n");
    printf("| CPU per job, all processes (ms)     | %.2f | %.2f | %.2fx |\n", floor_ms, cpu_trivial,
           floor_ms > 0 ? cpu_trivial / floor_ms : 0);
    printf("| jobs/s that CPU allows on %ld cores  | %.0f | %.0f | %.2fx |\n", cores,
           floor_ms > 0 ? cores * 1000.0 / floor_ms : 0, cores * 1000.0 / cpu_trivial,
           floor_ms > 0 ? floor_ms / cpu_trivial : 0);
    printf("\n| small numpy job (50x50 matmul)      | rebound pool |\n|---|---:|\n");
    printf("| latency p50 (ms), 1 slot            | %.3f |\n", np50);
    printf("| latency p99 (ms), 1 slot            | %.3f |\n", np99);
    printf("| jobs/s, 2 slots                     | %.0f |\n", nprate);

    unsigned long cold = cold_pss_kb();
    printf("\n| slots | pool PSS (MB) | per extra slot (MB) | extra slot / cold interpreter |\n");
    printf("|---:|---:|---:|---:|\n");
    unsigned long base = 0;
    int sizes[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) {
        rb_pool *p = harness_pool(mode, sizes[i], root, NULL);
        harness_drive(p, 10000, all_ready, p);
        rb_pool_stats st;
        rb_pool_get_stats(p, &st, true);
        rb_pool_free(p);
        if (i == 0) {
            base = st.pss_kb;
            printf("| %d | %.1f | - | - |\n", sizes[i], st.pss_kb / 1024.0);
        } else {
            double extra = (double)(st.pss_kb - base) / (sizes[i] - 1);
            printf("| %d | %.1f | %.1f | %.0f%% |\n", sizes[i], st.pss_kb / 1024.0, extra / 1024.0,
                   cold ? 100.0 * extra / cold : 0);
        }
    }
    printf("\ncold-started interpreter with the preload list: PSS %.1f MB\n", cold / 1024.0);
    harness_rmtree(root);
    free(root);
    return 0;
}
