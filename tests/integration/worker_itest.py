"""Shared parts of the rebound-worker integration tests (test_worker_*.py).

Each test starts its own rebound-worker, on a queue name of its own and
with a temporary code root, against the private RabbitMQ (and Redis) that
tests/run starts, and stops it by pid at the end. Every wait is bounded.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

import msgpack
import pika

AMQP_URL = os.environ.get("REBOUND_TEST_AMQP_URL", "")
RABBITMQ_CTL = os.environ.get("REBOUND_TEST_RABBITMQ_CTL", "")
REDIS_URL = os.environ.get("REBOUND_TEST_REDIS_URL", "")
BIN_DIR = os.environ.get("REBOUND_BIN_DIR", "")
WORKER = os.path.join(BIN_DIR, "rebound-worker")
SUBMIT = os.path.join(BIN_DIR, "rebound-submit")

# Python functions the jobs call, written into each test's code root.
JOBS_PY = '''
import os
import time

def add(a, b):
    return a + b

def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}

def hello(name):
    print("hello", name)
    return "hi " + name

def sleep(s, value=None):
    time.sleep(s)
    return value

def fail(msg):
    raise ValueError(msg)

def spin():
    while True:
        pass

def pid():
    return os.getpid()

def raw():
    return b"\\x00\\xffrebound"
'''


# The mode every Worker runs in unless a test names one: tests/CMakeLists.txt
# registers each test_worker_*.py twice, once as is ("internal") and once
# with REBOUND_TEST_WORKER_MODE=native (sandboxed; as root, jobs run as
# nobody). A test that is about one mode passes mode= explicitly and says so.
MODE = os.environ.get("REBOUND_TEST_WORKER_MODE", "") or "internal"

# Where a test and its jobs can both write: not under /tmp, /var/tmp or
# /dev/shm (each job has its own), nor under a path the sandbox hides.
SHARED_BASE = "/var/cache/rebound-tests"


# A job function that kills its own consumer process (child -> zygote ->
# mother, rebound-trampoline -> consumer): a job reaches it in internal mode
# only. The poison of the poison tests.
KILL_MY_CONSUMER_PY = '''
import os, signal

def ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

def kill_my_consumer():
    os.kill(ppid(ppid(ppid(os.getpid()))), signal.SIGKILL)
    return "unreachable"
'''


def shared_dir(tag):
    """A fresh directory anyone may write (1777) under SHARED_BASE."""
    os.makedirs(SHARED_BASE, exist_ok=True)
    path = tempfile.mkdtemp(prefix="rb-%s-" % tag, dir=SHARED_BASE)
    os.chmod(path, 0o1777)
    return path


def host_pid_in_namespace(ns, inner):
    """The pid, as the host sees it, of the process that is pid `inner` in
    the PID namespace `ns` (as /proc/self/ns/pid reads in a job), or None."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/ns/pid" % entry) != ns:
                continue
            with open("/proc/%s/status" % entry) as f:
                for line in f:
                    if line.startswith("NSpid:") and int(line.split()[-1]) == inner:
                        return int(entry)
        except (OSError, ValueError):
            continue
    return None
if MODE not in ("internal", "native"):
    raise SystemExit("REBOUND_TEST_WORKER_MODE must be internal or native, not %r" % MODE)


def require_servers(redis=False):
    """Exit 77 (ctest: skipped) when tests/run did not provide the servers."""
    missing = [n for n, v in (("REBOUND_TEST_AMQP_URL", AMQP_URL), ("REBOUND_BIN_DIR", BIN_DIR))
               if not v]
    if redis and not REDIS_URL:
        missing.append("REBOUND_TEST_REDIS_URL")
    if missing:
        print("skipped: %s not set (run through tests/run)" % ", ".join(missing))
        sys.exit(77)


def unique_queue(tag):
    return "rbtest.%s.%d.%s" % (tag, os.getpid(), uuid.uuid4().hex[:6])


