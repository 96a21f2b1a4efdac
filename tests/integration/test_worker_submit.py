#!/usr/bin/python3
"""rebound-submit against a worker: exit codes 0 (ok), 1 (other status),
2 (usage), 3 (no result in time), 4 (broker unreachable); JSON in and
pretty JSON out (bin as {"$bin": base64}); --msgpack in and out."""
import base64
import json
import os
import socket
import subprocess
import tempfile

import msgpack

from worker_itest import (AMQP_URL, SUBMIT, WorkerCase, call, connect, delete_queues, job,
                          run_tests, unique_queue)


def submit(*args, stdin=b"", env=None):
    e = dict(os.environ)
    e.pop("REBOUND_AMQP_URL", None)
    e.pop("REBOUND_QUEUE", None)
    e.update(env or {})
    return subprocess.run([SUBMIT] + list(args), input=stdin, capture_output=True, timeout=120,
                          env=e)


class Submit(WorkerCase):
    TAG = "submit"
    WORKER_KW = {"args": ["--timeout-ms", "500", "--max-timeout-ms", "500"]}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = ["--amqp-url", AMQP_URL, "--queue", cls.queue]

    def run_json(self, body, *args):
        return submit(*(self.base + list(args)), stdin=json.dumps(body).encode())

    def test_ok_from_stdin_exit_0(self):
        r = self.run_json(job("s-ok", [call("add", 2, 3), call("echo", 1.5, "x", k=None)]))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["status"], "ok")
        self.assertEqual(out["id"], "s-ok")
        self.assertEqual(out["results"][0]["val"], 5)
        # JSON numbers: integers stay ints, reals floats; null is nil.
        self.assertEqual(out["results"][1]["val"], {"args": [1.5, "x"], "kwargs": {"k": None}})
        self.assertIn("\n  ", r.stdout.decode())  # pretty printed

    def test_ok_from_file_and_bin_output(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(job("s-bin", [call("raw")]), f)
        try:
            r = submit(*(self.base + [f.name]))
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        val = json.loads(r.stdout)["results"][0]["val"]
        self.assertEqual(val, {"$bin": base64.b64encode(b"\x00\xffrebound").decode()})

    def test_other_status_exit_1(self):
        r = self.run_json(job("s-err", [call("fail", "boom")]))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(json.loads(r.stdout)["status"], "error")
        r = self.run_json(job("s-timeout", [call("spin")]))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(json.loads(r.stdout)["status"], "timeout")
        r = self.run_json({"v": 1, "id": "s-rej", "calls": []})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(json.loads(r.stdout)["status"], "rejected")

    def test_msgpack_in_and_out(self):
        body = msgpack.packb(job("s-mp", [call("add", 1, 2)]))
        r = submit(*(self.base + ["--msgpack", "-"]), stdin=body)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = msgpack.unpackb(r.stdout)
        self.assertEqual(res["id"], "s-mp")
        self.assertEqual(res["results"][0]["val"], 3)

    def test_environment(self):
        r = submit(stdin=json.dumps(job("s-env", [call("add", 1, 1)])).encode(),
                   env={"REBOUND_AMQP_URL": AMQP_URL, "REBOUND_QUEUE": self.queue})
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_usage_errors_exit_2(self):
        cases = [
            (["--bogus"], b"{}", b"--bogus"),
            (["--timeout-ms", "abc"], b"{}", b"--timeout-ms"),
            (["--queue"], b"{}", b"--queue"),
            (["a.json", "b.json"], b"{}", b"more than one"),
            (["/nonexistent/job.json"], b"", b"/nonexistent/job.json"),
            ([], b"{not json", b"<stdin>:1"),
            (["--amqp-url", "http://x"], b"{}", b"--amqp-url"),
        ]
        for args, stdin, msg in cases:
            with self.subTest(args=args):
                r = submit(*args, stdin=stdin)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(msg, r.stderr)
                self.assertEqual(r.stderr.count(b"\n"), 1, r.stderr)

    def test_no_result_in_time_exit_3(self):
        # A queue nobody consumes...
        idle = unique_queue("idle")
        conn = connect()
        conn.channel().queue_declare(idle)
        conn.close()
        try:
            r = submit("--amqp-url", AMQP_URL, "--queue", idle, "--timeout-ms", "300",
                       stdin=json.dumps(job("s-idle", [call("add", 1, 1)])).encode())
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn(b"no result within 300 ms", r.stderr)
        finally:
            delete_queues(idle)
        # ...and a queue that does not exist at all.
        r = submit("--amqp-url", AMQP_URL, "--queue", idle + ".none", "--timeout-ms", "30000",
                   stdin=b"{}")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(b"NO_ROUTE", r.stderr)

    def test_broker_unreachable_exit_4(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        r = submit("--amqp-url", "amqp://guest:guest@127.0.0.1:%d/" % port, stdin=b"{}")
        self.assertEqual(r.returncode, 4, r.stderr)


if __name__ == "__main__":
    run_tests([Submit])
