"""Jobs on different slots cannot touch each other (native mode, as root,
a uid per slot). Two jobs run at once on the two slots of one pool: A
keeps a private file and an abstract unix socket, and waits; B tries what
an attacker would: signal A, read A's directory and file, plant a module
there, prlimit and re-schedule A, connect to A's socket. B is given A's pid
as the host sees it (the test finds it from A's PID namespace: a job sees
only its own). Every attempt must fail, and A must come back unharmed with
its file intact."""
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pool_itest import POOL_RUN, run_pool  # noqa: E402
import worker_itest as wi  # noqa: E402

JOBS_PY = r'''
import ctypes, errno, json, os, signal, time

def victim(meet, name):
    import socket
    secret = os.path.join(os.environ["TMPDIR"], "secret.txt")
    with open(secret, "w") as f:
        f.write("only mine")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0" + name)
    s.listen(1)
    s.setblocking(False)
    with open(os.path.join(meet, "a.tmp"), "w") as f:
        json.dump({"ns": os.readlink("/proc/self/ns/pid"), "pid": os.getpid(),
                   "tmpdir": os.environ["TMPDIR"]}, f)
    os.rename(os.path.join(meet, "a.tmp"), os.path.join(meet, "a.json"))
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(meet, "b.done")):
        if time.monotonic() > deadline:
            return {"error": "the attacker never finished"}
        time.sleep(0.01)
    try:
        s.accept()
        reached = True
    except BlockingIOError:
        reached = False
    with open(secret) as f:
        return {"intact": f.read() == "only mine", "uid": os.getuid(), "reached": reached}

def attempt(fn):
    try:
        fn()
        return "succeeded"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def prlimit(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    class rlimit(ctypes.Structure):
        _fields_ = [("cur", ctypes.c_ulong), ("max", ctypes.c_ulong)]
    new = rlimit(1, 1)
    if libc.prlimit(pid, 0, ctypes.byref(new), None) != 0:  # RLIMIT_CPU
        raise OSError(ctypes.get_errno(), "prlimit")

def connect(name):
    import socket
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect("\0" + name)

def attacker(meet, name):
    path = os.path.join(meet, "host.json")
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return {"error": "the victim never started"}
        time.sleep(0.01)
    with open(path) as f:
        a = json.load(f)
    pid, tmpdir = a["pid"], a["tmpdir"]
    out = {
        "uid": os.getuid(),
        "signal": attempt(lambda: os.kill(pid, signal.SIGSTOP)),
        "listdir": attempt(lambda: os.listdir(tmpdir)),
        "read": attempt(lambda: open(os.path.join(tmpdir, "secret.txt")).read()),
        "plant": attempt(lambda: open(os.path.join(tmpdir, "fractions.py"), "w").write("x")),
        "prlimit": attempt(lambda: prlimit(pid)),
        "affinity": attempt(lambda: os.sched_setaffinity(pid, {0})),
        "abstract": attempt(lambda: connect(name)),
    }
    open(os.path.join(meet, "b.done"), "w").close()
    return out
'''


class SlotIsolation(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("cannot run here: needs root (uids per slot are set as root)")
        self.root = tempfile.mkdtemp(prefix="rb-slots-")
        os.chmod(self.root, 0o755)
        with open(os.path.join(self.root, "jobs.py"), "w") as f:
            f.write(JOBS_PY)
        os.chmod(os.path.join(self.root, "jobs.py"), 0o644)
        # Where the two jobs meet: any user may write, and not under /tmp
        # (each job has its own).
        os.makedirs(wi.SHARED_BASE, exist_ok=True)
        self.meet = os.path.join(wi.SHARED_BASE, "rb-meet-" + uuid.uuid4().hex[:8])
        os.mkdir(self.meet)
        os.chmod(self.meet, 0o1777)
        self.name = "rb-meet-" + uuid.uuid4().hex[:8]

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.meet, ignore_errors=True)

    def host_pid(self, stop):
        """Give the attacker the victim's pid as the host sees it: the
        process in the victim's PID namespace that is pid 2 there."""
        path = os.path.join(self.meet, "a.json")
        deadline = time.monotonic() + 60
        while not os.path.exists(path) and not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not os.path.exists(path):
            return
        with open(path) as f:
            a = json.load(f)
        pid = wi.host_pid_in_namespace(a["ns"], a["pid"])
        with open(os.path.join(self.meet, "host.tmp"), "w") as f:
            json.dump({"pid": pid or 0, "tmpdir": a["tmpdir"]}, f)
        os.chmod(os.path.join(self.meet, "host.tmp"), 0o644)
        os.rename(os.path.join(self.meet, "host.tmp"), os.path.join(self.meet, "host.json"))

    def run_pair(self, uid_base):
        jobs = [{"v": 1, "id": "victim", "timeout_ms": 60000,
                 "calls": [{"file": "jobs.py", "fcn": "victim", "args": [self.meet, self.name]}]},
                {"v": 1, "id": "attacker", "timeout_ms": 60000,
                 "calls": [{"file": "jobs.py", "fcn": "attacker",
                            "args": [self.meet, self.name]}]}]
        stop = threading.Event()
        finder = threading.Thread(target=self.host_pid, args=(stop,))
        finder.start()
        try:
            header, results, _ = run_pool(jobs, "native", "json", self.root, slots=2,
                                          extra=["--uid-base", str(uid_base)])
        finally:
            stop.set()
            finder.join(70)
        with open(os.path.join(self.meet, "host.json")) as f:
            self.assertGreater(json.load(f)["pid"], 2)  # the test found the victim
        return header, results

    def test_other_slots_job_cannot_be_touched(self):
        header, results = self.run_pair(61000)
        self.assertIn("user=uid-per-slot", header["sandbox"])
        v, a = results["victim"], results["attacker"]
        self.assertEqual(a["status"], "ok", a)
        self.assertEqual(v["status"], "ok", v)
        got = a["results"][0]["val"]
        # The victim's pid names nothing in the attacker's PID namespace,
        # its directory is in its own /tmp, its abstract socket is outside
        # the attacker's Landlock domain, and sched_setaffinity is refused
        # to every job where each slot has a CPU of its own.
        pinned = "cpu-per-slot" in header["sandbox"]
        want = {"signal": "ESRCH", "listdir": "ENOENT", "read": "ENOENT", "plant": "ENOENT",
                "prlimit": "ESRCH", "affinity": "EPERM" if pinned else "ESRCH",
                "abstract": "EPERM"}
        for k, err in want.items():
            self.assertEqual(got[k], err, "%s: %r" % (k, got))
        victim = v["results"][0]["val"]
        self.assertEqual(victim["intact"], True, victim)
        self.assertEqual(victim["reached"], False, victim)
        self.assertNotEqual(victim["uid"], got["uid"])  # one uid per slot
        self.assertEqual(sorted([victim["uid"], got["uid"]]), [61000, 61001])


if __name__ == "__main__":
    if not os.path.exists(POOL_RUN):
        print("tests/pool_run is missing: build the tests first")
        sys.exit(1)
    wi.run_tests([SlotIsolation])
