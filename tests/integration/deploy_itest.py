"""Shared parts of the deploy tests (test_deploy_*.py): the settings
rebound-worker has, read from its --help; the systemd units' syntax; the
supervisor's own bound on a warm shutdown."""
import os
import re
import shutil
import subprocess
import sys
import unittest

SOURCE_DIR = os.environ.get("REBOUND_SOURCE_DIR", "")
DEPLOY_DIR = os.path.join(SOURCE_DIR, "deploy")

SETTING_RX = re.compile(r"^      \[(REBOUND_[A-Z0-9_]+)(?:; default: (.*))?\]$", re.M)


def worker_settings(worker):
    """{environment variable: default as text (None: computed)} of every
    setting in `worker --help`, in its order; "empty" becomes ""."""
    p = subprocess.run([worker, "--help"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("%s --help failed: %s" % (worker, p.stderr))
    out = {}
    for m in SETTING_RX.finditer(p.stdout):
        default = m.group(2)
        out[m.group(1)] = "" if default == "empty" else default
    if len(out) < 10:
        raise AssertionError("only %d settings in %s --help" % (len(out), worker))
    return out


def drain_bound_ms(drain_ms):
    """How long a warm shutdown may take: --drain-ms, then the supervisor's
    grace before it kills its consumers (KILL_GRACE_MS in supervisor.c)."""
    path = os.path.join(SOURCE_DIR, "consumer", "worker", "supervisor.c")
    with open(path) as f:
        m = re.search(r"^#define KILL_GRACE_MS (\d+)", f.read(), re.M)
    if m is None:
        raise AssertionError("KILL_GRACE_MS not found in %s: the shutdown bound is unknown" % path)
    return drain_ms + int(m.group(1))


def parse_unit(text):
    """{section: {key: [values in order]}} of a systemd unit file."""
    unit, section = {}, None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        if section is None or "=" not in line or line.endswith("\\"):
            raise AssertionError("unit line %d: %r" % (n, line))
        key, value = line.split("=", 1)
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def check_probe(test, argv, settings=None):
    """Run a health probe's command (argv, as a manifest gives it) as its
    container would, against the test Redis: with the container's settings
    (a {variable: value} of REBOUND_* settings) in its environment, the
    programs under test on PATH, the Redis URL in a 0600 file named by
    REBOUND_REDIS_URL_FILE and a worker id of this test's own. It must fail
    while that worker has no heartbeat or is not ready, and pass once it is
    ready, under the key prefix the settings name."""
    import tempfile
    import time

    import redis
    url = os.environ.get("REBOUND_TEST_REDIS_URL", "")
    if not url:
        test.skipTest("cannot run here: REBOUND_TEST_REDIS_URL is not set")
    wid = "rbtest-probe-%d" % os.getpid()
    fd, path = tempfile.mkstemp(prefix="rb-redis-url-")
    os.write(fd, (url + "\n").encode())
    os.close(fd)
    env = dict(settings or {})
    prefix = env.get("REBOUND_REDIS_PREFIX", "rebound")
    env.update({"PATH": "%s:/usr/bin:/bin" % os.environ["REBOUND_BIN_DIR"],
                "REBOUND_REDIS_URL_FILE": path, "REBOUND_WORKER_ID": wid})
    r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=30)
    key = "%s:worker:%s" % (prefix, wid)

    def probe():
        base = {k: v for k, v in os.environ.items() if not k.startswith("REBOUND_")}
        p = subprocess.run(argv, env=dict(base, **env), capture_output=True, text=True,
                           timeout=60)
        test.assertNotIn(url, " ".join(argv))
        return p.returncode, p.stdout + p.stderr

    def beat(state):
        now = int(time.time() * 1000)
        r.hset(key, mapping={"id": wid, "host": "h", "state": state, "beat_ms": now})
        r.pexpire(key, 60000)
        r.zadd(prefix + ":workers", {wid: now})
    try:
        code, out = probe()
        test.assertEqual(code, 1, "no heartbeat yet: " + out)
        beat("reconnecting")
        code, out = probe()
        test.assertEqual(code, 1, "not ready: " + out)
        beat("ready")
        code, out = probe()
        test.assertEqual(code, 0, "ready: " + out)
    finally:
        os.unlink(path)
        try:
            r.delete(key)
            r.zrem(prefix + ":workers", wid)
        finally:
            r.close()


def run_case(case, tools=()):
    """Run one TestCase and exit with its verdict; exit 77 (skipped, with
    the reason) without the environment tests/run gives, or a tool."""
    missing = [v for v in ("REBOUND_SOURCE_DIR", "REBOUND_BIN_DIR") if not os.environ.get(v)]
    if missing:
        print("skipped: %s not set (run through tests/run)" % ", ".join(missing))
        sys.exit(77)
    for tool in tools:
        if shutil.which(tool) is None:
            print("skipped: %s is missing (deploy/local/install-deps installs it)" % tool)
            sys.exit(77)
    result = unittest.TextTestRunner(verbosity=2).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(case))
    sys.exit(0 if result.wasSuccessful() else 1)
