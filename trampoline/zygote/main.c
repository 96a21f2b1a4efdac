/*
 * rebound-trampoline: the mother of a pool's zygotes. Started by the pool
 * (never by hand) with the pool's end of a control socket; see trampoline.h.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <Python.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "arenas.h"
#include "ctl.h"
#include "pyconv.h"
#include "runner.h"
#include "trampoline.h"

static int usage(const char *what)
{
    fprintf(stderr, "rebound-trampoline: %s (started by rebound-worker, not by hand)\n", what);
    return 2;
}

static int parse_args(int argc, char **argv, tr_config *cfg)
{
    static const struct option opts[] = {{"control-fd", required_argument, 0, 'c'},
                                         {"code-root", required_argument, 0, 'r'},
                                         {"mode", required_argument, 0, 'm'},
                                         {"preload", required_argument, 0, 'p'},
                                         {"mem-limit-mb", required_argument, 0, 'M'},
                                         {"run-as", required_argument, 0, 'u'},
                                         {"uid-base", required_argument, 0, 'U'},
                                         {"allow-network", no_argument, 0, 'n'},
                                         {"shared-cpus", no_argument, 0, 'C'},
                                         {"strict", no_argument, 0, 's'},
                                         {"max-result-bytes", required_argument, 0, 'R'},
                                         {"no-huge-pages", no_argument, 0, 'H'},
                                         {"tmp-mb", required_argument, 0, 't'},
                                         {"tmp-inodes", required_argument, 0, 'i'},
                                         {"slot-offset", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    memset(cfg, 0, sizeof *cfg);
    cfg->control_fd = -1;
    cfg->native = true;
    cfg->preload = "";
    cfg->max_result_bytes = RB_DEFAULT_MAX_RESULT_BYTES;
    cfg->huge_pages = true;
    cfg->sandbox.mem_limit_mb = 1024;
    cfg->sandbox.run_as = "nobody";
    cfg->sandbox.tmp_mb = 256;
    cfg->sandbox.tmp_inodes = 65536;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'c':
            cfg->control_fd = (int)strtol(optarg, &end, 10);
            break;
        case 'r':
            cfg->code_root = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "native") && strcmp(optarg, "internal") &&
                strcmp(optarg, "container"))
                return -1;
            /* In a container, the children are sandboxed as in native mode. */
            cfg->native = strcmp(optarg, "internal") != 0;
            cfg->sandbox.container = strcmp(optarg, "container") == 0;
            break;
        case 'p':
            cfg->preload = optarg;
            break;
        case 'M':
            cfg->sandbox.mem_limit_mb = (int)strtol(optarg, &end, 10);
            break;
        case 'U':
            cfg->sandbox.uid_base = strtol(optarg, &end, 10);
            break;
        case 'u':
            cfg->sandbox.run_as = optarg;
            break;
        case 'n':
            cfg->sandbox.allow_network = true;
            break;
        case 'C':
            cfg->sandbox.shared_cpus = true;
            break;
        case 's':
            cfg->sandbox.strict = true;
            break;
        case 'H':
            cfg->huge_pages = false;
            break;
        case 'R':
            cfg->max_result_bytes = strtoull(optarg, &end, 10);
            break;
        case 't':
            cfg->sandbox.tmp_mb = strtol(optarg, &end, 10);
            if (cfg->sandbox.tmp_mb <= 0) return -1;
            break;
        case 'o':
            cfg->sandbox.slot_offset = strtol(optarg, &end, 10);
            if (cfg->sandbox.slot_offset < 0) return -1;
            break;
        case 'i':
            cfg->sandbox.tmp_inodes = strtol(optarg, &end, 10);
            if (cfg->sandbox.tmp_inodes <= 0) return -1;
            break;
        default:
            return -1;
        }
        if (end && *end) return -1;
    }
    return cfg->control_fd >= 0 && cfg->code_root ? 0 : -1;
}

