#!/usr/bin/python3
"""The heartbeat's `state` through one worker's life, as Redis sees it:
`starting` while the broker has never been reached, `ready` once it is,
`reconnecting` while the broker is stopped under the worker, `ready` again
when it is back, and on a warm shutdown `stopped`, then the hash and the
set member deleted. (`draining` is test_worker_health's: it lasts while a
job is in flight; here nothing is, and the drain ends at once.)

`starting` can only be seen while no first connection has been made: a
consumer starts its pool, then connects (blocking, bounded) before its
first beat goes out, so with a reachable broker the first beat already says
`ready`. So the broker is stopped before the worker starts.

`stopped` lasts one Redis round trip: the worker sends HSET state=stopped,
PEXPIRE, DEL and ZREM together just before it exits, so no reading of the
hash can be sure to catch it. The test reads Redis's MONITOR stream instead
(every command Redis executes, in order) and checks that the last write of
the hash says `stopped` and that the DEL comes after it.

The persistent states are read from the hash; the mode is the suite's
(REBOUND_TEST_WORKER_MODE).
"""
import os
import signal
import unittest

from worker_itest import (REDIS_URL, Client, RedisMonitor, Worker, call, delete_queues, job,
                          redis_client, run_control, run_tests, unique_queue, wait_until)

BROKER_STOP = os.environ.get("REBOUND_TEST_BROKER_STOP", "")
BROKER_START = os.environ.get("REBOUND_TEST_BROKER_START", "")


class States(unittest.TestCase):
    def setUp(self):
        if not (BROKER_STOP and BROKER_START):
            self.skipTest("cannot run here: REBOUND_TEST_BROKER_STOP/START not set "
                          "(run through tests/run)")
        self.broker_down = False

    def broker(self, up):
        run_control(BROKER_START if up else BROKER_STOP)
        self.broker_down = not up

    def tearDown(self):
        if self.broker_down:
            run_control(BROKER_START)

    def run_job(self, queue, n):
        client = Client()
        try:
            res = client.call(queue, job("s%d" % n, [call("add", n, 1)]))
            self.assertEqual(res["status"], "ok")
            self.assertEqual(res["results"][0]["val"], n + 1)
        finally:
            client.close()

    def test_starting_ready_reconnecting_ready_stopped(self):
        queue = unique_queue("states")
        prefix = "rbtest-states-%s" % queue
        wid = "w-states"
        key = "%s:worker:%s" % (prefix, wid)
        r = redis_client()
        self.addCleanup(delete_queues, queue, queue + ".dead")

        def state():
            return r.hget(key, "state")

        self.broker(up=False)
        worker = Worker(queue, ready=False,
                        args=["--redis-url", REDIS_URL, "--redis-prefix", prefix,
                              "--heartbeat-ms", "200", "--worker-id", wid])
        self.addCleanup(worker.cleanup)
        wait_until(lambda: state() == "starting", 120, "state starting in " + key)
        worker.wait_log(r"cannot set up .* \(attempt \d+\)")  # it is trying
        self.assertNotIn("connected to ", worker.text())

        self.broker(up=True)
        worker.wait_log(r"connected to ", timeout=120)
        wait_until(lambda: state() == "ready", 30, "state ready")
        self.run_job(queue, 1)

        self.broker(up=False)
        worker.wait_log(r"connection lost")
        wait_until(lambda: state() == "reconnecting", 30, "state reconnecting")
        self.assertIsNone(worker.proc.poll(), "the worker must wait for the broker")

        self.broker(up=True)
        worker.wait_log(r"connected to ", count=2, timeout=120)
        wait_until(lambda: state() == "ready", 30, "state ready after the reconnect")
        self.run_job(queue, 2)

        monitor = RedisMonitor()
        try:
            worker.signal(signal.SIGTERM)
            self.assertEqual(worker.wait(60), 0)
            worker.check_clean()

            def deleted():
                return [c for c in monitor.seen() if c[:2] == ["DEL", key]]
            # The DEL was sent before the exit; the monitor may read it a
            # moment later.
            wait_until(deleted, 10, "DEL %s in Redis's MONITOR stream" % key)
        finally:
            monitor.close()
        commands = monitor.seen()
        writes = [(i, dict(zip(c[2::2], c[3::2]))) for i, c in enumerate(commands)
                  if c[:2] == ["HSET", key]]
        states = [fields.get("state") for _, fields in writes]
        self.assertEqual(states[-1], "stopped", states)
        self.assertEqual(writes[-1][1].get("id"), wid)
        last_write = writes[-1][0]
        self.assertTrue(any(i > last_write for i, c in enumerate(commands)
                            if c[:2] == ["DEL", key]), "no DEL after the last write")
        self.assertEqual(r.exists(key), 0)
        self.assertNotIn(wid, r.zrange(prefix + ":workers", 0, -1))


if __name__ == "__main__":
    run_tests([States], redis=True)
