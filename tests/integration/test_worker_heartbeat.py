#!/usr/bin/python3
"""The consumer's Redis heartbeat, as the worker drives it: state ready,
counters that follow the jobs (rejected ones counted by the consumer), and
the key gone after a warm exit."""
import subprocess
import unittest

from worker_itest import (REDIS_URL, Client, Worker, call, delete_queues, job, run_tests,
                          unique_queue, wait_until)


def redis(*args):
    r = subprocess.run(["redis-cli", "-u", REDIS_URL, "--no-raw"] + list(args),
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("redis-cli %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def hgetall(key):
    r = subprocess.run(["redis-cli", "-u", REDIS_URL, "--raw", "HGETALL", key],
                       capture_output=True, text=True, timeout=30)
    lines = r.stdout.splitlines()
    return dict(zip(lines[0::2], lines[1::2]))


class Heartbeat(unittest.TestCase):
    def test_heartbeat(self):
        queue = unique_queue("hb")
        prefix = "rbtest-hb-%s" % queue
        wid = "hbworker"
        key = "%s:worker:%s" % (prefix, wid)
        worker = Worker(queue, args=["--redis-url", REDIS_URL, "--redis-prefix", prefix,
                                     "--heartbeat-ms", "200", "--worker-id", wid])
        client = Client()
        try:
            wait_until(lambda: hgetall(key).get("state") == "ready", 30, "state ready in " + key)
            info = hgetall(key)
            self.assertEqual(info.get("queue"), queue)
            self.assertEqual(info.get("mode"), worker.mode)  # internal or native (the suite's)
            self.assertEqual(info.get("slots"), "2")
            self.assertGreater(int(info.get("rss_kb", "0")), 0)
            self.assertGreater(int(info.get("started_ms", "0")), 0)
            self.assertEqual(info.get("last_job_ms"), "0")

            self.assertEqual(client.call(queue, job("h1", [call("add", 1, 1)]))["status"], "ok")
            self.assertEqual(client.call(queue, job("h2", [call("nope")]), raw=b"\xc1")["status"],
                             "rejected")
            wait_until(lambda: hgetall(key).get("jobs_ok") == "1" and
                       hgetall(key).get("jobs_rejected") == "1", 30, "the counters")
            self.assertGreater(int(hgetall(key)["last_job_ms"]), 0)
            worker.stop()
            self.assertEqual(hgetall(key), {})
            self.assertNotIn(wid, redis("ZRANGE", prefix + ":workers", "0", "-1"))
        finally:
            client.close()
            worker.cleanup()
            delete_queues(queue, queue + ".dead")


if __name__ == "__main__":
    run_tests([Heartbeat], redis=True)
