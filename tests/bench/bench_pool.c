/*
 * bench_pool: the trampoline pool on its own (no broker), side by side with
 * what a naive worker does (a fresh /usr/bin/python3 per job).
 *
 *   bench_pool [--jobs N] [--naive-jobs N] [--only throughput|latency|modes|pythons]
 *              [--pythons BINDIR,BINDIR,...]
 *
 * --pythons: the trivial job through the rebound-trampoline of each build
 * directory's bin/ (one per embedded Python, tests/bench/run builds them),
 * side by side: CPU and minor page faults per job. Those Pythons may lack
 * numpy: the preload is standard-library modules only.
 *
 * Prints tables: the trivial job in internal, native and container mode
 * side by side (what the sandbox and the container cost); per-job overhead (submit to collected
 * result) p50/p99 for a trivial call, throughput with 2 slots, and the pool's PSS for 1, 2, 4, 8
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

#include "bench_common.h"

static double cpu_per_job, cpu_pool_per_job;

static void latency(rb_pool *pool, const char *json, int jobs, double *p50, double *p99)
{
    int failed = 0;
    bench_latency(pool, json, jobs, p50, p99, &failed);
    if (failed) fprintf(stderr, "bench: %d jobs failed\n", failed);
}

static double throughput(rb_pool *pool, const char *json, int jobs)
{
    int failed = 0;
    double rate = bench_throughput(pool, json, jobs, &cpu_per_job, &cpu_pool_per_job, &failed);
    if (failed) fprintf(stderr, "bench: %d jobs failed\n", failed);
    return rate;
}

static const char *JOB = "{\"v\":1,\"id\":\"b\",\"calls\":[{\"file\":\"f.py\",\"fcn\":\"f\"}]}";
static const char *PLAIN_JOB =
    "{\"v\":1,\"id\":\"b\",\"calls\":[{\"file\":\"plain.py\",\"fcn\":\"f\"}]}";
static const char *NP_JOB =
    "{\"v\":1,\"id\":\"b\",\"calls\":[{\"file\":\"f.py\",\"fcn\":\"g\",\"args\":[50]}]}";

/* The naive way: a fresh interpreter per job, importing the same modules. */
static const char *NAIVE = "import numpy, lxml.etree, json, random, math, sys\n"
                           "sys.path.insert(0, sys.argv[1])\n"
                           "import f\n"
                           "f.f()\n";

static double naive_one(const char *root)
{
    return bench_python_once(NAIVE, root);
}

