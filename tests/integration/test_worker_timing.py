"""Where the time goes (README; PROTOCOL.md, `timing`): a job with
`timing: true` gets the stages it went through inside the worker in its
result, in microseconds since its delivery was assembled, in the order it
went through them; the rest of its way (published, confirmed, acked) is in
the worker's debug log. A job that does not ask gets no `timing`, and one
whose `timing` is not a boolean is rejected, naming the key."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import WorkerCase, call, job, run_tests  # noqa: E402

STAGES = ["decoded", "submitted", "started", "done", "packed"]


class Timing(WorkerCase):
    TAG = "timing"

    def test_stages_in_the_result_in_order(self):
        r = self.client.call(self.queue, job("timed-1", [call("sleep", 0.05, 7)], timing=True))
        self.assertEqual((r["status"], r["results"][0]["val"]), ("ok", 7), r)
        t = r["timing"]
        self.assertEqual(sorted(t), sorted(STAGES), t)
        values = [t[s] for s in STAGES]
        self.assertEqual(values, sorted(values), t)
        self.assertGreaterEqual(values[0], 0, t)
        # The 50 ms sleep happens between started and done.
        self.assertGreaterEqual(t["done"] - t["started"], 50000, t)
        # All of it inside the worker's own view of the job's life.
        self.assertLessEqual(t["done"] - t["submitted"], r["ms"] * 1000 + 1000, (t, r["ms"]))

    def test_the_rest_of_the_way_is_logged(self):
        r = self.client.call(self.queue, job("timed-2", [call("add", 1, 2)], timing=True))
        self.assertEqual(r["status"], "ok", r)
        self.worker.wait_log(r"job timed-2: stages, us since the delivery: .*acked=\d+",
                             timeout=10)
        text = self.worker.text()
        m = re.search(r"job timed-2: stages, us since the delivery: (.*)", text)
        print(m.group(0))
        stages = dict(kv.split("=") for kv in m.group(1).split())
        order = STAGES + ["published", "confirmed", "acked"]
        self.assertEqual(list(stages), order, m.group(0))
        values = [int(stages[s]) for s in order]
        self.assertEqual(values, sorted(values), stages)
        # The result carried the same stages as the log line.
        self.assertEqual({s: r["timing"][s] for s in STAGES},
                         {s: int(stages[s]) for s in STAGES})

    def test_no_timing_unless_asked(self):
        r = self.client.call(self.queue, job("untimed", [call("add", 1, 2)]))
        self.assertEqual(r["status"], "ok", r)
        self.assertNotIn("timing", r)
        r = self.client.call(self.queue, job("untimed-f", [call("add", 1, 2)], timing=False))
        self.assertNotIn("timing", r)

    def test_timing_must_be_a_boolean(self):
        r = self.client.call(self.queue, job("timed-bad", [call("add", 1, 2)], timing="yes"))
        self.assertEqual(r["status"], "rejected", r)
        self.assertEqual(r["error"]["message"], "timing: must be a boolean", r)


if __name__ == "__main__":
    run_tests([Timing])
