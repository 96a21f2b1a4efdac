"""Shared parts of the multi-host tests (test_multihost_*.py): private
RabbitMQ nodes and Redis started through deploy/local/servers.sh, network
namespaces with veth links made and removed by the test itself, rebound
workers started inside them, and a job stream whose replies are timed.

Everything a test starts is recorded and stopped by pid (or, for a
RabbitMQ node, by its state directory) in Cleanup.run, whatever happened.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import msgpack
import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_worker_secrets import tree  # noqa: E402
from worker_itest import wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS_SH = os.path.join(HERE, "..", "..", "deploy", "local", "servers.sh")
BIN_DIR = os.environ.get("REBOUND_BIN_DIR", "")
WORKER = os.path.join(BIN_DIR, "rebound-worker")
SKIP = 77

JOBS_PY = '''
import time

def work(i, s):
    time.sleep(s)
    return i
'''

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def skip(why):
    print("skipped: " + why)
    sys.exit(SKIP)


def require_bin():
    if not BIN_DIR or not os.access(WORKER, os.X_OK):
        skip("REBOUND_BIN_DIR not set (run through tests/run)")


def run(argv, timeout=60, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (" ".join(argv), r.returncode,
                                                   (r.stderr or r.stdout).strip()))
    return r


def setns(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def netns_path(ns):
    return "/var/run/netns/" + ns


class InNetns:
    """`with InNetns(ns):` the calling thread is in network namespace ns
    (sockets made meanwhile stay there); None: the current one."""

    def __init__(self, ns):
        self.ns = ns

    def __enter__(self):
        if self.ns:
            self.back = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            setns(netns_path(self.ns))
        return self

    def __exit__(self, *exc):
        if self.ns:
            try:
                if _libc.setns(self.back, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
            finally:
                os.close(self.back)


def preexec_in(ns):
    """A preexec_fn: a new session, in network namespace ns (None: here)."""
    def enter():
        os.setsid()
        if ns:
            setns(netns_path(ns))
    return enter


def kill_tree(pid):
    for p in reversed(tree(pid)):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Cleanup:
    """Undo steps, run last-first by run() (each one's failure printed)."""

    def __init__(self):
        self.steps = []

    def add(self, what, fn, *args):
        self.steps.append((what, fn, args))

    def run(self):
        ok = True
        while self.steps:
            what, fn, args = self.steps.pop()
            try:
                fn(*args)
            except Exception as e:  # keep undoing the rest
                ok = False
                print("cleanup: %s: %s" % (what, e), file=sys.stderr)
        return ok


# ---- network namespaces ------------------------------------------------------

def make_netns(cleanup, ns):
    """A network namespace with its loopback up; removed by cleanup."""
    run(["ip", "netns", "add", ns])
    cleanup.add("ip netns del " + ns, run, ["ip", "netns", "del", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def can_make_netns():
    """Whether this process may make a network namespace (root, no seccomp
    or LSM forbidding it, iproute2 present); the reason when not."""
    if shutil.which("ip") is None:
        return "no ip command (iproute2; deploy/local/install-deps installs it)"
    probe = "rbprobe-%d-%s" % (os.getpid(), uuid.uuid4().hex[:4])
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return "cannot create a network namespace: " + r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return None


def link(ns_a, if_a, addr_a, ns_b, if_b, addr_b):
    """A veth pair between two namespaces, addressed (CIDR) and up. Made
    inside ns_a with its peer moved straight into ns_b: nothing of it ever
    shows in the host's namespace. Goes with the namespaces."""
    run(["ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b,
         "netns", ns_b])
    run(["ip", "-n", ns_a, "addr", "add", addr_a, "dev", if_a])
    run(["ip", "-n", ns_b, "addr", "add", addr_b, "dev", if_b])
    run(["ip", "-n", ns_a, "link", "set", if_a, "up"])
    run(["ip", "-n", ns_b, "link", "set", if_b, "up"])


# ---- servers ---------------------------------------------------------------------

def servers_sh(script, *args, ns=None, timeout=180, env=None):
    """Run bash code with servers.sh's functions ("$1"... are args), in
    network namespace ns."""
    e = dict(os.environ)
    e.update(env or {})
    return run(["bash", "-c", 'source "$0" && ' + script, SERVERS_SH] + [str(a) for a in args],
               timeout=timeout, preexec_fn=preexec_in(ns), env=e)


class Rabbit:
    """A private RabbitMQ node: state in dir, started in namespace ns (or
    here), its AMQP listener on bind (an address of that namespace); conf
    is added to its rabbitmq.conf. Stopped by cleanup (unless None)."""

    def __init__(self, cleanup, dir, node, amqp, dist, epmd, bind="127.0.0.1", ns=None,
                 conf=""):
        self.dir, self.node, self.port, self.ns = dir, node, amqp, ns
        servers_sh('rb_rabbit_init "$@"', dir, node, amqp, dist, epmd, ns=ns)
        with open(os.path.join(dir, "rabbit.env"), "a") as f:
            f.write("export RABBITMQ_NODE_IP_ADDRESS=%s\n" % bind)
        if conf:
            with open(os.path.join(dir, "rabbitmq.conf"), "a") as f:
                f.write(conf)
        if cleanup:  # a cluster's nodes are stopped by the cluster
            cleanup.add("stopping RabbitMQ " + node, self.stop_all)

    def start(self):
        """Start the node; the seconds it took."""
        t0 = time.monotonic()
        servers_sh('rb_rabbit_start "$1"', self.dir, ns=self.ns, timeout=240)
        return time.monotonic() - t0

    def stop(self):
        t0 = time.monotonic()
        servers_sh('rb_rabbit_stop "$1"', self.dir, ns=self.ns, timeout=120)
        return time.monotonic() - t0

    def stop_all(self):
        servers_sh('rb_servers_stop "$1"', self.dir, ns=self.ns, timeout=120)

    def ctl(self, *args, timeout=120):
        return servers_sh('rb_rabbitmqctl "$@"', self.dir, *args, ns=self.ns,
                          timeout=timeout + 30, env={"RB_CTL_TIMEOUT": str(timeout)}).stdout


class Redis:
    """redis-server on port, bound to binds (private addresses of a test's
    own namespace), in namespace ns."""

    def __init__(self, cleanup, dir, port, binds, ns=None):
        os.makedirs(dir, exist_ok=True)
        self.log = open(os.path.join(dir, "redis.out"), "w")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind"] + list(binds) +
            ["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir,
             # Bound to a test's private addresses only: no need to refuse
             # other hosts.
             "--protected-mode", "no"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
            preexec_fn=preexec_in(ns))
        cleanup.add("stopping Redis", self.stop)
        def answers():
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited: %s" % self.proc.returncode)
            try:
                with InNetns(ns), socket.create_connection((binds[0], port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False
        wait_until(answers, 30, "Redis to answer")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


# ---- workers ---------------------------------------------------------------------

class Worker:
    """rebound-worker in namespace ns (None: here), logging to a file."""

    def __init__(self, cleanup, name, ns, amqp_url, queue, code_root, log_dir, args=()):
        self.name, self.ns = name, ns
        self.log_path = os.path.join(log_dir, "%s.log" % name)
        self.log = open(self.log_path, "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REBOUND_")}
        env["REBOUND_AMQP_URL"] = amqp_url
        argv = [WORKER, "--queue", queue, "--mode", "internal", "--code-root", code_root,
                "--preload", "json", "--worker-id", name, "--log-level", "debug"] + list(args)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=env,
                                     preexec_fn=preexec_in(ns))
        cleanup.add("stopping worker " + name, self.kill)

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, needle, timeout, count=1):
        def seen():
            if self.proc.poll() is not None:
                raise AssertionError("worker %s exited (%s):\n%s"
                                     % (self.name, self.proc.returncode, self.tail()))
            return self.text().count(needle) >= count
        wait_until(seen, timeout, "%r in the log of %s" % (needle, self.name))

    def tail(self, n=40):
        return "\n".join(self.text().splitlines()[-n:])

    def kill(self):
        if self.proc.poll() is None:
            kill_tree(self.proc.pid)
            self.proc.wait(30)
        self.log.close()

    def check_clean(self):
        text = self.text()
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if bad in text:
                raise AssertionError("sanitizer report in %s's log:\n%s" % (self.name, text))


def code_root(cleanup):
    root = tempfile.mkdtemp(prefix="rb-multihost-code-")
    os.chmod(root, 0o755)
    with open(os.path.join(root, "jobs.py"), "w") as f:
        f.write(JOBS_PY)
    cleanup.add("removing " + root, shutil.rmtree, root, True)
    return root


# ---- the job stream ----------------------------------------------------------------

# Each multi-host test's stream: JOBS jobs of JOB_SECONDS each, on workers
# of SLOTS slots.
JOBS = 240
JOB_SECONDS = 0.08
SLOTS = 2

class Stream:
    """A sender with direct reply-to on a connection made in namespace ns,
    with publisher confirms if asked. Every reply is kept with the time it
    came (time.monotonic())."""

    def __init__(self, url, ns=None, confirm=False):
        with InNetns(ns):
            params = pika.URLParameters(url)
            params.heartbeat = 30
            params.blocked_connection_timeout = 60
            self.conn = pika.BlockingConnection(params)
        self.ch = self.conn.channel()
        if confirm:  # each send returns once the broker has the job
            self.ch.confirm_delivery()
        self.replies = {}  # job id -> [(time, result)]
        self.ch.basic_consume("amq.rabbitmq.reply-to", self._on_reply, auto_ack=True)

    def _on_reply(self, ch, method, props, body):
        res = msgpack.unpackb(body, raw=False)
        self.replies.setdefault(res.get("id"), []).append((time.monotonic(), res))

    def send(self, queue, job_id, i, seconds):
        body = {"v": 1, "id": job_id,
                "calls": [{"file": "jobs.py", "fcn": "work", "args": [i, seconds]}]}
        self.ch.basic_publish("", queue, msgpack.packb(body, use_bin_type=True),
                              pika.BasicProperties(reply_to="amq.rabbitmq.reply-to",
                                                   correlation_id=job_id,
                                                   content_type="application/msgpack",
                                                   delivery_mode=2))

    def pump(self, seconds):
        self.conn.process_data_events(time_limit=seconds)

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
            self.pump(min(left, 0.1))

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def start_stream(stream, queue):
    """Send the stream's jobs and wait until a third are answered: (job
    ids, when the first was sent, first answers per host so far)."""
    ids = ["j%04d" % i for i in range(JOBS)]
    t_start = time.monotonic()
    for i, job_id in enumerate(ids):
        stream.send(queue, job_id, i, JOB_SECONDS)
    stream.wait_for(lambda: len(stream.replies) >= JOBS // 3, 120, "a third of the replies")
    before, _, _ = summary(stream, ids)
    return ids, t_start, before


def check_stream(stream, ids, before, hosts):
    """Every job answered ok, and each host did a fair part before the
    trouble (at least a quarter of its half: prefetch = slots each)."""
    _, _, missing = summary(stream, ids)
    assert not missing, "jobs never answered: %s" % missing
    bad = [(i, r) for i in ids for _, r in stream.replies[i] if r.get("status") != "ok"]
    assert not bad, "jobs not ok: %s" % bad[:3]
    share = JOBS // 3 // 4
    for name in hosts:
        assert before.get(name, 0) >= share, "%s answered %d of the first %d jobs" % (
            name, before.get(name, 0), sum(before.values()))


def host_of(result):
    """The worker id a result names, without the ".n" of a consumer or the
    ".quarantine" of the quarantine consumer (which runs redelivered jobs)."""
    return str(result.get("worker", "")).split(".")[0]


def summary(stream, ids):
    """(per-host counts of first answers, duplicates, missing ids)."""
    per = {}
    dups = 0
    for i in ids:
        got = stream.replies.get(i, [])
        if got:
            h = host_of(got[0][1])
            per[h] = per.get(h, 0) + 1
        dups += max(0, len(got) - 1)
    missing = [i for i in ids if i not in stream.replies]
    return per, dups, missing


# ---- a RabbitMQ cluster on loopback ----------------------------------------------

def free_ports(n):
    """n distinct loopback ports nothing listens on, below the ephemeral
    range (as servers.sh's rb_pick_port)."""
    import random
    out = []
    while len(out) < n:
        port = random.randrange(20000, 30000)
        if port in out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        out.append(port)
    return out


class Cluster:
    """Three RabbitMQ nodes on loopback (names rbc<i>-<tag>@localhost, ports
    of their own, a directory each under state), sharing one epmd and one
    Erlang cookie. Node 1 starts alone; nodes 2 and 3 join it at boot
    (classic peer discovery), started side by side."""

    def __init__(self, cleanup, state, tag, size=3):
        ports = free_ports(2 * size + 1)
        epmd = ports[-1]
        self.nodes = []
        cookie = uuid.uuid4().hex.upper()
        first = "rbc1-%s@localhost" % tag
        for i in range(size):
            d = os.path.join(state, "node%d" % (i + 1))
            os.makedirs(os.path.join(d, "home"))
            fd = os.open(os.path.join(d, "home", ".erlang.cookie"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(cookie)
            conf = ("cluster_formation.peer_discovery_backend = classic_config\n"
                    "cluster_formation.classic_config.nodes.1 = %s\n" % first) if i else ""
            self.nodes.append(Rabbit(None, d, "rbc%d-%s@localhost" % (i + 1, tag),
                                     ports[2 * i], ports[2 * i + 1], epmd, conf=conf))
        cleanup.add("stopping the cluster", self.stop_all)
        self.urls = ["amqp://guest:guest@127.0.0.1:%d/%%2f" % n.port for n in self.nodes]

    def start(self):
        """Start all nodes; the seconds it took."""
        import threading
        t0 = time.monotonic()
        self.nodes[0].start()
        # One epmd for all: the others find it by its pid file.
        with open(os.path.join(self.nodes[0].dir, "epmd.pid")) as f:
            pid = f.read()
        for n in self.nodes[1:]:
            with open(os.path.join(n.dir, "epmd.pid"), "w") as f:
                f.write(pid)
        errors = []

        def start(n):
            try:
                n.start()
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=start, args=(n,)) for n in self.nodes[1:]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        if errors or any(t.is_alive() for t in threads):
            raise AssertionError("cluster nodes did not start: %s" % errors)
        running = self.nodes[0].ctl("-q", "eval", "length(rabbit_nodes:all_running()).")
        if running.strip() != str(len(self.nodes)):
            raise AssertionError("cluster has %s running nodes, not %d"
                                 % (running.strip(), len(self.nodes)))
        return time.monotonic() - t0

    def stop_all(self):
        """Every node, then the one epmd they share (node 1's)."""
        failed = []
        for n in reversed(self.nodes):
            try:
                n.stop()
            except Exception as e:
                failed.append(e)
        for n in self.nodes[1:]:
            try:
                os.unlink(os.path.join(n.dir, "epmd.pid"))
            except FileNotFoundError:
                pass
        self.nodes[0].stop_all()
        if failed:
            raise AssertionError("nodes did not stop: %s" % failed)