static int init_python(void)
{
    /* One BLAS thread: children are forked, and threads do not survive a
     * fork; a job that wants parallelism has a slot per CPU already. */
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
    setenv("OMP_NUM_THREADS", "1", 0);
    setenv("MKL_NUM_THREADS", "1", 0);

#ifdef REBOUND_PYMALLOC_DEBUG
    /* The debug build: what PYTHONMALLOC=debug gives (use_environment is
     * off below, so the variable itself would not be read). */
    PyPreConfig pre;
    PyPreConfig_InitPythonConfig(&pre);
    pre.allocator = PYMEM_ALLOCATOR_PYMALLOC_DEBUG;
    PyStatus pre_status = Py_PreInitialize(&pre);
    if (PyStatus_Exception(pre_status)) {
        tr_log("Python failed to start: %s", pre_status.err_msg ? pre_status.err_msg : "unknown");
        return -1;
    }
#endif
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.use_environment = 0; /* PYTHONPATH and friends of whoever started us */
    config.user_site_directory = 0;
    config.install_signal_handlers = 0;
    config.write_bytecode = 0;
    config.parse_argv = 0;
    /* The interpreter the build chose (REBOUND_PYTHON): Python finds its
     * prefix, and so its standard library, from it, and it is what
     * sys.executable names (subprocess.run([sys.executable, ...])). */
    PyStatus status = PyConfig_SetBytesString(&config, &config.program_name, REBOUND_PYTHON_EXE);
    if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        tr_log("Python failed to start: %s", status.err_msg ? status.err_msg : "unknown error");
        return -1;
    }
    return 0;
}

