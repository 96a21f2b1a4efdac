/* What the sandbox promises in native mode (README, "The sandbox (native
 * mode)"), one test per promise, each job trying to break it. As root, as
 * tests/run runs it: the change of user and the process limit apply only
 * then. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* --mem-limit-mb of the main pool: well under the default, so that an
 * allocation the default would allow shows the configured limit. */
#define MEM_LIMIT_MB 256

static char *root;
/* World-writable (sticky): what jobs leave for the test to check. */
static char *statedir; /* harness_shared_dir(): jobs leave marks here */
static rb_pool *pool;  /* native, run as nobody, one slot */
static uid_t nobody_uid;
static gid_t nobody_gid;

/* The job's module: each function tries what a layer of the sandbox should
 * stop, and returns what happened (errno values, limits, ids) for the test
 * to assert on. */
static const char *const sandbox_py =
    "import ctypes, os, resource, signal, socket, subprocess, tempfile, time\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.syscall.restype = ctypes.c_long\n"
    "NOPE = b'/nonexistent/rebound'\n"
    "# x86_64 numbers, and arguments the kernel refuses harmlessly (with an errno\n"
    "# other than EPERM, or success for a no-op) if the call reaches it, even\n"
    "# from root: run without the sandbox, they show that EPERM in the sandbox\n"
    "# comes from the filter.\n"
    "SYSCALLS = {\n"
    "    'ptrace': (101, 16, 0x3ffffff0, 0, 0),\n"
    "    'process_vm_readv': (310, os.getpid(), None, 0, None, 0, 0),\n"
    "    'process_vm_writev': (311, os.getpid(), None, 0, None, 0, 0),\n"
    "    'mount': (165, b'none', NOPE, b'tmpfs', 0, None),\n"
    "    'umount2': (166, NOPE, 0),\n"
    "    'pivot_root': (155, NOPE, NOPE),\n"
    "    'chroot': (161, NOPE),\n"
    "    'open_tree': (428, -100, NOPE, 0),\n"
    "    'move_mount': (429, -100, NOPE, -100, NOPE, 0),\n"
    "    'fsopen': (430, b'rebound_no_such_fs', 0),\n"
    "    'fsmount': (432, -1, 0, 0),\n"
    "    'unshare': (272, 0),\n"
    "    'setns': (308, -1, 0),\n"
    "    'bpf': (321, 9999, None, 0),\n"
    "    'keyctl': (250, 9999, 0, 0, 0, 0),\n"
    "    'add_key': (248, None, None, None, 0, 0),\n"
    "    'request_key': (249, None, None, None, 0),\n"
    "    'perf_event_open': (298, None, 0, -1, -1, 0xffffffff),\n"
    "    'userfaultfd': (323, 1 | 0x40000000),\n"
    "    'io_uring_setup': (425, 1, None),\n"
    "    'io_uring_enter': (426, -1, 0, 0, 0, None, 0),\n"
    "    'io_uring_register': (427, -1, 0, None, 0),\n"
    "    'init_module': (175, None, 0, b''),\n"
    "    'finit_module': (313, -1, b'', 0),\n"
    "    'delete_module': (176, b'rebound_no_such_module', os.O_NONBLOCK),\n"
    "    'kexec_load': (246, 0, 1000, None, 0x7fff0000),\n"
    "    'kexec_file_load': (320, -1, -1, 0, None, 0xfffffff0),\n"
    "    'reboot': (169, 0, 0, 0, None),\n"
    "    'swapon': (167, NOPE, 0),\n"
    "    'swapoff': (168, NOPE),\n"
    "    'acct': (163, NOPE),\n"
    "    'clone3': (435, None, 0),\n"
    "}\n"
    "CLONE_NEW = {'user': 0x10000000, 'ns': 0x20000, 'net': 0x40000000, 'pid': 0x20000000,\n"
    "             'ipc': 0x8000000, 'uts': 0x4000000, 'cgroup': 0x2000000}\n"
    "\n"
    "def syscalls():\n"
    "    out = {}\n"
    "    for name, (nr, *args) in SYSCALLS.items():\n"
    "        ctypes.set_errno(0)\n"
    "        rc = libc.syscall(nr, *args)\n"
    "        out[name] = ctypes.get_errno() if rc == -1 else 0\n"
    "    return out\n"
    "\n"
    "def errno_of(fn):\n"
    "    try:\n"
    "        fn()\n"
    "        return 0\n"
    "    except OSError as e:\n"
    "        return e.errno\n"
    "\n"
    "def in_grandchild(fn):\n"
    "    r, w = os.pipe()\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        os.close(r)\n"
    "        os.write(w, str(errno_of(fn)).encode())\n"
    "        os._exit(0)\n"
    "    os.close(w)\n"
    "    got = os.read(r, 16)\n"
    "    os.close(r)\n"
    "    os.waitpid(pid, 0)\n"
    "    return int(got)\n"
    "\n"
    "def clone(flags):\n"
    "    ctypes.set_errno(0)\n"
    "    pid = libc.syscall(56, flags | signal.SIGCHLD, 0, 0, 0, 0)\n"
    "    if pid == 0:\n"
    "        os._exit(0)\n"
    "    if pid < 0:\n"
    "        return ctypes.get_errno()\n"
    "    os.waitpid(pid, 0)\n"
    "    return 0\n"
    "\n"
    "def unshare_user():\n"
    "    if libc.syscall(272, CLONE_NEW['user']) != 0:\n"
    "        raise OSError(ctypes.get_errno(), 'unshare')\n"
    "\n"
    "def processes():\n"
    "    out = {'setsid': in_grandchild(os.setsid), 'setpgid': errno_of(lambda: os.setpgid(0, "
    "0)),\n"
    "           'unshare_user': in_grandchild(unshare_user)}\n"
    "    r, w = os.pipe()\n"
    "    other = os.fork()\n"
    "    if other == 0:\n"
    "        os.close(w)\n"
    "        os.read(r, 1)\n"
    "        os._exit(0)\n"
    "    os.close(r)\n"
    "    prio = os.getpriority(os.PRIO_PROCESS, 0)\n"
    "    out['setpriority_other'] = errno_of(lambda: os.setpriority(os.PRIO_PROCESS, other, "
    "prio))\n"
    "    out['setpriority_pgrp'] = errno_of(lambda: os.setpriority(os.PRIO_PGRP, 0, prio))\n"
    "    os.close(w)\n"
    "    os.waitpid(other, 0)\n"
    "    out['nice_before'] = prio\n"
    "    out['nice'] = os.nice(1)\n"
    "    for name, flag in CLONE_NEW.items():\n"
    "        out['clone_' + name] = clone(flag)\n"
    "        out['clone_user_' + name] = clone(CLONE_NEW['user'] | flag)\n"
    "    return out\n"
    "\n"
    "def status(key):\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith(key + ':'):\n"
    "            return line.split()[1]\n"
    "    return ''\n"
    "\n"
    "def nnp(suid):\n"
    "    euid = subprocess.run([suid, '-u'], capture_output=True, text=True).stdout.strip()\n"
    "    ctypes.set_errno(0)\n"
    "    rc = libc.prctl(38, 0, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS back to 0\n"
    "    unset = ctypes.get_errno() if rc != 0 else 0\n"
    "    return [status('NoNewPrivs'), unset, int(euid)]\n"
    "\n"
    "def user():\n"
    "    return [list(os.getresuid()), list(os.getresgid()), os.getgroups(),\n"
    "            errno_of(lambda: os.setuid(0)), errno_of(lambda: os.setresuid(0, 0, 0)),\n"
    "            errno_of(lambda: os.setgid(0)), errno_of(lambda: os.setgroups([0]))]\n"
    "\n"
    "def limit(name):\n"
    "    which = getattr(resource, name)\n"
    "    soft, hard = resource.getrlimit(which)\n"
    "    try:\n"
    "        resource.setrlimit(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
    "        raised = 'raised'\n"
    "    except (ValueError, OSError) as e:\n"
    "        raised = type(e).__name__\n"
    "    return [soft, hard, raised]\n"
    "\n"
    "def alloc(mib):\n"
    "    try:\n"
    "        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, "
    "resource.RLIM_INFINITY))\n"
    "    except ValueError:\n"
    "        pass\n"
    "    try:\n"
    "        return len(bytearray(mib << 20)) >> 20\n"
    "    except MemoryError:\n"
    "        return 'MemoryError'\n"
    "\n"
    "def fsize(path, ignore):\n"
    "    if ignore:\n"
    "        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "    with open(path, 'wb', buffering=0) as f:\n"
    "        f.seek((256 << 20) - 1)\n"
    "        first = f.write(b'x')\n"
    "        return [first, errno_of(lambda: f.write(b'y'))]\n"
    "\n"
    "def nofile():\n"
    "    fds, err = [], 0\n"
    "    try:\n"
    "        while len(fds) < 100000:\n"
    "            fds.append(os.open('/dev/null', os.O_RDONLY))\n"
    "    except OSError as e:\n"
    "        err = e.errno\n"
    "    top = max(fds)\n"
    "    for fd in fds:\n"
    "        os.close(fd)\n"
    "    return [len(fds), err, top]\n"
    "\n"
    "def core():\n"
    "    libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: undo what the change of user did\n"
    "    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)\n"
    "    want = 64 << 20\n"
    "    # As far as the hard limit lets us (a sanitizer's runtime lowers only\n"
    "    # the soft one), then past it.\n"
    "    resource.setrlimit(resource.RLIMIT_CORE, (want if hard == resource.RLIM_INFINITY else "
    "hard, hard))\n"
    "    try:\n"
    "        resource.setrlimit(resource.RLIMIT_CORE, (want, want))\n"
    "        raised = True\n"
    "    except ValueError:\n"
    "        raised = False\n"
    "    d = tempfile.mkdtemp()\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        os.chdir(d)\n"
    "        os.abort()\n"
    "    _, st = os.waitpid(pid, 0)\n"
    "    return [os.WCOREDUMP(st), os.WTERMSIG(st), sorted(os.listdir(d)), raised,\n"
    "            list(resource.getrlimit(resource.RLIMIT_CORE))]\n"
    "\n"
    "def tell(sock):\n"
    "    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "    s.sendto(('%d %d' % (os.getpid(), os.getppid())).encode(), sock)\n"
    "    s.close()\n"
    "\n"
    "def once(sock, mark):\n"
    "    first = not os.path.exists(mark)\n"
    "    with open(mark, 'a') as f:\n"
    "        f.write('x')\n"
    "    tell(sock)\n"
    "    if first:\n"
    "        time.sleep(60)\n"
    "    return os.path.getsize(mark)\n"
    "\n"
    "def always(sock):\n"
    "    tell(sock)\n"
    "    time.sleep(60)\n"
    "\n"
    "def first():\n"
    "    return 'first'\n";

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* A setuid-root copy of /usr/bin/id, for the no-new-privileges test (which
 * removes it; teardown's removal of the code root too, should it fail). */
static int make_setuid_id(const char *path)
{
    int in = open("/usr/bin/id", O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    char buf[65536];
    ssize_t n;
    int rc = in >= 0 && out >= 0 ? 0 : -1;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) rc = -1;
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    if (rc == 0 && (chown(path, 0, 0) != 0 || chmod(path, 04755) != 0)) rc = -1;
    return rc;
}

static int setup(void **state)
{
    (void)state;
    struct passwd *pw = getpwnam("nobody");
    if (!pw) return -1;
    nobody_uid = pw->pw_uid;
    nobody_gid = pw->pw_gid;
    root = harness_code_root();
    harness_write(root, "sandbox.py", sandbox_py);
    statedir = harness_shared_dir();
    rb_pool_config cfg;
    harness_config(&cfg, "native", 1, root);
    cfg.mem_limit_mb = MEM_LIMIT_MB;
    pool = harness_pool("native", 1, root, &cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rb_pool_free(pool);
    harness_rmtree(root);
    free(root);
    harness_rmtree(statedir);
    free(statedir);
    return 0;
}

/* Run fcn(*args) of sandbox.py (or of file) in p; the result must come. */
static void run_in(rb_pool *p, const char *file, const char *fcn, const char *args, int timeout_ms,
                   msgpack_unpacked *res)
{
    char job[1024];
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"%s\",\"timeout_ms\":%d,\"calls\":["
             "{\"file\":\"%s\",\"fcn\":\"%s\",\"args\":%s}]}",
             fcn, timeout_ms, file, fcn, args);
    assert_true(harness_run_json(p, job, res, timeout_ms + 15000));
}

/* Run fcn(*args) of sandbox.py in p; the job must return. */
static void run_ok(rb_pool *p, const char *fcn, const char *args, msgpack_unpacked *res)
{
    run_in(p, "sandbox.py", fcn, args, 10000, res);
    if (strcmp(harness_sget(&res->data, "status"), "ok") != 0)
        fail_msg("%s: status %s, error %s / %s: %s", fcn, harness_sget(&res->data, "status"),
                 harness_sget(&res->data, "error.message"),
                 harness_sget(&res->data, "results.0.error.type"),
                 harness_sget(&res->data, "results.0.error.message"));
}

static int64_t iget(const msgpack_unpacked *res, const char *path)
{
    const msgpack_object *o = harness_get(&res->data, path);
    if (!o || (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
               o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER && o->type != MSGPACK_OBJECT_BOOLEAN))
        fail_msg("%s is not an integer", path);
    return o->type == MSGPACK_OBJECT_BOOLEAN ? o->via.boolean : o->via.i64;
}

/* ---- what the sandbox reports ------------------------------------------ */

/* As root every layer applies, and the pool says so, in the order README
 * gives. */
static void test_the_report_names_every_layer(void **state)
{
    (void)state;
    assert_string_equal(
        rb_pool_sandbox(pool),
        "pgrp,netns,pidns,ipcns,mountns,tmpfs,cgroup,rlimits,user=nobody,nnp,cpu-per-slot,landlock,seccomp");
}

/* A run-as user that does not exist is a missing layer: without
 * sandbox_best_effort the pool refuses to start, and says why. */
static void test_a_missing_run_as_user_stops_the_pool(void **state)
{
    (void)state;
    rb_pool_config cfg;
    harness_config(&cfg, "native", 1, root);
    cfg.run_as = "rebound-no-such-user";
    cfg.sandbox_best_effort = false;
    rb_err err = {{0}};
    rb_pool *p = rb_pool_new(&cfg, &err);
    if (p) {
        char report[256];
        snprintf(report, sizeof report, "%s", rb_pool_sandbox(p));
        rb_pool_free(p);
        fail_msg("the pool started without its run-as user: %s", report);
    }
    if (!strstr(err.msg, "run-as user rebound-no-such-user does not exist"))
        fail_msg("the error does not name the missing layer: %s", err.msg);
}

/* ---- no new privileges, the user ---------------------------------------- */

/* What `id -u` prints when nobody, without no-new-privileges, runs the
 * setuid-root copy: the control that shows the copy does give root. */
static int euid_of_setuid_id_run_by_nobody(const char *bin)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        if (setgroups(0, NULL) != 0 || setresgid(nobody_gid, nobody_gid, nobody_gid) != 0 ||
            setresuid(nobody_uid, nobody_uid, nobody_uid) != 0)
            _exit(126);
        execl(bin, bin, "-u", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[32] = "";
    size_t n = 0;
    struct pollfd pfd = {p[0], POLLIN, 0};
    while (n + 1 < sizeof buf && poll(&pfd, 1, 10000) == 1) {
        ssize_t k = read(p[0], buf + n, sizeof buf - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return n > 0 ? atoi(buf) : -1;
}

/* PR_SET_NO_NEW_PRIVS is set in the job and cannot be unset: a setuid-root
 * program the job runs gives it no root, where the same program run by
 * nobody outside the pool does. */
static void test_no_new_privileges(void **state)
{
    (void)state;
    char bin[512], args[600];
    snprintf(bin, sizeof bin, "%s/suid-id", root);
    assert_int_equal(make_setuid_id(bin), 0);
    assert_int_equal(euid_of_setuid_id_run_by_nobody(bin), 0);
    snprintf(args, sizeof args, "[\"%s\"]", bin);
    msgpack_unpacked res;
    run_ok(pool, "nnp", args, &res);
    assert_string_equal(harness_sget(&res.data, "results.0.val.0"), "1"); /* NoNewPrivs */
    assert_int_equal(iget(&res, "results.0.val.1"), EINVAL);              /* cannot unset it */
    assert_int_equal(iget(&res, "results.0.val.2"), nobody_uid);          /* id -u */
    msgpack_unpacked_destroy(&res);
    unlink(bin);
}

/* The job runs as nobody (real, effective and saved ids), without
 * supplementary groups, and cannot become root again. */
static void test_the_job_runs_as_the_run_as_user(void **state)
{
    (void)state;
    msgpack_unpacked res;
    run_ok(pool, "user", "[]", &res);
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "results.0.val.0.%d", i);
        assert_int_equal(iget(&res, path), nobody_uid);
        snprintf(path, sizeof path, "results.0.val.1.%d", i);
        assert_int_equal(iget(&res, path), nobody_gid);
    }
    assert_int_equal(harness_get(&res.data, "results.0.val.2")->via.array.size, 0);
    for (int i = 3; i <= 6; i++) { /* setuid(0), setresuid(0,0,0), setgid(0), setgroups([0]) */
        char path[64];
        snprintf(path, sizeof path, "results.0.val.%d", i);
        assert_int_equal(iget(&res, path), EPERM);
    }
    msgpack_unpacked_destroy(&res);
}

/* ---- rlimits ------------------------------------------------------------ */

/* The job cannot raise the hard limit of name; returns [soft, hard]. */
static void expect_fixed_limit(const char *name, int64_t *soft, int64_t *hard)
{
    char args[64];
    snprintf(args, sizeof args, "[\"%s\"]", name);
    msgpack_unpacked res;
    run_ok(pool, "limit", args, &res);
    *soft = iget(&res, "results.0.val.0");
    *hard = iget(&res, "results.0.val.1");
    if (strcmp(harness_sget(&res.data, "results.0.val.2"), "ValueError") != 0)
        fail_msg("%s: raising it to unlimited gave %s", name,
                 harness_sget(&res.data, "results.0.val.2"));
    msgpack_unpacked_destroy(&res);
}

/* Address space per --mem-limit-mb: half of it can be had, one and a half
 * of it cannot (MemoryError), though both fit in the default limit and the
 * job first tries to lift its own. */
static void test_address_space_limit(void **state)
{
    (void)state;
    int64_t soft, hard;
    expect_fixed_limit("RLIMIT_AS", &soft, &hard);
    assert_int_equal(soft, hard);
    assert_true(soft > 0); /* not RLIM_INFINITY (-1 in Python) */
    char args[32];
    msgpack_unpacked res;
    snprintf(args, sizeof args, "[%d]", MEM_LIMIT_MB / 2);
    run_ok(pool, "alloc", args, &res);
    assert_int_equal(iget(&res, "results.0.val"), MEM_LIMIT_MB / 2);
    msgpack_unpacked_destroy(&res);
    snprintf(args, sizeof args, "[%d]", MEM_LIMIT_MB * 3 / 2);
    run_ok(pool, "alloc", args, &res);
    assert_string_equal(harness_sget(&res.data, "results.0.val"), "MemoryError");
    msgpack_unpacked_destroy(&res);
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Files of at most 256 MiB: the last byte below the limit is written, the
 * first past it is not. What the job sees: EFBIG, as in python3 (the
 * trampoline ignores SIGXFSZ as Python's own signal setup would), whether
 * or not the job ignores SIGXFSZ itself. */
static void test_file_size_limit(void **state)
{
    (void)state;
    int64_t soft, hard;
    expect_fixed_limit("RLIMIT_FSIZE", &soft, &hard);
    assert_int_equal(soft, 256LL << 20);
    assert_int_equal(hard, 256LL << 20);

    char path[600], args[700];
    msgpack_unpacked res;
    snprintf(path, sizeof path, "%s/fsize-killed", statedir);
    snprintf(args, sizeof args, "[\"%s\", false]", path);
    run_ok(pool, "fsize", args, &res);
    assert_int_equal(iget(&res, "results.0.val.0"), 1);     /* the byte below the limit */
    assert_int_equal(iget(&res, "results.0.val.1"), EFBIG); /* the byte past it */
    msgpack_unpacked_destroy(&res);
    assert_int_equal(file_size(path), 256LL << 20);
    unlink(path);

    snprintf(path, sizeof path, "%s/fsize-efbig", statedir);
    snprintf(args, sizeof args, "[\"%s\", true]", path);
    run_ok(pool, "fsize", args, &res);
    assert_int_equal(iget(&res, "results.0.val.0"), 1);     /* the byte below the limit */
    assert_int_equal(iget(&res, "results.0.val.1"), EFBIG); /* the byte past it */
    msgpack_unpacked_destroy(&res);
    assert_int_equal(file_size(path), 256LL << 20);
    unlink(path);
}

/* 256 open files: opening until it fails fills descriptors 0-255 and
 * stops with EMFILE. */
static void test_open_files_limit(void **state)
{
    (void)state;
    int64_t soft, hard;
    expect_fixed_limit("RLIMIT_NOFILE", &soft, &hard);
    assert_int_equal(soft, 256);
    assert_int_equal(hard, 256);
    msgpack_unpacked res;
    run_ok(pool, "nofile", "[]", &res);
    assert_int_equal(iget(&res, "results.0.val.1"), EMFILE);
    assert_int_equal(iget(&res, "results.0.val.2"), 255); /* the highest it got */
    msgpack_unpacked_destroy(&res);
}

/* No core dumps: RLIMIT_CORE is 0, hard limit included, so a job that
 * makes itself dumpable again and tries to raise the limit still leaves no
 * core of a process it crashes. (In internal mode, where only the
 * sanitizer's runtime lowers the soft limit, the same job gets its core.) */
static void test_no_core_dumps(void **state)
{
    (void)state;
    int64_t soft, hard;
    expect_fixed_limit("RLIMIT_CORE", &soft, &hard);
    assert_int_equal(soft, 0);
    assert_int_equal(hard, 0);
    msgpack_unpacked res;
    run_ok(pool, "core", "[]", &res);
    assert_int_equal(iget(&res, "results.0.val.1"), SIGABRT); /* it did crash */
    assert_int_equal(iget(&res, "results.0.val.0"), 0);       /* WCOREDUMP */
    assert_int_equal(harness_get(&res.data, "results.0.val.2")->via.array.size, 0);
    assert_int_equal(iget(&res, "results.0.val.3"), 0); /* could not raise the limit */
    msgpack_unpacked_destroy(&res);
}

/* The CPU backstop: RLIMIT_CPU is set, to the job's wall limit times the
 * CPUs or a little more (it must never fire first), and follows the
 * job's own wall limit. */
static void test_cpu_limit_is_a_backstop(void **state)
{
    (void)state;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t soft[2];
    const int secs[2] = {4, 9};
    for (int i = 0; i < 2; i++) {
        char args[] = "[\"RLIMIT_CPU\"]";
        msgpack_unpacked res;
        run_in(pool, "sandbox.py", "limit", args, secs[i] * 1000, &res);
        assert_string_equal(harness_sget(&res.data, "status"), "ok");
        soft[i] = iget(&res, "results.0.val.0");
        int64_t hard = iget(&res, "results.0.val.1");
        assert_string_equal(harness_sget(&res.data, "results.0.val.2"), "ValueError");
        msgpack_unpacked_destroy(&res);
        assert_true(soft[i] >= secs[i] * cpus);
        assert_true(hard >= soft[i]);
    }
    assert_int_equal(soft[1] - soft[0], (secs[1] - secs[0]) * cpus);
}

/* Where a control group bounds each job's tasks (128: test_pool_namespaces'
 * fork bomb shows it, with both slots as one user), the per-user limit is
 * a backstop of 4096; without one it would be 128. */
static void test_process_limit(void **state)
{
    (void)state;
    int64_t soft, hard;
    assert_non_null(strstr(rb_pool_sandbox(pool), "cgroup"));
    expect_fixed_limit("RLIMIT_NPROC", &soft, &hard);
    assert_int_equal(soft, 4096);
    assert_int_equal(hard, 4096);
}

/* ---- seccomp ------------------------------------------------------------ */

/* Called by syscalls(), with the arguments it lists. */
static const char *const denied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsmount",
    "unshare",
    "setns",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
};

/* The rest, in processes(): setsid in a child of the job (the job leads its
 * process group, where setsid fails anyway), setpgid(0, 0), unshare
 * (CLONE_NEWUSER) in a child, setpriority of another process of the job's
 * and of its process group. Each of them succeeds without the filter. */
static const char *const denied_processes[] = {
    "unshare_user",
    "setpriority_other",
    "setpriority_pgrp",
};
/* Allowed where each child has a PID namespace: what a job starts dies with
 * it whatever its session or group (test_pool_isolation.c kills them). */
static const char *const allowed_processes[] = {"setsid", "setpgid"};
static const char *const ns_flags[] = {"user", "ns", "net", "pid", "ipc", "uts", "cgroup"};

typedef struct probe {
    msgpack_unpacked calls, procs;
} probe;

static void probe_run(rb_pool *p, probe *out)
{
    run_ok(p, "syscalls", "[]", &out->calls);
    run_ok(p, "processes", "[]", &out->procs);
}

static void probe_free(probe *pr)
{
    msgpack_unpacked_destroy(&pr->calls);
    msgpack_unpacked_destroy(&pr->procs);
}

static int64_t errno_in(const msgpack_unpacked *res, const char *key)
{
    char path[96];
    snprintf(path, sizeof path, "results.0.val.%s", key);
    return iget(res, path);
}

/*
 * Each syscall of README's seccomp row fails with EPERM in the job (clone3
 * with ENOSYS), called with arguments for which the kernel itself would
 * answer otherwise. Three pools run the same probes:
 *  - internal mode (root, no sandbox): what the kernel answers (success, or
 *    an errno other than EPERM): the probe would notice a missing rule;
 *  - native mode run as root (sandbox_best_effort: the only layer missing
 *    is the change of user): the filter's EPERM, where root's
 *    capabilities would have let the call through (pivot_root, mount,
 *    swapon, reboot, acct, a clone with any CLONE_NEW* flag: nobody is
 *    refused those by the kernel anyway);
 *  - the main pool (native, nobody): what jobs really run under.
 * The arguments fail harmlessly even as root without a filter.
 */
static void test_seccomp_denies_each_call(void **state)
{
    (void)state;
    rb_pool_config cfg;
    harness_config(&cfg, "internal", 1, root);
    rb_pool *plain = harness_pool("internal", 1, root, &cfg);
    harness_config(&cfg, "native", 1, root);
    cfg.run_as = "root";
    cfg.sandbox_best_effort = true;
    rb_pool *as_root = harness_pool("native", 1, root, &cfg);
    assert_string_equal(
        rb_pool_sandbox(as_root),
        "pgrp,netns,pidns,ipcns,mountns,tmpfs,cgroup,rlimits,nnp,cpu-per-slot,landlock,seccomp;missing:"
        "run-as user root is root");

    probe base, sroot, snobody;
    probe_run(plain, &base);
    probe_run(as_root, &sroot);
    probe_run(pool, &snobody);
    rb_pool_free(plain);
    rb_pool_free(as_root);

    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        const char *n = denied[i];
        int64_t b = errno_in(&base.calls, n), r = errno_in(&sroot.calls, n),
                u = errno_in(&snobody.calls, n);
        if (b == EPERM || r != EPERM || u != EPERM)
            fail_msg("%s: errno %lld without the sandbox (must not be EPERM), %lld as root and "
                     "%lld as nobody in native mode (must be EPERM)",
                     n, (long long)b, (long long)r, (long long)u);
    }
    /* clone3 passes its flags where the filter cannot see them: ENOSYS, so
     * that glibc falls back to clone. */
    assert_int_equal(errno_in(&base.calls, "clone3"), EINVAL); /* too small an argument */
    assert_int_equal(errno_in(&sroot.calls, "clone3"), ENOSYS);
    assert_int_equal(errno_in(&snobody.calls, "clone3"), ENOSYS);

    for (size_t i = 0; i < sizeof denied_processes / sizeof denied_processes[0]; i++) {
        const char *n = denied_processes[i];
        int64_t b = errno_in(&base.procs, n), r = errno_in(&sroot.procs, n),
                u = errno_in(&snobody.procs, n);
        if (b != 0 || r != EPERM || u != EPERM)
            fail_msg("%s: errno %lld without the sandbox (must be 0), %lld as root and %lld as "
                     "nobody in native mode (must be EPERM)",
                     n, (long long)b, (long long)r, (long long)u);
    }
    for (size_t i = 0; i < sizeof allowed_processes / sizeof allowed_processes[0]; i++) {
        const char *n = allowed_processes[i];
        if (errno_in(&base.procs, n) != 0 || errno_in(&sroot.procs, n) != 0 ||
            errno_in(&snobody.procs, n) != 0)
            fail_msg("%s: errno %lld, %lld, %lld (must be 0: the PID namespace bounds it)", n,
                     (long long)errno_in(&base.procs, n), (long long)errno_in(&sroot.procs, n),
                     (long long)errno_in(&snobody.procs, n));
    }
    /* clone with a CLONE_NEW* flag: alone (root could, nobody could not
     * without the filter) and with CLONE_NEWUSER (nobody could too). */
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
        char alone[32], user[40];
        snprintf(alone, sizeof alone, "clone_%s", ns_flags[i]);
        snprintf(user, sizeof user, "clone_user_%s", ns_flags[i]);
        int64_t b = errno_in(&base.procs, alone), bu = errno_in(&base.procs, user);
        int64_t r = errno_in(&sroot.procs, alone), ru = errno_in(&sroot.procs, user);
        int64_t u = errno_in(&snobody.procs, user);
        if (b != 0 || bu != 0 || r != EPERM || ru != EPERM || u != EPERM)
            fail_msg("clone(CLONE_NEW%s): errno %lld/%lld (alone/with CLONE_NEWUSER) without the "
                     "sandbox (must be 0), %lld/%lld as root, %lld with CLONE_NEWUSER as nobody "
                     "(must be EPERM)",
                     ns_flags[i], (long long)b, (long long)bu, (long long)r, (long long)ru,
                     (long long)u);
    }
    /* A job may still lower its own priority (setpriority of itself). */
    probe *all[] = {&base, &sroot, &snobody};
    for (int i = 0; i < 3; i++)
        assert_int_equal(errno_in(&all[i]->procs, "nice"),
                         errno_in(&all[i]->procs, "nice_before") + 1);
    probe_free(&base);
    probe_free(&sroot);
    probe_free(&snobody);
    /* In filter mode: the sandbox's filter, and (with a CPU per slot,
     * sandbox_cpu.c) the one that keeps the job on its CPU. */
    msgpack_unpacked res;
    run_ok(pool, "status", "[\"Seccomp\"]", &res);
    assert_string_equal(harness_sget(&res.data, "results.0.val"), "2");
    msgpack_unpacked_destroy(&res);
    run_ok(pool, "status", "[\"Seccomp_filters\"]", &res);
    assert_string_equal(harness_sget(&res.data, "results.0.val"),
                        strstr(rb_pool_sandbox(pool), "cpu-per-slot") ? "2" : "1");
    msgpack_unpacked_destroy(&res);
}

