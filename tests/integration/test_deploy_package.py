#!/usr/bin/python3
"""The Debian package: `cpack -G DEB` from a Release build of this tree
(tests off, so only the programs are built), unpacked with `dpkg -x` into a
scratch root, and its contents checked: the five programs, run from there;
/etc/default/rebound against the packaged worker's --help (every setting,
at its default); the package's control files; the systemd units' settings;
and `systemd-analyze verify` on the units where systemd-analyze exists.

The build goes to <test build>/package-build and is kept, so a second run
only rebuilds what changed. Needs REBOUND_SOURCE_DIR and REBOUND_BIN_DIR
(exit 77 without them).
"""
import glob
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from deploy_itest import (DEPLOY_DIR, SOURCE_DIR, drain_bound_ms, parse_unit, run_case,
                          worker_settings)

BIN_DIR = os.environ.get("REBOUND_BIN_DIR", "")
PROGRAMS = ["rebound-worker", "rebound-trampoline", "rebound-init", "rebound-status",
            "rebound-submit"]
UNITS = ["rebound-worker.service", "rebound-worker@.service"]
# What the sandbox (and bubblewrap) use as root: namespaces and mounts, the
# slots' uids, priorities, signals, job directories and cgroup files, the
# slots' /proc, rlimits, a namespace's loopback.
SANDBOX_CAPS = {"CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_NICE", "CAP_KILL",
                "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN", "CAP_SYS_PTRACE",
                "CAP_SYS_RESOURCE", "CAP_NET_ADMIN", "CAP_SYS_CHROOT", "CAP_SETPCAP"}
# Options that would take from the zygote what it needs (README, "Running in
# production", says why each is left out).
FORBIDDEN = ["User", "DynamicUser", "PrivateUsers", "PrivateNetwork", "ProtectControlGroups",
             "ProtectKernelTunables", "RestrictNamespaces", "SystemCallFilter",
             "MemoryDenyWriteExecute", "ProtectProc", "ProcSubset"]


def run(cmd, what, timeout=900, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d): %s\n%s" % (what, p.returncode, " ".join(cmd),
                                                         (p.stdout + p.stderr)[-4000:]))
    return p.stdout


def build_package():
    """Configure, build and package; the path of the .deb."""
    build = os.path.join(os.path.dirname(os.path.abspath(BIN_DIR)), "package-build")
    os.makedirs(build, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.endswith("SAN_OPTIONS")}
    # Warnings are the business of the -Werror build tests/run makes; a
    # packager's optimiser warns about other things (as Debian's builds, no
    # -Werror here).
    run(["cmake", "-S", SOURCE_DIR, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
         "-DREBOUND_TESTS=OFF", "-DREBOUND_WERROR=OFF"], "configure", env=env)
    run(["cmake", "--build", build, "-j2"], "build", env=env)
    for old in glob.glob(os.path.join(build, "*.deb")):
        os.unlink(old)
    run(["cpack", "-G", "DEB"], "cpack", cwd=build, env=env)
    debs = glob.glob(os.path.join(build, "*.deb"))
    if len(debs) != 1:
        raise AssertionError("cpack made %d .deb files in %s" % (len(debs), build))
    return debs[0]


