/*
 * sandbox_mount.c - what a job sees of the file system.
 *
 * Once, in the mother (a mount namespace for the pool, shared by its
 * zygotes and children): mounts stop propagating to and from the host;
 * paths jobs have no business with (home directories, /root, /var/lib with
 * the broker's and Redis's state, /var/log, /run and its sockets, ...) are
 * covered by an empty read-only tmpfs; the code root becomes read-only.
 * What must stay visible under a hidden path (the code root, the
 * interpreter's own directories) is bound back at the same place.
 *
 * Per child (a mount namespace of its own, copied from the mother's): a
 * fresh size- and inode-bounded tmpfs at /tmp, /var/tmp and /dev/shm, with
 * the job's directory inside /tmp. Nothing of another job is reachable
 * there, nothing the job leaves survives it (the tmpfs goes with the
 * namespace), and what it writes is bounded. /proc is mounted again for the
 * child's PID namespace: it lists the job's processes only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox.h"

/* Covered with an empty read-only tmpfs in the mother. */
static const char *const hidden[] = {
    "/root",
    "/home",
    "/var/lib",
    "/var/log",
    "/var/spool",
    "/var/mail",
    "/var/backups",
    "/run",
    "/srv",
    "/mnt",
    "/media",
    "/boot",
    "/opt",
    "/lost+found",
    /* In container mode: the trampoline's programs (container.c). */
    "/.rebound",
};

/* A fresh tmpfs per child. */
static const char *const scratch[] = {"/tmp", "/var/tmp", "/dev/shm"};

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* mkdir -p, as root, 0755. */
static int make_path(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
            *s = c;
            if (c == '\0') return 0;
        }
    }
}

/* Bind what fd refers to at target (made if needed); read-only unless rw. */
static int bind_back(int fd, const char *target, bool rw, rb_err *err)
{
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    if (make_path(target) != 0) return rb_err_set(err, "mkdir %s: %s", target, strerror(errno));
    if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) != 0)
        return rb_err_set(err, "bind %s: %s", target, strerror(errno));
    unsigned long ro = rw ? 0 : MS_RDONLY;
    if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | ro | MS_NOSUID | MS_NODEV, NULL) != 0)
        return rb_err_set(err, "remount %s read-only: %s", target, strerror(errno));
    return 0;
}

/* A directory kept visible: opened before anything covers it. */
typedef struct kept {
    char path[PATH_MAX];
    int fd;
} kept;

static int keep_open(kept *k, const char *path)
{
    snprintf(k->path, sizeof k->path, "%s", path);
    k->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return k->fd;
}

int sandbox_mount_prepare(sandbox_plan *plan, const char *code_root, const char *const *keep,
                          size_t nkeep, rb_err *err)
{
    kept *ks = calloc(nkeep + 1, sizeof *ks);
    if (!ks) return rb_err_set(err, "mountns: out of memory");
    size_t n = 0;
    int rc = -1;
    if (unshare(CLONE_NEWNS) != 0) {
        rb_err_set(err, "unshare(CLONE_NEWNS): %s", strerror(errno));
        goto out;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        rb_err_set(err, "mountns: make / private: %s", strerror(errno));
        goto out;
    }
    /* Opened in the new namespace (a bind takes its source from the
     * caller's own), before anything covers them. */
    if (keep_open(&ks[n], code_root) < 0) {
        rb_err_set(err, "mountns: code root %s: %s", code_root, strerror(errno));
        goto out;
    }
    n++;
    for (size_t i = 0; i < nkeep; i++)
        if (keep[i][0] == '/' && is_dir(keep[i]) && keep_open(&ks[n], keep[i]) >= 0) n++;

    for (size_t h = 0; h < sizeof hidden / sizeof hidden[0]; h++) {
        if (!is_dir(hidden[h])) continue;
        if (mount("tmpfs", hidden[h], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=64k,nr_inodes=1024,mode=0755") != 0) {
            rb_err_set(err, "mountns: cover %s: %s", hidden[h], strerror(errno));
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (under(ks[i].path, hidden[h]) && !under(ks[i].path, "/tmp") &&
                bind_back(ks[i].fd, ks[i].path, false, err) != 0)
                goto out;
        if (mount(NULL, hidden[h], NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  NULL) != 0) {
            rb_err_set(err, "mountns: %s read-only: %s", hidden[h], strerror(errno));
            goto out;
        }
    }
    /* The code root read-only where it is (it was bound back read-only if
     * it was hidden). */
    if (bind_back(ks[0].fd, code_root, false, err) != 0) goto out;

    /* What each child must bind back into its own /tmp. */
    for (size_t s = 0; s < sizeof scratch / sizeof scratch[0]; s++)
        if (under(code_root, scratch[s]))
            snprintf(plan->tmp_keep, sizeof plan->tmp_keep, "%s", code_root);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        close(ks[i].fd);
    free(ks);
    return rc;
}

int sandbox_mount_enter(const sandbox_plan *plan, rb_err *err)
{
    if (unshare(CLONE_NEWNS) != 0)
        return rb_err_set(err, "unshare(CLONE_NEWNS): %s", strerror(errno));
    /* The code root, when under a path covered next. */
    int keep_fd = -1;
    if (plan->tmp_keep[0] && (keep_fd = open(plan->tmp_keep, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return rb_err_set(err, "open %s: %s", plan->tmp_keep, strerror(errno));
    int rc = 0;
    char opts[128];
    snprintf(opts, sizeof opts, "size=%ldm,nr_inodes=%ld,mode=1777", plan->cfg.tmp_mb,
             plan->cfg.tmp_inodes);
    for (size_t s = 0; rc == 0 && s < sizeof scratch / sizeof scratch[0]; s++) {
        if (!is_dir(scratch[s])) continue;
        if (mount("tmpfs", scratch[s], "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
            rc = rb_err_set(err, "mount tmpfs on %s: %s", scratch[s], strerror(errno));
        else if (keep_fd >= 0 && under(plan->tmp_keep, scratch[s]))
            rc = bind_back(keep_fd, plan->tmp_keep, false, err);
    }
    if (keep_fd >= 0) close(keep_fd);
    if (rc == 0 && plan->pidns && getpid() == 2 &&
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        rc = rb_err_set(err, "mount proc: %s", strerror(errno));
    return rc;
}

int sandbox_mount_jobdir(const sandbox_plan *plan, const char *path, rb_err *err)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (make_path(parent) != 0) return rb_err_set(err, "mkdir %s: %s", parent, strerror(errno));
    }
    return sandbox_make_tmpdir(plan, path, err);
}
