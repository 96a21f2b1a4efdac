"""Broker flow control (README, "Reliability"): when RabbitMQ raises a
resource alarm it blocks publishing connections. The worker asks to be
told (connection.blocked), holds its results instead of writing them into
a socket the broker no longer reads, and goes on: jobs run and end on
time, wall limits are enforced, the heartbeat stays fresh and says
`blocked`. When the alarm lifts, the held results are published and their
jobs acked. Tested with the broker's own disk alarm
(`rabbitmqctl set_disk_free_limit` far above the free space, then back)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_itest import (REDIS_URL, Client, Worker, classic_counts, job,  # noqa: E402
                          rabbitmqctl_do, redis_client, run_tests, unique_queue, wait_until)

JOBS_PY = '''
import time

def nap(s, v):
    time.sleep(s)
    return v

def spin():
    while True:
        pass
'''

NORMAL_DISK_LIMIT = "50MB"  # RabbitMQ's default
NAP_S = 5.0


class FlowControl(unittest.TestCase):
    def test_a_blocked_broker_freezes_nothing_and_loses_nothing(self):
        queue = unique_queue("flow")
        prefix = "rbtest-flow-%s" % queue
        wid = "w-flow-%d" % os.getpid()
        key = "%s:worker:%s" % (prefix, wid)
        w = Worker(queue, slots=2, args=["--queue-type", "classic", "--redis-url", REDIS_URL,
                                         "--redis-prefix", prefix, "--heartbeat-ms", "200",
                                         "--worker-id", wid], files={"flow.py": JOBS_PY})
        self.addCleanup(w.cleanup)
        redis = redis_client()
        client = Client()
        self.addCleanup(client.close)
        wait_until(lambda: redis.hget(key, "state") == "ready", 30, "the worker ready")
        # A first result makes the worker's connection a publishing one.
        self.assertEqual(client.call(queue, job("first", [{"file": "flow.py", "fcn": "nap",
                                                           "args": [0, 0]}]))["status"], "ok")
        # Long enough to end only once the alarm is up (rabbitmqctl itself
        # takes a second or two): the broker blocks a connection, and says
        # so, when it publishes during an alarm.
        cids = [client.send(queue, job("nap-%d" % i, [{"file": "flow.py", "fcn": "nap",
                                                       "args": [NAP_S, i]}]))
                for i in range(3)]
        cids.append(client.send(queue, job("spin", [{"file": "flow.py", "fcn": "spin"}],
                                           timeout_ms=int(NAP_S * 1000))))
        wait_until(lambda: classic_counts(queue)[0] == 0, 30, "the jobs delivered")

        self.addCleanup(rabbitmqctl_do, "set_disk_free_limit", NORMAL_DISK_LIMIT)
        rabbitmqctl_do("set_disk_free_limit", "1000000GB")
        try:
            wait_until(lambda: redis.hget(key, "state") == "blocked", 60,
                       "the heartbeat to say blocked")
            # The jobs run and end while the broker blocks: the pool counts
            # them (heartbeat), the results are held, none reaches the sender.
            done = lambda: (int(redis.hget(key, "jobs_ok") or 0) >= 4 and  # noqa: E731
                            int(redis.hget(key, "jobs_timeout") or 0) >= 1)
            deadline = time.monotonic() + 60
            while not done():
                beat = int(redis.hget(key, "beat_ms") or 0)
                # Fresh all along: the loop never stops in a write.
                self.assertLess(time.time() * 1000 - beat, 2000)
                self.assertLess(time.monotonic(), deadline, "the jobs to end during the block")
                time.sleep(0.1)
            self.assertEqual(redis.hget(key, "state"), "blocked")
            self.assertEqual([c for c in cids if c in client.replies], [])
        finally:
            rabbitmqctl_do("set_disk_free_limit", NORMAL_DISK_LIMIT)
        wait_until(lambda: redis.hget(key, "state") == "ready", 30, "the heartbeat ready again")
        client.wait(cids, timeout=60)
        for i, cid in enumerate(cids[:3]):
            (r,) = client.replies[cid]
            self.assertEqual((r["status"], r["results"][0]["val"]), ("ok", i))
            self.assertLess(r["ms"], NAP_S * 1000 + 2000)  # its own time, not the block's
        (r,) = client.replies[cids[3]]
        self.assertEqual(r["status"], "timeout")
        self.assertLess(r["ms"], NAP_S * 1000 + 2000)  # killed at its limit during the block
        # Every job acked once its result was confirmed.
        wait_until(lambda: classic_counts(queue) == (0, 0), 30, "nothing left in the queue")
        self.assertIn("the broker blocks publishing", w.text())
        self.assertIn("the broker unblocked publishing", w.text())
        w.stop()


if __name__ == "__main__":
    run_tests([FlowControl], redis=True)
