/*
 * sandbox_cgroup.c - bounds for a whole job: memory and processes.
 *
 * Limits per process (sandbox_rlimits.c) do not bound a job: four
 * processes of 1 GiB each are 4 GiB, tmpfs and shared memory are nobody's
 * address space, and a fork bomb's limit per user was every job's of that
 * user. A control group per job counts all of it: memory (what the job's
 * processes, its tmpfs and its shared memory make it use) and the number of
 * tasks.
 *
 * cgroup v2 where the host delegates the controllers (memory.max,
 * pids.max); otherwise v1's memory and pids hierarchies
 * (memory.limit_in_bytes, pids.max), which is what these machines have. The mother makes one
 * directory per pool under her own group, and each zygote a group for its slot, which it moves
 * itself into once, as isolate has a group per box: its children are born in it. A slot runs one
 * job at a time, so the group bounds the job, with the zygote, its spare and the inits (a few pages
 * each: their memory was charged to the mother when she touched it first) as small extras.
 *
 * Why not a group per child: moving a process between groups takes the
 * kernel's cgroup threadgroup lock for writing, which waits for an RCU
 * grace period. Measured in the pool benchmark, a move per child cost
 * 0.3-0.5 ms of CPU per job and a quarter of the throughput; a move per
 * zygote costs nothing per job.
 *
 * A child makes itself the first process the kernel's out-of-memory killer
 * chooses (oom_score_adj 1000: anyone may raise their own), so a job over
 * its group's limit is what is killed, never its zygote; on a host out of
 * memory, jobs go before anything else too.
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

#include "sandbox.h"

#define V1_ROOT "/sys/fs/cgroup"
#define POOL_PREFIX "rebound-"

/* Not "cpu": a job's group with its own CPU weight cost 0.3 ms of CPU per
 * job and an eighth of the throughput in the pool benchmark (group
 * scheduling), and put the zygote's nice-19 work on equal terms with the
 * other slot's job. */
static const char *const v1_controllers[] = {"memory", "pids"};
#define NCTL (sizeof v1_controllers / sizeof v1_controllers[0])

static int write_text(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return sandbox_write_kfile(path, text);
}

