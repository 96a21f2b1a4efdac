"""Real libraries through the real pool: the corpus in real_code/.

Every case is a function of a module in real_code/ that does what course
and grading code does (sympy, pandas, scipy, matplotlib, pint, networkx,
lxml, numpy, the standard library, processes and threads). Each runs
through a real trampoline pool (tests/pool_run) in native, container and
internal mode, with the default preload and with the scientific one, and its value
must equal what the same function returns in a fresh /usr/bin/python3 (the
reference). A sample also goes through the broker and rebound-worker, and a
stress run sends a few hundred jobs importing different mixes through two
slots.
"""
import concurrent.futures
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worker_itest as wi  # noqa: E402
from pool_itest import POOL_RUN, run_pool  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "real_code")
PYTHON = "/usr/bin/python3"

DEFAULT_PRELOAD = "numpy,lxml.etree,json,random,math"
SCIENTIFIC_PRELOAD = ("numpy,lxml.etree,json,random,math,sympy,pandas,matplotlib.pyplot,pint,"
                      "scipy,networkx")

# (module, function, args)
CASES = [
    ("symbolic", "parse_and_simplify", ["sin(x)**2 + cos(x)**2 + (x**2 - 1)/(x - 1)"]),
    ("symbolic", "derivative_latex", ["x**3*exp(2*x) + log(x)"]),
    ("symbolic", "solve_quadratic", [1, -3, 2]),
    ("symbolic", "grade_equivalent", ["(x+1)**2", "x**2 + 2*x + 1"]),
    ("tables", "section_means", []),
    ("tables", "to_html", []),
    ("tables", "describe", []),
    ("numeric", "minimize_rosenbrock", []),
    ("numeric", "t_test", []),
    ("numeric", "normal_quantiles", []),
    ("plots", "line_plot_png", []),
    ("units", "convert", [3.5, "mile", "kilometer"]),
    ("units", "kinetic_energy", [1200, 90]),
    ("graphs", "shortest_path", []),
    ("graphs", "grid_components", []),
    ("xmldoc", "points", []),
    ("xmldoc", "answers", []),
    ("randomness", "seeded_draws", [2024]),
    ("randomness", "linear_algebra", []),
    ("stdlib_mix", "fractions_sum", [30]),
    ("stdlib_mix", "decimal_division", []),
    ("stdlib_mix", "regex_matches", [["123", "Hello there", "me@site.com", "aaic", "x^2 "]]),
    ("stdlib_mix", "json_roundtrip", []),
    ("processes", "echo_subprocess", ["from a child"]),
    ("processes", "pool_map", [6]),
    ("processes", "threads_sum", [4]),
    ("processes", "temp_files", [["one", "two", "three"]]),
    ("processes", "home_is_writable", []),
    ("processes", "new_session_child", ["own session"]),
    ("processes", "setsid_in_child", []),
    ("processes", "double_fork_daemon", ["daemon says hi"]),
    ("churn", "churn", [12]),
]

MIX_NAMES = ["sympy", "pandas", "pint", "networkx", "scipy.stats", "lxml.etree", "fractions",
             "numpy"]

# Runs one call in a fresh interpreter, the way a job sees it: the code
# root on sys.path, a private directory as cwd, HOME and TMPDIR.
REFERENCE = r"""
import os, sys, json, importlib, msgpack
root, module, fcn, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path.insert(0, root)
value = getattr(importlib.import_module(module), fcn)(*args)
sys.stdout.buffer.write(msgpack.packb(value, use_bin_type=True))
"""


def reference(case):
    """case: (module, function, args as JSON text)."""
    module, fcn, args_json = case
    home = tempfile.mkdtemp(prefix="rb-ref-")
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
               "MPLCONFIGDIR": os.path.join(home, ".matplotlib"),
               "PYTHONDONTWRITEBYTECODE": "1"}  # nothing written into the source tree
        p = subprocess.run([PYTHON, "-c", REFERENCE, CORPUS, module, fcn, args_json],
                           capture_output=True, cwd=home, env=env, timeout=300)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if p.returncode != 0:
        raise AssertionError("reference %s.%s failed:\n%s" % (module, fcn, p.stderr.decode()))
    return msgpack.unpackb(p.stdout, raw=False)


def references(cases):
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        return dict(zip(cases, ex.map(reference, cases)))


def job_for(job_id, case):
    module, fcn, args = case
    return {"v": 1, "id": job_id, "timeout_ms": 120000,
            "calls": [{"file": module + ".py", "fcn": fcn, "args": args}]}


def code_root():
    """A copy of the corpus that the sandbox user can read."""
    root = tempfile.mkdtemp(prefix="rb-real-code-")
    os.chmod(root, 0o755)
    for name in os.listdir(CORPUS):
        if name.endswith(".py"):
            shutil.copy(os.path.join(CORPUS, name), root)
            os.chmod(os.path.join(root, name), 0o644)
    return root



