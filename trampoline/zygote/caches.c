/*
 * caches.c - library caches built once, not once per job.
 *
 * Some libraries build an expensive cache on first use and keep it under
 * the user's home: matplotlib scans the system's fonts into a font list
 * (0.6-0.9 s). A job's home is its private directory, new and empty every
 * time, so each plotting job would scan the fonts again and print a warning
 * about it. The mother builds the cache once, in a directory shared by
 * every pool of the host and writable by the worker's user only, and each
 * job gets its own MPLCONFIGDIR holding a link to that font list: it reads
 * the shared list, and anything it writes stays in its own directory. No
 * job can change what another job's matplotlib reads.
 *
 * The shared directory: /var/cache/rebound/matplotlib for root, else
 * $XDG_CACHE_HOME/rebound/matplotlib or ~/.cache/rebound/matplotlib. The
 * font list is rebuilt when matplotlib is newer than it. The build runs in
 * a child forked from the mother before the preload, so the mother imports
 * nothing for it.
 */
#include "caches.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Python.h>

#include "runner.h"
#include "trampoline.h"

#define MPL_SUBDIR ".matplotlib"
#define BUILD_SECONDS 120 /* a build stuck longer is killed */

/* Runs in the forked builder. Imports matplotlib's font manager (which
 * writes the font list into MPLCONFIGDIR) unless the list there is newer
 * than matplotlib itself. Exit 0: a current list is there or matplotlib is
 * absent; 1: the build failed. */
static const char builder_source[] =
    "import glob, importlib.util, os, sys\n"
    "spec = importlib.util.find_spec('matplotlib')\n"
    "if spec is not None and spec.origin:\n"
    "    stamp = os.stat(spec.origin).st_mtime\n"
    "    lists = glob.glob(os.path.join(os.environ['MPLCONFIGDIR'], 'fontlist-v*.json'))\n"
    "    if not any(os.stat(p).st_mtime >= stamp for p in lists):\n"
    "        import matplotlib\n"
    "        matplotlib.use('Agg')\n"
    "        import matplotlib.font_manager\n";

static int make_dirs(const char *path, mode_t mode)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

static bool shared_dir(char *out, size_t cap)
{
    if (geteuid() == 0) return snprintf(out, cap, "/var/cache/rebound/matplotlib") < (int)cap;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') return snprintf(out, cap, "%s/rebound/matplotlib", xdg) < (int)cap;
    if (home && home[0] == '/')
        return snprintf(out, cap, "%s/.cache/rebound/matplotlib", home) < (int)cap;
    return false;
}

/* Build (or check) the font list in a forked child; wait for it. */
static int build_fontlist(void)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        alarm(BUILD_SECONDS);
        umask(022); /* readable by the run-as user */
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1); /* matplotlib may talk; stderr stays for errors */
        _exit(PyRun_SimpleString(builder_source) == 0 ? 0 : 1);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The newest fontlist-v*.json in dir, into out. */
static bool find_fontlist(const char *dir, char *out, size_t cap)
{
    char pattern[300];
    snprintf(pattern, sizeof pattern, "%s/fontlist-v*.json", dir);
    glob_t g;
    bool found = false;
    time_t newest = 0;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            struct stat sb;
            if (stat(g.gl_pathv[i], &sb) == 0 && (!found || sb.st_mtime >= newest) &&
                snprintf(out, cap, "%s", g.gl_pathv[i]) < (int)cap) {
                newest = sb.st_mtime;
                found = true;
            }
        }
    }
    globfree(&g);
    return found;
}

void caches_prepare(caches *c)
{
    memset(c, 0, sizeof *c);
    if (!shared_dir(c->mpl_dir, sizeof c->mpl_dir) || make_dirs(c->mpl_dir, 0755) != 0) {
        tr_log("matplotlib's cache directory %s: %s (each plotting job builds its own)",
               c->mpl_dir[0] ? c->mpl_dir : "(no home)", strerror(errno));
        c->mpl_dir[0] = '\0';
        return;
    }
    if (runner_setenv("MPLCONFIGDIR", c->mpl_dir) != 0) PyErr_Clear();
    if (build_fontlist() != 0)
        tr_log("building matplotlib's font list in %s failed (each plotting job builds its own)",
               c->mpl_dir);
    if (!find_fontlist(c->mpl_dir, c->mpl_fontlist, sizeof c->mpl_fontlist))
        c->mpl_fontlist[0] = '\0'; /* no matplotlib, or its build failed */
}

bool caches_job_mplconfig(const caches *c, const char *tmpdir, char *out, size_t cap)
{
    return c->mpl_fontlist[0] && snprintf(out, cap, "%s/" MPL_SUBDIR, tmpdir) < (int)cap;
}

int caches_seed_job(const caches *c, const char *tmpdir, bool chown_to, uid_t uid, gid_t gid)
{
    char dir[PATH_MAX], link[PATH_MAX];
    if (!c->mpl_fontlist[0]) return 0;
    if (!caches_job_mplconfig(c, tmpdir, dir, sizeof dir) ||
        snprintf(link, sizeof link, "%s%s", dir, strrchr(c->mpl_fontlist, '/')) >=
            (int)sizeof link) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (mkdir(dir, 0700) != 0 || symlink(c->mpl_fontlist, link) != 0) return -1;
    if (chown_to && (chown(dir, uid, gid) != 0 || lchown(link, uid, gid) != 0)) return -1;
    return 0;
}
