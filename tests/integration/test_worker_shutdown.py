#!/usr/bin/python3
"""Shutdown: SIGTERM during a long job publishes its result before the
worker exits (warm); the drain deadline, a second SIGTERM and SIGQUIT end
the job unacked (cold), so the broker requeues it and the next worker runs
it again and says `redelivered: true`."""
import signal
import unittest

from worker_itest import (Client, Worker, call, delete_queues, job, queue_counts, run_tests,
                          unique_queue, wait_until)


class Shutdown(unittest.TestCase):
    def setUp(self):
        self.queue = unique_queue("shutdown")
        self.client = Client()
        self.workers = []

    def tearDown(self):
        self.client.close()
        for w in self.workers:
            w.cleanup()
        delete_queues(self.queue, self.queue + ".dead")

    def start(self, *args):
        w = Worker(self.queue, slots=1, args=list(args))
        self.workers.append(w)
        return w

    def test_sigterm_finishes_the_running_job(self):
        w = self.start()
        cid = self.client.send(self.queue, job("long", [call("sleep", 2, "done")]))
        w.wait_log(r"job long started")
        w.signal(signal.SIGTERM)
        self.assertEqual(w.wait(60), 0)
        w.check_clean()
        # The result was published before the exit...
        self.client.wait([cid], timeout=10)
        res = self.client.replies[cid][0]
        self.assertEqual(res["status"], "ok")
        self.assertEqual(res["results"][0]["val"], "done")
        # ...and the job acked: nothing left in the queue.
        self.assertEqual(queue_counts(self.queue), (0, 0))
        self.assertIn("warm shutdown", w.text())

    def cold_case(self, stop, *args):
        w = self.start(*args)
        cid = self.client.send(self.queue, job("cold", [call("sleep", 30, "late")]))
        w.wait_log(r"job cold started")
        stop(w)
        self.assertEqual(w.wait(60), 0)
        w.check_clean()
        self.assertIn("cold shutdown", w.text())
        self.assertNotIn(cid, self.client.replies)
        # Unacked, so requeued by the broker.
        wait_until(lambda: queue_counts(self.queue)[0] == 1, 30, "the job back in the queue")
        # The next worker runs it again and says so. A short timeout keeps
        # the test short: the job's own result does not matter here.
        w2 = self.start("--max-timeout-ms", "500", "--timeout-ms", "500")
        self.client.wait([cid], timeout=60)
        res = self.client.replies[cid][0]
        self.assertEqual(res["id"], "cold")
        self.assertIs(res.get("redelivered"), True)
        w2.stop()

    def test_drain_deadline_is_cold(self):
        self.cold_case(lambda w: w.signal(signal.SIGTERM), "--drain-ms", "1000")

    def test_second_sigterm_is_cold(self):
        def twice(w):
            w.signal(signal.SIGTERM)
            w.wait_log(r"warm shutdown: finishing 1 jobs")
            w.signal(signal.SIGTERM)
        self.cold_case(twice)

    def test_sigquit_is_cold(self):
        self.cold_case(lambda w: w.signal(signal.SIGQUIT))


if __name__ == "__main__":
    run_tests([Shutdown])