class RealCode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.refs = references([tuple((m, f, _freeze(a))) for m, f, a in CASES])
        cls.root = code_root()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def check_corpus(self, mode, preload):
        jobs = [job_for("case-%d" % i, c) for i, c in enumerate(CASES)]
        header, results, stderr = run_pool(jobs, mode, preload, self.root)
        self.assertEqual(header["preload_failed"], "")
        self.assertEqual(len(results), len(CASES))
        for i, (module, fcn, args) in enumerate(CASES):
            with self.subTest(case="%s.%s" % (module, fcn)):
                r = results["case-%d" % i]
                self.assertEqual(r["status"], "ok", "%s.%s: %r" % (module, fcn, r))
                call = r["results"][0]
                self.assertEqual(call["val"], self.refs[(module, fcn, _freeze(args))])
                # Nothing is rebuilt per job: no cache warnings in the output.
                self.assertNotIn("Matplotlib", call.get("output", ""))
                self.assertNotIn("font cache", call.get("output", ""))
        return stderr

    def test_native_default_preload(self):
        self.check_corpus("native", DEFAULT_PRELOAD)

    def test_native_scientific_preload(self):
        self.check_corpus("native", SCIENTIFIC_PRELOAD)

    def test_container_default_preload(self):
        self.check_corpus("container", DEFAULT_PRELOAD)

    def test_container_scientific_preload(self):
        self.check_corpus("container", SCIENTIFIC_PRELOAD)

    def test_internal_default_preload(self):
        self.check_corpus("internal", DEFAULT_PRELOAD)

    def test_internal_scientific_preload(self):
        self.check_corpus("internal", SCIENTIFIC_PRELOAD)

    def test_stress_mixed_imports(self):
        """A few hundred jobs over two slots, each importing another mix."""
        mixes = [list(c) for r in (1, 2, 3) for c in itertools.combinations(MIX_NAMES, r)]
        mixes = mixes[::3]  # a spread of singles, pairs and triples
        refs = references([("mix", "use", _freeze([m])) for m in mixes])
        n = int(os.environ.get("REBOUND_REAL_CODE_STRESS_JOBS", "300"))
        jobs = [job_for("mix-%d" % i, ("mix", "use", [mixes[i % len(mixes)]])) for i in range(n)]
        _, results, _ = run_pool(jobs, "native", DEFAULT_PRELOAD, self.root)
        self.assertEqual(len(results), n)
        for i in range(n):
            r = results["mix-%d" % i]
            mix = mixes[i % len(mixes)]
            self.assertEqual(r["status"], "ok", "%s: %r" % (mix, r))
            self.assertEqual(r["results"][0]["val"], refs[("mix", "use", _freeze([mix]))])


class ThroughTheBroker(unittest.TestCase):
    """A sample of the corpus through RabbitMQ and rebound-worker."""
    SAMPLE = [("symbolic", "derivative_latex"), ("tables", "to_html"), ("plots", "line_plot_png"),
              ("units", "convert"), ("processes", "pool_map"), ("churn", "churn")]

    def test_sample(self):
        cases = [c for c in CASES if (c[0], c[1]) in self.SAMPLE]
        refs = references([(m, f, _freeze(a)) for m, f, a in cases])
        queue = wi.unique_queue("realcode")
        worker = wi.Worker(queue, mode="native", slots=2,
                           args=["--preload", SCIENTIFIC_PRELOAD])
        client = wi.Client()
        try:
            for name in os.listdir(CORPUS):
                if name.endswith(".py"):
                    dst = os.path.join(worker.code_root, name)
                    shutil.copy(os.path.join(CORPUS, name), dst)
                    os.chmod(dst, 0o644)
            cids = {client.send(queue, job_for("b-%d" % i, c)): c for i, c in enumerate(cases)}
            client.wait(list(cids), timeout=300)
            for cid, (module, fcn, args) in cids.items():
                r = client.replies[cid][0]
                self.assertEqual(r["status"], "ok", "%s.%s: %r" % (module, fcn, r))
                self.assertEqual(r["results"][0]["val"], refs[(module, fcn, _freeze(args))])
            client.close()
            worker.stop()
        finally:
            client.close()
            worker.cleanup()
            wi.delete_queues(queue, queue + ".dead")


def _freeze(v):
    """A hashable form of a JSON-like value (for the reference table)."""
    return json.dumps(v, sort_keys=True)


if __name__ == "__main__":
    if not os.path.exists(POOL_RUN):
        print("tests/pool_run is missing: build the tests first")
        sys.exit(1)
    wi.run_tests([RealCode, ThroughTheBroker])