/* ---- the compile cache -------------------------------------------------- */

/* A module whose f() returns [tag, references to g's code object, whether
 * the wait below saw the next spare]. When
 * the child compiled the module itself, the module's code object is freed
 * once the module has run, and g's code is held by g alone; when the code
 * came from the zygote's cache, the cached module code (inherited, never
 * freed) holds it too: one reference more. That is how a job can tell a
 * cache hit from a compile.
 *
 * f() first waits (bounded) for the zygote's next spare, a child of the
 * zygote younger than the job's own: the zygote compiles the job's file
 * when it reads that the job took its spare, and only then forks the next
 * one. A job that ends before the zygote has read that is reaped as an
 * idle spare and its file is never compiled (a race in zygote.c: quick
 * jobs on a busy zygote lose their compile); the wait keeps that race out
 * of what these tests measure. */
static void write_refs_module(const char *name, int tag, size_t pad_to)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "import os, socket, sys, time\n"
                     "def g():\n"
                     "    pass\n"
                     "def next_spare(sock, mark):\n"
                     "    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
                     "    s.sendto(b'run', sock)\n"
                     "    for _ in range(5000):\n"
                     "        if os.path.exists(mark):\n"
                     "            return True\n"
                     "        time.sleep(0.002)\n"
                     "    return False\n"
                     "def f(sock, mark):\n"
                     "    spare = next_spare(sock, mark)\n"
                     "    return [%d, sys.getrefcount(g.__code__), spare]\n",
                     tag);
    size_t size = pad_to > (size_t)n ? pad_to : (size_t)n;
    char *text = malloc(size + 1);
    assert_non_null(text);
    memcpy(text, head, (size_t)n);
    /* Comment lines up to exactly pad_to bytes. */
    for (size_t at = (size_t)n; at < size;) {
        size_t line = size - at < 80 ? size - at : 80;
        memset(text + at, '#', line);
        text[at + line - 1] = '\n';
        at += line;
    }
    text[size] = '\0';
    harness_write(root, name, text);
    free(text);
}

