/* Jobs kept from what is not theirs, each case a job that tries (native
 * mode, as root, the way users run it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char *root;

/* Reads its own memory for a marker, without the marker's text ever
 * standing whole in the job's own code or objects: the regex holds it
 * split, and compiled regexes keep literals as integers. Through
 * /proc/self/mem, which answers EIO for what cannot be read (a process
 * that switched user is not dumpable, and its /proc files are root's:
 * being dumpable again is allowed to it). */
static const char *const SCAN_PY =
    "import ctypes, os, re\n"
    "PATTERN = re.compile(rb'zq81-mark[e]r-7731')\n"
    "def scan():\n"
    "    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE\n"
    "    found = regions = 0\n"
    "    with open('/proc/self/maps') as f:\n"
    "        maps = f.read().splitlines()\n"
    "    fd = os.open('/proc/self/mem', os.O_RDONLY)\n"
    "    for line in maps:\n"
    "        parts = line.split()\n"
    "        lo, hi = (int(x, 16) for x in parts[0].split('-'))\n"
    "        name = parts[5] if len(parts) > 5 else ''\n"
    "        # Where the interpreter keeps objects: the heap and anonymous\n"
    "        # mappings (arenas), not files and not a sanitizer's reserve.\n"
    "        if not parts[1].startswith('rw') or name not in ('', '[heap]') or hi - lo > 1 << 28:\n"
    "            continue\n"
    "        regions += 1\n"
    "        for at in range(lo, hi, 1 << 24):\n"
    "            try:\n"
    "                data = os.pread(fd, min(hi - at, (1 << 24) + 64), at)\n"
    "            except OSError:\n"
    "                continue\n"
    "            found += bool(PATTERN.search(data))\n"
    "    os.close(fd)\n"
    "    return [found, regions]\n";

/* SysV shared memory through ctypes: make a segment under a key, or look
 * one up. */
static const char *const SHM_PY = "import ctypes\n"
                                  "libc = ctypes.CDLL(None, use_errno=True)\n"
                                  "KEY = 0x7265626f\n"
                                  "def make(size):\n"
                                  "    shmid = libc.shmget(KEY, size, 0o1666)  # IPC_CREAT | 0666\n"
                                  "    return [shmid, ctypes.get_errno()]\n"
                                  "def find():\n"
                                  "    shmid = libc.shmget(KEY, 0, 0o666)\n"
                                  "    return [shmid, ctypes.get_errno()]\n";

/* A job goes for the spare that waits to take the slot's next job (it runs
 * as the same user), and for the processes of the pool above it: lowers
 * their limits, makes them SCHED_IDLE, pins them to one CPU, gives them the
 * idle I/O class. In its own PID namespace it finds none of them in /proc,
 * and the pids the test gives it (its zygote's and mother's, as the host
 * sees them) name nothing it can reach. The next job reports what it got. */
static const char *const SPARE_PY =
    "import ctypes, os, time\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "class rlimit(ctypes.Structure):\n"
    "    _fields_ = [('cur', ctypes.c_ulong), ('max', ctypes.c_ulong)]\n"
    "def others():\n"
    "    # Every process /proc shows but this one.\n"
    "    me = os.getpid()\n"
    "    return [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != me]\n"
    "def attack(pids, hard):\n"
    "    seen = others()\n"
    "    done = []\n"
    "    for pid in seen + pids:\n"
    "        try:\n"
    "            os.sched_setaffinity(pid, {min(os.sched_getaffinity(0))})\n"
    "            done.append('affinity %d' % pid)\n"
    "        except OSError:\n"
    "            pass\n"
    "        if libc.syscall(251, 1, pid, 3 << 13) == 0:  # ioprio_set(WHO_PROCESS, pid, IDLE)\n"
    "            done.append('ioprio %d' % pid)\n"
    "        if hard:  # what a spare cannot undo without privileges\n"
    "            try:\n"
    "                os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))\n"
    "                done.append('idle %d' % pid)\n"
    "            except OSError:\n"
    "                pass\n"
    "            low = rlimit(16, 16)\n"
    "            if libc.prlimit(pid, 7, ctypes.byref(low), None) == 0:  # RLIMIT_NOFILE\n"
    "                done.append('nofile %d' % pid)\n"
    "    return [seen, done]\n"
    "def state():\n"
    "    import resource\n"
    "    return [resource.getrlimit(resource.RLIMIT_NOFILE)[0], len(os.sched_getaffinity(0)),\n"
    "            os.sched_getscheduler(0) == os.SCHED_OTHER, libc.syscall(252, 1, 0) >> 13]\n";

static int setup(void **state)
{
    (void)state;
    root = harness_code_root();
    harness_write(root, "spare.py", SPARE_PY);
    harness_write(root, "scan.py", SCAN_PY);
    harness_write(root, "shm.py", SHM_PY);
    harness_write(root, "secret.py", "SECRET = 'zq81-marker-7731'\ndef f():\n    return SECRET\n");
    char path[1024];
    snprintf(path, sizeof path, "%s/secret.py", root);
    assert_int_equal(chmod(path, 0600), 0); /* root's only */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_rmtree(root);
    free(root);
    return 0;
}

/* A job names a root-only file: it gets PermissionError, and the zygote,
 * which compiles the files jobs use for the children after them, must not
 * have read it either: the next child on that slot finds nothing of it in
 * its memory. */