def wait_until(pred, timeout, what, step=0.05):
    """Poll pred until it is true; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(step)


def job(job_id, calls, **extra):
    body = {"v": 1, "id": job_id, "calls": calls}
    body.update(extra)
    return body


def call(fcn, *args, **kwargs):
    c = {"fcn": fcn, "file": "jobs.py", "args": list(args)}
    if kwargs:
        c["kwargs"] = kwargs
    return c


class Worker:
    """A rebound-worker process with its own queue, code root and log file."""

    def __init__(self, queue, mode=None, consumers=1, slots=2, args=(), env=None,
                 ready=True, sandbox_best_effort=False, files=None):
        """mode: None for MODE (the environment's). sandbox_best_effort adds
        --sandbox-best-effort; without it a native worker refuses to start
        when a sandbox layer cannot be applied, as it does for users.
        files: {name: source} written into the code root (beside, or in the
        place of, jobs.py) before the worker starts."""
        self.queue = queue
        self.mode = mode or MODE
        self.slots = slots
        self.consumers = consumers
        self.code_root = tempfile.mkdtemp(prefix="rbw-code-")
        # Native mode runs jobs as --run-as (nobody): they must read the code.
        os.chmod(self.code_root, 0o755)
        for name, text in dict({"jobs.py": JOBS_PY}, **(files or {})).items():
            with open(os.path.join(self.code_root, name), "w") as f:
                f.write(text)
        fd, self.log_path = tempfile.mkstemp(prefix="rbw-log-", suffix=".txt")
        self.log = os.fdopen(fd, "w")
        self.argv = [WORKER, "--amqp-url", AMQP_URL, "--queue", queue, "--mode", self.mode,
                     "--consumers", str(consumers), "--slots", str(slots),
                     "--code-root", self.code_root, "--preload", "json",
                     "--log-level", "debug"]
        if sandbox_best_effort:
            self.argv.append("--sandbox-best-effort")
        self.argv += list(args)
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=e)
        self.returncode = None
        if ready:
            try:
                self.wait_log(r"connected to ", count=consumers, timeout=120)
            except BaseException:
                print(self.tail(), file=sys.stderr)
                self.cleanup()
                raise

    @property
    def pid(self):
        return self.proc.pid

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, count=1, timeout=60):
        rx = re.compile(pattern)

        def seen():
            if self.proc.poll() is not None and len(rx.findall(self.text())) < count:
                raise AssertionError("worker exited (%s) before logging %r:\n%s"
                                     % (self.proc.returncode, pattern, self.tail()))
            return len(rx.findall(self.text())) >= count
        wait_until(seen, timeout, "%d x %r in the worker log" % (count, pattern))

    def tail(self, n=60):
        return "\n".join(self.text().splitlines()[-n:])

    def consumer_pids(self):
        """Pids of the supervisor's children (the consumer processes)."""
        path = "/proc/%d/task/%d/children" % (self.pid, self.pid)
        try:
            with open(path) as f:
                return [int(p) for p in f.read().split()]
        except FileNotFoundError:
            return []

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=60):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("worker did not exit within %d s:\n%s" % (timeout, self.tail()))
        return self.returncode

    def stop(self, timeout=60):
        """SIGTERM, wait; the exit must be clean (status 0, no sanitizer report)."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        rc = self.wait(timeout)
        self.check_clean(rc)
        return rc

    def check_clean(self, rc=0):
        text = self.text()
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if bad in text:
                raise AssertionError("sanitizer report in the worker log:\n" + self.tail(120))
        if rc != 0:
            raise AssertionError("worker exited with %s:\n%s" % (rc, self.tail()))

    def cleanup(self):
        """Never leave the worker behind, whatever happened."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        for pid in self.consumer_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        shutil.rmtree(self.code_root, ignore_errors=True)
        if os.environ.get("REBOUND_KEEP_LOGS") != "1":
            os.unlink(self.log_path)


def connect():
    params = pika.URLParameters(AMQP_URL)
    params.heartbeat = 30
    params.blocked_connection_timeout = 60
    return pika.BlockingConnection(params)