static int64_t refs(const char *name, int tag);

/* The first job with a file compiles it (its child was forked before the
 * zygote saw the file); the jobs after it get the zygote's code. */
static void test_a_repeated_file_is_not_compiled_again(void **state)
{
    (void)state;
    write_refs_module("cache/again.py", 7, 0);
    int64_t compiled = refs("cache/again.py", 7);
    assert_int_equal(refs("cache/again.py", 7), compiled + 1);
    assert_int_equal(refs("cache/again.py", 7), compiled + 1);
}

/* A zygote keeps 64 files: after 65 distinct ones (each run correctly)
 * the last 64 are kept and the first is not. */
static void test_the_cache_keeps_64_files(void **state)
{
    (void)state;
    enum { FILES = 65 };
    char name[64];
    int64_t compiled = -1;
    for (int i = 0; i < FILES; i++) {
        snprintf(name, sizeof name, "cache/n%d.py", i);
        write_refs_module(name, i, 0);
        int64_t n = refs(name, i);
        if (compiled < 0) compiled = n;
        assert_int_equal(n, compiled); /* a file the zygote has not seen */
    }
    for (int i = 1; i < FILES; i++) {
        snprintf(name, sizeof name, "cache/n%d.py", i);
        if (refs(name, i) != compiled + 1) fail_msg("%s is not kept", name);
    }
    /* Last: running it puts it back in, in place of another. */
    assert_int_equal(refs("cache/n0.py", 0), compiled);
}