/* Import each module of the comma list; record failures as "name: reason". */
static void preload(const char *list, char *failed, size_t cap)
{
    failed[0] = '\0';
    char *copy = strdup(list);
    for (char *save = NULL, *name = strtok_r(copy, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        while (*name == ' ')
            name++;
        if (!*name) continue;
        PyObject *m = PyImport_ImportModule(name);
        if (m) {
            Py_DECREF(m);
            continue;
        }
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyObject *s = v ? PyObject_Str(v) : NULL;
        const char *why = s ? PyUnicode_AsUTF8(s) : NULL;
        size_t n = strlen(failed);
        snprintf(failed + n, cap - n, "%s%s: %s", n ? "; " : "", name, why ? why : "import failed");
        tr_log("preload of %s failed: %s", name, why ? why : "import failed");
        Py_XDECREF(s);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
        PyErr_Clear();
    }
    free(copy);

    /* Objects that exist now are never collected again, so the collector
     * does not touch (and un-share) their pages in every forked child.
     * gc.freeze() moves them to the permanent generation on 3.11 to 3.13
     * alike (3.13's collector is still generational; the incremental one
     * was held back). 3.12's immortal objects need no refcount writes, but
     * a collection would still write every tracked object's header: the
     * freeze matters on every version. Without it, the children work, and
     * each collection in a child copies pages. */
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *r = gc ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    if (!r) {
        PyErr_Clear();
        tr_log("gc.freeze() failed on Python %s: the collector will touch (and copy) the "
               "preloaded objects' pages in each child",
               PY_VERSION);
    }
    Py_XDECREF(r);
    Py_XDECREF(gc);
}

static int send_hello(const tr_state *st)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    ctl_msg_init(&sb, &pk, CTL_HELLO, 3);
    rb_pack_key(&pk, "pid");
    msgpack_pack_int64(&pk, getpid());
    /* The running library's version ("3.13.0"), which the worker reports:
     * it does not link Python itself. */
    const char *v = Py_GetVersion();
    rb_pack_key(&pk, "python");
    msgpack_pack_str(&pk, strcspn(v, " "));
    msgpack_pack_str_body(&pk, v, strcspn(v, " "));
    rb_pack_key(&pk, "preload_failed");
    rb_pack_cstr(&pk, st->preload_failed);
    int rc = ctl_send_sbuf(st->cfg.control_fd, &sb, NULL, 0);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int main(int argc, char **argv)
{
    static tr_state st;
    if (parse_args(argc, argv, &st.cfg) != 0) return usage("bad arguments");
    tr_role = "mother";
    prctl(PR_SET_NAME, "rebound-mother"); /* what ps and top show */

    /* Die with the pool, whatever killed it (the pool checked, before the
     * exec, that it was still there). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* As python3 does: a write past the file-size limit or to a closed pipe
     * is an OSError for the job (EFBIG, EPIPE), not a death by signal.
     * Children inherit this; subprocess restores both in what it runs. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    /* glibc reserves 64 MB of address space per malloc arena, one arena per
     * thread: under a job's address-space limit, a few threads would use it
     * all up. Two arenas serve threads as well. */
    mallopt(M_ARENA_MAX, 2);

    char root[PATH_MAX];
    if (!realpath(st.cfg.code_root, root)) {
        tr_log("code root %s: %s", st.cfg.code_root, strerror(errno));
        return 1;
    }
    st.cfg.code_root = root;

    unsetenv("GLIBC_TUNABLES"); /* read already; not for the jobs */
    unsetenv("LD_BIND_NOW");    /* the same */
    if (st.cfg.huge_pages) arenas_install();
    if (init_python() != 0) return 1;
    caches_prepare(&st.caches);
    preload(st.cfg.preload, st.preload_failed, sizeof st.preload_failed);
    rb_err err = {{0}};
    if (runner_init(&err) != 0) {
        tr_log("%s", err.msg);
        return 1;
    }
    /*
     * Python's fork hooks re-create locks that other threads may have held
     * at a fork, and reseed `random`. The mother and the zygotes have no
     * other thread and take no Python lock around their forks, and rng.c
     * reseeds: running the hooks would only make every zygote and child
     * copy a few hundred pages of Python objects. If a preloaded module
     * started a thread (or registered hooks of its own, which then do not
     * run), the hooks run on every fork, as in any Python program.
     *
     * What else PyOS_AfterFork_Child does differs by version, and none of
     * it is needed by a process whose only thread is the one that forked
     * (the same pthread id on both sides, so the runtime's main thread and
     * the thread state stay right): 3.11 to 3.13 re-initialise there the
     * runtime's and the interpreter's locks (held by nobody here), delete
     * other interpreters and other threads' states (there are none), and
     * 3.13 marks other threads' handles as not joinable (none again).
     * test_pool_jobs' threads case checks threads, locks and logging in a
     * child on each version tests/run builds against.
     */
    st.fork_hooks = !tr_single_threaded();
    if (st.fork_hooks)
        tr_log("a preloaded module started a thread: forking through Python's hooks");
    rng_prepare(&st.rng);
    pyconv_init(); /* children inherit what it looked up */
    st.cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (st.cfg.huge_pages && arenas_seal() == 0)
        tr_log("no object arena came from the huge-page region (Python %s's arenas have "
               "another size, or it keeps objects elsewhere): arenas are mapped one by one",
               PY_VERSION);
    tmpdir_sweep_orphans();
    if (tmpdir_make_base(&err) != 0 || tmpdir_base_file("warm.py", runner_warm_source, st.warm_file,
                                                        sizeof st.warm_file, &err) != 0) {
        tr_log("%s", err.msg);
        _exit(1);
    }
    /* The warm-up's module comes compiled, as a job's repeated file does:
     * what the warm-up readies is the path of such a job. */
    call_cache_warm_file(st.warm_file);
    if (st.cfg.native) {
        char **dirs = NULL;
        st.cfg.sandbox.nkeep = runner_import_dirs(&dirs);
        st.cfg.sandbox.keep = (const char *const *)dirs;
        st.cfg.sandbox.code_root = st.cfg.code_root;
        sandbox_prepare(&st.cfg.sandbox, &st.plan);
    }
    /* Anything the preload printed must not reach every child's output. */
    runner_flush();
    st.mother_pid = getpid();
    if (send_hello(&st) != 0) return 0;
    /* Leave without finalizing the interpreter: nothing of it needs saving,
     * and its teardown would only cost time (and look like leaks to a
     * sanitizer). */
    int rc = mother_run(&st);
    tmpdir_remove_base();
    if (st.cfg.native) sandbox_cgroup_remove(&st.plan);
#ifdef __SANITIZE_ADDRESS__
    /* _exit skips LeakSanitizer's check at exit: run it here, in the
     * mother, whose heap lives as long as the pool. (Zygotes and children
     * are forks of it; what they allocate dies with them.) */
    __lsan_do_recoverable_leak_check();
#endif
    _exit(rc);
}
