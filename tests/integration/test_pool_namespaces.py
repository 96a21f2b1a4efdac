"""What a job sees of the host, and what it leaves (native and container
mode, as root).

Each child has its own PID namespace (with rebound-init as pid 1), its own
mount namespace with a fresh size- and inode-bounded tmpfs at /tmp,
/var/tmp and /dev/shm, a /proc of its own, the code root read-only, and
host paths it has no business with hidden. Each test here is a job that
tries what an attacker (or careless code) would, and the assertion that
it failed; where two jobs are involved, that the other was unharmed.

In container mode the same holds, and more is out of sight: the job sees
the code root, /usr (the interpreter and its libraries), a few files of
/etc and its own tmpfs, nothing else of the host (not /etc/shadow, /home,
the worker's programs, the broker's state), and has no network.
"""
import os
import shutil
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pool_itest import POOL_RUN, run_pool  # noqa: E402
import worker_itest as wi  # noqa: E402

JOBS_PY = r'''
import errno, os, time

SCRATCH = ["/tmp", "/var/tmp", "/dev/shm"]

def leave(tag):
    """Leave a file in each scratch directory and in TMPDIR."""
    made = []
    for d in SCRATCH + [os.environ["TMPDIR"]]:
        p = os.path.join(d, "left-" + tag)
        with open(p, "w") as f:
            f.write("left")
        made.append(p)
    return made

def leave_more(tag):
    """A POSIX message queue and a directory tree 200 levels deep."""
    import ctypes
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
    fd = rt.mq_open(("/rb-" + tag).encode(), os.O_CREAT | os.O_RDWR, 0o600, None)
    d = "/tmp/deep-" + tag
    for _ in range(200):
        d = os.path.join(d, "d")
    os.makedirs(d)
    return [fd >= 0, len(d)]

def find_more(tag):
    """Whether the queue and the tree are there."""
    import ctypes
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
    fd = rt.mq_open(("/rb-" + tag).encode(), os.O_RDWR)
    err = ctypes.get_errno()
    return [fd >= 0, errno.errorcode.get(err, str(err)) if fd < 0 else "",
            os.path.exists("/tmp/deep-" + tag)]

def find(tag):
    """What this job sees of another job's files."""
    return [p for d in SCRATCH for p in [os.path.join(d, "left-" + tag)] if os.path.exists(p)]

def errname(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def fill(mb):
    """Write mb MiB into each scratch directory; the error where it stops."""
    out = {}
    block = b"x" * (1 << 20)
    for d in SCRATCH:
        def write():
            with open(os.path.join(d, "big"), "wb") as f:
                for _ in range(mb):
                    f.write(block)
                    f.flush()
        out[d] = errname(write)
    return out

def many(n):
    """Make up to n files in /tmp; how many, and the error that stopped it."""
    made, err = 0, "ok"
    for i in range(n):
        try:
            open("/tmp/f%d" % i, "w").close()
            made += 1
        except OSError as e:
            err = errno.errorcode.get(e.errno, str(e.errno))
            break
    return [made, err]

def look(paths):
    """For each path: its listing, or the error."""
    out = {}
    for p in paths:
        try:
            out[p] = sorted(os.listdir(p))
        except OSError as e:
            out[p] = errno.errorcode.get(e.errno, str(e.errno))
    return out

def read(paths):
    out = {}
    for p in paths:
        def r():
            with open(p) as f:
                f.read()
        out[p] = errname(r)
    return out

def exists(paths):
    return {p: os.path.exists(p) for p in paths}

def prefixes():
    """Where the embedded Python lives (kept visible: it imports from there)."""
    import sys
    return sorted({sys.prefix, sys.base_prefix})

def tcp(port):
    import socket
    def c():
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.close()
    return errname(c)

def hog(procs, mb):
    """procs processes, each writing mb MiB: how each ended (0: it held its
    memory; -9: killed)."""
    pids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            try:
                b = bytearray(mb << 20)
                for i in range(0, len(b), 4096):
                    b[i] = 1
                time.sleep(0.5)
            finally:
                os._exit(0)
        pids.append(pid)
    return [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]

def tmpfs_hog(mb):
    """Write mb MiB into /dev/shm (memory, not address space), in files of
    100 MiB (a file may not pass 256 MiB)."""
    block = b"x" * (1 << 20)
    for n in range(0, mb, 100):
        with open("/dev/shm/hog%d" % n, "wb") as f:
            for _ in range(min(100, mb - n)):
                f.write(block)
    return "ok"

def fork_bomb(meet):
    """As many processes as it can get; then tell the other job."""
    kids = []
    err = "none"
    try:
        for _ in range(2000):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            kids.append(pid)
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
    open(os.path.join(meet, "bomb.full"), "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(meet, "other.done")) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [len(kids), err]

def fork_meanwhile(meet):
    """Wait for the bomb to be at its limit, then fork a few processes."""
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(meet, "bomb.full")) and time.monotonic() < deadline:
        time.sleep(0.01)
    got = 0
    try:
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            got += 1
    finally:
        open(os.path.join(meet, "other.done"), "w").close()
    return got

def burn(meet, n):
    """n spinning processes; each tries to widen its CPUs to all of them.
    The CPUs they end up with; then tell the other job, and wait for it."""
    import multiprocessing
    everything = set(range(os.cpu_count()))
    r, w = os.pipe()
    kids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            try:
                os.sched_setaffinity(0, everything)
            except OSError:
                pass
            os.write(w, (",".join(map(str, sorted(os.sched_getaffinity(0)))) + "\n").encode())
            while True:
                pass
        kids.append(pid)
    seen = set()
    buf = b""
    while buf.count(b"\n") < n:
        buf += os.read(r, 4096)
    for line in buf.decode().split():
        seen.add(line)
    open(os.path.join(meet, "burning"), "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(meet, "looked")) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in kids:
        os.kill(pid, 9)
    return sorted(seen)

def my_cpus(meet):
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(meet, "burning")) and time.monotonic() < deadline:
        time.sleep(0.01)
    cpus = sorted(os.sched_getaffinity(0))
    open(os.path.join(meet, "looked"), "w").close()
    return cpus

def write_code_root(root):
    def w():
        with open(os.path.join(root, "planted.py"), "w") as f:
            f.write("x = 1")
    return errname(w)

def procs():
    """The pids /proc lists, with a child running."""
    import subprocess
    p = subprocess.Popen(["/bin/sleep", "5"])
    try:
        return sorted(int(x) for x in os.listdir("/proc") if x.isdigit())
    finally:
        p.kill()
        p.wait()

def daemon(fifo):
    """Start a double-forked, setsid daemon that holds fifo open for writing
    (the job holds the read end until the daemon is up), then return."""
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            w = os.open(fifo, os.O_WRONLY)
            os.write(w, b"up")
            while True:
                time.sleep(1)
        os._exit(0)
    deadline = time.monotonic() + 10
    got = b""
    while not got and time.monotonic() < deadline:
        try:
            got = os.read(r, 2)
        except BlockingIOError:
            time.sleep(0.01)
    os.close(r)
    return got.decode()

def writer_left(fifo):
    """Whether anything still holds fifo open for writing: reading an empty
    FIFO says EOF only when no writer is left. Waits (bounded) for the
    previous job's namespace to be taken down."""
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            try:
                if os.read(r, 16) == b"":
                    return False
            except BlockingIOError:
                pass
            time.sleep(0.01)
        return True
    finally:
        os.close(r)
'''