class Client:
    """A job sender on its own connection, with direct reply-to.

    Replies are collected per correlation id; each one counts, so a reply
    arriving twice is seen as such.
    """

    def __init__(self):
        self.conn = connect()
        self.ch = self.conn.channel()
        self.replies = {}  # correlation id -> list of decoded results
        self.props = {}
        self.ch.basic_consume("amq.rabbitmq.reply-to", self._on_reply, auto_ack=True)

    def _on_reply(self, ch, method, props, body):
        res = msgpack.unpackb(body, raw=False)
        self.replies.setdefault(props.correlation_id, []).append(res)
        self.props.setdefault(props.correlation_id, []).append(props)

    def send(self, queue, body, correlation_id=None, content_type="application/msgpack",
             raw=None, headers=None):
        cid = correlation_id or uuid.uuid4().hex
        data = raw if raw is not None else msgpack.packb(body, use_bin_type=True)
        self.ch.basic_publish(
            "", queue, data,
            pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id=cid,
                                 content_type=content_type, delivery_mode=2,
                                 headers=headers))
        return cid

    def wait(self, cids, timeout=60):
        """Wait until every cid has at least one reply."""
        deadline = time.monotonic() + timeout
        while any(c not in self.replies for c in cids):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [c for c in cids if c not in self.replies]
                raise AssertionError("%d of %d replies missing after %d s"
                                     % (len(missing), len(cids), timeout))
            self.conn.process_data_events(time_limit=min(left, 0.2))

    def call(self, queue, body, timeout=60, **kw):
        cid = self.send(queue, body, **kw)
        self.wait([cid], timeout)
        return self.replies[cid][0]

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def queue_counts(queue):
    """(ready messages, consumers) of a queue, from a passive declare: the
    queue's own counts when asked (a quorum queue whose leader does not
    answer within 250 ms reads (0, 0), so a test that waits for 0 must know
    something else, such as a consumer count above 0)."""
    conn = connect()
    try:
        ok = conn.channel().queue_declare(queue, passive=True)
        return ok.method.message_count, ok.method.consumer_count
    finally:
        conn.close()


def get_one(queue, timeout=10):
    """Take one message from queue (basic.get, acked), waiting up to timeout."""
    conn = connect()
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method:
                return props, body
            if time.monotonic() >= deadline:
                raise AssertionError("no message in %s within %d s" % (queue, timeout))
            conn.sleep(0.1)
    finally:
        conn.close()


