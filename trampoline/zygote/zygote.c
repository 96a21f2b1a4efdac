/*
 * zygote.c - keeps one ready child per slot.
 *
 * For every child it makes three fresh pipes (job, result, capture), forks,
 * and hands the pool the far ends over its control socket, so the pool
 * talks to each child directly and nothing one child left in a pipe can be
 * mistaken for the next child's. When the child ends, the zygote kills
 * whatever the child left running in its process group, reports how it
 * ended, and forks the next one before cleaning up after the last.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Python.h>

#include "ctl.h"
#include "runner.h"
#include "trampoline.h"

/* Where a protocol fd lands in the child: high, and not 0-2. */
#define CHILD_FD_BASE 200

/* "exit" for a reaped child: its raw wait status and, from wait4, what it
 * cost (the pool uses it for a job whose child crashed). */
static void send_exit(int zctl, pid_t pid, int status, const struct rusage *ru)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    ctl_msg_init(&sb, &pk, CTL_EXIT, 4);
    rb_pack_key(&pk, "pid");
    msgpack_pack_int64(&pk, pid);
    rb_pack_key(&pk, "status");
    msgpack_pack_int64(&pk, status);
    rb_pack_key(&pk, "cpu_us");
    msgpack_pack_int64(&pk, tr_rusage_cpu_us(ru));
    rb_pack_key(&pk, "rss_kb");
    msgpack_pack_int64(&pk, ru->ru_maxrss);
    int rc = ctl_send_sbuf(zctl, &sb, NULL, 0);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0) _exit(0); /* the pool is gone */
}

static void kill_group(pid_t pid)
{
    if (pid > 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
}

/* Move fd to a free descriptor >= base (inheritable: the child needs it). */
static int move_high(int fd, int base)
{
    int high = fcntl(fd, F_DUPFD, base);
    close(fd);
    return high;
}

/* A child of this zygote, its private directory, and the init of its PID
 * namespace. */
typedef struct zchild {
    pid_t pid; /* 0: none */
    char tmpdir[128];
    pid_t init_pid; /* 0: none */
    int init_pidfd;
} zchild;

/* The init of a child's namespace, when the child has ended or never
 * started: the kernel kills everything left in the namespace with it. It
 * is reaped as any orphan is. */
static void end_init(zchild *c)
{
    if (c->init_pid > 0) {
        syscall(SYS_pidfd_send_signal, c->init_pidfd, SIGKILL, NULL, 0);
        close(c->init_pidfd);
    }
    c->init_pid = 0;
    c->init_pidfd = -1;
}

/* Fork, into a new PID namespace when the sandbox has them. */
static pid_t fork_child(tr_state *st, zchild *c)
{
    if (!st->cfg.native || !st->plan.pidns) return fork();
    rb_err err = {{0}};
    c->init_pid = sandbox_pid_start_init(&st->plan, &c->init_pidfd, &err);
    if (c->init_pid < 0 || sandbox_pid_enter(c->init_pidfd, &err) != 0) {
        tr_log("%s", err.msg);
        if (c->init_pid < 0) c->init_pid = 0;
        end_init(c);
        errno = EAGAIN;
        return -1;
    }
    pid_t pid = fork();
    if (pid != 0) sandbox_pid_leave();
    if (pid < 0) end_init(c);
    return pid;
}

static pid_t spawn_child(tr_state *st, int slot, int zctl, int sigfd, zchild *zc)
{
    const char *tmpdir = zc->tmpdir;
    int job[2], res[2], cap[2];
    if (pipe2(job, O_CLOEXEC) != 0) return -1;
    if (pipe2(res, O_CLOEXEC) != 0) {
        close(job[0]);
        close(job[1]);
        return -1;
    }
    if (pipe2(cap, O_CLOEXEC) != 0) {
        close(job[0]);
        close(job[1]);
        close(res[0]);
        close(res[1]);
        return -1;
    }

    if (st->fork_hooks) PyOS_BeforeFork();
    pid_t pid = fork_child(st, zc);
    if (pid == 0) {
        if (zc->init_pid > 0) close(zc->init_pidfd);
        prctl(PR_SET_NAME, "rebound-child"); /* what ps and top show */
        if (st->fork_hooks) PyOS_AfterFork_Child();
        if (!rng_reseed(&st->rng)) runner_reseed();
        /* Own process group first, so the pool and the zygote can kill
         * everything the job starts with one signal. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(zctl);
        close(sigfd);
        close(job[1]);
        close(res[0]);
        close(cap[0]);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int jfd = move_high(job[0], CHILD_FD_BASE + (slot * 7) % 50);
        int rfd = move_high(res[1], CHILD_FD_BASE + 60 + (slot * 11) % 50);
        /* Not inherited by anything the job executes. */
        fcntl(jfd, F_SETFD, FD_CLOEXEC);
        fcntl(rfd, F_SETFD, FD_CLOEXEC);
        child_run(st, jfd, rfd, cap[1], tmpdir);
    }
    if (st->fork_hooks) PyOS_AfterFork_Parent();
    close(job[0]);
    close(res[1]);
    close(cap[1]);
    if (pid < 0) {
        close(job[1]);
        close(res[0]);
        close(cap[0]);
        return -1;
    }
    /* Also set from this side: whichever runs first, the group exists
     * before anyone may need to signal it. */
    setpgid(pid, pid);
    int fds[3] = {job[1], res[0], cap[0]};
    if (ctl_send_int(zctl, CTL_CHILD, "pid", pid, fds, 3) != 0) _exit(0); /* the pool is gone */
    close(job[1]);
    close(res[0]);
    close(cap[0]);
    return pid;
}

/* Whether the pool can give a spare its priority back: raising a priority
 * takes CAP_SYS_NICE, which root in a container often lacks. */
static bool may_raise_priority(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &hdr, caps) != 0) return false;
    return caps[CAP_SYS_NICE / 32].effective & (1u << (CAP_SYS_NICE % 32));
}