def python_paths(prefixes, d):
    """The names directly under d that lead to one of the embedded Python's
    prefixes (pyenv's under /root: ".pyenv"), which the sandbox keeps."""
    names = set()
    for p in prefixes:
        if p.startswith(d.rstrip("/") + "/"):
            names.add(p[len(d.rstrip("/")) + 1:].split("/")[0])
    return names


def job(jid, fcn, *args):
    return {"v": 1, "id": jid, "timeout_ms": 30000,
            "calls": [{"file": "jobs.py", "fcn": fcn, "args": list(args)}]}


class Namespaces(unittest.TestCase):
    MODE = "native"

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("cannot run here: needs root (namespaces as the sandbox makes them)")
        # Under /tmp on purpose: each child binds it back into its own /tmp.
        self.root = tempfile.mkdtemp(prefix="rb-ns-", dir="/tmp")
        os.chmod(self.root, 0o777)  # only the read-only mount stops a write
        with open(os.path.join(self.root, "jobs.py"), "w") as f:
            f.write(JOBS_PY)
        os.chmod(os.path.join(self.root, "jobs.py"), 0o644)
        self.shared = wi.shared_dir("ns")
        self.tag = uuid.uuid4().hex[:8]

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.shared, ignore_errors=True)

    def run_jobs(self, jobs, slots=1, extra=(), uid_base=62000):
        header, results, _ = run_pool(jobs, self.MODE, "json", self.root, slots=slots,
                                      extra=["--uid-base", str(uid_base)] + list(extra))
        self.assertIn("pidns", header["sandbox"])
        self.assertIn("mountns", header["sandbox"])
        self.assertIn("cgroup", header["sandbox"])
        for r in results.values():
            self.assertEqual(r["status"], "ok", r)
        return {k: r["results"][0]["val"] for k, r in results.items()}

    def test_scratch_is_the_jobs_own_and_nothing_survives(self):
        # One slot: the second job runs after the first on the same zygote;
        # two slots: jobs on the other slot. Neither finds what it left.
        for slots in (1, 2):
            with self.subTest(slots=slots):
                got = self.run_jobs([job("a", "leave", self.tag), job("b", "find", self.tag),
                                     job("c", "find", self.tag)], slots=slots)
                self.assertEqual(len(got["a"]), 4)
                self.assertEqual(got["b"], [])
                self.assertEqual(got["c"], [])
                for p in got["a"]:
                    self.assertFalse(os.path.exists(p), p)  # not on the host either

    def test_message_queues_and_deep_trees_do_not_survive(self):
        got = self.run_jobs([job("a", "leave_more", self.tag), job("b", "find_more", self.tag)])
        self.assertEqual(got["a"][0], True)  # made
        self.assertEqual(got["b"], [False, "ENOENT", False])
        self.assertFalse(os.path.exists("/tmp/deep-" + self.tag))
        self.assertFalse(os.path.exists("/dev/mqueue/rb-" + self.tag))

    def test_scratch_is_bounded_in_size_and_files(self):
        got = self.run_jobs([job("fill", "fill", 12), job("many", "many", 5000),
                             job("after", "fill", 4)],
                            extra=["--tmp-mb", "8", "--tmp-inodes", "300"])
        self.assertEqual(got["fill"], {"/tmp": "ENOSPC", "/var/tmp": "ENOSPC",
                                       "/dev/shm": "ENOSPC"})
        made, err = got["many"]
        self.assertEqual(err, "ENOSPC")
        self.assertLess(made, 300)
        # The next job has all of its own space.
        self.assertEqual(got["after"], {"/tmp": "ok", "/var/tmp": "ok", "/dev/shm": "ok"})

    def test_host_paths_are_hidden(self):
        # Files only the host should see, under paths jobs have no business
        # with: world-readable, so only hiding keeps them out.
        planted = []
        for d in ("/var/lib", "/root", "/home", "/run"):
            p = os.path.join(d, "rb-secret-" + self.tag)
            with open(p, "w") as f:
                f.write("host only")
            os.chmod(p, 0o644)
            planted.append(p)
        try:
            got = self.run_jobs([job("read", "read", planted),
                                 job("look", "look", ["/var/lib", "/root", "/home", "/run",
                                                      "/var/log"]),
                                 job("prefixes", "prefixes")])
        finally:
            for p in planted:
                os.unlink(p)
        for p in planted:
            self.assertEqual(got["read"][p], "ENOENT", p)
        for d, listing in got["look"].items():
            # Covered by an empty tmpfs (native), or absent (container); but
            # for the way to an embedded Python that lives there.
            keep = python_paths(got["prefixes"], d)
            if keep and listing != "ENOENT":
                self.assertEqual(set(listing), keep, d)
            else:
                self.assertIn(listing, ([], "ENOENT"), d)

    def test_the_code_root_is_read_only(self):
        got = self.run_jobs([job("w", "write_code_root", self.root)])
        self.assertEqual(got["w"], "EROFS")
        self.assertFalse(os.path.exists(os.path.join(self.root, "planted.py")))

    def test_proc_lists_the_jobs_processes_only(self):
        got = self.run_jobs([job("p", "procs")])
        # rebound-init, the job, and its child: nothing of the host.
        self.assertEqual(got["p"], [1, 2, 3])

    def test_memory_is_bounded_per_job_not_per_process(self):
        # 512 MiB for the job: four processes of 200 MiB each are each
        # within their own address-space limit, not together.
        got = self.run_jobs([job("hog", "hog", 4, 200), job("ok", "hog", 2, 100)],
                            extra=["--mem-limit-mb", "512"])
        self.assertIn(-9, got["hog"])  # the group's limit killed one at least
        self.assertEqual(got["ok"], [0, 0])  # and the next job has all of its own

    def test_shared_memory_counts_against_the_job(self):
        # /dev/shm is memory: 700 MiB there is more than the job's 512.
        header, results, _ = run_pool([job("shm", "tmpfs_hog", 700), job("after", "hog", 2, 100)],
                                      self.MODE, "json", self.root, slots=1,
                                      extra=["--uid-base", "62000", "--mem-limit-mb", "512",
                                             "--tmp-mb", "1024"])
        self.assertIn("cgroup", header["sandbox"])
        self.assertEqual(results["shm"]["status"], "crashed", results["shm"])
        self.assertEqual(results["after"]["status"], "ok", results["after"])

    def test_a_fork_bomb_is_bounded_per_job(self):
        # Both slots as one user (--uid-base 0: nobody): only the job's own
        # bound can keep the bomb from taking the other job's processes.
        got = self.run_jobs([job("bomb", "fork_bomb", self.shared),
                             job("other", "fork_meanwhile", self.shared)], slots=2, uid_base=0)
        made, err = got["bomb"]
        self.assertEqual(err, "EAGAIN")
        self.assertLess(made, 128)
        self.assertEqual(got["other"], 20)  # the other slot's job forks as usual

    def test_a_slot_has_a_cpu_of_its_own(self):
        if os.cpu_count() < 2:
            self.skipTest("cannot run here: one CPU (a CPU per slot needs two)")
        got = self.run_jobs([job("burn", "burn", self.shared, 4),
                             job("other", "my_cpus", self.shared)], slots=2)
        # Four spinning processes that asked for every CPU: still on the
        # one CPU of their slot, which the other slot's job does not share.
        self.assertEqual(len(got["burn"]), 1, got)
        (burning,) = got["burn"]
        self.assertEqual(len(burning.split(",")), 1, got)
        self.assertEqual(len(got["other"]), 1, got)
        self.assertNotEqual(int(burning), got["other"][0])

    def test_a_daemon_dies_with_its_job(self):
        fifo = os.path.join(self.shared, "fifo")
        os.mkfifo(fifo)
        os.chmod(fifo, 0o666)
        got = self.run_jobs([job("d", "daemon", fifo), job("check", "writer_left", fifo)])
        self.assertEqual(got["d"], "up")  # it was started, setsid and all
        self.assertEqual(got["check"], False)  # and it was gone after the job