static void test_a_root_only_file_does_not_leak_through_the_compile_cache(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "cannot run here: needs root (the sandbox switches user as root)\n");
        skip();
    }
    rb_pool *pool = harness_pool("native", 1, root, NULL);
    msgpack_unpacked res;
    for (int round = 0; round < 2; round++) {
        assert_true(harness_run_json(
            pool, "{\"v\":1,\"id\":\"s\",\"calls\":[{\"file\":\"secret.py\",\"fcn\":\"f\"}]}", &res,
            20000));
        assert_string_equal(harness_sget(&res.data, "status"), "error");
        assert_string_equal(harness_sget(&res.data, "results.0.error.type"), "PermissionError");
        msgpack_unpacked_destroy(&res);
    }
    assert_true(harness_run_json(
        pool, "{\"v\":1,\"id\":\"m\",\"calls\":[{\"file\":\"scan.py\",\"fcn\":\"scan\"}]}", &res,
        60000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    /* The scan read memory at all. */
    assert_true(harness_get(&res.data, "results.0.val.1")->via.i64 > 3);
    assert_int_equal(harness_get(&res.data, "results.0.val.0")->via.i64, 0);
    msgpack_unpacked_destroy(&res);
    rb_pool_free(pool);
}

/* Whether the host's IPC namespace has a SysV segment with this key. */
static bool host_has_shm_key(long key)
{
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    assert_non_null(f);
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        long k;
        if (sscanf(line, " %ld", &k) == 1 && k == key) found = true;
    }
    fclose(f);
    return found;
}

/* A job makes a 64 MiB SysV segment and leaves it: nothing of it is left
 * on the host, and neither the next job on the slot nor one on the other
 * slot finds it. */
static void test_sysv_memory_dies_with_the_job(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "cannot run here: needs root (namespaces as the sandbox applies them)\n");
        skip();
    }
    rb_pool *pool = harness_pool("native", 2, root, NULL);
    assert_non_null(strstr(rb_pool_sandbox(pool), "ipcns"));
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"m\",\"calls\":[{\"file\":\"shm.py\","
                                 "\"fcn\":\"make\",\"args\":[67108864]}]}",
                                 &res, 20000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    assert_true(harness_get(&res.data, "results.0.val.0")->via.i64 >= 0); /* it was made */
    msgpack_unpacked_destroy(&res);
    assert_false(host_has_shm_key(0x7265626f));
    for (int i = 0; i < 3; i++) { /* whichever slot the next ones land on */
        assert_true(harness_run_json(
            pool, "{\"v\":1,\"id\":\"f\",\"calls\":[{\"file\":\"shm.py\",\"fcn\":\"find\"}]}", &res,
            20000));
        assert_string_equal(harness_sget(&res.data, "status"), "ok");
        assert_int_equal(harness_get(&res.data, "results.0.val.0")->via.i64, -1);
        assert_int_equal(harness_get(&res.data, "results.0.val.1")->via.i64, 2); /* ENOENT */
        msgpack_unpacked_destroy(&res);
    }
    rb_pool_free(pool);
}

static void test_the_next_job_gets_a_spare_as_the_sandbox_made_it(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "cannot run here: needs root (the sandbox switches user as root)\n");
        skip();
    }
    rb_pool *pool = harness_pool("native", 1, root, NULL);
    msgpack_unpacked res;
    assert_true(harness_run_json(pool,
                                 "{\"v\":1,\"id\":\"s\",\"calls\":[{\"file\":\"spare.py\","
                                 "\"fcn\":\"state\"}]}",
                                 &res, 20000));
    assert_string_equal(harness_sget(&res.data, "status"), "ok");
    long long cpus = harness_get(&res.data, "results.0.val.1")->via.i64;
    msgpack_unpacked_destroy(&res);

    /* The pids of the pool's zygote and mother, as the host sees them. */
    pid_t mother = 0, zygote = 0;
    assert_true(harness_pool_pids(getpid(), &mother, &zygote));
    for (int hard = 0; hard < 2; hard++) {
        char job[256];
        snprintf(job, sizeof job,
                 "{\"v\":1,\"id\":\"a\",\"calls\":[{\"file\":\"spare.py\","
                 "\"fcn\":\"attack\",\"args\":[[%d,%d],%s]}]}",
                 (int)zygote, (int)mother, hard ? "true" : "false");
        assert_true(harness_run_json(pool, job, &res, 30000));
        assert_string_equal(harness_sget(&res.data, "status"), "ok");
        /* It saw no other process but its namespace's init (pid 1, root's),
         * and changed nothing of anyone. */
        const msgpack_object *seen = harness_get(&res.data, "results.0.val.0");
        assert_int_equal(seen->via.array.size, 1);
        assert_int_equal(seen->via.array.ptr[0].via.i64, 1);
        assert_int_equal(harness_get(&res.data, "results.0.val.1")->via.array.size, 0);
        msgpack_unpacked_destroy(&res);

        assert_true(harness_run_json(pool,
                                     "{\"v\":1,\"id\":\"n\",\"calls\":[{\"file\":\"spare.py\","
                                     "\"fcn\":\"state\"}]}",
                                     &res, 20000));
        assert_string_equal(harness_sget(&res.data, "status"), "ok");
        assert_int_equal(harness_get(&res.data, "results.0.val.0")->via.i64, 256);
        assert_int_equal(harness_get(&res.data, "results.0.val.1")->via.i64, cpus);
        assert_true(harness_get(&res.data, "results.0.val.2")->via.boolean);
        assert_int_not_equal(harness_get(&res.data, "results.0.val.3")->via.i64, 3); /* not idle */
        msgpack_unpacked_destroy(&res);
    }
    rb_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_root_only_file_does_not_leak_through_the_compile_cache),
        cmocka_unit_test(test_sysv_memory_dies_with_the_job),
        cmocka_unit_test(test_the_next_job_gets_a_spare_as_the_sandbox_made_it),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
