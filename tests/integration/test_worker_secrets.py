"""The broker's and Redis' passwords stay out of sight: no process of the
worker shows them in its command line (/proc/<pid>/cmdline, which every
user of the host can read), and a job sees neither them nor the worker's
settings in its environment."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worker_itest as wi  # noqa: E402

MODE = os.environ.get("REBOUND_TEST_WORKER_MODE", "native")

ENV_PY = '''
import os
def env():
    return dict(os.environ)
def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\\0", b" ").decode()
    except FileNotFoundError:
        return "(not visible)"
'''


def tree(pid):
    """pid and all its descendants."""
    out = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(p) for p in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out.extend(tree(k))
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Secrets(wi.WorkerCase):
    TAG = "secrets"
    WORKER_KW = {"mode": MODE, "args": ["--redis-url", wi.REDIS_URL.replace(
        "redis://", "redis://:hunter2-rb@", 1)] if wi.REDIS_URL else []}

    def setUp(self):
        with open(os.path.join(self.worker.code_root, "env.py"), "w") as f:
            f.write(ENV_PY)
        os.chmod(os.path.join(self.worker.code_root, "env.py"), 0o644)

    def test_no_password_in_any_command_line(self):
        self.assertIn(":guest@", wi.AMQP_URL)  # the test URL carries one
        pids = tree(self.worker.pid)
        # The supervisor, its consumers and their trampolines (mother,
        # zygotes, children) at least.
        self.assertGreaterEqual(len(pids), 4, pids)
        for pid in pids:
            text = cmdline(pid)
            self.assertNotIn(":guest@", text, "pid %d: %s" % (pid, text))
            self.assertNotIn("hunter2-rb", text, "pid %d: %s" % (pid, text))
        sup = cmdline(self.worker.pid)
        self.assertIn("amqp://guest:*****@", sup)  # masked, the rest still shown

    def test_a_job_sees_no_secret(self):
        r = self.client.call(self.queue, wi.job("e", [{"file": "env.py", "fcn": "env"}]))
        self.assertEqual(r["status"], "ok", r)
        env = r["results"][0]["val"]
        self.assertEqual([k for k in env if k.startswith("REBOUND_")], [])
        for v in env.values():
            self.assertNotIn("guest:guest", v)
            self.assertNotIn("hunter2-rb", v)
        r = self.client.call(self.queue, wi.job("c", [{"file": "env.py", "fcn": "cmdline",
                                                          "args": [self.worker.pid]}]))
        self.assertEqual(r["status"], "ok", r)
        self.assertNotIn(":guest@", r["results"][0]["val"])
        if MODE == "native":
            # In its own PID namespace, the job cannot even name the worker.
            self.assertEqual(r["results"][0]["val"], "(not visible)")


if __name__ == "__main__":
    wi.run_tests([Secrets], redis=True)