class ContainerNamespaces(Namespaces):
    """Everything above, with the pool's mother in a bubblewrap container."""
    MODE = "container"

    def setUp(self):
        if not shutil.which("bwrap"):
            self.skipTest("cannot run here: bubblewrap (bwrap) is not installed")
        super().setUp()

    def test_only_the_code_root_usr_and_its_tmpfs_are_there(self):
        host_only = ["/etc/shadow", "/home", "/root", "/var/lib/rabbitmq", "/var/lib/redis",
                     "/var/log", os.path.realpath(wi.BIN_DIR), POOL_RUN, "/boot", "/srv"]
        host_only = [p for p in host_only if os.path.exists(p)]  # the host has them
        self.assertIn("/etc/shadow", host_only)
        prefixes = self.run_jobs([job("p", "prefixes")])["p"]
        # The way to an embedded Python outside /usr (pyenv's, under /root)
        # is there; its prefix is bound, nothing else of the directory.
        host_only = [p for p in host_only if not python_paths(prefixes, p)]
        got = self.run_jobs([job("e", "exists", host_only + ["/usr/bin/python3", self.root]
                                 + prefixes)])
        for p in host_only:
            self.assertFalse(got["e"][p], p)
        self.assertTrue(got["e"]["/usr/bin/python3"])
        self.assertTrue(got["e"][self.root])
        for p in prefixes:
            self.assertTrue(got["e"][p], p)

    def test_no_network(self):
        import socket
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        try:
            got = self.run_jobs([job("t", "tcp", server.getsockname()[1])])
        finally:
            server.close()
        # Its own empty network namespace: nothing listens on its loopback,
        # which is down.
        self.assertIn(got["t"], ("ENETUNREACH", "ECONNREFUSED", "EACCES"))


if __name__ == "__main__":
    if not os.path.exists(POOL_RUN):
        print("tests/pool_run is missing: build the tests first")
        sys.exit(1)
    wi.run_tests([Namespaces, ContainerNamespaces])