/* Files of at most 256 KiB are kept; a larger one is compiled by every
 * child, and runs all the same. */
static void test_the_cache_keeps_files_up_to_256_kib(void **state)
{
    (void)state;
    write_refs_module("cache/at_limit.py", 1, 256 << 10);
    write_refs_module("cache/past_limit.py", 2, (256 << 10) + 1);
    int64_t compiled = refs("cache/at_limit.py", 1);
    assert_int_equal(refs("cache/at_limit.py", 1), compiled + 1);
    assert_int_equal(refs("cache/past_limit.py", 2), compiled);
    assert_int_equal(refs("cache/past_limit.py", 2), compiled);
    assert_int_equal(refs("cache/past_limit.py", 2), compiled);
}

/* ---- a job whose zygote dies ------------------------------------------- */

/* The jobs say "<pid> <ppid>" on a datagram socket as they start; the
 * test drives the pool and reads those until it has what it waits for. */
typedef struct watch {
    rb_pool *pool;
    int sock;
    pid_t zygote[8]; /* the parent of each run of the job */
    pid_t job[8];    /* each run's own pid, as the test sees it */
    int runs;
    bool got;
    rb_pool_result res;
} watch;

static void watch_open(watch *w, rb_pool *p, char *path, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->pool = p;
    snprintf(path, cap, "%s/sock", statedir);
    unlink(path);
    w->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    assert_true(w->sock >= 0);
    assert_int_equal(bind(w->sock, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(chmod(path, 0666), 0); /* the jobs run as nobody */
    /* The sender's pid as this process sees it: a job in its own PID
     * namespace cannot tell its pid or its zygote's. */
    int on = 1;
    assert_int_equal(setsockopt(w->sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof on), 0);
}

/* The parent of pid, from /proc. */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    int ppid = -1;
    if (!close_paren || sscanf(close_paren, ") %*c %d", &ppid) != 1) return -1;
    return ppid;
}

static void watch_close(watch *w, const char *path)
{
    close(w->sock);
    unlink(path);
    if (w->got) rb_pool_result_free(&w->res);
}

static void drive(watch *w, int ms, bool (*done)(const watch *, int), int arg)
{
    long long deadline = now_ms() + ms;
    struct pollfd fds[64];
    while (!done(w, arg)) {
        long long left = deadline - now_ms();
        if (left <= 0) break;
        int n = rb_pool_pollfds(w->pool, fds, 63);
        fds[n] = (struct pollfd){w->sock, POLLIN, 0};
        int t = rb_pool_timeout_ms(w->pool);
        if (t < 0 || t > left) t = (int)left;
        poll(fds, (nfds_t)n + 1, t);
        rb_pool_process(w->pool, fds, n);
        char msg[64];
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = {msg, sizeof msg - 1};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        for (;;) {
            mh.msg_control = control.buf;
            mh.msg_controllen = sizeof control.buf;
            if (recvmsg(w->sock, &mh, 0) <= 0) break;
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            if (!c || c->cmsg_type != SCM_CREDENTIALS || w->runs >= 8) continue;
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            w->job[w->runs] = cred.pid;
            w->zygote[w->runs++] = parent_of(cred.pid);
        }
        if (!w->got) w->got = rb_pool_next_result(w->pool, &w->res);
    }
}

static bool runs_reached(const watch *w, int n)
{
    return w->runs >= n || w->got;
}

static bool result_came(const watch *w, int unused)
{
    (void)unused;
    return w->got;
}

static void submit(rb_pool *p, const char *json)
{
    size_t len;
    char *body = harness_json_to_msgpack(json, &len);
    rb_limits lim;
    rb_limits_default(&lim);
    rb_job *job;
    rb_err err;
    assert_int_equal(rb_job_decode(body, len, &lim, &job, NULL, &err), 0);
    assert_int_equal(rb_pool_submit(p, 1, body, len, job), 0);
    rb_job_free(job);
    free(body);
}

/* Kill the zygote that run `run` of the job reported as its parent, once
 * it is sure to be one. */
static void kill_zygote(const watch *w, int run)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)w->zygote[run]);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
        fclose(f);
    }
    if (strcmp(comm, "rebound-zygote\n") != 0)
        fail_msg("the job's parent %d is '%s', not a zygote", (int)w->zygote[run], comm);
    assert_int_equal(kill(w->zygote[run], SIGKILL), 0);
}

