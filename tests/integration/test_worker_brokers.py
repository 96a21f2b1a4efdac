"""Several brokers in --amqp-url: a comma-separated list, tried in order.
- A first entry that cannot be reached (a closed loopback port) is passed
  over at once: the worker connects to the next one, says which (masked),
  and answers jobs.
- A connection lost later goes on to the next entry, wrapping around: with
  [good, dead], a connection closed by the broker tries the dead one, then
  the good one again, and jobs are answered after it.
- A wrong entry is refused before anything starts, named by its number.
- A <queue>.dead declared beforehand as a quorum queue (as a cluster
  wants: a classic one lives on one node) is used as it is, unwarned."""
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import (AMQP_URL, RABBITMQ_CTL, WORKER, Client, Worker, call,  # noqa: E402
                          connect, delete_queues, get_one, job, rabbitmqctl, run_tests,
                          unique_queue, wait_until)


def closed_port():
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_url():
    return "amqp://guest:deadpw-rb@127.0.0.1:%d/%%2f" % closed_port()


class Brokers(unittest.TestCase):
    def start(self, urls, tag):
        queue = unique_queue(tag)
        w = Worker(queue, args=["--amqp-url", ",".join(urls), "--worker-id", "w-" + tag])
        self.addCleanup(delete_queues, queue, queue + ".dead")
        self.addCleanup(w.cleanup)
        return queue, w

    def answered(self, queue, n=6):
        client = Client()
        try:
            cids = [client.send(queue, job("j%d" % i, [call("add", i, 1)])) for i in range(n)]
            client.wait(cids, timeout=60)
            for i, cid in enumerate(cids):
                r = client.replies[cid][0]
                self.assertEqual(r["status"], "ok", r)
                self.assertEqual(r["results"][0]["val"], i + 1)
        finally:
            client.close()

    def test_a_dead_first_broker_is_passed_over(self):
        dead = dead_url()
        queue, w = self.start([dead, AMQP_URL], "dead-first")
        self.answered(queue)
        text = w.text()
        port = dead.split(":")[-1].split("/")[0]
        self.assertRegex(text, r"cannot set up amqp://guest:\*\*\*@127\.0\.0\.1:%s/" % port)
        self.assertRegex(text, r"trying amqp://guest:\*\*\*@127\.0\.0\.1:\d+/%2f next")
        self.assertRegex(text, r"connected to amqp://guest:\*\*\*@[^ ]+ \(broker 2 of 2\)")
        # The dead one was passed over at once, not after a backoff.
        self.assertNotRegex(text, r"reconnecting in \d+ ms")
        self.assertNotIn("deadpw-rb", text)
        w.stop()

    def test_a_lost_connection_goes_to_the_next_broker(self):
        queue, w = self.start([AMQP_URL, dead_url()], "next-after-loss")
        self.answered(queue, 2)
        self.assertRegex(w.text(), r"connected to [^\n]* \(broker 1 of 2\)")
        # Up over a second: a lost connection is then tried again at once.
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 1.5, 5, "1.5 s of connection")
        pids = [row[0] for row in rabbitmqctl("list_connections", "pid", "client_properties")
                if len(row) > 1 and '{"connection_name","w-next-after-loss"}' in row[1]]
        self.assertEqual(len(pids), 1, pids)
        r = subprocess.run([RABBITMQ_CTL, "close_connection", pids[0], "closed by the test"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        w.wait_log(r"connected to [^\n]* \(broker 1 of 2\)", count=2, timeout=60)
        text = w.text()
        lost = text.index("connection lost")
        tried_dead = text.index("cannot set up", lost)
        again = text.rindex("(broker 1 of 2)")
        self.assertLess(tried_dead, again, w.tail())
        self.answered(queue, 2)
        w.stop()

    def test_a_quorum_dead_letter_queue_declared_beforehand_is_used(self):
        queue = unique_queue("dead-quorum")
        conn = connect()
        try:
            conn.channel().queue_declare(queue + ".dead", durable=True,
                                         arguments={"x-queue-type": "quorum"})
        finally:
            conn.close()
        self.addCleanup(delete_queues, queue, queue + ".dead")
        w = Worker(queue, args=["--amqp-url", AMQP_URL])
        self.addCleanup(w.cleanup)
        client = Client()
        try:
            r = client.call(queue, {"v": 1, "id": "bad", "calls": "not a list"}, timeout=60)
        finally:
            client.close()
        self.assertEqual(r["status"], "rejected", r)
        _, body = get_one(queue + ".dead", timeout=30)
        self.assertIn(b"not a list", body)
        self.answered(queue, 1)
        self.assertNotIn("dead-letter queue", w.text())
        rows = [r for r in rabbitmqctl("list_queues", "name", "type") if r[0] == queue + ".dead"]
        self.assertEqual(rows, [[queue + ".dead", "quorum"]])
        w.stop()

    def test_a_wrong_entry_is_named(self):
        r = subprocess.run([WORKER, "--amqp-url", AMQP_URL + ",http://u:badpw-rb@h/",
                            "--code-root", "/"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--amqp-url[2]: ", r.stderr)
        self.assertNotIn("badpw-rb", r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)


if __name__ == "__main__":
    run_tests([Brokers])
