"""Jobs on different slots cannot touch each other (native mode, as root,
a uid per slot). Two jobs run at once on the two slots of one pool: A
keeps a private file and waits; B tries what an attacker would: signal A,
read A's directory and file, prlimit and re-schedule A. Every attempt must
fail, and A must come back unharmed with its file intact."""
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
import ctypes, errno, json, os, signal, time

def victim(meet):
    secret = os.path.join(os.environ["TMPDIR"], "secret.txt")
    with open(secret, "w") as f:
        f.write("only mine")
    with open(os.path.join(meet, "a.tmp"), "w") as f:
        json.dump({"pid": os.getpid(), "tmpdir": os.environ["TMPDIR"]}, f)
    os.rename(os.path.join(meet, "a.tmp"), os.path.join(meet, "a.json"))
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(meet, "b.done")):
        if time.monotonic() > deadline:
            return {"error": "the attacker never finished"}
        time.sleep(0.01)
    with open(secret) as f:
        return {"intact": f.read() == "only mine", "uid": os.getuid()}

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

def attacker(meet):
    path = os.path.join(meet, "a.json")
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
        # Where the two jobs meet: any user may write (host /tmp is shared).
        self.meet = os.path.join("/tmp", "rb-meet-" + uuid.uuid4().hex[:8])
        os.mkdir(self.meet)
        os.chmod(self.meet, 0o1777)

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.meet, ignore_errors=True)

    def run_pair(self, uid_base):
        jobs = [{"v": 1, "id": "victim", "timeout_ms": 60000,
                 "calls": [{"file": "jobs.py", "fcn": "victim", "args": [self.meet]}]},
                {"v": 1, "id": "attacker", "timeout_ms": 60000,
                 "calls": [{"file": "jobs.py", "fcn": "attacker", "args": [self.meet]}]}]
        header, results, _ = run_pool(jobs, "native", "json", self.root, slots=2,
                                         extra=["--uid-base", str(uid_base)])
        return header, results

    def test_other_slots_job_cannot_be_touched(self):
        header, results = self.run_pair(61000)
        self.assertIn("user=uid-per-slot", header["sandbox"])
        v, a = results["victim"], results["attacker"]
        self.assertEqual(a["status"], "ok", a)
        self.assertEqual(v["status"], "ok", v)
        got = a["results"][0]["val"]
        want = {"signal": "EPERM", "listdir": "EACCES", "read": "EACCES", "plant": "EACCES",
                "prlimit": "EPERM", "affinity": "EPERM"}
        for k, err in want.items():
            self.assertEqual(got[k], err, "%s: %r" % (k, got))
        victim = v["results"][0]["val"]
        self.assertEqual(victim["intact"], True, victim)
        self.assertNotEqual(victim["uid"], got["uid"])  # one uid per slot
        self.assertEqual(sorted([victim["uid"], got["uid"]]), [61000, 61001])


if __name__ == "__main__":
    if not os.path.exists(POOL_RUN):
        print("tests/pool_run is missing: build the tests first")
        sys.exit(1)
    wi.run_tests([SlotIsolation])