/* The first value of the result's calls. */
static int64_t first_val(const rb_pool_result *r)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, r->call_results, r->call_results_len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *v = harness_get(&u.data, "val");
    assert_non_null(v);
    int64_t n = v->via.i64;
    msgpack_unpacked_destroy(&u);
    return n;
}

/* Whether pid has a child other than except. */
static bool has_other_child(pid_t pid, pid_t except)
{
    char path[96], buf[512] = "";
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
        if (atoi(t) != (int)except) return true;
    return false;
}

/*
 * Run f() of name: returns the reference count, checks the tag. The job
 * ends only once its zygote has forked the next spare (the test sees it
 * from outside: a job cannot see its zygote): the zygote compiles the
 * job's file when it reads that the job took its spare, and only then
 * forks the next one. A job that ends before the zygote has read that is
 * reaped as an idle spare and its file is never compiled (a race in
 * zygote.c: quick jobs on a busy zygote lose their compile); the wait
 * keeps that race out of what these tests measure.
 */
static int64_t refs(const char *name, int tag)
{
    char sock[600], mark[600], job[1500];
    watch w;
    watch_open(&w, pool, sock, sizeof sock);
    snprintf(mark, sizeof mark, "%s/spare-ready", statedir);
    unlink(mark);
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"refs\",\"timeout_ms\":20000,\"calls\":[{\"file\":\"%s\","
             "\"fcn\":\"f\",\"args\":[\"%s\",\"%s\"]}]}",
             name, sock, mark);
    submit(pool, job);
    drive(&w, 15000, runs_reached, 1);
    if (w.runs == 1) {
        long long deadline = now_ms() + 10000;
        while (!has_other_child(w.zygote[0], w.job[0]) && now_ms() < deadline)
            drive(&w, 2, result_came, 0);
        int fd = open(mark, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd >= 0) close(fd);
    }
    drive(&w, 30000, result_came, 0);
    if (!w.got) fail_msg("%s: no result", name);
    if (w.res.status != RB_STATUS_OK) fail_msg("%s: status %d", name, (int)w.res.status);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, w.res.call_results, w.res.call_results_len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *v = harness_get(&u.data, "val");
    assert_non_null(v);
    assert_true(v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 3);
    assert_int_equal(v->via.array.ptr[0].via.i64, tag);
    if (v->via.array.ptr[2].type != MSGPACK_OBJECT_BOOLEAN || !v->via.array.ptr[2].via.boolean)
        fail_msg("%s: no next spare within 10 s", name);
    int64_t n = v->via.array.ptr[1].via.i64;
    msgpack_unpacked_destroy(&u);
    watch_close(&w, sock);
    unlink(mark);
    return n;
}

