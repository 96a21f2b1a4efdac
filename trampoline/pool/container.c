/*
 * container.c - the command line that starts a pool's mother in a container
 * (mode "container").
 *
 * By default through bubblewrap: new mount, IPC, UTS and network
 * namespaces; of the host's file system only /usr (and the /lib, /bin
 * links into it), the few files of /etc that the interpreter and its
 * libraries read, the code root (read-only), matplotlib's shared cache,
 * and the two programs of the trampoline, bound at /.rebound (the mother
 * hides that too once it has them open). /tmp is a tmpfs; each child mounts
 * its own over it anyway (the native sandbox still applies inside).
 *
 * Not a PID namespace of bubblewrap's: the pool signals the mother, its
 * zygotes and their children by the pids they report, which must mean the
 * same processes on both sides. Every child has its own PID namespace all
 * the same (sandbox_pid.c), so no job sees a process of the host.
 *
 * --container-cmd replaces the whole bubblewrap prefix with another
 * runtime's (split on spaces; the trampoline's path inside and its
 * arguments are appended). Such a runtime must keep the host's PID
 * namespace (podman run --pid=host) and pass fd 3 through (--preserve-fds=1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool_internal.h"

/* Inside the container: where the trampoline's programs are bound. */
#define INSIDE_DIR "/.rebound"

static const char *const etc_files[] = {
    "/etc/alternatives",  "/etc/ld.so.cache",  "/etc/ld.so.conf", "/etc/ld.so.conf.d",
    "/etc/localtime",     "/etc/matplotlibrc", "/etc/python3",    "/etc/python3.11",
    "/etc/python3.12",    "/etc/python3.13",   "/etc/passwd",     "/etc/group",
    "/etc/nsswitch.conf", "/etc/mime.types",   "/etc/fonts",
};

typedef struct argv_builder {
    char **argv;
    int n, cap;
    bool failed;
} argv_builder;

static void push(argv_builder *b, const char *s)
{
    if (b->failed) return;
    if (b->n + 2 > b->cap) {
        int cap = b->cap ? b->cap * 2 : 64;
        char **a = realloc(b->argv, (size_t)cap * sizeof *a);
        if (!a) {
            b->failed = true;
            return;
        }
        b->argv = a;
        b->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) {
        b->failed = true;
        return;
    }
    b->argv[b->n++] = copy;
    b->argv[b->n] = NULL;
}

static void push3(argv_builder *b, const char *a, const char *x, const char *y)
{
    push(b, a);
    push(b, x);
    push(b, y);
}

/* /lib and friends: the same link as on the host (merged /usr), or a
 * read-only bind where the host has a directory. */
static void usr_link(argv_builder *b, const char *path)
{
    char target[256];
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n > 0) {
        target[n] = '\0';
        push3(b, "--symlink", target, path);
    } else {
        push3(b, "--ro-bind-try", path, path);
    }
}

static void bubblewrap(argv_builder *b, const rb_pool *pool)
{
    push(b, "bwrap");
    push(b, "--die-with-parent");
    push(b, "--new-session");
    push(b, "--unshare-ipc");
    push(b, "--unshare-uts");
    push(b, "--unshare-net");
    /* Directories bubblewrap makes for the binds below follow the umask of
     * whoever started the worker: these must be searchable by the jobs. */
    static const char *const dirs[] = {"/etc", "/var", "/var/cache", INSIDE_DIR};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        push3(b, "--perms", "0755", "--dir");
        push(b, dirs[i]);
    }
    push3(b, "--ro-bind", "/usr", "/usr");
    usr_link(b, "/lib");
    usr_link(b, "/lib64");
    usr_link(b, "/bin");
    usr_link(b, "/sbin");
    /* An embedded Python outside /usr (pyenv's, one under /opt, a venv):
     * its standard library and site-packages, at the same paths. */
    const char *const prefixes[] = {REBOUND_PYTHON_BASE_PREFIX, REBOUND_PYTHON_PREFIX};
    for (size_t i = 0; i < 2; i++)
        if (strcmp(prefixes[i], "/usr") != 0 && strncmp(prefixes[i], "/usr/", 5) != 0 &&
            (i == 0 || strcmp(prefixes[0], prefixes[1]) != 0))
            push3(b, "--ro-bind", prefixes[i], prefixes[i]);
    for (size_t i = 0; i < sizeof etc_files / sizeof etc_files[0]; i++)
        push3(b, "--ro-bind-try", etc_files[i], etc_files[i]);
    push3(b, "--proc", "/proc", "--dev");
    push(b, "/dev");
    push3(b, "--tmpfs", "/tmp", "--tmpfs");
    push(b, "/var/tmp");
    push3(b, "--bind-try", "/var/cache/rebound", "/var/cache/rebound");
    /* The mother makes each job's control group (sandbox_cgroup.c); only
     * root may write there. */
    push3(b, "--bind-try", "/sys/fs/cgroup", "/sys/fs/cgroup");
    push3(b, "--ro-bind", pool->code_root, pool->code_root);
    for (size_t i = 0; i < pool->ncontainer_rw; i++)
        push3(b, "--bind", pool->container_rw[i], pool->container_rw[i]);
    push3(b, "--ro-bind", pool->trampoline_path, INSIDE_DIR "/rebound-trampoline");
    char init[4096];
    snprintf(init, sizeof init, "%s", pool->trampoline_path);
    char *slash = strrchr(init, '/');
    if (slash) {
        snprintf(slash + 1, sizeof init - (size_t)(slash + 1 - init), "rebound-init");
        push3(b, "--ro-bind", init, INSIDE_DIR "/rebound-init");
    }
    push(b, "--");
    push(b, INSIDE_DIR "/rebound-trampoline");
}

char **container_argv(const rb_pool *pool, const char *const *tail, int *argc)
{
    argv_builder b = {0};
    if (pool->cfg.container_cmd && pool->cfg.container_cmd[0]) {
        char *words = strdup(pool->cfg.container_cmd);
        if (!words) return NULL;
        for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
            push(&b, w);
        free(words);
        push(&b, pool->trampoline_path); /* as the runtime's image has it */
    } else {
        bubblewrap(&b, pool);
    }
    for (int i = 0; tail[i]; i++)
        push(&b, tail[i]);
    if (b.failed) {
        container_argv_free(b.argv);
        return NULL;
    }
    *argc = b.n;
    return b.argv;
}

void container_argv_free(char **argv)
{
    for (int i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}
