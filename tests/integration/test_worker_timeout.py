#!/usr/bin/python3
"""A job that never ends (`while True: pass`) times out at its limit, and
the consumer goes on with the next jobs. The limit is the job's own
timeout_ms, or --timeout-ms without one, capped by --max-timeout-ms: each
result's `ms` shows which limit was applied.

The limits are chosen so that each one ignored gives another result:
without the job's timeout_ms the job would run for --timeout-ms (2000);
without --timeout-ms for the default 10000, capped to --max-timeout-ms
(4000), or the worker would refuse the settings (10000 > 4000); without
--max-timeout-ms an hour's limit would be capped at 60000, and no result
would come within the 30 s the client waits. A result comes a little after
its limit (the pool kills the child at the deadline and reports); the
upper bounds leave 1.7-2 s for that on a loaded machine.
"""

from worker_itest import WorkerCase, call, job, run_tests

TIMEOUT_MS = 2000
MAX_TIMEOUT_MS = 4000


class Timeouts(WorkerCase):
    TAG = "timeout"
    WORKER_KW = {"slots": 1, "args": ["--timeout-ms", str(TIMEOUT_MS),
                                      "--max-timeout-ms", str(MAX_TIMEOUT_MS)]}

    def assert_timed_out(self, res, job_id, limit_ms, below_ms):
        self.assertEqual(res["status"], "timeout")
        self.assertEqual(res["id"], job_id)
        self.assertEqual(res["error"]["type"], "Timeout")
        # Not before the limit (the deadline is kept on a millisecond
        # clock, hence the 1 ms), and not as late as a wrong limit.
        self.assertGreaterEqual(res["ms"], limit_ms - 1, res)
        self.assertLess(res["ms"], below_ms, res)

    def test_own_timeout_then_next_job_runs(self):
        res = self.client.call(self.queue, job("spin", [call("spin")], timeout_ms=300), timeout=30)
        self.assert_timed_out(res, "spin", 300, TIMEOUT_MS)
        res = self.client.call(self.queue, job("after-spin", [call("add", 1, 2)]))
        self.assertEqual(res["status"], "ok")
        self.assertEqual(res["results"][0]["val"], 3)

    def test_default_timeout_is_the_flag(self):
        res = self.client.call(self.queue, job("default", [call("spin")]), timeout=30)
        self.assert_timed_out(res, "default", TIMEOUT_MS, MAX_TIMEOUT_MS)

    def test_huge_timeout_is_capped(self):
        res = self.client.call(self.queue, job("capped", [call("spin")], timeout_ms=3600 * 1000),
                               timeout=30)
        self.assert_timed_out(res, "capped", MAX_TIMEOUT_MS, MAX_TIMEOUT_MS + 2000)
        res = self.client.call(self.queue, job("still-fine", [call("add", 2, 2)]))
        self.assertEqual(res["results"][0]["val"], 4)


if __name__ == "__main__":
    run_tests([Timeouts])
