"""A job that kills its worker, on a quorum queue with a delivery limit:
the broker redelivers it after each death; on the last delivery the limit
allows, the worker does not run it again but answers `crashed`, saying why,
and the job goes to the dead-letter queue. Its sender hears, once. After
its first death it is a suspect, and runs in the quarantine consumer.

Internal mode: only there can a job reach its consumer (in native mode it
runs as another user, in its own namespaces)."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import (KILL_MY_CONSUMER_PY, Client, Worker, delete_queues,  # noqa: E402
                          get_one, job, run_tests, unique_queue, wait_until)

POISON_PY = KILL_MY_CONSUMER_PY + '''
def fine():
    return "fine"
'''


class PoisonAnswered(unittest.TestCase):
    def test_the_poison_job_is_answered_crashed_on_its_last_delivery(self):
        queue = unique_queue("poison")
        w = Worker(queue, mode="internal", slots=1, args=["--delivery-limit", "2"],
                   files={"poison.py": POISON_PY})
        self.addCleanup(delete_queues, queue, queue + ".dead")
        self.addCleanup(w.cleanup)
        client = Client()
        self.addCleanup(client.close)
        cid = client.send(queue, job("poison-1", [{"file": "poison.py",
                                                   "fcn": "kill_my_consumer"}]))
        client.wait([cid], timeout=120)
        r = client.replies[cid][0]
        self.assertEqual(r["status"], "crashed", r)
        self.assertEqual(r["id"], "poison-1")
        self.assertIn("delivered 3 times", r["error"]["message"])
        # Killed twice, answered on the third delivery: first its consumer,
        # then, moved to quarantine as a suspect, the quarantine consumer.
        text = w.text()
        self.assertEqual(len(re.findall(r"\bconsumer 1 \(pid \d+\) killed by signal 9", text)),
                         1, w.tail())
        self.assertEqual(len(re.findall(r"quarantine consumer \(pid \d+\) killed by signal 9",
                                        text)), 1, w.tail())
        self.assertIn("job poison-1: delivered 1 times before, its worker dying each time: "
                      "moved to '%s.suspects' to run alone" % queue, text)
        # It is dead-lettered as the broker would have done.
        _, body = get_one(queue + ".dead", timeout=30)
        self.assertIn(b"poison-1", body)
        # One answer only, and the worker goes on.
        wait_until(lambda: client.call(queue, job("after", [{"file": "poison.py",
                                                              "fcn": "fine"}]))["status"] == "ok",
                   60, "the next job to be answered")
        self.assertEqual(len(client.replies[cid]), 1)
        w.stop()


if __name__ == "__main__":
    run_tests([PoisonAnswered])
