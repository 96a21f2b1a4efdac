#!/usr/bin/python3
"""rebound-worker against the test RabbitMQ: jobs in, results out.

A job with several calls; the reply's correlation id, content type and
worker id; direct reply-to; a job without reply_to (run, acked, result
logged); rejected jobs (undecodable, invalid, wrong content type, too big)
answered `rejected` and dead-lettered to <queue>.dead; the queue arguments.
"""
import os
import subprocess
import unittest

import msgpack
import pika

from worker_itest import (Client, Worker, WorkerCase, call, connect, delete_queues, get_one, job,
                          queue_counts, run_tests, unique_queue)


class BasicJobs(WorkerCase):
    TAG = "basic"
    # One slot and prefetch 1: the broker hands out the next job only after
    # the previous one was acked, which the tests below rely on.
    WORKER_KW = {"slots": 1, "args": ["--max-job-bytes", "4K", "--worker-id", "wbasic"]}

    def test_several_calls(self):
        body = job("several", [call("add", 2, 3), call("hello", "bob"),
                               call("echo", 1, "x", k=[1, 2.5]), call("fail", "boom")])
        cid = self.client.send(self.queue, body, correlation_id="cid-several")
        self.client.wait([cid])
        res = self.client.replies[cid][0]
        props = self.client.props[cid][0]
        self.assertEqual(props.correlation_id, "cid-several")
        self.assertEqual(props.content_type, "application/msgpack")
        # Direct reply-to: not persistent.
        self.assertNotEqual(props.delivery_mode, 2)
        self.assertEqual(res["id"], "several")
        self.assertEqual(res["worker"], "wbasic")
        self.assertEqual(res["status"], "error")  # the last call raised
        r = res["results"]
        self.assertEqual(len(r), 4)
        self.assertEqual(r[0]["val"], 5)
        self.assertEqual(r[1]["val"], "hi bob")
        self.assertEqual(r[1]["output"], "hello bob\n")
        self.assertEqual(r[2]["val"], {"args": [1, "x"], "kwargs": {"k": [1, 2.5]}})
        self.assertEqual(r[3]["error"]["type"], "ValueError")
        self.assertNotIn("redelivered", res)

    def test_ok_status(self):
        res = self.client.call(self.queue, job("ok1", [call("add", 40, 2)]))
        self.assertEqual(res["status"], "ok")
        self.assertEqual(res["results"][0]["val"], 42)

    def test_no_reply_to_is_run_and_acked(self):
        self.client.ch.basic_publish(
            "", self.queue, msgpack.packb(job("noreply", [call("add", 1, 1)])),
            pika.BasicProperties(content_type="application/msgpack"))
        # With prefetch 1 this job is only delivered once "noreply" is acked.
        res = self.client.call(self.queue, job("after-noreply", [call("add", 1, 2)]))
        self.assertEqual(res["results"][0]["val"], 3)
        self.worker.wait_log(r"job noreply has no reply_to; result: .*\"status\"")

    def assert_rejected(self, res, job_id, message_part):
        self.assertEqual(res["status"], "rejected")
        self.assertEqual(res.get("id"), job_id)
        self.assertIn(message_part, res["error"]["message"])

    def test_rejected_jobs_are_dead_lettered(self):
        cases = [
            ("undecodable", dict(raw=b"\xc1not msgpack"), None, ""),
            ("invalid", dict(body=job("bad-path", [{"fcn": "f", "file": "../x.py"}])),
             "bad-path", "calls[0].file"),
            ("missing", dict(body=job("no-file", [{"fcn": "f", "file": "nope.py"}])),
             "no-file", "calls[0].file"),
            ("content type", dict(body=job("ct", [call("add", 1, 2)]),
                                  content_type="application/json"), None, "content_type"),
            ("too big", dict(body=job("big", [call("echo", "x" * 5000)])), None,
             "--max-job-bytes"),
        ]
        for name, kw, job_id, part in cases:
            with self.subTest(name):
                body = kw.pop("body", None)
                sent = kw.get("raw") or msgpack.packb(body, use_bin_type=True)
                res = self.client.call(self.queue, body, **kw)
                self.assert_rejected(res, job_id, part)
                props, dead = get_one(self.queue + ".dead")
                self.assertEqual(dead, sent)
        self.assertEqual(queue_counts(self.queue + ".dead")[0], 0)

    def test_queue_arguments(self):
        ctl = os.environ.get("REBOUND_TEST_RABBITMQ_CTL")
        if not ctl:
            self.skipTest("REBOUND_TEST_RABBITMQ_CTL not set")
        out = subprocess.run([ctl, "-q", "list_queues", "name", "type", "arguments"],
                             capture_output=True, text=True, timeout=120).stdout
        line = next(l for l in out.splitlines() if l.split("\t")[0] == self.queue)
        self.assertIn("quorum", line)
        self.assertIn('"x-dead-letter-routing-key","%s.dead"' % self.queue, line)
        self.assertIn('{"x-delivery-limit",5}', line)


class ClassicQueueNative(unittest.TestCase):
    """--queue-type classic and --mode native work together. This test is
    about native mode: it asks for it whatever REBOUND_TEST_WORKER_MODE
    says (and, like every Worker, without --sandbox-best-effort)."""

    def test_classic_native(self):
        queue = unique_queue("classic")
        w = Worker(queue, mode="native", args=["--queue-type", "classic"])
        c = Client()
        try:
            res = c.call(queue, job("n1", [call("add", 1, 2)]))
            self.assertEqual(res["status"], "ok")
            self.assertEqual(res["results"][0]["val"], 3)
            conn = connect()
            try:
                ok = conn.channel().queue_declare(queue, passive=True)
                self.assertEqual(ok.method.consumer_count, 1)
            finally:
                conn.close()
            w.stop()
        finally:
            c.close()
            w.cleanup()
            delete_queues(queue, queue + ".dead")


if __name__ == "__main__":
    run_tests([BasicJobs, ClassicQueueNative])
