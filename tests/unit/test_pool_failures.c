/* Jobs that misbehave, in native (sandboxed) mode: each gives the expected
 * status, and the slot serves the next job. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char *root;
static rb_pool *pool;
static int leaked_fd = -1; /* an fd of ours without close-on-exec */
/* A TCP listener on the host's loopback, opened before the pool starts:
 * what a job must not reach without --allow-network. */
static int listen_fd = -1;
static int listen_port;
/* A directory every job may write to (the jobs run as another user), for
 * what a job must leave behind for the test to check. */
static char *statedir; /* harness_shared_dir(): jobs leave marks here */

static int setup(void **state)
{
    (void)state;
    root = harness_code_root();
    harness_write(
        root, "bad.py",
        "import os, signal, socket, time, ctypes, subprocess\n"
        "def ok():\n"
        "    return 1\n"
        "def spin():\n"
        "    while True:\n"
        "        pass\n"
        "def exit3():\n"
        "    os._exit(3)\n"
        "def segv():\n"
        "    os.kill(os.getpid(), 11)\n"
        "def hog():\n"
        "    b = bytearray(4 << 30)\n"
        "    return len(b)\n"
        /* Forks children that stay (they count against the process limit,
         * and only a kill ends them) until fork fails; reports how many it
         * got. Capped, so that without a limit it is no real fork bomb. */
        "def forkbomb():\n"
        "    n = 0\n"
        "    while n < 1000:\n"
        "        try:\n"
        "            pid = os.fork()\n"
        "        except OSError as e:\n"
        "            return [n, e.errno, os.readlink('/proc/self/ns/pid')]\n"
        "        if pid == 0:\n"
        "            while True:\n"
        "                signal.pause()\n"
        "        n += 1\n"
        "    return [n, 0, os.readlink('/proc/self/ns/pid')]\n"
        "def background(path):\n"
        "    p = subprocess.Popen(['/bin/sh', '-c', 'sleep 30'], start_new_session=True)\n"
        "    return os.readlink('/proc/self/ns/pid')\n"
        "def alive(pid):\n"
        "    try:\n"
        "        os.kill(pid, 0)\n"
        "    except ProcessLookupError:\n"
        "        return False\n"
        "    except PermissionError:\n"
        "        return True\n"
        "    return True\n"
        "def write(path):\n"
        "    with open(path, 'w') as f:\n"
        "        f.write('x')\n"
        "    return path\n"
        "def tmpwrite():\n"
        "    import tempfile\n"
        "    with tempfile.NamedTemporaryFile(delete=False) as f:\n"
        "        f.write(b'x')\n"
        "        return f.name\n"
        "def tcp(port):\n"
        "    try:\n"
        "        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "        s.settimeout(5)\n"
        "        s.connect(('127.0.0.1', port))\n"
        "    except OSError as e:\n"
        "        return [e.errno, os.strerror(e.errno)]\n"
        "    token = 'job %d' % os.getpid()\n"
        "    s.sendall(token.encode())\n"
        "    s.close()\n"
        "    return token\n"
        "def trace():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    rc = libc.ptrace(0, 0, 0, 0)\n"
        "    return [rc, ctypes.get_errno()]\n"
        "def mess():\n"
        "    import tempfile\n"
        "    top = tempfile.gettempdir()\n"
        "    os.makedirs(os.path.join(top, 'a', 'b'))\n"
        "    with open(os.path.join(top, 'a', 'b', 'c.txt'), 'w') as f:\n"
        "        f.write('x')\n"
        "    os.symlink('/etc', os.path.join(top, 'etc-link'))\n"
        "    os.symlink('/etc/passwd', os.path.join(top, 'a', 'passwd-link'))\n"
        "    return top\n"
        "def renice():\n"
        "    os.nice(1)\n"
        "    try:\n"
        "        os.setpriority(os.PRIO_USER, 0, 19)\n"
        "        return 'reniced every job of the user'\n"
        "    except PermissionError:\n"
        "        return 'denied'\n"
        "def who():\n"
        "    return [os.getuid(), os.getpgrp() == os.getpid()]\n"
        "def closer():\n"
        "    for fd in range(3, 1024):\n"
        "        try:\n"
        "            os.close(fd)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 'closed'\n"
        "def forge(kind, pidfile):\n"
        "    import stat, fcntl\n"
        "    p = subprocess.Popen(['/bin/sh', '-c', 'sleep 30'])\n"
        /* Before the frames: once the pool reads them it kills the job. */
        "    with open(pidfile, 'w') as f:\n"
        "        f.write(os.readlink('/proc/self/ns/pid'))\n"
        "    done = b'\\x81\\xa1t\\xa4done'\n"
        "    call = b'\\x82\\xa1t\\xa4call\\xa7present\\xc3'\n"
        "    setup_failed = b'\\x82\\xa1t\\xacsetup_failed\\xa3err\\xa4evil'\n"
        "    frame = {'done': done, 'call': call, 'setup_failed': setup_failed}[kind]\n"
        "    for fd in range(3, 1024):\n"
        "        try:\n"
        "            st = os.fstat(fd)\n"
        "        except OSError:\n"
        "            continue\n"
        "        if stat.S_ISFIFO(st.st_mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_WRONLY:\n"
        "            for _ in range(5):\n"
        "                os.write(fd, len(frame).to_bytes(4, 'big') + frame)\n"
        "    time.sleep(30)\n"
        "def threads(n):\n"
        "    from concurrent.futures import ThreadPoolExecutor\n"
        "    with ThreadPoolExecutor(n) as ex:\n"
        "        return sum(ex.map(lambda x: x * x, range(100)))\n"
        "def environ():\n"
        "    return sorted(k for k in os.environ if k.startswith('REBOUND'))\n"
        "def open_fds():\n"
        "    return sorted(int(fd) for fd in os.listdir('/proc/self/fd'))\n"
        "def newuser():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    pid = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)\n"
        "    if pid == 0:\n"
        "        os._exit(0)\n"
        "    return [pid, ctypes.get_errno()]\n"
        "def ignore_term():\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    time.sleep(60)\n");
    statedir = harness_shared_dir();
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listen_fd, 8) != 0 || getsockname(listen_fd, (struct sockaddr *)&addr, &alen) != 0)
        return -1;
    listen_port = ntohs(addr.sin_port);
    setenv("REBOUND_TEST_SECRET", "amqp://user:secret@host/", 1);
    int fd = open("/dev/null", O_RDONLY);
    leaked_fd = dup2(fd, 77); /* a number nothing else would take */
    close(fd);
    rb_pool_config cfg;
    harness_config(&cfg, "native", 1, root);
    cfg.sandbox_best_effort = geteuid() != 0; /* all of it applies as root */
    pool = harness_pool("native", 1, root, &cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rb_pool_free(pool);
    close(leaked_fd);
    close(listen_fd);
    harness_rmtree(root);
    free(root);
    harness_rmtree(statedir);
    free(statedir);
    return 0;
}