def default_file_settings(text):
    """{VAR: default} of the commented-out settings, in order; fails on any
    line that is neither a comment nor empty (nothing may be set)."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith("#"):
            raise AssertionError("/etc/default/rebound line %d sets something: %r" % (n, line))
        m = re.fullmatch(r"#([A-Z][A-Z0-9_]*)=(.*)", line)
        if m:
            if m.group(1) in out:
                raise AssertionError("%s twice in /etc/default/rebound" % m.group(1))
            out[m.group(1)] = m.group(2)
    return out


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.deb = build_package()
        cls.root = tempfile.mkdtemp(prefix="rb-deb-root-")
        run(["dpkg-deb", "-x", cls.deb, cls.root], "dpkg-deb -x")
        cls.control = tempfile.mkdtemp(prefix="rb-deb-control-")
        run(["dpkg-deb", "-e", cls.deb, cls.control], "dpkg-deb -e")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        shutil.rmtree(cls.control, ignore_errors=True)

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def test_programs(self):
        for name in PROGRAMS:
            p = self.path("/usr/bin/" + name)
            st = os.stat(p)
            self.assertTrue(stat.S_ISREG(st.st_mode) and st.st_mode & 0o111, name)
            with open(p, "rb") as f:
                self.assertEqual(f.read(4), b"\x7fELF", name)
        # they run from the package (linked against the system's libraries)
        out = run([self.path("/usr/bin/rebound-worker"), "--version"], "rebound-worker --version")
        self.assertIn("rebound-worker", out)
        run([self.path("/usr/bin/rebound-status"), "--help"], "rebound-status --help")
        run([self.path("/usr/bin/rebound-submit"), "--help"], "rebound-submit --help")

    def test_packaged_worker_runs_a_job(self):
        """The installed programs work together: the packaged worker finds
        its trampoline and init beside it, runs a job (sandboxed as users run
        it, when this test runs as root) that the packaged rebound-submit
        sent, and stops warm on SIGTERM."""
        url = os.environ.get("REBOUND_TEST_AMQP_URL", "")
        if not url:
            self.skipTest("cannot run here: REBOUND_TEST_AMQP_URL is not set")
        from worker_itest import delete_queues, unique_queue, wait_until
        queue = unique_queue("deb")
        code = tempfile.mkdtemp(prefix="rb-deb-code-")
        os.chmod(code, 0o755)  # the slots' uids read it
        with open(os.path.join(code, "jobs.py"), "w") as f:
            f.write("import numpy\n\ndef total(n):\n    return int(numpy.arange(n).sum())\n")
        os.chmod(os.path.join(code, "jobs.py"), 0o644)
        log = tempfile.TemporaryFile(mode="w+")
        mode = "native" if os.geteuid() == 0 else "internal"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REBOUND_")}
        env["REBOUND_AMQP_URL"] = url
        worker = subprocess.Popen(
            [self.path("/usr/bin/rebound-worker"), "--queue", queue, "--mode", mode,
             "--slots", "1", "--code-root", code], stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, env=env)
        try:
            def connected():
                if worker.poll() is not None:
                    log.seek(0)
                    raise AssertionError("the packaged worker exited: " + log.read())
                log.seek(0)
                return "connected to " in log.read()
            wait_until(connected, 120, "the packaged worker to connect")
            job = '{"v": 1, "id": "deb-1", "calls": [{"file": "jobs.py", "fcn": "total", ' \
                  '"args": [10]}]}'
            p = subprocess.run([self.path("/usr/bin/rebound-submit"), "--queue", queue,
                                "--timeout-ms", "60000", "-"], input=job, env=env,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertRegex(p.stdout, r'"status": "ok"')
            self.assertRegex(p.stdout, r'"val": 45\b')
            worker.terminate()
            self.assertEqual(worker.wait(timeout=60), 0)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            log.close()
            shutil.rmtree(code, ignore_errors=True)
            delete_queues(queue, queue + ".dead")

    def test_default_file(self):
        p = self.path("/etc/default/rebound")
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600)
        with open(p) as f:
            listed = default_file_settings(f.read())
        settings = worker_settings(self.path("/usr/bin/rebound-worker"))
        self.assertEqual(list(listed), list(settings), "the settings of --help, in its order")
        for var, default in settings.items():
            self.assertEqual(listed[var], default if default is not None else "", var)
        self.assertEqual(listed["REBOUND_DRAIN_MS"], "30000")

    def test_control(self):
        with open(os.path.join(self.control, "control")) as f:
            control = f.read()
        depends = re.search(r"^Depends: (.*)$", control, re.M).group(1)
        for pkg in ("adduser", "python3-numpy", "python3-lxml", "libseccomp2", "librabbitmq4"):
            self.assertRegex(depends, r"(^|, )%s\b" % re.escape(pkg))
        with open(os.path.join(self.control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/default/rebound"])
        with open(os.path.join(self.control, "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system", postinst)
        self.assertIn("install -d -m 0700", postinst)
        for script in ("postinst", "prerm", "postrm"):
            p = os.path.join(self.control, script)
            self.assertTrue(os.stat(p).st_mode & 0o111, script)
            run(["sh", "-n", p], "sh -n " + script)

    def test_units(self):
        settings = worker_settings(self.path("/usr/bin/rebound-worker"))
        bound_ms = drain_bound_ms(int(settings["REBOUND_DRAIN_MS"]))
        with open(os.path.join(SOURCE_DIR, "README.md")) as f:
            readme = f.read()
        for name in UNITS:
            with open(self.path("/lib/systemd/system/" + name)) as f:
                text = f.read()
            with open(os.path.join(DEPLOY_DIR, "systemd", name)) as f:
                self.assertEqual(text, f.read(), "the packaged unit is the source's")
            unit = parse_unit(text)
            svc = unit["Service"]
            self.assertEqual(svc["ExecStart"], ["/usr/bin/rebound-worker"], name)
            self.assertEqual(svc["Restart"], ["on-failure"], name)
            self.assertEqual(svc["KillMode"], ["mixed"], name)
            self.assertEqual(svc["KillSignal"], ["SIGTERM"], name)
            self.assertEqual(svc["Delegate"], ["yes"], name)
            self.assertEqual(svc["RestartPreventExitStatus"], ["2"], name)
            timeout_s = int(svc["TimeoutStopSec"][0])
            self.assertGreater(timeout_s * 1000, bound_ms,
                               "%s: TimeoutStopSec must exceed drain + kill grace" % name)
            self.assertIn("-/etc/default/rebound", svc["EnvironmentFile"], name)
            for bad in FORBIDDEN:
                self.assertNotIn(bad, svc, "%s sets %s" % (name, bad))
            env_vars = {}
            for line in svc.get("Environment", []):
                for pair in line.split():
                    k, _, v = pair.partition("=")
                    env_vars[k] = v
            for k in env_vars:
                self.assertTrue(k in settings,
                                "%s sets %s, not a rebound-worker setting" % (name, k))
            # every hardening option used, and every one left out, is
            # explained in README
            for key in list(svc) + FORBIDDEN:
                if re.match(r"(Protect|Private|Restrict|NoNew|Lock|Capability|SystemCall|User"
                            r"|DynamicUser|MemoryDeny|ProcSubset)", key):
                    self.assertTrue("`%s=" % key in readme, "README does not explain %s" % key)
            dropped = set()
            for line in svc["CapabilityBoundingSet"]:
                self.assertTrue(line.startswith("~"), "%s: %s keeps a list" % (name, line))
                dropped |= set(line[1:].split())
            self.assertFalse(dropped & SANDBOX_CAPS, "%s drops what the sandbox uses" % name)
            self.assertIn("CAP_SYS_MODULE", dropped)
            self.assertEqual(unit["Install"]["WantedBy"], ["multi-user.target"])
        template = parse_unit(open(self.path("/lib/systemd/system/rebound-worker@.service")).read())
        svc = template["Service"]
        self.assertIn("-/etc/default/rebound-%i", svc["EnvironmentFile"])
        self.assertLess(svc["EnvironmentFile"].index("-/etc/default/rebound"),
                        svc["EnvironmentFile"].index("-/etc/default/rebound-%i"))
        self.assertIn("REBOUND_QUEUE=%I", " ".join(svc["Environment"]))

    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        units = "/lib/systemd/system"
        if analyze is None or not os.path.isfile(os.path.join(units, "sysinit.target")):
            print("systemd-analyze verify skipped: no systemd-analyze or no systemd units "
                  "on this machine (deploy/local/install-deps installs the systemd package)")
            return
        # verify --root resolves every unit inside the root: give it the
        # host's units beside the package's (never over them).
        dest = self.path(units)
        for name in os.listdir(units):
            target = os.path.join(dest, name)
            if not os.path.lexists(target):
                src = os.path.join(units, name)
                if os.path.islink(src):
                    os.symlink(os.readlink(src), target)
                elif os.path.isdir(src):
                    shutil.copytree(src, target, symlinks=True)
                else:
                    shutil.copy2(src, target)
        for unit in ("rebound-worker.service", "rebound-worker@rebound.jobs.service"):
            p = subprocess.run([analyze, "verify", "--root=" + self.root,
                                os.path.join(dest, unit)],
                               capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
            self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
            # a misspelt or unparsable option is only a warning: none allowed
            self.assertEqual((p.stderr + p.stdout).strip(), "", unit)


if __name__ == "__main__":
    run_case(PackageTest, ("cmake", "cpack", "dpkg-deb", "dpkg-shlibdeps"))
