#!/usr/bin/python3
"""rebound-status --prometheus: the heartbeats in Prometheus' text
exposition format 0.0.4, read by a strict parser of that format written
here, and checked against rebound-status --json.

Real workers (three consumers under two worker ids) write the heartbeats
of the first test; the second writes hashes itself so that the label
escaping, a lost worker and an unknown state are exercised exactly. Needs
the servers of tests/run (exit 77 without them).
"""
import json
import math
import os
import re
import subprocess
import time
import unittest

from worker_itest import (REDIS_URL, Client, Worker, call, delete_queues, job, redis_client,
                          run_tests, unique_queue, wait_until)

STATUS = os.path.join(os.environ.get("REBOUND_BIN_DIR", ""), "rebound-status")

# The grammar of text format 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats).
METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
FLOAT = r"[+-]?(?:Inf|NaN|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
SAMPLE_RX = re.compile(r"(%s)(?:\{((?:%s=%s)(?:,%s=%s)*,?)?\})? (%s)(?: (-?[0-9]+))?"
                       % (METRIC, LABEL, LABEL_VALUE, LABEL, LABEL_VALUE, FLOAT))
PAIR_RX = re.compile(r"(%s)=(%s)" % (LABEL, LABEL_VALUE))
HELP_RX = re.compile(r"# HELP (%s) ((?:[^\\\n]|\\[\\n])*)" % METRIC)
TYPE_RX = re.compile(r"# TYPE (%s) (counter|gauge|histogram|summary|untyped)" % METRIC)


def unescape(quoted):
    out, i, s = [], 0, quoted[1:-1]
    while i < len(s):
        if s[i] == "\\":
            out.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


class FormatError(AssertionError):
    pass


def parse(text):
    """{(name, frozenset(labels.items())): value}, {name: type}; raises
    FormatError naming the line that breaks the format or its rules."""
    if text and not text.endswith("\n"):
        raise FormatError("the last line does not end with a newline")
    types, helps, samples, finished, current = {}, set(), {}, set(), None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d %r" % (n, line)
        if line.startswith("#"):
            m = HELP_RX.fullmatch(line) or TYPE_RX.fullmatch(line)
            if not m:
                raise FormatError("%s: a comment that is neither HELP nor TYPE" % where)
            name = m.group(1)
            if name in finished or (current == name and name in samples_of(samples)):
                raise FormatError("%s: HELP/TYPE after the metric's samples" % where)
            if line.startswith("# HELP"):
                if name in helps:
                    raise FormatError("%s: a second HELP" % where)
                helps.add(name)
            else:
                if name in types:
                    raise FormatError("%s: a second TYPE" % where)
                types[name] = m.group(2)
            if current is not None and current != name:
                finished.add(current)
            current = name
            continue
        m = SAMPLE_RX.fullmatch(line)
        if not m:
            raise FormatError("%s: not a sample line of the format" % where)
        name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
        if name not in types:
            raise FormatError("%s: no TYPE before the first sample" % where)
        if name != current or name in finished:
            raise FormatError("%s: the metric's lines are not one group" % where)
        if types[name] == "counter" and not name.endswith("_total"):
            raise FormatError("%s: a counter whose name does not end in _total" % where)
        pairs = PAIR_RX.findall(labels_text)
        labels = {}
        for k, v in pairs:
            if k in labels:
                raise FormatError("%s: label %s twice" % (where, k))
            labels[k] = unescape(v)
        key = (name, frozenset(labels.items()))
        if key in samples:
            raise FormatError("%s: a duplicate series" % where)
        v = float(value.replace("Inf", "inf").replace("NaN", "nan"))
        if types[name] == "counter" and (math.isnan(v) or v < 0):
            raise FormatError("%s: a counter below 0" % where)
        samples[key] = v
    return samples, types


def samples_of(samples):
    return {k[0] for k in samples}


def count(samples, name, **labels):
    return len([1 for (n, ls) in samples if n == name and labels.items() <= dict(ls).items()])


def series(samples, name, **labels):
    """The value of the one series of name whose labels include these."""
    hits = [v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()]
    if len(hits) != 1:
        raise AssertionError("%d series of %s%s" % (len(hits), name, labels))
    return hits[0]


