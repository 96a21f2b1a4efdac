/*
 * bench_real_code: what real course code costs in the pool, side by side
 * with a fresh /usr/bin/python3 per job, and the huge-page arenas A/B.
 *
 *   bench_real_code [--jobs N] [--slow-jobs N] [--cold-jobs N]
 *
 * Tables (one run, medians; mode from REBOUND_BENCH_MODE, default native):
 *   1. trivial job, huge-page arenas on and off (arenas.c), alternated
 *      twice: CPU per job and jobs/s with 2 slots, p50 with 1 slot;
 *   2. a plot job (savefig of a small line plot to PNG) and a sympy job
 *      (diff + latex): with the scientific preload, with the default one
 *      (the job imports the library itself), and a fresh python3 per job;
 *   3. the pool's PSS for 1, 2 and 4 slots with each preload set, per extra
 *      slot, and that against a cold interpreter with the same imports.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define DEFAULT_PRELOAD "numpy,lxml.etree,json,random,math"
#define SCIENTIFIC_PRELOAD DEFAULT_PRELOAD ",sympy,pandas,matplotlib.pyplot,pint,scipy,networkx"

static const char *const CODE =
    "import io\n"
    "def f():\n"
    "    return 1\n"
    "def plot():\n"
    "    import matplotlib\n"
    "    matplotlib.use('Agg')\n"
    "    import matplotlib.pyplot as plt\n"
    "    fig, ax = plt.subplots(figsize=(3, 2), dpi=80)\n"
    "    ax.plot([0, 1, 2, 3], [1, 3, 2, 4])\n"
    "    buf = io.BytesIO()\n"
    "    fig.savefig(buf, format='png')\n"
    "    plt.close(fig)\n"
    "    return len(buf.getvalue())\n"
    "def sym():\n"
    "    import sympy\n"
    "    x = sympy.Symbol('x')\n"
    "    return sympy.latex(sympy.diff(sympy.sin(x) * sympy.exp(x**2), x))\n";

#define JOB(fcn) "{\"v\":1,\"id\":\"b\",\"calls\":[{\"file\":\"f.py\",\"fcn\":\"" fcn "\"}]}"

static const char *mode;
static char *root;

static rb_pool *pool_of(int slots, const char *preload, bool huge_pages)
{
    rb_pool_config cfg;
    harness_config(&cfg, mode, slots, root);
    cfg.preload = preload;
    cfg.no_huge_pages = !huge_pages;
    rb_pool *p = harness_pool(mode, slots, root, &cfg);
    harness_drive(p, 60000, bench_all_ready, p);
    return p;
}

static void report_failed(const char *what, int failed)
{
    if (failed) fprintf(stderr, "bench: %s: %d jobs failed\n", what, failed);
}

static double median2(double a, double b)
{
    return (a + b) / 2;
}

static void arenas_ab(int jobs)
{
    /* [arm][round]: arm 0 huge pages, arm 1 Python's own arenas. */
    double cpu[2][2], rate[2][2], p50[2][2], p99;
    for (int round = 0; round < 2; round++) {
        for (int arm = 0; arm < 2; arm++) {
            int failed = 0;
            rb_pool *two = pool_of(2, DEFAULT_PRELOAD, arm == 0);
            rate[arm][round] =
                bench_throughput(two, JOB("f"), jobs, &cpu[arm][round], NULL, &failed);
            rb_pool_free(two);
            rb_pool *one = pool_of(1, DEFAULT_PRELOAD, arm == 0);
            bench_latency(one, JOB("f"), jobs / 4, &p50[arm][round], &p99, &failed);
            rb_pool_free(one);
            report_failed("arenas A/B", failed);
        }
    }
    printf("| trivial job, default preload | huge-page arenas | Python's own arenas | ratio |\n");
    printf("|---|---:|---:|---:|\n");
    for (int round = 0; round < 2; round++) {
        printf("| round %d: CPU per job (ms)    | %.2f | %.2f | %.2fx |\n", round + 1,
               cpu[0][round], cpu[1][round], cpu[0][round] / cpu[1][round]);
        printf("| round %d: jobs/s, 2 slots     | %.0f | %.0f | %.2fx |\n", round + 1,
               rate[0][round], rate[1][round], rate[0][round] / rate[1][round]);
        printf("| round %d: p50 (ms), 1 slot    | %.3f | %.3f | %.2fx |\n", round + 1,
               p50[0][round], p50[1][round], p50[0][round] / p50[1][round]);
    }
    double a = median2(cpu[0][0], cpu[0][1]), b = median2(cpu[1][0], cpu[1][1]);
    printf("| mean CPU per job (ms)        | %.2f | %.2f | %.2fx |\n\n", a, b, a / b);
}

static const char *const COLD_PLOT = "import sys\n"
                                     "sys.path.insert(0, sys.argv[1])\n"
                                     "import f\n"
                                     "f.plot()\n";