static void naive(const char *root, int jobs, double *p50, double *p99, double *rate2)
{
    double *t = calloc((size_t)jobs, sizeof *t);
    for (int i = 0; i < jobs; i++)
        t[i] = naive_one(root);
    *p50 = bench_pct(t, jobs, 0.5);
    *p99 = bench_pct(t, jobs, 0.99);
    /* Two at a time, as two slots would. */
    double t0 = bench_now_ms();
    for (int i = 0; i < jobs; i += 2) {
        pid_t a = fork();
        if (a == 0) {
            naive_one(root);
            _exit(0);
        }
        naive_one(root);
        waitpid(a, NULL, 0);
    }
    *rate2 = jobs / ((bench_now_ms() - t0) / 1e3);
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

typedef struct table_row {
    const char *name, *fmt; /* fmt: one double */
    const double *v;        /* one per column */
} table_row;

/* A markdown table: a column per name (a column whose ran[] is false says
 * so), then with ratios, each column after the first over the first. */
static void print_table(const char *title, const char *const *names, int n, const table_row *rows,
                        size_t nrows, const bool *ran, bool ratios)
{
    int cols = ratios ? 2 * n - 1 : n;
    printf("| %s |", title);
    for (int c = 0; c < n; c++)
        printf(" %s |", names[c]);
    for (int c = 1; ratios && c < n; c++)
        printf(" %s / %s |", names[c], names[0]);
    printf("\n|---|");
    for (int c = 0; c < cols; c++)
        printf("---:|");
    printf("\n");
    for (size_t r = 0; r < nrows; r++) {
        printf("| %s |", rows[r].name);
        for (int c = 0; c < n; c++) {
            if (!ran[c]) {
                printf(" (not run) |");
                continue;
            }
            printf(" ");
            printf(rows[r].fmt, rows[r].v[c]);
            printf(" |");
        }
        for (int c = 1; ratios && c < n; c++)
            if (ran[c] && ran[0] && rows[r].v[0] > 0)
                printf(" %.2fx |", rows[r].v[c] / rows[r].v[0]);
            else
                printf(" - |");
        printf("\n");
    }
    printf("\n");
}

/* The same trivial job in each execution mode, side by side: what the
 * sandbox (native), a CPU per slot, and the container around the mother
 * cost per job. */
static void modes_table(const char *root, int jobs)
{
    static const char *const names[] = {"internal", "native", "native, shared CPUs", "container"};
    static const char *const modes[] = {"internal", "native", "native", "container"};
    enum { N = 4 };
    double p50[N] = {0}, p99[N] = {0}, rate[N] = {0}, cpu[N] = {0}, cpu_pool[N] = {0};
    bool ran[N] = {false};
    for (int m = 0; m < N; m++) {
        if (m == 3 && system("command -v bwrap >/dev/null 2>&1") != 0) continue;
        rb_pool_config cfg;
        harness_config(&cfg, modes[m], 1, root);
        cfg.shared_cpus = m == 2;
        rb_pool *one = harness_pool(modes[m], 1, root, &cfg);
        latency(one, JOB, jobs, &p50[m], &p99[m]);
        rb_pool_free(one);
        cfg.slots = 2;
        rb_pool *two = harness_pool(modes[m], 2, root, &cfg);
        harness_drive(two, 10000, bench_all_ready, two);
        rate[m] = throughput(two, JOB, jobs);
        cpu[m] = cpu_per_job;
        cpu_pool[m] = cpu_pool_per_job;
        rb_pool_free(two);
        ran[m] = true;
    }
    const table_row rows[] = {
        {"latency p50 (ms), 1 slot", "%.3f", p50},
        {"latency p99 (ms), 1 slot", "%.3f", p99},
        {"jobs/s, 2 slots", "%.0f", rate},
        {"CPU per job, all processes (ms)", "%.2f", cpu},
        {"of which the pool's own (ms)", "%.2f", cpu_pool},
    };
    print_table("trivial job, by mode", names, N, rows, sizeof rows / sizeof rows[0], ran, true);
}

/* Standard-library modules only: every Python has them. */
#define STDLIB_PRELOAD "json,random,math,re,collections"
#define MAX_PYTHONS 8

/* The trivial job through each bin directory's trampoline (a comma list),
 * side by side. Page faults: minor faults of the whole tree below the
 * mother (children reaped by their zygote included) over the run, per job:
 * for a forked child that is mostly the pages it copies on write. */
static void pythons_table(const char *root, const char *mode, const char *dirs, int jobs)
{
    char *list = strdup(dirs), *save = NULL;
    char names[MAX_PYTHONS][48];
    double cpu[MAX_PYTHONS], pool_cpu[MAX_PYTHONS], faults[MAX_PYTHONS], rate[MAX_PYTHONS];
    int n = 0;
    for (char *d = strtok_r(list, ",", &save); d && n < MAX_PYTHONS;
         d = strtok_r(NULL, ",", &save), n++) {
        char tramp[4096];
        snprintf(tramp, sizeof tramp, "%s/rebound-trampoline", d);
        rb_pool_config cfg;
        harness_config(&cfg, mode, 2, root);
        cfg.trampoline_path = tramp;
        cfg.preload = STDLIB_PRELOAD;
        rb_pool *pool = harness_pool(mode, 2, root, &cfg);
        harness_drive(pool, 20000, bench_all_ready, pool);
        snprintf(names[n], sizeof names[n], "Python %s", rb_pool_python(pool));
        pid_t mother = 0, zygote = 0;
        harness_pool_pids(getpid(), &mother, &zygote);
        unsigned long long f0 = mother > 0 ? bench_tree_minflt(mother) : 0;
        rate[n] = throughput(pool, PLAIN_JOB, jobs);
        unsigned long long f1 = mother > 0 ? bench_tree_minflt(mother) : 0;
        cpu[n] = cpu_per_job;
        pool_cpu[n] = cpu_pool_per_job;
        faults[n] = (double)(f1 - f0) / jobs;
        rb_pool_free(pool);
    }
    free(list);
    const char *heads[MAX_PYTHONS];
    bool ran[MAX_PYTHONS];
    for (int i = 0; i < n; i++) {
        heads[i] = names[i];
        ran[i] = true;
    }
    const table_row rows[] = {
        {"CPU per job, all processes (ms)", "%.2f", cpu},
        {"of which the pool's own (ms)", "%.2f", pool_cpu},
        {"minor page faults per job (child and zygote)", "%.0f", faults},
        {"jobs/s", "%.0f", rate},
    };
    print_table("trivial job, preload " STDLIB_PRELOAD ", 2 slots", heads, n, rows,
                sizeof rows / sizeof rows[0], ran, true);
}

int main(int argc, char **argv)
{
    int jobs = 3000, naive_jobs = 40;
    const char *only = ""; /* "throughput" or "latency": that row alone, for profiling */
    const char *pythons = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pythons") == 0) pythons = argv[i + 1];
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
    harness_write(root, "plain.py",
                  "def f():\n"
                  "    return 1\n");

    printf("rebound pool benchmark (mode %s, %d jobs per row; medians of one run)\n\n", mode, jobs);

    if (strcmp(only, "throughput") == 0) {
        rb_pool *two = harness_pool(mode, 2, root, NULL);
        harness_drive(two, 10000, bench_all_ready, two);
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
    if (pythons && (strcmp(only, "pythons") == 0 || only[0] == '\0'))
        pythons_table(root, mode, pythons, jobs);
    if (strcmp(only, "pythons") == 0) {
        harness_rmtree(root);
        free(root);
        return 0;
    }
    if (strcmp(only, "modes") == 0 || only[0] == '\0') modes_table(root, jobs);
    if (strcmp(only, "modes") == 0) {
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
    harness_drive(two, 10000, bench_all_ready, two);
    double rate = throughput(two, JOB, jobs);
    double cpu_trivial = cpu_per_job, cpu_pool_trivial = cpu_pool_per_job;
    harness_drive(two, 10000, bench_all_ready, two);
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

    unsigned long cold = bench_cold_pss_kb("import numpy, lxml.etree, json, random, math");
    printf("\n| slots | pool PSS (MB) | per extra slot (MB) | extra slot / cold interpreter |\n");
    printf("|---:|---:|---:|---:|\n");
    unsigned long base = 0;
    int sizes[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) {
        rb_pool *p = harness_pool(mode, sizes[i], root, NULL);
        harness_drive(p, 10000, bench_all_ready, p);
        rb_pool_stats st;
        rb_pool_get_stats(p, &st, true);
        rb_pool_free(p);
        if (i == 0) {
            base = st.pss_kb;
            printf("| %d | %.1f | - | - |\n", sizes[i], st.pss_kb / 1024.0);
        } else {
            double extra = ((double)st.pss_kb - (double)base) / (sizes[i] - 1);
            printf("| %d | %.1f | %.1f | %.0f%% |\n", sizes[i], st.pss_kb / 1024.0, extra / 1024.0,
                   cold ? 100.0 * extra / cold : 0);
        }
    }
    printf("\ncold-started interpreter with the preload list: PSS %.1f MB\n", cold / 1024.0);
    harness_rmtree(root);
    free(root);
    return 0;
}