static void run(const char *fcn, const char *args, int timeout_ms, msgpack_unpacked *res)
{
    char job[1024];
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"%s\",\"timeout_ms\":%d,\"calls\":["
             "{\"file\":\"bad.py\",\"fcn\":\"%s\",\"args\":%s}]}",
             fcn, timeout_ms, fcn, args);
    assert_true(harness_run_json(pool, job, res, timeout_ms + 15000));
}

/* The slot still serves an ordinary job. */
static void assert_slot_works(void)
{
    msgpack_unpacked res;
    run("ok", "[]", 10000, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_int_equal(harness_get(&res.data, "results.0.val")->via.i64, 1);
    msgpack_unpacked_destroy(&res);
}

static void expect(const char *fcn, const char *args, int timeout_ms, const char *status,
                   const char *path, const char *needle)
{
    msgpack_unpacked res;
    run(fcn, args, timeout_ms, &res);
    if (strcmp(harness_sget(&res.data, "status"), status) != 0)
        fail_msg("%s: status %s, error %s / %s", fcn, harness_sget(&res.data, "status"),
                 harness_sget(&res.data, "error.message"),
                 harness_sget(&res.data, "results.0.error.message"));
    if (path) {
        const char *got = harness_sget(&res.data, path);
        if (!strstr(got, needle)) fail_msg("%s: %s is '%s', wanted '%s'", fcn, path, got, needle);
    }
    msgpack_unpacked_destroy(&res);
    assert_slot_works();
}

static void test_sandbox_applies(void **state)
{
    (void)state;
    const char *sb = rb_pool_sandbox(pool);
    assert_non_null(strstr(sb, "seccomp"));
    assert_non_null(strstr(sb, "rlimits"));
    if (geteuid() == 0) {
        assert_null(strstr(sb, "missing:"));
        msgpack_unpacked res;
        run("who", "[]", 10000, &res);
        assert_string_equal(harness_sget(&res.data, "status"), "ok");
        assert_int_not_equal(harness_get(&res.data, "results.0.val.0")->via.u64, 0);
        assert_true(harness_get(&res.data, "results.0.val.1")->via.boolean);
        msgpack_unpacked_destroy(&res);
    }
}

static void test_infinite_loop_times_out(void **state)
{
    (void)state;
    msgpack_unpacked res;
    run("spin", "[]", 500, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "timeout");
    assert_string_equal(harness_sget(&res.data, "error.type"), "Timeout");
    /* Not before the deadline. (That it is enforced at all is the status:
     * the job spins forever, and run() waits a bounded time for it. No upper
     * bound here: on a loaded machine it would be a timing assertion.) */
    double ms = harness_get(&res.data, "ms")->via.f64;
    assert_true(ms >= 500);
    msgpack_unpacked_destroy(&res);
    assert_slot_works();
}

static void test_exit_and_signal_are_crashes(void **state)
{
    (void)state;
    expect("exit3", "[]", 10000, "crashed", "error.message", "exited with status 3");
    expect("segv", "[]", 10000, "crashed", "error.message", "killed by signal 11");
}

static void test_huge_allocation_fails_cleanly(void **state)
{
    (void)state;
    expect("hog", "[]", 10000, "error", "results.0.error.type", "MemoryError");
}

/* Whether any process (a zombie included: it still counts against its
 * user's process limit) is in process group pgid. */

/* README: in native mode a job may have at most 128 tasks (its control
 * group). A job that forks until fork fails gets EAGAIN after at most 127
 * children (it is one of the 128 itself), and nothing it forked outlives
 * the job: its PID namespace goes with it. */
static void test_fork_bomb_is_contained(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("cannot run here: the job's bounds are set when the pool runs as root\n");
        skip();
    }
    msgpack_unpacked res;
    run("forkbomb", "[]", 10000, &res);
    if (strcmp(harness_sget(&res.data, "status"), "ok") != 0)
        fail_msg("forkbomb: status %s, error %s / %s", harness_sget(&res.data, "status"),
                 harness_sget(&res.data, "error.message"),
                 harness_sget(&res.data, "results.0.error.message"));
    int64_t forked = harness_get(&res.data, "results.0.val.0")->via.i64;
    int64_t err = harness_get(&res.data, "results.0.val.1")->via.i64;
    char ns[128];
    snprintf(ns, sizeof ns, "%s", harness_sget(&res.data, "results.0.val.2"));
    msgpack_unpacked_destroy(&res);
    /* Stopped by the limit (fork's EAGAIN), not by the job's own cap of
     * 1000, and not before it forked at all. */
    assert_int_equal(err, EAGAIN);
    assert_true(forked >= 1);
    assert_true(forked <= 127);
    /* The children would wait forever: the zygote kills the namespace's
     * init once the child has ended, and the kernel every process in it.
     * Wait for that (bounded). */
    assert_non_null(strstr(ns, "pid:["));
    if (!harness_pidns_gone(ns, 20000))
        fail_msg("%d processes of the job's namespace %s are still there after 20 s",
                 harness_procs_in_pidns(ns), ns);
    assert_slot_works();
}

