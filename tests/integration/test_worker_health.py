#!/usr/bin/python3
"""The heartbeat end to end, as operations see it: every outcome counted,
the TTL, 'draining' then nothing on SIGTERM, a killed worker expiring and
shown as lost by rebound-status, and Redis stopped while jobs flow."""
import json
import os
import signal
import subprocess
import time
import unittest

from worker_itest import (BIN_DIR, REDIS_URL, Client, Worker, call, delete_queues, job,
                          redis_client, run_tests, unique_queue, wait_until)

STATUS = os.path.join(BIN_DIR, "rebound-status")
INTERVAL_MS = 300


def redis(*args):
    r = subprocess.run(["redis-cli", "-u", REDIS_URL, "--raw"] + list(args),
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("redis-cli %s: %s" % (" ".join(args), r.stderr))
    return r.stdout.strip()


def hgetall(key):
    # Not through redis-cli's output: an empty value last in the reply (the
    # hash's order is Redis's own) would be a trailing empty line, lost.
    return redis_client().hgetall(key)


def status_json(prefix):
    r = subprocess.run([STATUS, "--redis-url", REDIS_URL, "--prefix", prefix, "--json"],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, json.loads(r.stdout)


def source(text, fcn):
    return {"source": text, "fcn": fcn}


class WorkerHealth(unittest.TestCase):
    def start(self, tag, **kw):
        self.queue = unique_queue(tag)
        self.prefix = "rbtest-%s" % self.queue
        self.wid = "w-" + tag
        self.key = "%s:worker:%s" % (self.prefix, self.wid)
        args = ["--redis-url", REDIS_URL, "--redis-prefix", self.prefix,
                "--heartbeat-ms", str(INTERVAL_MS), "--worker-id", self.wid]
        self.worker = Worker(self.queue, args=args, **kw)
        self.client = Client()
        self.addCleanup(delete_queues, self.queue, self.queue + ".dead")
        self.addCleanup(self.client.close)
        self.addCleanup(self.worker.cleanup)

    def test_counters_follow_every_outcome(self):
        self.start("outcomes")
        wait_until(lambda: hgetall(self.key).get("state") == "ready", 30, "state ready")
        info = hgetall(self.key)
        for field in ("id", "host", "pid", "queue", "mode", "version", "state", "started_ms",
                      "beat_ms", "slots", "busy", "jobs_ok", "jobs_error", "jobs_timeout",
                      "jobs_crashed", "jobs_rejected", "redelivered", "last_job_ms",
                      "avg_run_ms", "rss_kb", "preload_failed", "sandbox", "python"):
            self.assertIn(field, info)
        self.assertEqual(info["id"], self.wid)
        # As the trampoline reported it: the embedded Python's version.
        self.assertRegex(info["python"], r"^3\.1[1-9]\.\d+$")
        self.assertEqual(int(info["pid"]), self.worker.consumer_pids()[0])
        ttl = int(redis("PTTL", self.key))
        self.assertTrue(0 < ttl <= 3 * INTERVAL_MS, ttl)
        score = float(redis("ZSCORE", self.prefix + ":workers", self.wid))
        self.assertAlmostEqual(score / 1000, time.time(), delta=30)

        c = self.client
        self.assertEqual(c.call(self.queue, job("ok", [call("add", 1, 2)]))["status"], "ok")
        self.assertEqual(c.call(self.queue, job("er", [call("fail", "x")]))["status"], "error")
        self.assertEqual(c.call(self.queue, job("to", [call("spin")], timeout_ms=300))["status"],
                         "timeout")
        crash = source("import os\ndef boom():\n    os._exit(3)\n", "boom")
        self.assertEqual(c.call(self.queue, job("cr", [crash]))["status"], "crashed")
        self.assertEqual(c.call(self.queue, job("rj", []), raw=b"\xc1")["status"], "rejected")

        want = {"jobs_ok": "1", "jobs_error": "1", "jobs_timeout": "1", "jobs_crashed": "1",
                "jobs_rejected": "1"}
        wait_until(lambda: all(hgetall(self.key).get(k) == v for k, v in want.items()),
                   10, "every counter at 1: %s" % want)
        info = hgetall(self.key)
        self.assertGreater(int(info["last_job_ms"]), 0)
        self.assertGreater(float(info["avg_run_ms"]), 0)
        self.assertEqual(info["busy"], "0")

    def test_draining_then_gone_on_sigterm(self):
        self.start("drain")
        wait_until(lambda: hgetall(self.key).get("state") == "ready", 30, "state ready")
        cid = self.client.send(self.queue, job("long", [call("sleep", 2, "done")]))
        wait_until(lambda: hgetall(self.key).get("busy") == "1", 10, "busy 1")
        self.worker.signal(signal.SIGTERM)
        wait_until(lambda: hgetall(self.key).get("state") == "draining", 5, "state draining")
        self.client.wait([cid], 30)
        self.assertEqual(self.client.replies[cid][0]["status"], "ok")
        self.worker.wait(30)
        self.worker.check_clean(self.worker.returncode)
        self.assertEqual(hgetall(self.key), {})
        self.assertNotIn(self.wid, redis("ZRANGE", self.prefix + ":workers", "0", "-1"))

    def test_killed_worker_expires_and_is_shown_lost(self):
        self.start("killed")
        wait_until(lambda: hgetall(self.key).get("state") == "ready", 30, "state ready")
        rc, doc = status_json(self.prefix)
        self.assertEqual(rc, 0)
        self.assertEqual([w["id"] for w in doc["workers"]], [self.wid])
        self.assertFalse(doc["workers"][0]["lost"])

        # No warm exit anywhere: stop the supervisor so it restarts nothing,
        # then kill everything.
        consumers = self.worker.consumer_pids()
        self.worker.signal(signal.SIGSTOP)
        for pid in consumers:
            os.kill(pid, signal.SIGKILL)
        self.worker.signal(signal.SIGKILL)
        self.worker.wait(30)
        killed_at = time.monotonic()
        # The hash expires within 3 intervals of its last beat.
        wait_until(lambda: redis("EXISTS", self.key) == "0", 3 * INTERVAL_MS / 1000 + 1,
                   "the hash to expire")
        self.assertLess(time.monotonic() - killed_at, 3 * INTERVAL_MS / 1000 + 1)
        rc, doc = status_json(self.prefix)
        self.assertEqual(rc, 1)  # nobody ready
        self.assertEqual([(w["id"], w["lost"]) for w in doc["workers"]], [(self.wid, True)])

        # Another writer under the same prefix drops it after 10 intervals.
        other = Worker(self.queue, args=["--redis-url", REDIS_URL, "--redis-prefix", self.prefix,
                                         "--heartbeat-ms", str(INTERVAL_MS), "--worker-id",
                                         "w-other"])
        try:
            wait_until(lambda: [w["id"] for w in status_json(self.prefix)[1]["workers"]]
                       == ["w-other"], 10 * INTERVAL_MS / 1000 + 10, "the lost worker dropped")
            self.assertEqual(status_json(self.prefix)[0], 0)
            other.stop()
        finally:
            other.cleanup()

    def test_redis_outage_does_not_hold_up_jobs(self):
        stop, start = os.environ["REBOUND_TEST_REDIS_STOP"], os.environ["REBOUND_TEST_REDIS_START"]
        self.start("outage")
        wait_until(lambda: hgetall(self.key).get("state") == "ready", 30, "state ready")
        subprocess.run([stop], check=True, timeout=60)
        try:
            # Jobs flow while Redis is down: all answered, none lost.
            cids = [self.client.send(self.queue, job("o%d" % i, [call("add", i, 1)]))
                    for i in range(40)]
            self.client.wait(cids, 30)
            for i, cid in enumerate(cids):
                self.assertEqual(self.client.replies[cid][0]["results"][0]["val"], i + 1)
                self.assertEqual(len(self.client.replies[cid]), 1)
        finally:
            subprocess.run([start], check=True, timeout=60)
        self.worker.wait_log("heartbeat: redis .* unreachable", timeout=10)
        # Beats resume, with the jobs counted.
        wait_until(lambda: hgetall(self.key).get("jobs_ok") == "40", 15, "beats to resume")
        self.worker.wait_log("heartbeat: redis reachable again", timeout=10)
        self.worker.stop()


if __name__ == "__main__":
    run_tests([WorkerHealth], redis=True)