static const char *const COLD_SYM = "import sys\n"
                                    "sys.path.insert(0, sys.argv[1])\n"
                                    "import f\n"
                                    "f.sym()\n";

static double cold_p50(const char *code, int jobs)
{
    double *t = calloc((size_t)jobs, sizeof *t);
    for (int i = 0; i < jobs; i++)
        t[i] = bench_python_once(code, root);
    double p = bench_pct(t, jobs, 0.5);
    free(t);
    return p;
}

static void library_jobs(int jobs, int slow_jobs, int cold_jobs)
{
    double plot_sci, sym_sci, plot_def, sym_def, p99;
    int failed = 0;
    rb_pool *sci = pool_of(1, SCIENTIFIC_PRELOAD, true);
    bench_latency(sci, JOB("plot"), jobs, &plot_sci, &p99, &failed);
    double plot_sci99 = p99;
    bench_latency(sci, JOB("sym"), jobs, &sym_sci, &p99, &failed);
    rb_pool_free(sci);
    rb_pool *def = pool_of(1, DEFAULT_PRELOAD, true);
    bench_latency(def, JOB("plot"), slow_jobs, &plot_def, &p99, &failed);
    bench_latency(def, JOB("sym"), slow_jobs, &sym_def, &p99, &failed);
    rb_pool_free(def);
    report_failed("library jobs", failed);
    double plot_cold = cold_p50(COLD_PLOT, cold_jobs), sym_cold = cold_p50(COLD_SYM, cold_jobs);

    printf("| job, p50 (ms), 1 slot | scientific preload | default preload (job imports) | "
           "fresh python3 | fresh / scientific |\n");
    printf("|---|---:|---:|---:|---:|\n");
    printf("| plot: savefig of a line plot to PNG | %.1f (p99 %.1f) | %.1f | %.1f | %.0fx |\n",
           plot_sci, plot_sci99, plot_def, plot_cold, plot_cold / plot_sci);
    printf("| sympy: diff + latex | %.1f | %.1f | %.1f | %.0fx |\n\n", sym_sci, sym_def, sym_cold,
           sym_cold / sym_sci);
    printf("plot job goal: p50 <= 50 ms with matplotlib preloaded: %s (%.1f ms)\n\n",
           plot_sci <= 50 ? "met" : "NOT met", plot_sci);
}

static void memory(void)
{
    static const struct {
        const char *name, *preload, *imports;
    } sets[] = {
        {"default", DEFAULT_PRELOAD, "import numpy, lxml.etree, json, random, math"},
        {"scientific", SCIENTIFIC_PRELOAD,
         "import numpy, lxml.etree, json, random, math, sympy, pandas, matplotlib.pyplot, pint, "
         "scipy, networkx"},
    };
    printf("| preload | slots | pool PSS (MB) | per extra slot (MB) | extra slot / cold "
           "interpreter |\n");
    printf("|---|---:|---:|---:|---:|\n");
    for (int s = 0; s < 2; s++) {
        unsigned long cold = bench_cold_pss_kb(sets[s].imports), base = 0;
        static const int sizes[] = {1, 2, 4};
        for (int i = 0; i < 3; i++) {
            rb_pool *p = pool_of(sizes[i], sets[s].preload, true);
            rb_pool_stats st;
            rb_pool_get_stats(p, &st, true);
            rb_pool_free(p);
            if (i == 0) {
                base = st.pss_kb;
                printf("| %s | 1 | %.1f | - | - |\n", sets[s].name, st.pss_kb / 1024.0);
            } else {
                double extra = ((double)st.pss_kb - (double)base) / (sizes[i] - 1);
                printf("| %s | %d | %.1f | %.1f | %.0f%% |\n", sets[s].name, sizes[i],
                       st.pss_kb / 1024.0, extra / 1024.0, cold ? 100.0 * extra / cold : 0);
            }
        }
        printf("| %s | cold python3 | %.1f | | |\n", sets[s].name, cold / 1024.0);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    int jobs = 2000, slow_jobs = 10, cold_jobs = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--jobs") == 0) jobs = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--slow-jobs") == 0) slow_jobs = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--cold-jobs") == 0) cold_jobs = atoi(argv[i + 1]);
    }
    mode = getenv("REBOUND_BENCH_MODE") ? getenv("REBOUND_BENCH_MODE") : "native";
    root = harness_code_root();
    harness_write(root, "f.py", CODE);
    printf("rebound real-code benchmark (mode %s; %d trivial jobs per A/B row, %d library jobs "
           "preloaded, %d not, %d fresh python3)\n\n",
           mode, jobs, jobs / 10, slow_jobs, cold_jobs);
    arenas_ab(jobs);
    library_jobs(jobs / 10, slow_jobs, cold_jobs);
    memory();
    harness_rmtree(root);
    free(root);
    return 0;
}
