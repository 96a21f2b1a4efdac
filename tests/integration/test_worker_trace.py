"""Tracing across the queue (README, "Tracing across the queue"): a job
that carries a W3C `traceparent` AMQP header gets a result with the same
header, and every log line about the job names its trace id; a header that
is not a valid traceparent is not passed on (nor logged), and the job runs
all the same. The same holds for a job answered without running
(rejected), and for one moved to quarantine as a suspect."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import WorkerCase, call, job, run_tests  # noqa: E402

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = "00-%s-00f067aa0ba902b7-01" % TRACE_ID


class Trace(WorkerCase):
    TAG = "trace"

    def send(self, name, body, headers):
        cid = self.client.send(self.queue, body, headers=headers)
        self.client.wait([cid], 60)
        return self.client.replies[cid][0], self.client.props[cid][0]

    def job_lines(self, name):
        return [line for line in self.worker.text().splitlines()
                if re.search(r"\bjob %s\b" % re.escape(name), line)]

    def test_the_result_carries_the_traceparent_and_the_log_the_trace_id(self):
        r, props = self.send("traced-1", job("traced-1", [call("add", 2, 3)]),
                             {"traceparent": TRACEPARENT, "tracestate": "vendor=x"})
        self.assertEqual((r["status"], r["results"][0]["val"]), ("ok", 5), r)
        self.assertEqual((props.headers or {}).get("traceparent"), TRACEPARENT, props)
        self.worker.wait_log(r"job traced-1 \(trace %s\): ok in" % TRACE_ID, timeout=10)
        lines = self.job_lines("traced-1")
        self.assertGreaterEqual(len(lines), 2, lines)  # delivered, started, answered
        for line in lines:
            self.assertIn("(trace %s)" % TRACE_ID, line)

    def test_a_rejected_job_is_traced_too(self):
        r, props = self.send("traced-bad", {"v": 1, "id": "traced-bad", "calls": "nope"},
                             {"traceparent": TRACEPARENT})
        self.assertEqual(r["status"], "rejected", r)
        self.assertEqual((props.headers or {}).get("traceparent"), TRACEPARENT, props)
        self.worker.wait_log(r"job traced-bad \(trace %s\) rejected" % TRACE_ID, timeout=10)

    def test_an_invalid_traceparent_is_not_passed_on(self):
        for n, bad in enumerate(["00-%s-00f067aa0ba902b7" % TRACE_ID,       # no flags
                                 "00-%s-00f067aa0ba902b7-01" % TRACE_ID.upper(),
                                 "00-%s-0000000000000000-01" % TRACE_ID,    # zero parent
                                 "junk\nfake log line"]):
            name = "untraced-%d" % n
            r, props = self.send(name, job(name, [call("add", 1, n)]), {"traceparent": bad})
            self.assertEqual((r["status"], r["results"][0]["val"]), ("ok", 1 + n), r)
            self.assertNotIn("traceparent", props.headers or {}, props)
            self.worker.wait_log(r"job %s: ok in" % name, timeout=10)
            for line in self.job_lines(name):
                self.assertNotIn("(trace ", line)
        self.assertNotIn("fake log line", self.worker.text())

    def test_a_suspect_keeps_its_trace_through_quarantine(self):
        # A job that says it was delivered before is a suspect: it is moved
        # to <queue>.suspects and run by the quarantine consumer.
        r, props = self.send("traced-suspect", job("traced-suspect", [call("add", 4, 4)]),
                             {"traceparent": TRACEPARENT, "x-rebound-deliveries": 1})
        self.assertEqual((r["status"], r["results"][0]["val"]), ("ok", 8), r)
        self.assertIs(r.get("redelivered"), True, r)
        self.assertEqual(r["worker"], self.worker_id_quarantine(), r)
        self.assertEqual((props.headers or {}).get("traceparent"), TRACEPARENT, props)
        self.worker.wait_log(r"job traced-suspect \(trace %s\): delivered 1 times before, "
                             r"its worker dying each time: moved to '%s.suspects'"
                             % (TRACE_ID, re.escape(self.queue)), timeout=10)
        self.worker.wait_log(r"job traced-suspect \(trace %s\): delivered 1 times before, "
                             r"its worker dying each time: it runs alone" % TRACE_ID, timeout=10)

    def worker_id_quarantine(self):
        m = re.search(r"quarantine consumer started", self.worker.text())
        self.assertIsNotNone(m, self.worker.tail())
        ids = re.findall(r" (\S+\.quarantine)\[\d+\]: ", self.worker.text())
        self.assertTrue(ids, self.worker.tail())
        return ids[0]

    def test_no_header_no_trace(self):
        r, props = self.send("plain-1", job("plain-1", [call("add", 1, 1)]), None)
        self.assertEqual(r["status"], "ok", r)
        self.assertNotIn("traceparent", props.headers or {}, props)


if __name__ == "__main__":
    run_tests([Trace])
