#!/usr/bin/python3
"""rebound-status against the test Redis: table, --json, --watch, exit codes.

The heartbeats are written here directly (the Redis contract of
consumer/health), under a key prefix of this test's own, so the output is
known exactly. Needs REBOUND_TEST_REDIS_URL and REBOUND_BIN_DIR (exit 77
without them).
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse

REDIS_URL = os.environ.get("REBOUND_TEST_REDIS_URL", "")
BIN_DIR = os.environ.get("REBOUND_BIN_DIR", "")
STATUS = os.path.join(BIN_DIR, "rebound-status")
PREFIX = "rbtest-status-%d" % os.getpid()


class Redis:
    """Just enough RESP to set up keys."""

    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port or 6379), timeout=5)
        self.buf = b""
        if u.password:
            self.cmd("AUTH", urllib.parse.unquote(u.password))
        db = u.path.strip("/")
        if db:
            self.cmd("SELECT", db)

    def close(self):
        self.sock.close()

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)


def now_ms():
    return int(time.time() * 1000)


def worker_fields(wid, state, **over):
    f = {
        "id": wid, "host": "host-" + wid, "pid": 100, "queue": "rebound.jobs",
        "mode": "fork", "version": "10", "state": state, "started_ms": now_ms() - 60000,
        "beat_ms": now_ms(), "slots": 4, "busy": 1, "jobs_ok": 10, "jobs_error": 1,
        "jobs_timeout": 2, "jobs_crashed": 3, "jobs_rejected": 4, "redelivered": 5,
        "last_job_ms": now_ms() - 1000, "avg_run_ms": "12.50", "rss_kb": 2048,
        "preload_failed": "", "sandbox": "seccomp",
    }
    f.update(over)
    return f


def run_status(*args, env=None, timeout=20):
    e = dict(os.environ)
    e.pop("REBOUND_REDIS_URL", None)
    if env:
        e.update(env)
    p = subprocess.run([STATUS, *args], env=e, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class StatusTest(unittest.TestCase):
    def setUp(self):
        self.r = Redis(REDIS_URL)
        self.prefix = "%s-%s" % (PREFIX, self._testMethodName)

    def tearDown(self):
        keys = self.r.cmd("KEYS", self.prefix + ":*")
        if keys:
            self.r.cmd("DEL", *keys)
        self.r.close()

    def put_worker(self, wid, state, **over):
        f = worker_fields(wid, state, **over)
        args = []
        for k, v in f.items():
            args += [k, v]
        self.r.cmd("HSET", "%s:worker:%s" % (self.prefix, wid), *args)
        self.r.cmd("PEXPIRE", "%s:worker:%s" % (self.prefix, wid), 60000)
        self.r.cmd("ZADD", self.prefix + ":workers", f["beat_ms"], wid)
        return f

    def put_lost(self, wid, age_ms):
        self.r.cmd("ZADD", self.prefix + ":workers", now_ms() - age_ms, wid)

    def status(self, *args, **kw):
        return run_status("--redis-url", REDIS_URL, "--prefix", self.prefix, *args, **kw)

    # ---- exit codes -------------------------------------------------------------

    def test_usage_errors_exit_2_naming_the_flag(self):
        cases = [
            (["--bogus"], "--bogus"),
            (["--watch", "abc"], "--watch: 'abc'"),
            (["--watch", "0"], "--watch: '0'"),
            (["--watch"], "--watch needs a value"),
            (["--prefix"], "--prefix needs a value"),
            (["--redis-url", "ftp://h"], "--redis-url"),
            (["--redis-url", "redis://h:99999/0"], "port '99999'"),
            (["stray"], "'stray'"),
        ]
        for args, want in cases:
            code, out, err = run_status(*args)
            self.assertEqual(code, 2, (args, out, err))
            self.assertIn(want, err, args)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        code, _, err = run_status(env={"REBOUND_REDIS_URL": "nonsense"})
        self.assertEqual(code, 2)
        self.assertIn("REBOUND_REDIS_URL", err)

    def test_unreachable_exit_3_with_address(self):
        port = free_port()
        code, out, err = run_status("--redis-url", "redis://127.0.0.1:%d/0" % port)
        self.assertEqual(code, 3, err)
        self.assertIn("127.0.0.1:%d" % port, err)
        self.assertEqual(out, "")
        # also through the environment
        code, _, err = run_status(env={"REBOUND_REDIS_URL": "redis://127.0.0.1:%d/0" % port})
        self.assertEqual(code, 3)
        self.assertIn("127.0.0.1:%d" % port, err)

    def test_no_workers_exit_1(self):
        code, out, err = self.status("--json")
        self.assertEqual(code, 1, err)
        doc = json.loads(out)
        self.assertEqual(doc["workers"], [])
        self.assertEqual(doc["totals"]["workers"], 0)
        self.assertEqual(doc["totals"]["ready"], 0)

    def test_only_non_ready_workers_exit_1(self):
        self.put_worker("w1", "draining")
        self.put_worker("w2", "starting")
        self.put_lost("w3", 5000)
        code, _, err = self.status()
        self.assertEqual(code, 1, err)
        self.put_worker("w4", "ready")
        code, _, err = self.status()
        self.assertEqual(code, 0, err)

    def test_env_url_is_used(self):
        self.put_worker("w1", "ready")
        code, out, err = run_status("--prefix", self.prefix, env={"REBOUND_REDIS_URL": REDIS_URL})
        self.assertEqual(code, 0, err)
        self.assertIn("w1", out)

    # ---- table ---------------------------------------------------------------------

    def test_table(self):
        self.put_worker("b-worker", "ready", busy=3, slots=8, jobs_ok=20)
        self.put_worker("a-worker", "draining", jobs_ok=5, rss_kb=1048576)
        self.put_lost("c-gone", 42000)
        code, out, err = self.status()
        self.assertEqual(code, 0, err)
        lines = out.rstrip("\n").split("\n")
        self.assertEqual(len(lines), 5, out)
        header = lines[0]
        cols = ["ID", "HOST", "STATE", "BUSY", "OK", "ERROR", "TIMEOUT", "CRASHED",
                "REJECTED", "JOBS/S", "AGE", "RSS"]
        self.assertEqual(header.split(), cols)
        self.assertEqual([l.split()[0] for l in lines[1:]],
                         ["a-worker", "b-worker", "c-gone", "TOTAL"])
        # aligned: every row as wide as the header, columns at the same place
        for l in lines:
            self.assertEqual(len(l), len(header), out)
        state_at = header.index("STATE")
        self.assertTrue(lines[1][state_at:].startswith("draining"), out)
        self.assertTrue(lines[2][state_at:].startswith("ready"), out)
        self.assertTrue(lines[3][state_at:].startswith("lost"), out)
        self.assertTrue(lines[4][state_at:].startswith("1 ready, 1 lost"), out)
        b = lines[2].split()
        self.assertEqual(b[3:10], ["3/8", "20", "1", "2", "3", "4", "-"])
        self.assertEqual(b[-1], "2.0M")
        a = lines[1].split()
        self.assertEqual(a[-1], "1.0G")
        c = lines[3].split()
        self.assertEqual(c[3:10], ["-"] * 7)
        self.assertTrue(re.match(r"4[0-9]s$", c[10]), c)  # age of the last beat
        total = lines[4].split()
        # TOTAL, "2 workers"(2 words) ... busy over live workers: 3/8 + 1/4
        self.assertIn("4/12", total)
        self.assertIn("25", total)  # ok: 20 + 5

    # ---- JSON ----------------------------------------------------------------------

    def test_json(self):
        fb = self.put_worker("b-worker", "ready", busy=3, slots=8, jobs_ok=20)
        self.put_worker("a-worker", "draining", jobs_ok=5, preload_failed="numpy,lxml")
        self.put_lost("c-gone", 7000)
        code, out, err = self.status("--json")
        self.assertEqual(code, 0, err)
        doc = json.loads(out)
        ws = doc["workers"]
        self.assertEqual([w["id"] for w in ws], ["a-worker", "b-worker", "c-gone"])
        a, b, c = ws
        # every hash field, numbers as numbers, text as text
        for k in worker_fields("x", "y"):
            self.assertIn(k, b)
        self.assertEqual(b["state"], "ready")
        self.assertEqual(b["jobs_ok"], 20)
        self.assertEqual(b["busy"], 3)
        self.assertEqual(b["beat_ms"], fb["beat_ms"])
        self.assertEqual(b["avg_run_ms"], 12.5)
        self.assertIsInstance(b["pid"], int)
        self.assertEqual(b["version"], "10")
        self.assertEqual(b["preload_failed"], "")
        self.assertEqual(a["preload_failed"], "numpy,lxml")
        self.assertIs(b["lost"], False)
        self.assertTrue(0 <= b["age_ms"] < 60000)
        self.assertNotIn("jobs_per_s", b)  # only in --watch
        # the lost one: id, beat_ms from the score, age, lost
        self.assertEqual(set(c), {"id", "beat_ms", "age_ms", "lost"})
        self.assertIs(c["lost"], True)
        self.assertTrue(7000 <= c["age_ms"] < 60000)
        t = doc["totals"]
        self.assertEqual(t["workers"], 3)
        self.assertEqual(t["ready"], 1)
        self.assertEqual(t["lost"], 1)
        self.assertEqual(t["jobs_ok"], 25)
        self.assertEqual(t["busy"], 4)
        self.assertEqual(t["slots"], 12)
        self.assertEqual(t["rss_kb"], 4096)

    def test_db_from_url(self):
        u = urllib.parse.urlparse(REDIS_URL)
        other = u._replace(path="/5").geturl()
        r5 = Redis(other)
        try:
            key = "%s:worker:w5" % self.prefix
            r5.cmd("HSET", key, "id", "w5", "state", "ready", "beat_ms", now_ms())
            r5.cmd("ZADD", self.prefix + ":workers", now_ms(), "w5")
            code, out, err = run_status("--redis-url", other, "--prefix", self.prefix, "--json")
            self.assertEqual(code, 0, err)
            self.assertEqual([w["id"] for w in json.loads(out)["workers"]], ["w5"])
            code, out, _ = self.status("--json")  # db 0 has none
            self.assertEqual(json.loads(out)["workers"], [])
        finally:
            r5.cmd("DEL", "%s:worker:w5" % self.prefix, self.prefix + ":workers")
            r5.close()

    # ---- watch ------------------------------------------------------------------------

    def read_until(self, proc, pred, timeout=15):
        """Read proc's stdout until pred(text) holds; bounded."""
        deadline = time.monotonic() + timeout
        text = ""
        fd = proc.stdout.fileno()
        while not pred(text):
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("timed out; output so far:\n" + text)
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.fail("rebound-status exited; output:\n" + text)
                text += chunk.decode()
        return text

    @staticmethod
    def json_docs(text):
        dec, docs, i = json.JSONDecoder(), [], 0
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                return docs
            try:
                doc, i = dec.raw_decode(text, i)
            except ValueError:
                return docs  # the last one is still arriving
            docs.append(doc)

    def stop(self, proc):
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.fail("rebound-status --watch did not stop on SIGINT")

    def test_watch_json_rates(self):
        self.put_worker("w1", "ready", jobs_ok=10)
        proc = subprocess.Popen(
            [STATUS, "--redis-url", REDIS_URL, "--prefix", self.prefix, "--json",
             "--watch", "0.2"], stdout=subprocess.PIPE)
        try:
            first = self.read_until(proc, lambda t: len(self.json_docs(t)) >= 1)
            doc = self.json_docs(first)[0]
            self.assertIsNone(doc["workers"][0]["jobs_per_s"])  # nothing to compare yet
            self.r.cmd("HINCRBY", "%s:worker:w1" % self.prefix, "jobs_ok", 50)

            def has_rate(t):
                return any(d["workers"][0]["jobs_per_s"] for d in self.json_docs(t))

            text = self.read_until(proc, lambda t: has_rate(first + t))
            docs = self.json_docs(first + text)
            rated = [d for d in docs if d["workers"][0]["jobs_per_s"]][0]
            self.assertGreater(rated["workers"][0]["jobs_per_s"], 0)
            self.assertGreater(rated["totals"]["jobs_per_s"], 0)
            self.assertEqual(rated["workers"][0]["jobs_ok"], 60)
        finally:
            code = self.stop(proc)
            proc.stdout.close()
        self.assertEqual(code, 0)  # w1 was ready at the last look

    def test_watch_table_redraws(self):
        self.put_worker("w1", "draining")
        proc = subprocess.Popen(
            [STATUS, "--redis-url", REDIS_URL, "--prefix", self.prefix, "--watch", "0.2"],
            stdout=subprocess.PIPE)
        try:
            text = self.read_until(proc, lambda t: t.count("TOTAL") >= 2)
        finally:
            code = self.stop(proc)
            proc.stdout.close()
        self.assertTrue(text.startswith("\033[H\033[2J"), repr(text[:20]))
        self.assertGreaterEqual(text.count("\033[H\033[2J"), 2)
        self.assertIn("JOBS/S", text)
        self.assertEqual(code, 1)  # nobody ready


if __name__ == "__main__":
    if not REDIS_URL:
        print("REBOUND_TEST_REDIS_URL is not set: skipped", file=sys.stderr)
        sys.exit(77)
    if not BIN_DIR or not os.access(STATUS, os.X_OK):
        print("REBOUND_BIN_DIR/rebound-status is missing: skipped", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
