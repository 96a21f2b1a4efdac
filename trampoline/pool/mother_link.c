/*
 * mother_link.c - the pool's side of the mother: starting rebound-trampoline
 * with only what it should have, reading her messages, asking her for
 * zygotes, and starting her again (with backoff) when she dies.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool_internal.h"

/* Only these of the consumer's environment reach the trampoline and so
 * the jobs: never its credentials (REBOUND_AMQP_URL and the like). */
static bool passed_on(const char *var)
{
    static const char *const names[] = {
        "PATH=", "LANG=",         "LANGUAGE=",      "TZ=",
        "HOME=", "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS="};
    static const char *const prefixes[] = {"LC_", "OPENBLAS_", "OMP_", "MKL_"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncmp(var, names[i], strlen(names[i])) == 0) return true;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(var, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

/* A NULL-terminated copy of the passed-on part of environ (the strings are
 * environ's own or static); free the array only. */
static char **trampoline_environment(bool huge_pages)
{
    extern char **environ;
    size_t n = 0;
    for (char **e = environ; *e; e++)
        n++;
    char **env = calloc(n + 3, sizeof *env);
    if (!env) return NULL;
    size_t k = 0;
    for (char **e = environ; *e; e++)
        if (passed_on(*e)) env[k++] = *e;
    /* The C heap on transparent huge pages, as the interpreter's objects
     * (see trampoline/arenas.c): cheaper forks and exits. Read by glibc at
     * the start; the trampoline drops it before the interpreter starts. */
    if (huge_pages) env[k++] = "GLIBC_TUNABLES=glibc.malloc.hugetlb=1";
    /* Every symbol of the libraries loaded at the start bound then, once,
     * in the zygote: lazily bound, the first call of each function in each
     * child looked it up again through every library numpy brings (perf:
     * do_lookup_x, 6% of a trivial job's child). Also dropped before the
     * interpreter starts. */
    env[k] = "LD_BIND_NOW=1";
    return env;
}

int pool_start_mother(rb_pool *pool)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return -1;
    char mem[16], maxres[32], uidbase[24], tmpmb[16], tmpinodes[16], offset[16];
    snprintf(offset, sizeof offset, "%d", pool->cfg.slot_offset);
    snprintf(tmpmb, sizeof tmpmb, "%d", pool->cfg.tmp_mb > 0 ? pool->cfg.tmp_mb : 256);
    snprintf(tmpinodes, sizeof tmpinodes, "%d",
             pool->cfg.tmp_inodes > 0 ? pool->cfg.tmp_inodes : 65536);
    snprintf(uidbase, sizeof uidbase, "%ld", pool->cfg.uid_base);
    snprintf(mem, sizeof mem, "%d", pool->cfg.mem_limit_mb);
    snprintf(maxres, sizeof maxres, "%zu", pool->cfg.max_result_bytes);
    char **env = trampoline_environment(!pool->cfg.no_huge_pages);
    /* Built before the fork: the child only execs. */
    bool contained = pool->cfg.mode == RB_MODE_CONTAINER;
    const char *tail[32];
    char **boxed = NULL;
    int a = 0;
    if (!contained) tail[a++] = pool->trampoline_path;
    tail[a++] = "--control-fd";
    tail[a++] = "3";
    tail[a++] = "--code-root";
    tail[a++] = pool->code_root;
    tail[a++] = "--mode";
    tail[a++] = rb_mode_name(pool->cfg.mode);
    tail[a++] = "--preload";
    tail[a++] = pool->preload;
    tail[a++] = "--mem-limit-mb";
    tail[a++] = mem;
    tail[a++] = "--run-as";
    tail[a++] = pool->run_as;
    tail[a++] = "--max-result-bytes";
    tail[a++] = maxres;
    tail[a++] = "--tmp-mb";
    tail[a++] = tmpmb;
    tail[a++] = "--tmp-inodes";
    tail[a++] = tmpinodes;
    tail[a++] = "--slot-offset";
    tail[a++] = offset;
    if (pool->cfg.allow_network) tail[a++] = "--allow-network";
    if (pool->cfg.shared_cpus) tail[a++] = "--shared-cpus";
    if (pool->cfg.no_huge_pages) tail[a++] = "--no-huge-pages";
    if (pool->cfg.uid_base > 0) {
        tail[a++] = "--uid-base";
        tail[a++] = uidbase;
    }
    if (!pool->cfg.sandbox_best_effort) tail[a++] = "--strict";
    tail[a] = NULL;
    int argc = 0;
    if (contained && !(boxed = container_argv(pool, tail, &argc))) {
        close(sv[0]);
        close(sv[1]);
        free(env);
        errno = ENOMEM;
        return -1;
    }
    /* execvp: the container runtime is found on PATH. */
    const char *const *argv = contained ? (const char *const *)boxed : tail;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The control socket is the one descriptor that crosses the exec:
         * as fd 3, after everything else of the consumer's (its broker
         * connection, its Redis socket) is closed. */
        if (dup2(sv[1], 3) != 3 || fcntl(3, F_SETFD, 0) != 0) _exit(127);
        close_range(4, ~0U, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* The directories a runtime makes for its binds must be searchable
         * by the jobs, whatever umask the worker was started with. */
        if (contained) umask(022);
        if (contained)
            execvpe(argv[0], (char *const *)argv, env);
        else
            execve(argv[0], (char *const *)argv, env);
        fprintf(stderr, "rebound-pool: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    free(env);
    container_argv_free(boxed);
    if (pid < 0) {
        close(sv[0]);
        return -1;
    }
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    pool->mother_pid = pid;
    pool->mother_fd = sv[0];
    pool->mother_up = false;
    pool->mother_due_ms = rb_mono_ms() + pool->cfg.start_timeout_ms;
    return 0;
}

/* The mother is gone or hopeless: so are its zygotes. Start again later. */
static void drop_mother(rb_pool *pool, const char *why)
{
    int status = 0;
    char how[128] = "";
    if (pool->mother_pid > 0) {
        kill(pool->mother_pid, SIGKILL);
        /* Her own end, not the SIGKILL just sent. */
        if (waitpid(pool->mother_pid, &status, 0) == pool->mother_pid &&
            !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
            char text[96];
            snprintf(how, sizeof how, " (%s)",
                     rb_wait_text(status, RB_SIG_NUMBER, text, sizeof text));
        }
    }
    if (pool->mother_fd >= 0) close(pool->mother_fd);
    pool->mother_fd = -1;
    pool->mother_pid = 0;
    pool->mother_up = false;
    pool->mother_failures++;
    int64_t delay = rb_backoff_next(&pool->mother_respawn);
    pool->mother_respawn_at_ms = rb_mono_ms() + delay;
    pool_log(pool, "trampoline: %s%s; restarting in %lld ms", why, how, (long long)delay);
    for (int i = 0; i < pool->cfg.slots; i++) {
        slot *s = &pool->slots[i];
        if (s->zctl >= 0) slot_drop_zygote(s, "the trampoline restarted");
        s->respawn_at_ms = 0;
        slot_clear_failures(s);
    }
}

static void take_mother_msg(rb_pool *pool, const char *payload, size_t len)
{
    msgpack_unpacked unp;
    ctl_type type;
    if (ctl_parse(payload, len, &unp, &type) != 0) {
        msgpack_unpacked_destroy(&unp);
        return;
    }
    long long idx = ctl_get_int(&unp.data, "slot", -1);
    slot *s = idx >= 0 && idx < pool->cfg.slots ? &pool->slots[idx] : NULL;
    if (type == CTL_HELLO) {
        char failed[1024];
        ctl_get_str(&unp.data, "preload_failed", failed, sizeof failed);
        free(pool->preload_failed);
        pool->preload_failed = strdup(failed);
        ctl_get_str(&unp.data, "python", pool->python, sizeof pool->python);
        pool->mother_up = true;
        pool->mother_failures = 0;
        rb_backoff_reset(&pool->mother_respawn);
    } else if (type == CTL_SPAWNED && s) {
        s->zygote_pid = (pid_t)ctl_get_int(&unp.data, "pid", 0);
    } else if (type == CTL_SPAWN_FAILED && s) {
        char err[256];
        ctl_get_str(&unp.data, "err", err, sizeof err);
        slot_drop_zygote(s, err);
    }
    msgpack_unpacked_destroy(&unp);
}

void pool_process_mother(rb_pool *pool, const struct pollfd *fds, int n, int64_t now)
{
    if (pool->mother_fd < 0) {
        if (now >= pool->mother_respawn_at_ms && pool_start_mother(pool) != 0)
            drop_mother(pool, strerror(errno));
        return;
    }
    bool ready = false;
    for (int i = 0; i < n; i++)
        if (fds[i].fd == pool->mother_fd && fds[i].revents) ready = true;
    while (ready) {
        ssize_t len = ctl_recv(pool->mother_fd, pool->msg, sizeof pool->msg, NULL, NULL);
        if (len < 0 && errno == EAGAIN) break;
        if (len <= 0) {
            drop_mother(pool, "the trampoline exited");
            return;
        }
        take_mother_msg(pool, ctl_payload(pool->msg), (size_t)len);
    }
    if (!pool->mother_up && now >= pool->mother_due_ms)
        drop_mother(pool, "the trampoline did not start in time");
}

/* Wait (bounded) for the mother to exit, then make sure of it. */
void pool_reap_mother(rb_pool *pool, int wait_ms)
{
    if (pool->mother_pid <= 0) return;
    for (int waited = 0; waited < wait_ms; waited += 5) {
        if (waitpid(pool->mother_pid, NULL, WNOHANG) == pool->mother_pid) return;
        poll(NULL, 0, 5);
    }
    kill(pool->mother_pid, SIGKILL);
    waitpid(pool->mother_pid, NULL, 0);
}
