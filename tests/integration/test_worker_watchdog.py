"""The supervisor's watchdog (README, "Reliability"): a consumer that is
alive but stuck (here: stopped with SIGSTOP) sends no beat over its pipe;
after --watchdog-ms the supervisor kills it and starts another, and the
jobs the stuck one held are redelivered and answered, instead of waiting
for the broker's heartbeat timeout."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import Client, Worker, call, delete_queues, job, run_tests, unique_queue  # noqa: E402


class Watchdog(unittest.TestCase):
    def test_a_stuck_consumer_is_replaced(self):
        queue = unique_queue("watchdog")
        w = Worker(queue, slots=1, args=["--watchdog-ms", "1500"])
        self.addCleanup(delete_queues, queue, queue + ".dead")
        self.addCleanup(w.cleanup)
        client = Client()
        self.addCleanup(client.close)
        self.assertEqual(client.call(queue, job("before", [call("add", 1, 2)]))["status"], "ok")
        (stuck,) = w.consumer_pids()
        os.kill(stuck, signal.SIGSTOP)
        try:
            cid = client.send(queue, job("during", [call("add", 2, 3)]))
            w.wait_log(r"consumer 1 \(pid %d\) stalled: no beat for \d+ ms; killing it" % stuck,
                       timeout=30)
            client.wait([cid], timeout=60)
        finally:
            try:
                os.kill(stuck, signal.SIGCONT)
            except ProcessLookupError:
                pass
        (r,) = client.replies[cid]
        self.assertEqual((r["status"], r["results"][0]["val"]), ("ok", 5))
        self.assertNotEqual(w.consumer_pids(), [stuck])
        # A consumer that is only idle keeps beating: not killed.
        self.assertEqual(w.text().count("stalled"), 1)
        w.stop()


if __name__ == "__main__":
    run_tests([Watchdog])
