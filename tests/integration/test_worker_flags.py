#!/usr/bin/python3
"""rebound-worker's settings: a bad flag, variable, URL or number is one
line of error naming it and exit code 2, before anything is connected to;
--help lists every flag with its variable and default.

Needs only REBOUND_BIN_DIR (no servers): the "nothing connected" check
listens on a port of its own and sees that nobody came.
"""
import os
import socket
import subprocess
import sys
import tempfile
import unittest

BIN_DIR = os.environ.get("REBOUND_BIN_DIR", "")
WORKER = os.path.join(BIN_DIR, "rebound-worker")


def worker(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("REBOUND_")}
    e.update(env or {})
    return subprocess.run([WORKER] + list(args), capture_output=True, text=True, timeout=60,
                          env=e)


class Flags(unittest.TestCase):
    def setUp(self):
        # A broker stand-in that only counts connection attempts.
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.url = "amqp://guest:guest@127.0.0.1:%d/" % self.listener.getsockname()[1]
        self.root = tempfile.mkdtemp(prefix="rbw-flags-")

    def tearDown(self):
        self.listener.close()
        os.rmdir(self.root)

    def assert_usage_error(self, r, name):
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("rebound-worker: "), lines[0])
        self.assertIn(name, lines[0])
        with self.assertRaises(BlockingIOError):
            self.listener.accept()  # nobody tried to connect

    def test_bad_flags(self):
        cases = [
            (["--no-such-flag"], "--no-such-flag"),
            (["--slots", "many"], "--slots"),
            (["--slots", "0"], "--slots"),
            (["--consumers=-1"], "--consumers"),
            (["--timeout-ms", "10x"], "--timeout-ms"),
            (["--max-job-bytes", "8Q"], "--max-job-bytes"),
            (["--queue-type", "stream"], "--queue-type"),
            (["--mode", "docker"], "--mode"),
            (["--log-level", "loud"], "--log-level"),
            (["--log-format", "xml"], "--log-format"),
            (["--allow-network=maybe"], "--allow-network"),
            (["--heartbeat-ms"], "--heartbeat-ms"),
            (["--code-root", "/nonexistent/dir"], "--code-root"),
            (["--timeout-ms", "5000", "--max-timeout-ms", "1000"], "--timeout-ms"),
            (["--redis-url", "mysql://x"], "--redis-url"),
            (["--worker-id", "has space"], "--worker-id"),
            (["stray-argument"], "stray-argument"),
        ]
        for args, name in cases:
            with self.subTest(args=args):
                r = worker("--amqp-url", self.url, "--code-root", self.root, *args)
                self.assert_usage_error(r, name)

    def test_bad_urls(self):
        for url in ["http://127.0.0.1/", "amqp://127.0.0.1:0/", "amqp://127.0.0.1:99999/",
                    "amqp://127.0.0.1/a/b", "amqp://127.0.0.1/%zz", "not a url"]:
            with self.subTest(url=url):
                self.assert_usage_error(worker("--amqp-url", url, "--code-root", self.root),
                                        "--amqp-url")

    def test_password_not_shown(self):
        r = worker("--amqp-url", "amqp://bob:s3cret@127.0.0.1:0/", "--code-root", self.root)
        self.assert_usage_error(r, "--amqp-url")
        self.assertNotIn("s3cret", r.stderr)

    def test_bad_environment(self):
        for var, value in [("REBOUND_SLOTS", "x"), ("REBOUND_AMQP_URL", "http://x/"),
                           ("REBOUND_QUEUE_TYPE", "lazy"), ("REBOUND_DRAIN_MS", "-5")]:
            with self.subTest(var=var):
                r = worker("--code-root", self.root, env={var: value})
                self.assert_usage_error(r, var)

    def test_flag_wins_over_environment(self):
        # The variable is bad, the flag good: the flag is what counts, so
        # the failure is the later, deliberate one (--mode).
        r = worker("--amqp-url", self.url, "--code-root", self.root, "--slots", "2",
                   "--mode", "bogus", env={"REBOUND_SLOTS": "0"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("REBOUND_SLOTS", r.stderr)  # the environment is read first
        r = worker("--amqp-url", self.url, "--code-root", self.root, "--mode", "bogus",
                   env={"REBOUND_MODE": "internal"})
        self.assert_usage_error(r, "--mode")

    def test_help_and_version(self):
        r = worker("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for flag, var, default in [
                ("--amqp-url", "REBOUND_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
                ("--queue", "REBOUND_QUEUE", "rebound.jobs"),
                ("--queue-type", "REBOUND_QUEUE_TYPE", "quorum"),
                ("--consumers", "REBOUND_CONSUMERS", "1"),
                ("--slots", "REBOUND_SLOTS", None),
                ("--code-root", "REBOUND_CODE_ROOT", None),
                ("--mode", "REBOUND_MODE", "native"),
                ("--preload", "REBOUND_PRELOAD", "numpy,lxml.etree,json,random,math"),
                ("--timeout-ms", "REBOUND_TIMEOUT_MS", "10000"),
                ("--max-timeout-ms", "REBOUND_MAX_TIMEOUT_MS", "60000"),
                ("--max-job-bytes", "REBOUND_MAX_JOB_BYTES", "8MiB"),
                ("--max-output-bytes", "REBOUND_MAX_OUTPUT_BYTES", "1MiB"),
                ("--worker-id", "REBOUND_WORKER_ID", None),
                ("--redis-url", "REBOUND_REDIS_URL", "empty"),
                ("--redis-prefix", "REBOUND_REDIS_PREFIX", "rebound"),
                ("--heartbeat-ms", "REBOUND_HEARTBEAT_MS", "2000"),
                ("--log-format", "REBOUND_LOG_FORMAT", "text"),
                ("--log-level", "REBOUND_LOG_LEVEL", "info"),
                ("--drain-ms", "REBOUND_DRAIN_MS", "30000"),
                ("--prefetch", "REBOUND_PREFETCH", None),
                ("--delivery-limit", "REBOUND_DELIVERY_LIMIT", "5"),
                ("--amqp-heartbeat", "REBOUND_AMQP_HEARTBEAT", "10"),
                ("--mem-limit-mb", "REBOUND_MEM_LIMIT_MB", "1024"),
                ("--tmp-mb", "REBOUND_TMP_MB", "256"),
                ("--tmp-inodes", "REBOUND_TMP_INODES", "65536"),
                ("--container-cmd", "REBOUND_CONTAINER_CMD", "empty"),
                ("--container-rw", "REBOUND_CONTAINER_RW", "empty"),
                ("--run-as", "REBOUND_RUN_AS", "nobody"),
                ("--watchdog-ms", "REBOUND_WATCHDOG_MS", "60000"),
                ("--shared-cpus", "REBOUND_SHARED_CPUS", "false"),
                ("--allow-network", "REBOUND_ALLOW_NETWORK", "false"),
                ("--sandbox-best-effort", "REBOUND_SANDBOX_BEST_EFFORT", "false")]:
            with self.subTest(flag=flag):
                self.assertRegex(r.stdout, r"(?m)^  %s\b" % flag)
                if default is None:
                    self.assertIn("[%s]" % var, r.stdout)
                else:
                    self.assertIn("[%s; default: %s]" % (var, default), r.stdout)
        r = worker("--version")
        self.assertEqual(r.returncode, 0)
        # With the embedded Python's version, which the worker does not link.
        self.assertRegex(r.stdout, r"^rebound-worker \d+\.\d+\S* \(Python 3\.\d+\.\d+\)\n")


if __name__ == "__main__":
    if not BIN_DIR:
        print("skipped: REBOUND_BIN_DIR not set")
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
