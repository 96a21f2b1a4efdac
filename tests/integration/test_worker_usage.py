"""Per-job accounting: every result says what its job cost (README,
"Per-job accounting"; PROTOCOL.md): `cpu_ms` (user + system time of the
child and of the processes it waited for), `max_rss_kb`, `wall_ms` (the
job's run in the child), and for a crashed child how it ended (`exit`).
The heartbeat sums the jobs' CPU time (`cpu_ms_total`).

Each figure is checked against a job built to cost it: ~200 ms of CPU in
the job, the same in a process the job starts and waits for, 200 MB
written, a child killed by SIGSEGV."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import (REDIS_URL, WorkerCase, job, redis_client, run_tests,  # noqa: E402
                          wait_until)

COST_PY = '''
import os, signal, subprocess, sys, time

def burn(ms):
    end = time.process_time() + ms / 1000.0
    while time.process_time() < end:
        pass
    return "burnt"

def burn_in_child(ms):
    code = ("import time\\nend = time.process_time() + %f\\n"
            "while time.process_time() < end:\\n    pass\\n" % (ms / 1000.0))
    subprocess.run([sys.executable, "-S", "-c", code], check=True)
    return "burnt in a child"

def hold(mb):
    block = b"x" * (mb << 20)
    return len(block)

def sleep(s):
    time.sleep(s)
    return "slept"

def segfault():
    os.kill(os.getpid(), signal.SIGSEGV)
'''


def cost_call(fcn, *args):
    return {"file": "cost.py", "fcn": fcn, "args": list(args)}


class Usage(WorkerCase):
    TAG = "usage"
    PREFIX = "rbtest-usage-%d" % os.getpid()
    WORKER_KW = {"slots": 1, "args": ["--redis-url", REDIS_URL, "--redis-prefix", PREFIX,
                                      "--heartbeat-ms", "200", "--worker-id", "w-usage"],
                 "files": {"cost.py": COST_PY}}
    KEY = "%s:worker:w-usage" % PREFIX

    def run_job(self, name, *calls):
        r = self.client.call(self.queue, job(name, list(calls)), timeout=120)
        return r

    def test_cpu_time_of_the_job(self):
        r = self.run_job("burn", cost_call("burn", 200))
        self.assertEqual(r["status"], "ok", r)
        print("200 ms burn: cpu_ms %.1f, wall_ms %.1f, ms %.1f"
              % (r["cpu_ms"], r["wall_ms"], r["ms"]))
        self.assertGreaterEqual(r["cpu_ms"], 150, r)
        self.assertLessEqual(r["cpu_ms"], 400, r)
        self.assertGreaterEqual(r["wall_ms"], r["cpu_ms"] * 0.9, r)

    def test_a_process_the_job_waited_for_counts(self):
        r = self.run_job("burn-child", cost_call("burn_in_child", 200))
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["results"][0]["val"], "burnt in a child", r)
        print("200 ms burn in a child process: cpu_ms %.1f" % r["cpu_ms"])
        self.assertGreaterEqual(r["cpu_ms"], 150, r)
        self.assertLessEqual(r["cpu_ms"], 400, r)

    def test_sleeping_costs_wall_time_not_cpu(self):
        r = self.run_job("sleep", cost_call("sleep", 0.3))
        self.assertEqual(r["status"], "ok", r)
        self.assertGreaterEqual(r["wall_ms"], 290, r)
        self.assertLess(r["cpu_ms"], 100, r)

    def test_peak_memory(self):
        small = self.run_job("small", cost_call("hold", 1))
        big = self.run_job("big", cost_call("hold", 200))
        self.assertEqual((small["status"], big["status"]), ("ok", "ok"), (small, big))
        print("max_rss_kb: 1 MB job %d, 200 MB job %d" % (small["max_rss_kb"], big["max_rss_kb"]))
        self.assertGreaterEqual(big["max_rss_kb"], 200 * 1024, big)
        self.assertGreaterEqual(big["max_rss_kb"] - small["max_rss_kb"], 190 * 1024,
                                (small, big))

    def test_a_crashed_child_says_how_it_ended(self):
        r = self.run_job("segv", cost_call("segfault"))
        self.assertEqual(r["status"], "crashed", r)
        self.assertEqual(r["exit"]["signal"], 11, r)
        self.assertIn("cpu_ms", r)
        self.assertIn("max_rss_kb", r)
        self.assertNotIn("wall_ms", r)

    def test_the_heartbeat_sums_the_cpu_time(self):
        redis = redis_client()

        def total():
            return float(redis.hget(self.KEY, "cpu_ms_total") or -1)

        wait_until(lambda: total() >= 0, 30, "cpu_ms_total in the heartbeat")
        before = total()
        r = self.run_job("burn-hb", cost_call("burn", 200))
        self.assertEqual(r["status"], "ok", r)
        wait_until(lambda: total() >= before + r["cpu_ms"] - 0.01, 10,
                   "cpu_ms_total to grow by the job's cpu_ms (%.2f)" % r["cpu_ms"])


if __name__ == "__main__":
    run_tests([Usage], redis=True)
