#!/usr/bin/python3
"""deploy/docker/Dockerfile, checked without a container engine (none runs
here): Debian 12 stages, a build stage and a runtime stage that install
exactly the package lists deploy/local/install-deps installs
(deploy/packages/), the runtime without the build tools, a non-root user,
STOPSIGNAL SIGTERM, a HEALTHCHECK through rebound-status, and every file it
copies present. Needs REBOUND_SOURCE_DIR and REBOUND_BIN_DIR (exit 77
without them).
"""
import json
import os
import re
import shlex
import subprocess
import unittest

from deploy_itest import DEPLOY_DIR, SOURCE_DIR, check_probe, run_case, worker_settings

DOCKERFILE = os.path.join(DEPLOY_DIR, "docker", "Dockerfile")
BIN_DIR = os.environ.get("REBOUND_BIN_DIR", "")


def instructions(text):
    """[(INSTRUCTION, arguments)] with continuation lines joined."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    if buf:
        raise AssertionError("the Dockerfile ends inside a continued line")
    return out


def stages(instrs):
    """[(base image, name, [instructions])] per FROM."""
    out = []
    for word, rest in instrs:
        if word == "FROM":
            m = re.fullmatch(r"(\S+)(?: AS (\S+))?", rest, re.I)
            if not m:
                raise AssertionError("FROM %s" % rest)
            out.append((m.group(1), m.group(2), []))
        elif not out:
            if word != "ARG":
                raise AssertionError("%s before the first FROM" % word)
        else:
            out[-1][2].append((word, rest))
    return out


def package_list(name):
    with open(os.path.join(DEPLOY_DIR, "packages", name)) as f:
        return [w for line in f for w in line.split("#")[0].split()]


def installed_lists(instrs):
    """The deploy/packages/ lists a stage copies in and installs from."""
    copied = {}
    for word, rest in instrs:
        if word == "COPY" and "--from" not in rest:
            src, dst = shlex.split(rest)[-2:]
            m = re.fullmatch(r"deploy/packages/(\w+)", src)
            if m:
                copied[dst] = m.group(1)
    used = []
    for word, rest in instrs:
        if word == "RUN" and "apt-get install" in rest:
            for dst, name in copied.items():
                if re.search(r"\bsed 's/#\.\*//' %s\s*\|\s*xargs apt-get install" % re.escape(dst),
                             rest):
                    used.append(name)
    return used


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DOCKERFILE) as f:
            cls.instrs = instructions(f.read())
        cls.stages = stages(cls.instrs)

    def test_debian_12_multi_stage(self):
        self.assertGreaterEqual(len(self.stages), 2)
        for base, _, _ in self.stages:
            self.assertRegex(base, r"^debian:(bookworm|12)(-slim)?$")
        self.assertRegex(self.stages[-1][0], r"-slim$", "a slim runtime")
        names = [n for _, n, _ in self.stages]
        for base, name, body in self.stages:
            for word, rest in body:
                m = re.search(r"--from=(\S+)", rest) if word == "COPY" else None
                if m:
                    self.assertIn(m.group(1), names[:names.index(name)], rest)

    def test_package_lists_agree_with_install_deps(self):
        build, runtime = self.stages[0][2], self.stages[-1][2]
        self.assertEqual(installed_lists(build), ["build"])
        self.assertEqual(installed_lists(runtime), ["runtime"])
        # nothing else installed by name anywhere
        for _, _, body in self.stages:
            for word, rest in body:
                if word == "RUN" and "apt-get install" in rest:
                    tail = rest.split("apt-get install", 1)[1].split("&&")[0]
                    extra = [w for w in tail.split() if not w.startswith(("-", "/tmp/rebound_"))]
                    self.assertEqual(extra, [], rest)
        p = subprocess.run([os.path.join(DEPLOY_DIR, "local", "install-deps"), "--print"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        required = p.stdout.split()
        lists = package_list("build") + package_list("runtime") + package_list("test")
        self.assertEqual(required, lists)
        self.assertEqual(len(required), len(set(required)), "a package listed twice")
        for pkg in ("cmake", "python3-dev", "libseccomp-dev"):
            self.assertIn(pkg, package_list("build"))
        # the default preload's modules are in the runtime list
        settings = worker_settings(os.path.join(BIN_DIR, "rebound-worker"))
        modules = {m.split(".")[0] for m in settings["REBOUND_PRELOAD"].split(",")}
        for m in modules - {"json", "random", "math"}:
            self.assertIn("python3-" + m, package_list("runtime"), m)
        self.assertFalse([p for p in package_list("runtime") if p.endswith("-dev")])

    def test_runtime_stage(self):
        body = self.stages[-1][2]
        users = [rest for word, rest in body if word == "USER"]
        self.assertTrue(users, "no USER")
        self.assertNotIn(users[-1].split(":")[0], ("root", "0"))
        self.assertEqual([rest for word, rest in body if word == "STOPSIGNAL"], ["SIGTERM"])
        (health,) = [rest for word, rest in body if word == "HEALTHCHECK"]
        self.assertIn("rebound-status --worker", health)
        # its command, run as the container would run it (a shell form
        # runs through /bin/sh -c)
        cmd = health.split(" CMD ", 1)[1].strip()
        check_probe(self, json.loads(cmd) if cmd.startswith("[") else ["/bin/sh", "-c", cmd])
        (entry,) = [rest for word, rest in body if word == "ENTRYPOINT"]
        self.assertIn("exec rebound-worker", entry)  # the worker gets the signals
        settings = worker_settings(os.path.join(BIN_DIR, "rebound-worker"))
        for word, rest in body:
            if word == "ENV":
                for pair in shlex.split(rest):
                    var = pair.split("=", 1)[0]
                    self.assertTrue(var in settings, "ENV %s is not a setting" % var)

    def test_copied_files_exist(self):
        for _, _, body in self.stages:
            for word, rest in body:
                if word == "COPY" and "--from" not in rest:
                    for src in shlex.split(rest)[:-1]:
                        self.assertTrue(os.path.exists(os.path.join(SOURCE_DIR, src)), src)


if __name__ == "__main__":
    run_case(DockerfileTest)
