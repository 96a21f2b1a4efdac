/*
 * bench_common.h - what the pool benchmarks share: clocks, percentiles,
 * CPU time of a process tree, PSS of a cold interpreter, and driving jobs
 * through a pool one at a time or all at once.
 */
#ifndef REBOUND_BENCH_COMMON_H
#define REBOUND_BENCH_COMMON_H

#include <stdbool.h>
#include <sys/types.h>

#include "harness.h"

double bench_now_ms(void);

/* The p-th percentile (0..1) of v[0..n); sorts v. */
double bench_pct(double *v, int n, double p);

/* CPU time (user + system, ms) used by pid and all its descendants, live or
 * reaped: on a loaded machine this stays honest where wall time does not. */
double bench_tree_cpu_ms(pid_t pid);

/* Minor page faults of pid and all its descendants, live or reaped: for a
 * forked child, mostly the copies of the pages it writes. */
unsigned long long bench_tree_minflt(pid_t pid);

/* CPU time (ms) of this process alone: the pool's side. */
double bench_self_cpu_ms(void);

/* PSS (kB) of a /usr/bin/python3 that has run import_line (e.g. "import
 * numpy, json"): what a slot would cost if each were started cold. */
unsigned long bench_cold_pss_kb(const char *import_line);

/* Wall time (ms) of one /usr/bin/python3 -c code root (stdout to /dev/null). */
double bench_python_once(const char *code, const char *arg);

/* harness_drive's done(): every slot of the pool (ctx) has a ready child. */
bool bench_all_ready(void *ctx);

/* Latency: jobs run one at a time, each submitted once every slot has a
 * ready child (as a job arriving at a steady rate finds the pool); submit to
 * collected result. Counts jobs whose status was not ok into *failed. */
void bench_latency(rb_pool *pool, const char *json, int jobs, double *p50, double *p99,
                   int *failed);

/* Throughput: all jobs queued at once; returns jobs/s and sets the CPU per
 * job of the whole tree (this process and the pool's) and of this process. */
double bench_throughput(rb_pool *pool, const char *json, int jobs, double *cpu_per_job,
                        double *cpu_pool_per_job, int *failed);

#endif