/*
 * README: a job handed to a child whose zygote died before the job
 * reported anything goes back to the head of the queue once; any other
 * death is the job's `crashed`. The job tells the test it runs (and its
 * parent, the zygote); the test kills that zygote while the job waits to
 * be killed.
 */
static void test_a_job_whose_zygote_died_is_requeued_once(void **state)
{
    (void)state;
    char sock[600], mark[600], job[1500];
    watch w;
    rb_pool_stats before, after;
    rb_pool_result extra;

    /* Killed on its first run: it runs again, on a new zygote, and its
     * result is the second run's. */
    watch_open(&w, pool, sock, sizeof sock);
    snprintf(mark, sizeof mark, "%s/once", statedir);
    unlink(mark);
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"once\",\"timeout_ms\":30000,\"calls\":[{\"file\":\"sandbox.py\","
             "\"fcn\":\"once\",\"args\":[\"%s\",\"%s\"]}]}",
             sock, mark);
    rb_pool_get_stats(pool, &before, false);
    submit(pool, job);
    drive(&w, 15000, runs_reached, 1);
    assert_int_equal(w.runs, 1);
    kill_zygote(&w, 0);
    drive(&w, 30000, result_came, 0);
    assert_true(w.got);
    assert_int_equal(w.res.status, RB_STATUS_OK);
    assert_int_equal(first_val(&w.res), 2); /* it ran twice */
    assert_int_equal(w.runs, 2);
    assert_int_not_equal(w.zygote[1], w.zygote[0]);
    assert_false(rb_pool_next_result(pool, &extra)); /* one result, no other */
    rb_pool_get_stats(pool, &after, false);
    assert_int_equal(after.zygote_restarts, before.zygote_restarts + 1);
    assert_int_equal(after.jobs[RB_STATUS_OK], before.jobs[RB_STATUS_OK] + 1);
    assert_int_equal(after.jobs[RB_STATUS_CRASHED], before.jobs[RB_STATUS_CRASHED]);
    watch_close(&w, sock);
    unlink(mark);

    /* Killed on both runs: requeued once only, then `crashed`. */
    watch_open(&w, pool, sock, sizeof sock);
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"always\",\"timeout_ms\":30000,\"calls\":[{\"file\":\"sandbox.py\","
             "\"fcn\":\"always\",\"args\":[\"%s\"]}]}",
             sock);
    rb_pool_get_stats(pool, &before, false);
    submit(pool, job);
    for (int run = 0; run < 2; run++) {
        drive(&w, 15000, runs_reached, run + 1);
        assert_int_equal(w.runs, run + 1);
        kill_zygote(&w, run);
    }
    drive(&w, 30000, result_came, 0);
    assert_true(w.got);
    assert_int_equal(w.res.status, RB_STATUS_CRASHED);
    assert_string_equal(w.res.error_type, "Crashed");
    /* How the pool saw its zygote go: end-of-file, or ECONNRESET when the
     * zygote died before it read the pool's last message. */
    if (strcmp(w.res.error_message, "zygote exited") != 0 &&
        strcmp(w.res.error_message, "Connection reset by peer") != 0)
        fail_msg("crashed, but says: %s", w.res.error_message);
    assert_int_equal(w.res.ncalls, 0);
    assert_int_equal(w.runs, 2);
    rb_pool_get_stats(pool, &after, false);
    assert_int_equal(after.zygote_restarts, before.zygote_restarts + 2);
    watch_close(&w, sock);

    /* Killed after it reported a call: not requeued. */
    watch_open(&w, pool, sock, sizeof sock);
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"reported\",\"timeout_ms\":30000,\"calls\":["
             "{\"file\":\"sandbox.py\",\"fcn\":\"first\"},"
             "{\"file\":\"sandbox.py\",\"fcn\":\"always\",\"args\":[\"%s\"]}]}",
             sock);
    submit(pool, job);
    drive(&w, 15000, runs_reached, 1);
    assert_int_equal(w.runs, 1);
    kill_zygote(&w, 0);
    drive(&w, 30000, result_came, 0);
    assert_true(w.got);
    assert_int_equal(w.res.status, RB_STATUS_CRASHED);
    assert_int_equal(w.res.ncalls, 1);
    assert_int_equal(w.runs, 1);
    watch_close(&w, sock);

    /* And the slot serves the next job. */
    msgpack_unpacked res;
    run_ok(pool, "first", "[]", &res);
    assert_string_equal(harness_sget(&res.data, "results.0.val"), "first");
    msgpack_unpacked_destroy(&res);
}

