"""Recovery without needless waits, and without an ever-growing one:
- a connection that had been up a while and is lost is tried again at
  once (the broker closing it, as a restart or a network blip would);
- the supervisor's restart wait doubles while a consumer keeps dying, and
  starts over at the shortest once a consumer has run --restart-reset-ms."""
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import (Client, Worker, call, delete_queues, job, rabbitmqctl,  # noqa: E402
                          run_tests, unique_queue, wait_until)


def up_for(seconds):
    """A predicate: true once `seconds` have passed since it was made (the
    behaviour under test depends on how long something has been up)."""
    t0 = time.monotonic()
    return lambda: time.monotonic() - t0 >= seconds


class Recovery(unittest.TestCase):
    def start(self, *args, tag):
        queue = unique_queue(tag)
        w = Worker(queue, args=["--worker-id", "w-" + tag] + list(args))
        self.addCleanup(delete_queues, queue, queue + ".dead")
        self.addCleanup(w.cleanup)
        return queue, w

    def answered(self, queue):
        client = Client()
        try:
            r = client.call(queue, job("j", [call("add", 1, 2)]), timeout=60)
        finally:
            client.close()
        self.assertEqual(r["status"], "ok", r)

    def test_a_lost_connection_is_tried_again_at_once(self):
        queue, w = self.start(tag="reconnect")
        self.answered(queue)
        wait_until(up_for(1.5), 5, "the connection to have been up 1.5 s")
        # The worker's connection, by the name it gives itself.
        pids = [row[0] for row in rabbitmqctl("list_connections", "pid", "client_properties")
                if len(row) > 1 and '{"connection_name","w-reconnect"}' in row[1]]
        self.assertEqual(len(pids), 1, pids)
        r = subprocess.run([os.environ["REBOUND_TEST_RABBITMQ_CTL"], "close_connection", pids[0],
                            "closed by the recovery test"], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        w.wait_log(r"connection lost: [^\n]*; reconnecting at once", timeout=30)
        w.wait_log(r"connected to ", count=2, timeout=30)
        self.assertNotRegex(w.text(), r"connection lost: [^\n]*reconnecting in \d+ ms")
        self.answered(queue)
        w.stop()

    def test_restart_wait_starts_over_after_a_good_run(self):
        queue, w = self.start("--restart-reset-ms", "2000", tag="restart")

        def kill_consumer(n_started):
            w.wait_log(r"consumer 1 started", count=n_started, timeout=30)
            pids = w.consumer_pids()
            self.assertEqual(len(pids), 1, pids)
            os.kill(pids[0], signal.SIGKILL)

        kill_consumer(1)            # ran well over nothing yet: the shortest wait
        kill_consumer(2)            # died at once: the wait doubles
        w.wait_log(r"consumer 1 started", count=3, timeout=30)
        wait_until(up_for(2.5), 5, "the consumer to have run past --restart-reset-ms")
        kill_consumer(3)            # ran well: the shortest wait again
        w.wait_log(r"consumer 1 started", count=4, timeout=30)
        waits = [int(x) for x in re.findall(r"restarting in (\d+) ms", w.text())]
        self.assertEqual(waits, [500, 1000, 500], w.tail())
        self.answered(queue)
        w.stop()


if __name__ == "__main__":
    run_tests([Recovery])