def status(*args):
    p = subprocess.run([STATUS, "--redis-url", REDIS_URL, *args], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


# The heartbeat field each per-worker metric comes from, and the factor.
FIELD_OF = {
    "rebound_worker_slots": ("slots", 1),
    "rebound_worker_busy_slots": ("busy", 1),
    "rebound_worker_redelivered_total": ("redelivered", 1),
    "rebound_worker_results_unroutable_total": ("results_unroutable", 1),
    "rebound_worker_job_cpu_seconds_total": ("cpu_ms_total", 0.001),
    "rebound_worker_job_run_seconds_avg": ("avg_run_ms", 0.001),
    "rebound_worker_last_job_timestamp_seconds": ("last_job_ms", 0.001),
    "rebound_worker_start_time_seconds": ("started_ms", 0.001),
    "rebound_worker_resident_memory_bytes": ("rss_kb", 1024),
}
STATES = ["starting", "ready", "draining", "reconnecting", "blocked", "stopped"]


class ParserTest(unittest.TestCase):
    """The parser itself refuses what the format forbids."""

    def test_rejects(self):
        good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n"
        parse(good)
        bad = [
            good[:-1],                                              # no final newline
            "a 1\n",                                                # no TYPE
            "# TYPE a gauge\n# TYPE a gauge\na 1\n",                # two TYPEs
            "# TYPE a counter\na 1\n",                              # counter without _total
            "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",          # duplicate series
            "# TYPE a gauge\na{x=\"a\"b\"} 1\n",                      # bad escaping
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",      # not one group
            "# TYPE a gauge\na one\n",                              # not a number
            "# TYPE a gauge\n\na 1\n",                              # empty line
            "# TYPE a gauge\na 1\n# TYPE a gauge\n",                # TYPE after samples
            "# comment\n",                                          # neither HELP nor TYPE
        ]
        for text in bad:
            with self.assertRaises(FormatError, msg=repr(text)):
                parse(text)


class PrometheusTest(unittest.TestCase):
    def setUp(self):
        self.prefix = "rbtest-prom-%d-%s" % (os.getpid(), self._testMethodName)
        self.r = redis_client()

    def tearDown(self):
        keys = self.r.keys(self.prefix + ":*")
        if keys:
            self.r.delete(*keys)
        self.r.close()

    def check_against_json(self, samples, before, after):
        """Every per-worker sample equals the field in one of the two JSON
        looks taken around it (a beat may fall between them)."""
        docs = [{w["id"]: w for w in d["workers"]} for d in (before, after)]
        ids = set(docs[0]) | set(docs[1])
        self.assertEqual(series(samples, "rebound_workers"), len(after["workers"]))
        for wid in ids:
            looks = [d[wid] for d in docs if wid in d]
            w = looks[-1]
            labels = {"worker": wid, "host": w.get("host", ""), "queue": w.get("queue", "")}
            self.assertEqual(series(samples, "rebound_worker_up", **labels), 0 if w["lost"] else 1)
            if w["lost"]:
                continue
            for name, (field, scale) in FIELD_OF.items():
                if field not in w:  # not written (an older worker): no series
                    self.assertEqual(count(samples, name, worker=wid), 0, (wid, name))
                    continue
                got = series(samples, name, **labels)
                want = [lk[field] * scale for lk in looks]
                self.assertTrue(any(math.isclose(got, x, rel_tol=1e-9, abs_tol=1e-9)
                                    for x in want), (wid, name, got, want))
            for outcome in ("ok", "error", "timeout", "crashed", "rejected"):
                if "jobs_" + outcome not in w:
                    self.assertEqual(count(samples, "rebound_worker_jobs_total", worker=wid,
                                           outcome=outcome), 0)
                    continue
                got = series(samples, "rebound_worker_jobs_total", outcome=outcome, **labels)
                self.assertIn(got, [lk["jobs_" + outcome] for lk in looks], (wid, outcome))
            states = {s: series(samples, "rebound_worker_state", state=s, **labels)
                      for s in set(STATES) | {w["state"]}}
            self.assertEqual(count(samples, "rebound_worker_state", worker=wid), len(states))
            self.assertEqual(sum(states.values()), 1, states)
            self.assertIn([s for s, v in states.items() if v == 1][0],
                          [lk["state"] for lk in looks])
            info = [dict(ls) for (n, ls), v in samples.items()
                    if n == "rebound_worker_info" and dict(ls)["worker"] == wid]
            self.assertEqual(len(info), 1)
            for k in ("mode", "version", "python", "sandbox", "preload_failed"):
                self.assertEqual(info[0][k], w.get(k, ""), (wid, k))
            age = series(samples, "rebound_worker_heartbeat_age_seconds", **labels)
            self.assertTrue(0 <= age < 30, age)

    def test_workers(self):
        queue = unique_queue("prom")
        common = ["--redis-url", REDIS_URL, "--redis-prefix", self.prefix, "--heartbeat-ms", "200"]
        a = Worker(queue, consumers=2, slots=1, args=common + ["--worker-id", "prom-a"])
        client = Client()
        b = None
        try:
            b = Worker(queue, slots=2, args=common + ["--worker-id", "prom-b"])
            ids = ["prom-a.1", "prom-a.2", "prom-b"]

            def ready():
                code, out, _ = status("--prefix", self.prefix, "--json")
                ws = json.loads(out)["workers"] if code in (0, 1) else []
                return sorted(w["id"] for w in ws if w.get("state") == "ready") == ids
            wait_until(ready, 60, "three ready consumers in " + self.prefix)
            cids = [client.send(queue, job("p%d" % i, [call("add", i, 1)])) for i in range(6)]
            cids.append(client.send(queue, job("pf", [call("fail", "no")])))
            client.wait(cids, timeout=60)
            self.assertEqual(sorted(client.replies[c][0]["status"] for c in cids),
                             ["error"] + ["ok"] * 6)

            def counted():
                _, out, _ = status("--prefix", self.prefix, "--json")
                t = json.loads(out)["totals"]
                return t["jobs_ok"] == 6 and t["jobs_error"] == 1
            wait_until(counted, 30, "the jobs in the heartbeats")

            _, out, _ = status("--prefix", self.prefix, "--json")
            before = json.loads(out)
            code, text, err = status("--prefix", self.prefix, "--prometheus")
            _, out, _ = status("--prefix", self.prefix, "--json")
            after = json.loads(out)
            self.assertEqual(code, 0, err)
            samples, types = parse(text)
            self.check_against_json(samples, before, after)
            self.assertEqual(series(samples, "rebound_workers_ready"), 3)
            total_ok = sum(v for (n, ls), v in samples.items()
                           if n == "rebound_worker_jobs_total" and ("outcome", "ok") in ls)
            self.assertEqual(total_ok, 6)
            self.assertEqual(types["rebound_worker_jobs_total"], "counter")
            self.assertEqual(types["rebound_worker_busy_slots"], "gauge")
            for (n, ls) in samples:
                if n.startswith("rebound_worker_"):
                    self.assertEqual(dict(ls).get("queue"), queue, n)

            # --worker keeps one worker (with its consumers); its exit
            # status is that worker's readiness
            code, text, err = status("--prefix", self.prefix, "--prometheus", "--worker", "prom-a")
            self.assertEqual(code, 0, err)
            samples, _ = parse(text)
            self.assertEqual({dict(ls)["worker"] for (n, ls) in samples
                              if n == "rebound_worker_up"}, {"prom-a.1", "prom-a.2"})
            self.assertEqual(status("--prefix", self.prefix, "--worker", "prom-b")[0], 0)
            self.assertEqual(status("--prefix", self.prefix, "--worker", "prom")[0], 1)
            b.stop()
            b.cleanup()
            b = None
            self.assertEqual(status("--prefix", self.prefix, "--worker", "prom-b")[0], 1)
            self.assertEqual(status("--prefix", self.prefix, "--worker", "prom-a")[0], 0)
            a.stop()
        finally:
            client.close()
            a.cleanup()
            if b is not None:
                b.cleanup()
            delete_queues(queue, queue + ".dead")

    def put(self, wid, **fields):
        key = "%s:worker:%s" % (self.prefix, wid)
        self.r.hset(key, mapping=fields)
        self.r.pexpire(key, 60000)
        self.r.zadd(self.prefix + ":workers", {wid: fields["beat_ms"]})

    def test_escaping_lost_and_unknown_state(self):
        now = int(time.time() * 1000)
        host = 'rack "7"\\b\nline2'
        self.put("w-odd", id="w-odd", host=host, queue="q\\1", mode="native", version="10",
                 state="paused", started_ms=now - 5000, beat_ms=now, slots=3, busy=2,
                 jobs_ok=7, jobs_error=0, jobs_timeout=1, jobs_crashed=0, jobs_rejected=2,
                 redelivered=4, results_unroutable=0, last_job_ms=now - 100,
                 avg_run_ms="12.50", cpu_ms_total="1234.25", rss_kb=2048,
                 preload_failed="numpy", sandbox="pgrp,seccomp;missing:x: \"y\"")
        self.put("w-old", id="w-old", host="h", queue="q", state="ready", beat_ms=now,
                 slots=1, busy=0, jobs_ok=1)  # an older writer: fewer fields
        self.r.zadd(self.prefix + ":workers", {"w-gone": now - 9000})
        _, out, _ = status("--prefix", self.prefix, "--json")
        doc = json.loads(out)
        code, text, err = status("--prefix", self.prefix, "--prometheus")
        self.assertEqual(code, 0, err)
        samples, _ = parse(text)
        self.check_against_json(samples, doc, doc)
        odd = {"worker": "w-odd", "host": host, "queue": "q\\1"}
        self.assertEqual(series(samples, "rebound_worker_state", state="paused", **odd), 1)
        self.assertEqual(series(samples, "rebound_worker_state", state="ready", **odd), 0)
        self.assertEqual(series(samples, "rebound_worker_job_cpu_seconds_total", **odd), 1.23425)
        self.assertEqual(series(samples, "rebound_worker_resident_memory_bytes", **odd),
                         2048 * 1024)
        self.assertEqual(series(samples, "rebound_worker_jobs_total", outcome="rejected", **odd), 2)
        info = series(samples, "rebound_worker_info", preload_failed="numpy",
                      sandbox='pgrp,seccomp;missing:x: "y"', **odd)
        self.assertEqual(info, 1)
        gone = {"worker": "w-gone", "host": "", "queue": ""}
        self.assertEqual(series(samples, "rebound_worker_up", **gone), 0)
        self.assertTrue(9 <= series(samples, "rebound_worker_heartbeat_age_seconds", **gone) < 60)
        self.assertEqual(count(samples, "rebound_worker_jobs_total", worker="w-gone"), 0)
        old = {"worker": "w-old", "host": "h", "queue": "q"}
        self.assertEqual(series(samples, "rebound_worker_jobs_total", outcome="ok", **old), 1)
        self.assertEqual(count(samples, "rebound_worker_jobs_total", outcome="error", **old), 0)
        self.assertEqual(series(samples, "rebound_workers"), 3)
        self.assertEqual(series(samples, "rebound_workers_ready"), 1)
        # the prefix from REBOUND_REDIS_PREFIX, as the worker reads it; the
        # flag wins
        env = dict(os.environ, REBOUND_REDIS_PREFIX=self.prefix)
        p = subprocess.run([STATUS, "--redis-url", REDIS_URL, "--prometheus"], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(series(parse(p.stdout)[0], "rebound_workers"), 3)
        p = subprocess.run([STATUS, "--redis-url", REDIS_URL, "--prometheus", "--prefix",
                            self.prefix + "-none"], env=env, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(series(parse(p.stdout)[0], "rebound_workers"), 0)

    def test_usage_and_empty(self):
        for args in (["--prometheus", "--json"], ["--prometheus", "--watch", "1"],
                     ["--worker", ""]):
            code, out, err = status(*args)
            self.assertEqual(code, 2, (args, out, err))
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        # nobody there: the metrics' headers, no worker series, exit 0
        code, text, err = status("--prefix", self.prefix, "--prometheus")
        self.assertEqual(code, 0, err)
        samples, types = parse(text)
        self.assertEqual(series(samples, "rebound_workers"), 0)
        self.assertIn("rebound_worker_jobs_total", types)
        self.assertFalse([n for (n, _) in samples if n.startswith("rebound_worker_")])


if __name__ == "__main__":
    run_tests([ParserTest, PrometheusTest], redis=True)
