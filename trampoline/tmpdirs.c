/*
 * tmpdirs.c - the children's private temporary directories.
 *
 * Each child works in /tmp/rebound-<zygote pid>-<n>. Its zygote removes it
 * once the child is gone; a zygote that is killed cannot, so the mother
 * removes a dead zygote's directories when it reaps it, and sweeps those of
 * zygotes that died with an earlier mother when it starts.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trampoline.h"

#define TMP_BASE "/tmp"
#define TMP_PREFIX "rebound-"

void tmpdir_path(char *out, size_t cap, pid_t zygote, unsigned long seq)
{
    snprintf(out, cap, TMP_BASE "/" TMP_PREFIX "%d-%lu", (int)zygote, seq);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void tmpdir_remove(const char *path)
{
    /* FTW_PHYS: never follow a link a job left; FTW_MOUNT: never leave the
     * file system. */
    if (path[0]) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Remove the directories of zygote `only` (> 0), or, with only == 0, of
 * every zygote that no longer exists. */
static void sweep(pid_t only)
{
    DIR *d = opendir(TMP_BASE);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + strlen(TMP_PREFIX), &end, 10);
        if (pid <= 0 || *end != '-') continue;
        if (only ? pid != only : (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;
        char path[512];
        snprintf(path, sizeof path, TMP_BASE "/%s", e->d_name);
        tmpdir_remove(path);
    }
    closedir(d);
}

void tmpdir_remove_zygote(pid_t zygote)
{
    sweep(zygote);
}

void tmpdir_sweep_orphans(void)
{
    sweep(0);
}
