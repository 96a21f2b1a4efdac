"""The broker's and Redis' URLs given out of sight of ps: by a file only
its owner may read (--amqp-url-file, --redis-url-file, or the variables
REBOUND_AMQP_URL_FILE, REBOUND_REDIS_URL_FILE), or by the environment
(REBOUND_AMQP_URL, REBOUND_REDIS_URL).

The broker gets a user of the test's own with a password found nowhere
else, and Redis a password (requirepass, removed at the end): a job
answered and a heartbeat written prove the worker used them. Then neither
password may appear in the command line of any process of the worker's
tree (/proc/<pid>/cmdline), nor anywhere in `ps -eo args`, nor in any line
the worker logged at debug level (which includes a dead first broker
whose URL carries the password: its failure is logged). A file that group
or others may read is refused, as ssh refuses a key."""
import os
import re
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worker_itest as wi  # noqa: E402

from test_worker_brokers import closed_port  # noqa: E402
from test_worker_secrets import cmdline, tree  # noqa: E402


def secret_file(directory, name, text, mode=0o600):
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return path


class SecretFiles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tag = uuid.uuid4().hex[:10]
        cls.user = "rbsecret-%s" % tag
        cls.amqp_pw = "amqpPW%s" % tag
        cls.redis_pw = "redisPW%s" % tag
        wi.rabbitmqctl_do("add_user", cls.user, cls.amqp_pw)
        wi.rabbitmqctl_do("set_permissions", "-p", "/", cls.user, ".*", ".*", ".*")
        base = urllib_split(wi.AMQP_URL)
        cls.amqp_url = "amqp://%s:%s@%s" % (cls.user, cls.amqp_pw, base)
        cls.dead_url = "amqp://%s:%s@127.0.0.1:%d/%%2f" % (cls.user, cls.amqp_pw, closed_port())
        cls.redis_url = wi.REDIS_URL.replace("redis://", "redis://:%s@" % cls.redis_pw, 1)
        wi.redis_client().config_set("requirepass", cls.redis_pw)
        cls.redis = authed_redis(cls.redis_pw)
        cls.dir = tempfile.mkdtemp(prefix="rb-secret-")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.redis.config_set("requirepass", "")
        finally:
            wi.rabbitmqctl_do("delete_user", cls.user)
            subprocess.run(["rm", "-rf", cls.dir], timeout=60)

    def run_worker(self, tag, args, env):
        queue = wi.unique_queue(tag)
        prefix = "rbtest-secret-%s" % queue
        root = tempfile.mkdtemp(prefix="rbw-code-")
        os.chmod(root, 0o755)
        with open(os.path.join(root, "jobs.py"), "w") as f:
            f.write(wi.JOBS_PY)
        log_path = os.path.join(self.dir, "%s.log" % tag)
        e = {k: v for k, v in os.environ.items() if not k.startswith("REBOUND_")
             or k.startswith("REBOUND_TEST_") or k == "REBOUND_BIN_DIR"}
        e.update(env)
        argv = [wi.WORKER, "--queue", queue, "--mode", wi.MODE, "--slots", "1",
                "--code-root", root, "--preload", "json", "--log-level", "debug",
                "--worker-id", "w-" + tag, "--redis-prefix", prefix,
                "--heartbeat-ms", "200"] + args
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=e)
        self.addCleanup(subprocess.run, ["rm", "-rf", root], timeout=60)
        self.addCleanup(wi.delete_queues, queue, queue + ".dead")
        self.addCleanup(stop, proc)

        def text():
            with open(log_path, errors="replace") as f:
                return f.read()
        try:
            wi.wait_until(lambda: proc.poll() is not None or "connected to " in text(), 120,
                          "the worker to connect")
            self.assertIsNone(proc.poll(), text())
            client = wi.Client()
            try:
                r = client.call(queue, wi.job("s", [wi.call("add", 2, 3)]), timeout=60)
            finally:
                client.close()
            self.assertEqual(r["status"], "ok", r)
            key = "%s:worker:w-%s" % (prefix, tag)
            wi.wait_until(lambda: self.redis.hget(key, "state") == "ready", 30,
                          "the heartbeat in " + key)
            self.assert_nowhere(proc.pid, text())
        except BaseException:
            print(text()[-3000:], file=sys.stderr)
            raise
        proc.terminate()
        self.assertEqual(proc.wait(60), 0, text())
        log = text()
        self.assertNotIn(self.amqp_pw, log)
        self.assertNotIn(self.redis_pw, log)
        self.assertNotIn("runtime error:", log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        return log

    def assert_nowhere(self, pid, log):
        pids = tree(pid)
        # The supervisor, a consumer, its trampoline (mother, zygote) at least.
        self.assertGreaterEqual(len(pids), 3, pids)
        for p in pids:
            text = cmdline(p)
            self.assertNotIn(self.amqp_pw, text, "pid %d: %s" % (p, text))
            self.assertNotIn(self.redis_pw, text, "pid %d: %s" % (p, text))
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, timeout=30)
        self.assertEqual(ps.returncode, 0, ps.stderr)
        self.assertIn(wi.WORKER, ps.stdout)
        self.assertNotIn(self.amqp_pw, ps.stdout)
        self.assertNotIn(self.redis_pw, ps.stdout)
        self.assertNotIn(self.amqp_pw, log)
        self.assertNotIn(self.redis_pw, log)

    def test_urls_by_file_flags(self):
        amqp = secret_file(self.dir, "amqp-flag", "%s,%s" % (self.dead_url, self.amqp_url))
        redis = secret_file(self.dir, "redis-flag", self.redis_url, 0o400)
        log = self.run_worker("file-flags", ["--amqp-url-file", amqp, "--redis-url-file", redis],
                              {})
        # The dead first broker's failure was logged, its password masked.
        self.assertRegex(log, r"cannot set up amqp://%s:\*\*\*@127\.0\.0\.1:" % self.user)
        self.assertRegex(log, r"connected to amqp://%s:\*\*\*@[^ ]+ \(broker 2 of 2\)"
                         % self.user)

    def test_urls_by_file_variables(self):
        amqp = secret_file(self.dir, "amqp-env", self.amqp_url)
        redis = secret_file(self.dir, "redis-env", self.redis_url)
        self.run_worker("file-env", [], {"REBOUND_AMQP_URL_FILE": amqp,
                                         "REBOUND_REDIS_URL_FILE": redis})

    def test_urls_by_environment(self):
        self.run_worker("env", [], {"REBOUND_AMQP_URL": "%s,%s" % (self.dead_url, self.amqp_url),
                                    "REBOUND_REDIS_URL": self.redis_url})

    def test_a_file_others_may_read_is_refused(self):
        amqp = secret_file(self.dir, "amqp-open", self.amqp_url, 0o644)
        r = subprocess.run([wi.WORKER, "--amqp-url-file", amqp, "--code-root", "/"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertRegex(r.stderr, r"^rebound-worker: --amqp-url-file: %s: permissions 0644 "
                         r"are too open" % re.escape(amqp))
        self.assertNotIn(self.amqp_pw, r.stderr)
        redis = secret_file(self.dir, "redis-open", self.redis_url, 0o640)
        r = subprocess.run([wi.WORKER, "--redis-url-file", redis, "--code-root", "/"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--redis-url-file: ", r.stderr)
        self.assertIn("chmod 600", r.stderr)


def urllib_split(url):
    """host:port/vhost of an amqp:// URL (its userinfo dropped)."""
    rest = url.split("://", 1)[1]
    return rest.rsplit("@", 1)[-1]


def authed_redis(password):
    import redis
    return redis.Redis.from_url(wi.REDIS_URL, password=password, decode_responses=True,
                                socket_timeout=30, socket_connect_timeout=30)


def stop(proc):
    """Never leave the worker behind: its consumers and it, by pid."""
    if proc.poll() is None:
        for p in tree(proc.pid)[1:]:
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait(30)


if __name__ == "__main__":
    wi.run_tests([SecretFiles], redis=True)
