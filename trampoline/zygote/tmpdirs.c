/*
 * tmpdirs.c - the children's private temporary directories.
 *
 * The mother makes one base directory per pool, /tmp/rebound.<pid>.XXXXXX,
 * owned by her and searchable but not writable by others (0711): no job can
 * create or rename anything in it, so no job can take the name of a child
 * directory still to come. Each child works in <base>/<zygote pid>-<n>,
 * made by its zygote and owned by the user the child runs as.
 *
 * Trees are removed through directory descriptors, never following a link:
 * what a job left behind (a symlink where a directory was, swapped while
 * the removal runs) cannot point a privileged unlink elsewhere.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trampoline.h"

#define TMP_BASE "/tmp"
#define BASE_PREFIX "rebound."

static char base[128];

int tmpdir_make_base(rb_err *err)
{
    snprintf(base, sizeof base, TMP_BASE "/" BASE_PREFIX "%d.XXXXXX", (int)getpid());
    if (!mkdtemp(base)) return rb_err_set(err, "mkdtemp %s: %s", base, strerror(errno));
    if (chmod(base, 0711) != 0) return rb_err_set(err, "chmod %s: %s", base, strerror(errno));
    return 0;
}

int tmpdir_restore_base(rb_err *err)
{
    struct stat sb;
    if (lstat(base, &sb) == 0) {
        /* Still there, or made again by another zygote: ours only if it is
         * a directory of ours that nobody else may write. Anything else
         * under this name (someone else's, a link) is not used. */
        if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 022))
            return rb_err_set(err, "%s is not the pool's directory any more", base);
        return 0;
    }
    if (errno != ENOENT) return rb_err_set(err, "stat %s: %s", base, strerror(errno));
    if (mkdir(base, 0711) != 0 && errno != EEXIST)
        return rb_err_set(err, "mkdir %s: %s", base, strerror(errno));
    if (chmod(base, 0711) != 0) return rb_err_set(err, "chmod %s: %s", base, strerror(errno));
    int rc = tmpdir_restore_base(err); /* check what is there now */
    return rc == 0 ? 1 : rc;
}

int tmpdir_base_file(const char *name, const char *text, char *path, size_t cap, rb_err *err)
{
    snprintf(path, cap, "%s/%s", base, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return rb_err_set(err, "create %s: %s", path, strerror(errno));
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int saved = errno;
    close(fd);
    if (n != (ssize_t)len)
        return rb_err_set(err, "write %s: %s", path, n < 0 ? strerror(saved) : "short write");
    return 0;
}

void tmpdir_path(char *out, size_t cap, pid_t zygote, unsigned long seq)
{
    snprintf(out, cap, "%s/%d-%lu", base, (int)zygote, seq);
}

/* Remove name (a file, or a directory and everything below it) in dirfd. */
static void remove_at(int dirfd, const char *name, int depth)
{
    /* Most jobs leave their directory empty: one call. (A symlink or a
     * file fails with ENOTDIR, a full directory with ENOTEMPTY.) */
    if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0) return;
    if (unlinkat(dirfd, name, 0) == 0 || (errno != EISDIR && errno != EPERM)) return;
    if (depth > 64) return; /* deeper than anything a job should leave */
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        remove_at(fd, e->d_name, depth + 1);
    }
    closedir(d);
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Remove the whole tree at path (an absolute path). */
static void remove_path(const char *path)
{
    char parent[512];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (!slash || !slash[1]) return;
    *slash = '\0';
    int fd = open(parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    remove_at(fd, slash + 1, 0);
    close(fd);
}

void tmpdir_remove(const char *path)
{
    if (path[0]) remove_path(path);
}

void tmpdir_remove_zygote(pid_t zygote)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%d-", (int)zygote);
    int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) remove_at(fd, e->d_name, 0);
    closedir(d);
}

void tmpdir_remove_base(void)
{
    if (base[0]) remove_path(base);
}

void tmpdir_sweep_orphans(void)
{
    DIR *d = opendir(TMP_BASE);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, BASE_PREFIX, strlen(BASE_PREFIX)) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + strlen(BASE_PREFIX), &end, 10);
        if (pid <= 0 || *end != '.') continue;
        /* A mother that is alive (or not ours to signal) keeps hers. */
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sb.st_mode) ||
            sb.st_uid != geteuid())
            continue;
        remove_at(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}
