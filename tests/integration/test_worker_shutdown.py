#!/usr/bin/python3
"""Shutdown: SIGTERM or SIGINT during a long job is a warm shutdown: the job
finishes, its result is published and its delivery acked before the worker
exits 0. The drain deadline, a second SIGTERM and SIGQUIT end the job
unacked and unanswered (cold), so the broker requeues it and the next
worker runs it again and says `redelivered: true`.

The warm cases run on a classic queue (--queue-type classic), whose counts
`rabbitmqctl list_queues` reads from the queue itself: an unacked delivery
is counted unacknowledged until the broker has requeued it (then ready), so
"nothing ready, nothing unacknowledged" can only be read once the job was
acked. (A quorum queue's counts there are a snapshot refreshed every 5 s.)
"""
import signal
import unittest

from worker_itest import (Client, Worker, call, classic_counts, delete_queues, job, queue_counts,
                          run_tests, unique_queue, wait_until)


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

    def warm_case(self, sig):
        w = self.start("--queue-type", "classic")
        cid = self.client.send(self.queue, job("long", [call("sleep", 2, "done")]))
        w.wait_log(r"job long started")
        self.assertEqual(classic_counts(self.queue), (0, 1))  # the worker's, unacked
        w.signal(sig)
        self.assertEqual(w.wait(60), 0)
        w.check_clean()
        self.assertIn("%s: warm shutdown" % sig.name, w.text())
        # The result was published before the exit...
        self.client.wait([cid], timeout=10)
        res = self.client.replies[cid][0]
        self.assertEqual(res["status"], "ok")
        self.assertEqual(res["results"][0]["val"], "done")
        # ...and the job acked. Not acked, it would be counted unacknowledged
        # until the broker requeued it, then ready: never (0, 0).
        wait_until(lambda: classic_counts(self.queue) == (0, 0), 30,
                   "nothing ready and nothing unacknowledged in %s" % self.queue)
        self.assertEqual(queue_counts(self.queue), (0, 0))  # and no consumer left

    def test_sigterm_finishes_the_running_job(self):
        self.warm_case(signal.SIGTERM)

    def test_sigint_finishes_the_running_job(self):
        self.warm_case(signal.SIGINT)

    def cold_case(self, stop, *args):
        w = self.start(*args)
        cid = self.client.send(self.queue, job("cold", [call("sleep", 30, "late")]))
        w.wait_log(r"job cold started")
        stop(w)
        self.assertEqual(w.wait(60), 0)
        w.check_clean()
        self.assertIn("cold shutdown", w.text())
        # Unacked, so requeued by the broker.
        wait_until(lambda: queue_counts(self.queue)[0] == 1, 30, "the job back in the queue")
        # The next worker runs it again and says so. A short timeout keeps
        # the test short: the job's own result does not matter here.
        w2 = self.start("--max-timeout-ms", "500", "--timeout-ms", "500")
        self.client.wait([cid], timeout=60)
        # The first worker published nothing: a result of its own would have
        # reached the client before the second worker even had the job.
        got = self.client.replies[cid]
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["id"], "cold")
        self.assertIs(got[0].get("redelivered"), True)
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
