/*
 * process.c - what every process of the trampoline uses, whatever its role
 * (mother, zygote, child): its role's name, the log line, the SIGCHLD
 * descriptor, the thread check and the CPU time of a rusage. Below main.c, mother.c, zygote.c and
 * child.c, so that none of them calls another's file for these.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "trampoline.h"

const char *tr_role = "trampoline";

void tr_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "rebound-trampoline[%d] %s: %s\n", (int)getpid(), tr_role, line);
}

int tr_sigchld_fd(void)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    return signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
}

int64_t tr_rusage_cpu_us(const struct rusage *ru)
{
    return ((int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000 + ru->ru_utime.tv_usec +
           ru->ru_stime.tv_usec;
}

bool tr_single_threaded(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[128];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    if (f) fclose(f);
    return n == 1;
}
