"""A result nobody can receive: the job's reply_to names a queue that does
not exist (its sender is gone). Results are published mandatory: the broker
returns it, the worker logs it with the job's id, counts it in the
heartbeat (results_unroutable) and acks the job, for there is no one to
redeliver to. A job with a live reply queue in between is answered as
usual and not counted."""
import os
import sys
import unittest
import uuid

import msgpack
import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import (REDIS_URL, Client, Worker, call, classic_counts, connect,  # noqa: E402
                          delete_queues, job, redis_client, run_tests, unique_queue, wait_until)


class Unroutable(unittest.TestCase):
    def setUp(self):
        self.queue = unique_queue("unroutable")
        self.prefix = "rbtest-unroutable-%s" % self.queue
        self.key = "%s:worker:w-unr" % self.prefix
        self.redis = redis_client()
        # A classic queue: its counts in rabbitmqctl are live.
        self.worker = Worker(self.queue, args=[
            "--queue-type", "classic", "--redis-url", REDIS_URL, "--redis-prefix", self.prefix,
            "--heartbeat-ms", "200", "--worker-id", "w-unr"])
        self.addCleanup(delete_queues, self.queue, self.queue + ".dead")
        self.addCleanup(self.worker.cleanup)

    def test_returned_result_is_logged_counted_and_the_job_acked(self):
        gone = "rbtest.gone.%s" % uuid.uuid4().hex[:8]
        conn = connect()
        try:
            conn.channel().basic_publish(
                "", self.queue, msgpack.packb(job("lost-1", [call("add", 1, 2)])),
                pika.BasicProperties(reply_to=gone, correlation_id="c-lost",
                                     content_type="application/msgpack", delivery_mode=2))
        finally:
            conn.close()
        self.worker.wait_log(r"job lost-1: its result was returned unroutable: no queue '%s'"
                             % gone, timeout=30)
        # Acked: nothing ready, nothing unacknowledged (bounded).
        wait_until(lambda: classic_counts(self.queue) == (0, 0), 30, "the job to be acked")
        wait_until(lambda: self.redis.hget(self.key, "results_unroutable") == "1", 10,
                   "results_unroutable = 1 in the heartbeat")

        # A job whose sender listens is answered, and not counted.
        client = Client()
        try:
            r = client.call(self.queue, job("ok-1", [call("add", 2, 3)]))
        finally:
            client.close()
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["results"][0]["val"], 5)
        wait_until(lambda: self.redis.hget(self.key, "jobs_ok") == "2", 10, "jobs_ok = 2")
        self.assertEqual(self.redis.hget(self.key, "results_unroutable"), "1")
        self.worker.stop()


if __name__ == "__main__":
    run_tests([Unroutable], redis=True)