/* Compile the files a job uses (relative paths under the code root, as
 * the consumer validated them), for the children that follow. */
static void compile_files(const tr_state *st, const msgpack_object *files)
{
    if (!files || files->type != MSGPACK_OBJECT_ARRAY) return;
    /* Only what the run-as user may read (sandbox_user.c says why). */
    if (st->cfg.native) sandbox_user_fs(&st->plan, true);
    for (uint32_t i = 0; i < files->via.array.size; i++) {
        const msgpack_object *f = &files->via.array.ptr[i];
        char path[PATH_MAX];
        if (f->type != MSGPACK_OBJECT_STR ||
            snprintf(path, sizeof path, "%s/%.*s", st->cfg.code_root, (int)f->via.str.size,
                     f->via.str.ptr) >= (int)sizeof path ||
            strlen(path) != strlen(st->cfg.code_root) + 1 + f->via.str.size)
            continue; /* too long, or a NUL inside */
        call_cache_file(path);
    }
    if (st->cfg.native) sandbox_user_fs(&st->plan, false);
}

/* Whether children's directories are made (and removed) here, on the
 * host: not when each child has a /tmp of its own, where sandbox_mount.c
 * makes its directory, and which goes with the child. */
static bool dirs_on_host(const tr_state *st)
{
    return !(st->cfg.native && st->plan.mountns);
}

static void remove_child_dir(const tr_state *st, const char *path)
{
    if (dirs_on_host(st)) tmpdir_remove(path);
}

static int try_child_dir(tr_state *st, const char *path, rb_err *err)
{
    if (st->cfg.native) return sandbox_make_tmpdir(&st->plan, path, err);
    if (mkdir(path, 0700) != 0) return rb_err_set(err, "mkdir %s: %s", path, strerror(errno));
    return 0;
}

/* A child's private directory; if the pool's base directory was removed,
 * it is made again first (else every zygote would fail here, be replaced,
 * and fail again, for as long as the pool runs). A removal that is still
 * going on (a cleaner of /tmp walking the tree) can take what was just
 * made: a few tries. */
static int make_child_dir(tr_state *st, const char *path, rb_err *err)
{
    for (int attempt = 0;; attempt++) {
        *err = (rb_err){{0}};
        if (try_child_dir(st, path, err) == 0) return 0;
        if (attempt == 3) return -1;
        rb_err again = {{0}};
        int restored = tmpdir_restore_base(&again);
        if (restored < 0) {
            rb_err first = *err;
            return rb_err_set(err, "%s; %s", first.msg, again.msg);
        }
        if (restored > 0) tr_log("the pool's directory was removed; made it again");
        tmpdir_remove(path); /* what the failed try left, if anything */
    }
}

/* Children that took a job and have not been reaped yet: the one running,
 * and one or two still ending. */
#define MAX_CLAIMED 4

static int free_claim(const zchild *claimed)
{
    for (int i = 0; i < MAX_CLAIMED; i++)
        if (claimed[i].pid == 0) return i;
    return -1;
}

static void end_child(const tr_state *st, zchild *c)
{
    if (c->pid > 0) kill_group(c->pid);
    end_init(c);
    remove_child_dir(st, c->tmpdir);
}

/* Read what the pool sent: "taken" moves the spare to the claimed children
 * and compiles the job's files. The pool gone: end everything and exit. */
static void take_messages(const tr_state *st, int zctl, zchild *spare, zchild *claimed)
{
    static char buf[CTL_MAX_MSG];
    ssize_t n;
    while ((n = ctl_recv(zctl, buf, sizeof buf, NULL, NULL)) > 0) {
        msgpack_unpacked unp;
        ctl_type type;
        if (ctl_parse(ctl_payload(buf), (size_t)n, &unp, &type) == 0 && type == CTL_TAKEN &&
            spare->pid > 0 && ctl_get_int(&unp.data, "pid", 0) == spare->pid) {
            claimed[free_claim(claimed)] = *spare;
            *spare = (zchild){.init_pidfd = -1};
            /* Before the next spare is forked: it inherits them. */
            compile_files(st, rb_map_get(&unp.data, "files"));
        }
        msgpack_unpacked_destroy(&unp);
    }
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        /* The pool is gone (or replacing us): take the children along. */
        end_child(st, spare);
        for (int i = 0; i < MAX_CLAIMED; i++)
            end_child(st, &claimed[i]);
        _exit(0);
    }
}