def rabbitmqctl(*args):
    """Rows (lists of tab-separated fields) of a rabbitmqctl listing of the
    private broker (REBOUND_TEST_RABBITMQ_CTL)."""
    if not RABBITMQ_CTL:
        raise AssertionError("REBOUND_TEST_RABBITMQ_CTL is not set (run through tests/run)")
    r = subprocess.run([RABBITMQ_CTL, "-q", "--no-table-headers"] + list(args),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("rabbitmqctl %s: %s" % (" ".join(args), r.stderr.strip()))
    return [line.split("\t") for line in r.stdout.splitlines() if line.strip()]


def rabbitmqctl_do(*args):
    """Run a rabbitmqctl command that lists nothing (set_disk_free_limit,
    close_connection: they refuse the listing flags); its output."""
    if not RABBITMQ_CTL:
        raise AssertionError("REBOUND_TEST_RABBITMQ_CTL is not set (run through tests/run)")
    r = subprocess.run([RABBITMQ_CTL] + list(args), capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("rabbitmqctl %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def classic_counts(queue):
    """(messages_ready, messages_unacknowledged) of a classic queue, from
    `rabbitmqctl list_queues`.

    Classic queues only: their counts come from the queue process when asked,
    and a delivery counts as unacknowledged until the queue has requeued it
    (when its channel is gone) or it is acked, so no moment shows it nowhere.
    A quorum queue's two counts are a snapshot the broker refreshes on the
    queue's tick (every 5 s): they can show a delivery unacknowledged after
    its ack, or nothing before the first tick."""
    for row in rabbitmqctl("list_queues", "name", "type", "messages_ready",
                           "messages_unacknowledged"):
        if row[0] == queue:
            if row[1] != "classic":
                raise AssertionError("classic_counts(%s): a %s queue's counts are stale"
                                     % (queue, row[1]))
            return int(row[2]), int(row[3])
    raise AssertionError("rabbitmqctl list_queues does not list %s" % queue)


def unacked_on_connections(worker_id):
    """(connections, unacknowledged deliveries) of a worker's AMQP
    connections: those named worker_id (one consumer) or worker_id.<n>
    (several), from `rabbitmqctl list_connections` and `list_channels`.
    A channel's count is its own when asked, whatever the queue type."""
    conns = set()
    for row in rabbitmqctl("list_connections", "pid", "client_properties"):
        m = re.search(r'\{"connection_name","([^"]*)"\}', row[1]) if len(row) > 1 else None
        if m and (m.group(1) == worker_id or re.fullmatch(re.escape(worker_id) + r"\.\d+",
                                                            m.group(1))):
            conns.add(row[0])
    unacked = sum(int(row[1]) for row in rabbitmqctl("list_channels", "connection",
                                                     "messages_unacknowledged")
                  if row[0] in conns)
    return len(conns), unacked


def delete_queues(*names):
    """Delete each queue, and each one's quarantine queue (<name>.suspects),
    which every consumer declares beside its job queue."""
    names = list(names) + [n + ".suspects" for n in names if not n.endswith((".dead", ".suspects"))]
    try:
        conn = connect()
    except Exception:
        return
    try:
        ch = conn.channel()
        for n in names:
            ch.queue_delete(n)
    except Exception:
        pass
    finally:
        try:
            conn.close()
        except Exception:
            pass


class WorkerCase(unittest.TestCase):
    """Tests sharing one worker and one client on a queue of their own.
    Subclasses set TAG (part of the queue name) and WORKER_KW (arguments of
    Worker); the worker must stop cleanly at the end."""
    TAG = "case"
    WORKER_KW = {}

    @classmethod
    def setUpClass(cls):
        cls.queue = unique_queue(cls.TAG)
        cls.worker = Worker(cls.queue, **cls.WORKER_KW)
        cls.client = Client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        try:
            cls.worker.stop()
        finally:
            cls.worker.cleanup()
            delete_queues(cls.queue, cls.queue + ".dead")


def redis_client():
    """A redis-py client of the private Redis (strings decoded, bounded waits)."""
    import redis
    return redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=30,
                                socket_connect_timeout=30)


def _unescape_redis(text):
    """Undo the quoting of a MONITOR argument (sdscatrepr: \\xHH per byte)."""
    out, i = bytearray(), 0
    simple = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x" and i + 3 < len(text):
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out += simple.get(nxt, nxt.encode())
            i += 2
            continue
        out += ch.encode()
        i += 1
    return out.decode("utf-8", "replace")


class RedisMonitor:
    """Every command the private Redis executes from now on, in order, as
    lists of arguments (Redis's MONITOR), collected by a thread until
    close(). Commands inside MULTI/EXEC are listed when EXEC runs them.
    Use it to see writes that do not last long enough to be read back."""
    _LINE = re.compile(r'^\+\d+\.\d+ \[\d+ [^\]]*\] (.*)$')
    _ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')

    def __init__(self):
        u = urllib.parse.urlparse(REDIS_URL)
        self.sock = socket.create_connection((u.hostname, u.port or 6379), timeout=30)
        self.commands = []
        self.lock = threading.Lock()
        self.closing = False
        self.buf = b""
        if u.password:
            pw = urllib.parse.unquote(u.password).encode()
            self.sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw))
            self._expect_ok("AUTH")
        self.sock.sendall(b"MONITOR\r\n")
        self._expect_ok("MONITOR")  # from here on every command is reported
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _expect_ok(self, what):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("redis closed the connection after %s" % what)
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        if line != b"+OK":
            raise AssertionError("redis answered %r to %s" % (line, what))

    def _run(self):
        while not self.closing:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            self.buf += data
            *lines, self.buf = self.buf.split(b"\r\n")
            parsed = []
            for line in lines:
                m = self._LINE.match(line.decode("utf-8", "replace"))
                if m:
                    parsed.append([_unescape_redis(a) for a in self._ARG.findall(m.group(1))])
            with self.lock:
                self.commands.extend(parsed)

    def seen(self):
        with self.lock:
            return list(self.commands)

    def close(self):
        self.closing = True
        self.thread.join(10)
        self.sock.close()


def run_control(path):
    """Run one of tests/run's control executables (REBOUND_TEST_BROKER_STOP
    and the like; each waits a bounded time); fail with its message."""
    r = subprocess.run([path], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError("%s failed: %s" % (path, r.stderr))


def run_tests(cases, redis=False):
    """Run unittest cases after the servers check; exit with the verdict."""
    require_servers(redis)
    suite = unittest.TestSuite()
    for c in cases:
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(c))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


__all__ = ["AMQP_URL", "MODE", "RABBITMQ_CTL", "REDIS_URL", "SUBMIT", "WORKER", "Client",
           "RedisMonitor", "Worker", "WorkerCase", "call", "classic_counts", "connect",
           "delete_queues", "get_one", "job", "queue_counts", "rabbitmqctl", "redis_client",
           "run_control", "run_tests", "unacked_on_connections", "unique_queue", "wait_until"]
