#!/usr/bin/python3
"""A job that never ends (`while True: pass`) times out, and the consumer
goes on with the next jobs; a job's timeout_ms is capped by
--max-timeout-ms."""

from worker_itest import WorkerCase, call, job, run_tests


class Timeouts(WorkerCase):
    TAG = "timeout"
    WORKER_KW = {"slots": 1, "args": ["--timeout-ms", "800", "--max-timeout-ms", "1500"]}

    def test_spin_times_out_and_next_job_runs(self):
        res = self.client.call(self.queue, job("spin", [call("spin")], timeout_ms=500))
        self.assertEqual(res["status"], "timeout")
        self.assertEqual(res["id"], "spin")
        res = self.client.call(self.queue, job("after-spin", [call("add", 1, 2)]))
        self.assertEqual(res["status"], "ok")
        self.assertEqual(res["results"][0]["val"], 3)

    def test_default_and_capped_timeouts(self):
        # No timeout_ms: --timeout-ms applies; a huge one is capped to
        # --max-timeout-ms instead of hanging the slot for an hour.
        for name, extra in (("default", {}), ("capped", {"timeout_ms": 3600 * 1000})):
            with self.subTest(name):
                res = self.client.call(self.queue, job(name, [call("spin")], **extra), timeout=60)
                self.assertEqual(res["status"], "timeout")
        res = self.client.call(self.queue, job("still-fine", [call("add", 2, 2)]))
        self.assertEqual(res["results"][0]["val"], 4)


if __name__ == "__main__":
    run_tests([Timeouts])