void zygote_run(tr_state *st, int slot, int zctl)
{
    tr_role = "zygote";
    prctl(PR_SET_NAME, "rebound-zygote"); /* what ps and top show */
    st->zygote_pid = getpid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != st->mother_pid) _exit(0);
    /* Orphans of a job re-parent to us, so we reap them rather than init. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    int sigfd = tr_sigchld_fd();
    if (sigfd < 0) {
        tr_log("signalfd: %s", strerror(errno));
        _exit(1);
    }
    rb_err gerr = {{0}};
    if (st->cfg.native) sandbox_user_for_slot(&st->plan, slot);
    if (st->cfg.native && sandbox_user_drop_groups(&st->plan, &gerr) != 0) {
        tr_log("%s", gerr.msg);
        _exit(1);
    }
    if (st->cfg.native && st->plan.pidns && sandbox_pid_zygote_start(&gerr) != 0) {
        tr_log("%s", gerr.msg);
        _exit(1);
    }
    if (st->cfg.native) sandbox_cpu_for_slot(&st->plan, slot);
    if (st->cfg.native && st->plan.cgroups.ready &&
        sandbox_cgroup_zygote(&st->plan, slot, &gerr) != 0) {
        tr_log("%s", gerr.msg);
        _exit(1);
    }

    /* The spare child waits for a job; claimed ones have one (or are
     * ending). A new spare is forked as soon as the pool takes the last
     * one, so it gets ready while the job runs. */
    zchild spare = {.init_pidfd = -1}, claimed[MAX_CLAIMED];
    for (int i = 0; i < MAX_CLAIMED; i++)
        claimed[i] = (zchild){.init_pidfd = -1};
    unsigned long seq = 0;
    int failures = 0;
    /*
     * Everything a zygote does (forking, reaping, removing a job's
     * directory) and everything a spare does before it is taken runs on CPU
     * time nobody else wants: the job that runs meanwhile, the consumer and
     * the broker come first. The pool gives a spare the consumer's priority
     * when it hands it a job, which takes CAP_SYS_NICE: so only with it.
     */
    if (may_raise_priority()) setpriority(PRIO_PROCESS, 0, 19);

    for (;;) {
        if (spare.pid == 0 && free_claim(claimed) >= 0) {
            rb_err err = {{0}};
            tmpdir_path(spare.tmpdir, sizeof spare.tmpdir, getpid(), seq++);
            if (dirs_on_host(st) && make_child_dir(st, spare.tmpdir, &err) != 0) {
                tr_log("slot %d: %s", slot, err.msg);
                _exit(1);
            }
            if (dirs_on_host(st) &&
                caches_seed_job(&st->caches, spare.tmpdir, st->cfg.native && st->plan.switch_user,
                                st->plan.uid, st->plan.gid) != 0)
                tr_log("slot %d: matplotlib's cache link in %s: %s", slot, spare.tmpdir,
                       strerror(errno)); /* the job builds its own */
            spare.pid = spawn_child(st, slot, zctl, sigfd, &spare);
            if (spare.pid < 0) {
                tr_log("slot %d: fork: %s", slot, strerror(errno));
                remove_child_dir(st, spare.tmpdir);
                spare.pid = 0;
                /* The pool replaces a zygote whose child does not appear. */
                if (++failures > 50) _exit(1);
                poll(NULL, 0, 10 * failures);
                continue;
            }
            failures = 0;
        }

        struct pollfd pfd[2] = {{zctl, POLLIN, 0}, {sigfd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0 && errno != EINTR) _exit(1);

        if (pfd[0].revents) take_messages(st, zctl, &spare, claimed);
        if (pfd[1].revents) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) > 0) {
            }
            int status;
            pid_t pid;
            struct rusage ru;
            while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
                /* A spare that took a job and ended before we read the pool's
                 * "taken" (sent before the job was written, so it is queued
                 * by now) is a claimed child, not an idle one that died. */
                if (pid == spare.pid) take_messages(st, zctl, &spare, claimed);
                zchild *c = pid == spare.pid ? &spare : NULL;
                for (int i = 0; !c && i < MAX_CLAIMED; i++)
                    if (claimed[i].pid == pid) c = &claimed[i];
                if (!c) continue; /* an orphan of a job */
                /* Whatever the child left running goes with it. */
                kill_group(pid);
                end_init(c);
                send_exit(zctl, pid, status, &ru);
                remove_child_dir(st, c->tmpdir);
                c->pid = 0;
            }
        }
    }
}