static void test_background_process_is_killed(void **state)
{
    (void)state;
    msgpack_unpacked res;
    run("background", "[\"x\"]", 10000, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    char ns[128];
    snprintf(ns, sizeof ns, "%s", harness_sget(&res.data, "results.0.val"));
    msgpack_unpacked_destroy(&res);
    assert_non_null(strstr(ns, "pid:["));
    /* It left a process in a session of its own: the zygote kills the
     * namespace's init when the child exits, and the kernel everything in
     * the namespace with it. Bounded wait for that to land. */
    if (!harness_pidns_gone(ns, 5000))
        fail_msg("%d processes of the job's namespace %s are still there after 5 s",
                 harness_procs_in_pidns(ns), ns);
}

static void test_writes_outside_the_tmpdir_are_refused(void **state)
{
    (void)state;
    if (geteuid() != 0) skip();
    char args[600];
    snprintf(args, sizeof args, "[\"%s/evil.py\"]", root);
    /* The code root is mounted read-only for jobs. */
    expect("write", args, 10000, "error", "results.0.error.message", "Read-only file system");
    struct stat sb;
    char path[600];
    snprintf(path, sizeof path, "%s/evil.py", root);
    assert_int_not_equal(stat(path, &sb), 0);
    expect("write", "[\"/etc/rebound-evil\"]", 10000, "error", "results.0.error.type",
           "PermissionError");
    /* Its own temporary directory is writable. */
    expect("tmpwrite", "[]", 10000, "ok", "results.0.val", "/tmp/rebound.");
}

/* A job's directory goes after the job, with whatever it left there, and
 * links in it are removed, not followed. */
static void test_the_tmpdir_is_removed_after_the_job(void **state)
{
    (void)state;
    /* In internal mode: in native mode the job's directory is in its own
     * /tmp (sandbox_mount.c), which goes with it; the zygote makes and
     * removes it on the host only where there is no such /tmp, and as
     * root (internal mode here), where following a link would do harm. */
    rb_pool_config cfg;
    harness_config(&cfg, "internal", 1, root);
    rb_pool *plain = harness_pool("internal", 1, root, &cfg);
    msgpack_unpacked res;
    assert_true(harness_run_json(
        plain, "{\"v\":1,\"id\":\"mess\",\"calls\":[{\"file\":\"bad.py\",\"fcn\":\"mess\"}]}", &res,
        20000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    char dir[512];
    snprintf(dir, sizeof dir, "%s", harness_sget(&res.data, "results.0.val"));
    msgpack_unpacked_destroy(&res);
    assert_non_null(strstr(dir, "/tmp/rebound."));
    /* The zygote removes it once it has reaped the child, after the
     * result: poll for that, bounded. */
    struct stat sb;
    struct timespec pause = {0, 10 * 1000 * 1000};
    int waited = 0;
    while (lstat(dir, &sb) == 0 && waited++ < 500)
        nanosleep(&pause, NULL);
    if (lstat(dir, &sb) == 0) fail_msg("%s is still there after 5 s", dir);
    assert_int_equal(stat("/etc/passwd", &sb), 0);
    rb_pool_free(plain);
    assert_slot_works();
}

/* A file the run-as user may not read stays unreadable to jobs, though its
 * zygote (root) compiled it for the children after the first. */
static void test_an_unreadable_file_stays_unreadable(void **state)
{
    (void)state;
    if (geteuid() != 0) skip();
    harness_write(root, "secret.py", "def f():\n    return 'secret'\n");
    char path[600];
    snprintf(path, sizeof path, "%s/secret.py", root);
    assert_int_equal(chmod(path, 0600), 0);
    const char *job = "{\"v\":1,\"id\":\"s\",\"calls\":[{\"file\":\"secret.py\",\"fcn\":\"f\"}]}";
    for (int round = 0; round < 3; round++) {
        msgpack_unpacked res;
        assert_true(harness_run_json(pool, job, &res, 10000));
        assert_string_equal(harness_sget(&res.data, "status"), "error");
        assert_string_equal(harness_sget(&res.data, "results.0.error.type"), "PermissionError");
        msgpack_unpacked_destroy(&res);
    }
}

/* Accept one connection on the host's listener within ms and read what the
 * peer sent (up to cap - 1 bytes, until it closes). Returns false when no
 * connection came. */
static bool accept_one(int ms, char *got, size_t cap)
{
    struct pollfd p = {listen_fd, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return false;
    int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) return false;
    size_t n = 0;
    struct pollfd cp = {c, POLLIN, 0};
    while (n + 1 < cap && poll(&cp, 1, ms) == 1) {
        ssize_t k = read(c, got + n, cap - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    got[n] = '\0';
    close(c);
    return true;
}

/* A job that connects to a port listening on the host's 127.0.0.1. */
static void run_tcp(rb_pool *p, msgpack_unpacked *res)
{
    char job[256];
    snprintf(job, sizeof job,
             "{\"v\":1,\"id\":\"tcp\",\"calls\":[{\"file\":\"bad.py\",\"fcn\":\"tcp\","
             "\"args\":[%d]}]}",
             listen_port);
    assert_true(harness_run_json(p, job, res, 20000));
    if (strcmp(harness_sget(&res->data, "status"), "ok") != 0)
        fail_msg("tcp: status %s, error %s / %s", harness_sget(&res->data, "status"),
                 harness_sget(&res->data, "error.message"),
                 harness_sget(&res->data, "results.0.error.message"));
}

/* A port the host listens on (opened before the pool started) cannot be
 * reached from a job: the child lives in an empty network namespace, where
 * 127.0.0.1 has no route (or, where the kernel refuses the namespace,
 * seccomp refuses inet sockets). The same job with allow_network does
 * reach it, so the listener and the job are sound and only the sandbox
 * stands in the way. */
static void test_no_network(void **state)
{
    (void)state;
    const char *sb = rb_pool_sandbox(pool);
    int want = 0;
    if (strstr(sb, "netns"))
        want = ENETUNREACH;
    else if (strstr(sb, "seccomp-inet"))
        want = EACCES;
    else
        fail_msg("no network layer in the sandbox: %s", sb);
    msgpack_unpacked res;
    run_tcp(pool, &res);
    const msgpack_object *val = harness_get(&res.data, "results.0.val");
    if (!val || val->type != MSGPACK_OBJECT_ARRAY)
        fail_msg("the job reached the host's port: %s", harness_sget(&res.data, "results.0.val"));
    assert_int_equal(val->via.array.ptr[0].via.i64, want);
    msgpack_unpacked_destroy(&res);
    /* Nothing is waiting to be accepted. */
    struct pollfd p = {listen_fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 0), 0);
    assert_int_equal(accept(listen_fd, NULL, NULL), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    assert_slot_works();

    /* With the network allowed, the same job connects, and what it sent
     * arrives at the host's listener. */
    rb_pool_config cfg;
    harness_config(&cfg, "native", 1, root);
    cfg.sandbox_best_effort = geteuid() != 0;
    cfg.allow_network = true;
    rb_pool *open_pool = harness_pool("native", 1, root, &cfg);
    assert_non_null(strstr(rb_pool_sandbox(open_pool), "network-allowed"));
    assert_null(strstr(rb_pool_sandbox(open_pool), "netns"));
    run_tcp(open_pool, &res);
    char token[64];
    snprintf(token, sizeof token, "%s", harness_sget(&res.data, "results.0.val"));
    msgpack_unpacked_destroy(&res);
    rb_pool_free(open_pool);
    assert_non_null(strstr(token, "job "));
    char got[64];
    assert_true(accept_one(10000, got, sizeof got));
    assert_string_equal(got, token);
}

static void test_ptrace_is_denied(void **state)
{
    (void)state;
    msgpack_unpacked res;
    run("trace", "[]", 10000, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_int_equal(harness_get(&res.data, "results.0.val.0")->via.i64, -1);
    assert_int_equal(harness_get(&res.data, "results.0.val.1")->via.i64, 1); /* EPERM */
    msgpack_unpacked_destroy(&res);
}

/* A job may lower its own priority, not the other slots' jobs'. */
static void test_other_processes_priority_is_denied(void **state)
{
    (void)state;
    msgpack_unpacked res;
    run("renice", "[]", 10000, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_string_equal(harness_sget(&res.data, "results.0.val"), "denied");
    msgpack_unpacked_destroy(&res);
}

static void test_closing_pipes_and_ignoring_sigterm(void **state)
{
    (void)state;
    msgpack_unpacked res;
    run("closer", "[]", 2000, &res);
    const char *st = harness_sget(&res.data, "status");
    assert_true(strcmp(st, "crashed") == 0 || strcmp(st, "timeout") == 0);
    msgpack_unpacked_destroy(&res);
    assert_slot_works();
    run("ignore_term", "[]", 500, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "timeout");
    msgpack_unpacked_destroy(&res);
    assert_slot_works();
}

static void test_forged_frames_cannot_end_a_job_early(void **state)
{
    (void)state;
    /* A job writes "done" (or extra "call" reports, or the "setup_failed"
     * only a spare still setting up may send) into its own result pipe and
     * keeps running: the pool must not take it at its word, and nothing the
     * job started may outlive it. */
    const char *kinds[] = {"done", "call", "setup_failed"};
    for (int k = 0; k < 3; k++) {
        char pidfile[128], args[256];
        snprintf(pidfile, sizeof pidfile, "%s/forge-pid", statedir);
        unlink(pidfile);
        snprintf(args, sizeof args, "[\"%s\", \"%s\"]", kinds[k], pidfile);
        msgpack_unpacked res;
        /* The job sleeps 30 s after forging: a deadline well past the time
         * the frames take to arrive, so that only the pool's refusal of
         * them can end the job. */
        run("forge", args, 10000, &res);
        if (strcmp(harness_sget(&res.data, "status"), "crashed") != 0)
            fail_msg("forge %s: status %s, error %s", kinds[k], harness_sget(&res.data, "status"),
                     harness_sget(&res.data, "error.message"));
        assert_non_null(
            strstr(harness_sget(&res.data, "error.message"), "broke the result protocol"));
        assert_true(harness_get(&res.data, "results")->via.array.size <= 1);
        msgpack_unpacked_destroy(&res);
        /* The job wrote the pid of what it started before it forged. */
        FILE *f = fopen(pidfile, "r");
        if (!f) fail_msg("forge %s: the job wrote no %s", kinds[k], pidfile);
        char ns[128] = "";
        if (!fgets(ns, sizeof ns, f)) ns[0] = '\0';
        fclose(f);
        assert_non_null(strstr(ns, "pid:["));
        assert_true(harness_pidns_gone(ns, 5000));
        unlink(pidfile);
        assert_slot_works();
    }
}

static void test_threads_fit_in_the_memory_limit(void **state)
{
    (void)state;
    msgpack_unpacked res;
    run("threads", "[16]", 10000, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_int_equal(harness_get(&res.data, "results.0.val")->via.i64, 328350);
    msgpack_unpacked_destroy(&res);
}

static void test_consumer_secrets_do_not_reach_jobs(void **state)
{
    (void)state;
    msgpack_unpacked res;
    run("environ", "[]", 10000, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    /* setup() started the pool with REBOUND_TEST_SECRET in its environment. */
    assert_int_equal(harness_get(&res.data, "results.0.val")->via.array.size, 0);
    msgpack_unpacked_destroy(&res);
    run("open_fds", "[]", 10000, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    const msgpack_object *fds = harness_get(&res.data, "results.0.val");
    for (uint32_t i = 0; i < fds->via.array.size; i++)
        assert_int_not_equal(fds->via.array.ptr[i].via.i64, leaked_fd);
    msgpack_unpacked_destroy(&res);
}

static void test_new_namespaces_are_denied(void **state)
{
    (void)state;
    msgpack_unpacked res;
    run("newuser", "[]", 10000, &res);
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_int_equal(harness_get(&res.data, "results.0.val.0")->via.i64, -1);
    assert_int_equal(harness_get(&res.data, "results.0.val.1")->via.i64, 1); /* EPERM */
    msgpack_unpacked_destroy(&res);
}

static bool slot_ready(void *ctx)
{
    rb_pool_stats st;
    rb_pool_get_stats(ctx, &st, false);
    return st.ready == st.slots;
}

static uint64_t restarts_before;

static bool zygote_restarted(void *ctx)
{
    rb_pool_stats st;
    rb_pool_get_stats(ctx, &st, false);
    return st.zygote_restarts > restarts_before;
}

static void test_killed_zygote_is_replaced(void **state)
{
    (void)state;
    rb_pool_stats before, after;
    rb_pool_get_stats(pool, &before, false);
    /* The zygote of slot 0 is the parent of the ready child. */
    msgpack_unpacked res;
    run("who", "[]", 10000, &res);
    msgpack_unpacked_destroy(&res);
    harness_drive(pool, 5000, slot_ready, pool);
    char path[64], line[256];
    FILE *f;
    pid_t zygote = 0;
    /* Find the zygote: the mother's children are zygotes. */
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
    f = fopen(path, "r");
    assert_non_null(f);
    int mother = 0;
    assert_int_equal(fscanf(f, "%d", &mother), 1);
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", mother, mother);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    zygote = (pid_t)atoi(line);
    assert_true(zygote > 0);
    assert_int_equal(kill(zygote, SIGKILL), 0);
    /* The zygote runs at the lowest priority and may take a moment to die;
     * its ready child may even serve a job first. Wait for the pool to
     * notice and replace it (bounded), then the slot must work. */
    restarts_before = before.zygote_restarts;
    harness_drive(pool, 10000, zygote_restarted, pool);
    rb_pool_get_stats(pool, &after, false);
    assert_true(after.zygote_restarts > before.zygote_restarts);
    assert_slot_works();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sandbox_applies),
        cmocka_unit_test(test_infinite_loop_times_out),
        cmocka_unit_test(test_exit_and_signal_are_crashes),
        cmocka_unit_test(test_huge_allocation_fails_cleanly),
        cmocka_unit_test(test_fork_bomb_is_contained),
        cmocka_unit_test(test_background_process_is_killed),
        cmocka_unit_test(test_writes_outside_the_tmpdir_are_refused),
        cmocka_unit_test(test_no_network),
        cmocka_unit_test(test_the_tmpdir_is_removed_after_the_job),
        cmocka_unit_test(test_an_unreadable_file_stays_unreadable),
        cmocka_unit_test(test_ptrace_is_denied),
        cmocka_unit_test(test_other_processes_priority_is_denied),
        cmocka_unit_test(test_closing_pipes_and_ignoring_sigterm),
        cmocka_unit_test(test_forged_frames_cannot_end_a_job_early),
        cmocka_unit_test(test_threads_fit_in_the_memory_limit),
        cmocka_unit_test(test_consumer_secrets_do_not_reach_jobs),
        cmocka_unit_test(test_new_namespaces_are_denied),
        cmocka_unit_test(test_killed_zygote_is_replaced),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