int main(void)
{
#ifndef __x86_64__
    /* The job calls syscalls by their x86_64 numbers. */
    printf("cannot run here: the seccomp probes use x86_64 syscall numbers\n");
    return 77;
#endif
    if (geteuid() != 0) {
        printf("cannot run here: the sandbox switches user and limits processes only as root\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_report_names_every_layer),
        cmocka_unit_test(test_a_missing_run_as_user_stops_the_pool),
        cmocka_unit_test(test_no_new_privileges),
        cmocka_unit_test(test_the_job_runs_as_the_run_as_user),
        cmocka_unit_test(test_address_space_limit),
        cmocka_unit_test(test_file_size_limit),
        cmocka_unit_test(test_open_files_limit),
        cmocka_unit_test(test_no_core_dumps),
        cmocka_unit_test(test_cpu_limit_is_a_backstop),
        cmocka_unit_test(test_process_limit),
        cmocka_unit_test(test_seccomp_denies_each_call),
        cmocka_unit_test(test_a_repeated_file_is_not_compiled_again),
        cmocka_unit_test(test_the_cache_keeps_64_files),
        cmocka_unit_test(test_the_cache_keeps_files_up_to_256_kib),
        cmocka_unit_test(test_a_job_whose_zygote_died_is_requeued_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