/* Our own group in hierarchy ctl ("" for v2's), from /proc/self/cgroup. */
static int own_group(const char *ctl, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return -1;
    char line[PATH_MAX];
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *a = strchr(line, ':');
        char *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = '\0';
        const char *list = a + 1;
        bool match = false;
        if (ctl[0] == '\0') {
            match = list[0] == '\0' && strncmp(line, "0", 1) == 0;
        } else {
            char copy[256];
            snprintf(copy, sizeof copy, "%s", list);
            for (char *save = NULL, *t = strtok_r(copy, ",", &save); t;
                 t = strtok_r(NULL, ",", &save))
                if (strcmp(t, ctl) == 0) match = true;
        }
        if (match) {
            snprintf(out, cap, "%s", strcmp(b + 1, "/") == 0 ? "" : b + 1);
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* v2 with the controllers we need enabled for our children. */
static bool v2_usable(char *base, size_t cap)
{
    char own[PATH_MAX], path[PATH_MAX], text[256] = "";
    if (own_group("", own, sizeof own) != 0) return false;
    snprintf(base, cap, V1_ROOT "%s", own);
    snprintf(path, sizeof path, "%s/cgroup.controllers", base);
    FILE *f = fopen(path, "re");
    if (!f) return false;
    if (!fgets(text, sizeof text, f)) text[0] = '\0';
    fclose(f);
    return strstr(text, "memory") && strstr(text, "pids");
}

int sandbox_cgroup_prepare(sandbox_plan *plan, rb_err *err)
{
    sandbox_cgroups *cg = &plan->cgroups;
    memset(cg, 0, sizeof *cg);
    char base[PATH_MAX];
    if (v2_usable(base, sizeof base)) {
        cg->v2 = true;
        cg->ndirs = 1;
        snprintf(cg->pool_dir[0], sizeof cg->pool_dir[0], "%s/" POOL_PREFIX "%d", base,
                 (int)getpid());
        /* v2: a process may not sit in a group whose children have
         * controllers enabled; the pool's directory holds none. */
    } else {
        for (size_t i = 0; i < NCTL; i++) {
            char own[PATH_MAX];
            char mnt[PATH_MAX];
            snprintf(mnt, sizeof mnt, V1_ROOT "/%s", v1_controllers[i]);
            struct stat sb;
            if (stat(mnt, &sb) != 0 || own_group(v1_controllers[i], own, sizeof own) != 0)
                return rb_err_set(err, "cgroup: no v1 %s hierarchy and no usable v2",
                                  v1_controllers[i]);
            snprintf(cg->pool_dir[i], sizeof cg->pool_dir[i], "%s%s/" POOL_PREFIX "%d", mnt, own,
                     (int)getpid());
        }
        cg->ndirs = NCTL;
    }
    for (int i = 0; i < cg->ndirs; i++)
        if (mkdir(cg->pool_dir[i], 0755) != 0 && errno != EEXIST)
            return rb_err_set(err, "cgroup: mkdir %s: %s", cg->pool_dir[i], strerror(errno));
    if (cg->v2 && write_text(cg->pool_dir[0], "cgroup.subtree_control", "+memory +pids") != 0)
        return rb_err_set(err, "cgroup: enable controllers in %s: %s", cg->pool_dir[0],
                          strerror(errno));
    cg->ready = true;
    return 0;
}

/* The directory of slot's group in hierarchy d. */
static void group_dir(const sandbox_cgroups *cg, int d, int slot, char *out, size_t cap)
{
    snprintf(out, cap, "%s/slot%d", cg->pool_dir[d], slot);
}

int sandbox_cgroup_zygote(const sandbox_plan *plan, int slot, rb_err *err)
{
    const sandbox_cgroups *cg = &plan->cgroups;
    char limit[32], pids[32];
    long long mb = (long long)plan->cfg.mem_limit_mb + SANDBOX_CGROUP_SLOT_EXTRA_MB;
    snprintf(limit, sizeof limit, "%lld", mb << 20);
    snprintf(pids, sizeof pids, "%d", SANDBOX_CGROUP_TASKS);
    for (int d = 0; d < cg->ndirs; d++) {
        char dir[PATH_MAX];
        group_dir(cg, d, slot, dir, sizeof dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return rb_err_set(err, "cgroup: mkdir %s: %s", dir, strerror(errno));
        const char *ctl = cg->v2 ? "" : v1_controllers[d];
        int rc = 0;
        const char *what = "";
        if (cg->v2) {
            if (plan->cfg.mem_limit_mb > 0) rc = write_text(dir, what = "memory.max", limit);
            if (rc == 0) rc = write_text(dir, what = "pids.max", pids);
            if (rc == 0) write_text(dir, "memory.swap.max", "0"); /* where swap exists */
        } else if (strcmp(ctl, "memory") == 0 && plan->cfg.mem_limit_mb > 0) {
            rc = write_text(dir, what = "memory.limit_in_bytes", limit);
        } else if (strcmp(ctl, "pids") == 0) {
            rc = write_text(dir, what = "pids.max", pids);
        }
        if (rc == 0) rc = write_text(dir, what = "cgroup.procs", "0");
        if (rc != 0) return rb_err_set(err, "cgroup: %s/%s: %s", dir, what, strerror(errno));
    }
    return 0;
}

int sandbox_cgroup_child(rb_err *err)
{
    if (sandbox_write_kfile("/proc/self/oom_score_adj", "1000") != 0)
        return rb_err_set(err, "cgroup: oom_score_adj: %s", strerror(errno));
    return 0;
}

/* rmdir a group, once nothing is left in it (a killed job's last tasks may
 * still be exiting: a few tries). */
static void remove_group(const char *dir)
{
    for (int i = 0; i < 50 && rmdir(dir) != 0 && errno == EBUSY; i++)
        usleep(2000);
}

/* Remove a pool's directory: the slots' groups left in it first. */
static void remove_pool_dir(const char *pool)
{
    DIR *dir = opendir(pool);
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, "slot", 4) != 0) continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", pool, e->d_name);
        remove_group(sub);
    }
    if (dir) closedir(dir);
    remove_group(pool);
}

void sandbox_cgroup_remove(const sandbox_plan *plan)
{
    const sandbox_cgroups *cg = &plan->cgroups;
    for (int d = 0; d < cg->ndirs && cg->ready; d++)
        remove_pool_dir(cg->pool_dir[d]);
}

/* Pools whose mother died without cleaning up: rebound-<pid> directories
 * of a pid that is gone, next to ours. */
void sandbox_cgroup_sweep(const sandbox_plan *plan)
{
    const sandbox_cgroups *cg = &plan->cgroups;
    for (int d = 0; d < cg->ndirs && cg->ready; d++) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", cg->pool_dir[d]);
        char *slash = strrchr(parent, '/');
        if (!slash) continue;
        *slash = '\0';
        DIR *dir = opendir(parent);
        struct dirent *e;
        while (dir && (e = readdir(dir)) != NULL) {
            if (strncmp(e->d_name, POOL_PREFIX, strlen(POOL_PREFIX)) != 0) continue;
            int pid = atoi(e->d_name + strlen(POOL_PREFIX));
            if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH) continue;
            char gone[PATH_MAX];
            snprintf(gone, sizeof gone, "%s/%s", parent, e->d_name);
            remove_pool_dir(gone);
        }
        if (dir) closedir(dir);
    }
}
