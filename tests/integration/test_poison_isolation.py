"""No innocent job is lost to a poison neighbour (README, "Reliability").

A job that kills its worker (here: its consumer, which a job can reach in
internal mode only) takes the jobs in flight beside it down too, and the
broker redelivers them all: neighbours and poison come back together,
flagged as redelivered, and cannot be told apart. If they ran together
again, the neighbours' delivery counts would climb with the poison's, until
they too passed the quorum queue's delivery limit and were dead-lettered.

The worker runs every such "suspect" alone, in its quarantine consumer
(admit.c). The chaos case, ten times over, on one worker of 2 consumers x
2 slots with a delivery limit of 3: a stream of jobs that each take a
moment (so that neighbours are in flight when the poison strikes), with
one poison job among them. Every innocent job must be answered `ok` (a
duplicate is allowed, a loss is not), the poison job `crashed` on its last
delivery, and the dead-letter queue must hold the poison job alone."""
import os
import re
import sys
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import (KILL_MY_CONSUMER_PY, Client, Worker, classic_counts,  # noqa: E402
                          delete_queues, get_one, job, run_tests, unique_queue, wait_until)

JOBS_PY = KILL_MY_CONSUMER_PY + '''
import time

def work(i):
    time.sleep(0.15)
    return i
'''

RUNS = 10
JOBS = 24
LIMIT = 3


class PoisonIsolation(unittest.TestCase):
    def run_once(self, n):
        queue = unique_queue("isolation%d" % n)
        w = Worker(queue, mode="internal", consumers=2, slots=2,
                   args=["--delivery-limit", str(LIMIT), "--restart-reset-ms", "1000"],
                   files={"jobs.py": JOBS_PY})
        self.addCleanup(delete_queues, queue, queue + ".dead")
        self.addCleanup(w.cleanup)
        client = Client()
        self.addCleanup(client.close)
        cids = {}
        for i in range(JOBS):
            if i == JOBS // 3:
                cids["poison"] = client.send(queue, job("poison", [
                    {"file": "jobs.py", "fcn": "kill_my_consumer"}]))
            cids["job-%d" % i] = client.send(queue, job("job-%d" % i, [
                {"file": "jobs.py", "fcn": "work", "args": [i]}]))
        client.wait(list(cids.values()), timeout=180)
        for name, cid in cids.items():
            answers = client.replies[cid]
            statuses = {a["status"] for a in answers}
            if name == "poison":
                self.assertEqual(statuses, {"crashed"}, (n, answers))
                self.assertIn("delivered %d times" % (LIMIT + 1),
                              answers[0]["error"]["message"])
            else:
                self.assertEqual(statuses, {"ok"}, (n, name, answers, w.tail()))
        # The poison job alone went to the dead-letter queue.
        _, body = get_one(queue + ".dead", timeout=30)
        self.assertEqual(msgpack.unpackb(body, raw=False)["id"], "poison")
        wait_until(lambda: classic_counts(queue + ".dead") == (0, 0), 10,
                   "nothing else in %s.dead" % queue)
        # The poison killed a consumer once; as a suspect it ran in the
        # quarantine consumer, and killed that on each of its other runs.
        text = w.text()
        kills = re.findall(r"quarantine consumer \(pid \d+\) killed by signal 9", text)
        self.assertGreaterEqual(len(kills), LIMIT - 1, w.tail())
        self.assertIn("job poison: delivered 1 times before", text)
        w.stop()
        return text.count("to run alone")

    def test_no_innocent_job_is_dead_lettered(self):
        set_aside = 0
        for n in range(RUNS):
            with self.subTest(run=n):
                set_aside += self.run_once(n)
        print("suspects moved to quarantine, over %d runs: %d" % (RUNS, set_aside))


if __name__ == "__main__":
    run_tests([PoisonIsolation])
