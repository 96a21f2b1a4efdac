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
