"""Celery baseline of the worker benchmark (tests/bench/bench_worker).

The same module is the Celery app the worker loads and the load client:

  worker:  /usr/bin/python3 -m celery -A celery_bench worker -P prefork -c 2 ...
  client:  /usr/bin/python3 celery_bench.py --task f|g --jobs N --window W [--warmup N]
                                            [--gap-ms MS]

Both read REBOUND_BENCH_CELERY_BROKER (an amqp:// URL),
REBOUND_BENCH_CELERY_QUEUE (the queue the tasks go to) and
REBOUND_BENCH_CELERY_QUEUE_TYPE (classic, the default, or quorum). Results
travel over the rpc:// backend (a classic reply queue, as rebound's).

On a quorum queue, Celery 5.2 cannot consume as it is: its worker asks
RabbitMQ (3.3 or later) for a global prefetch limit, which quorum queues
refuse (540 NOT_IMPLEMENTED: "does not support global qos"). Celery
5.5 turns global QoS off when it finds a quorum queue
(worker_detect_quorum_queues); here the worker does the same by telling
kombu that the broker's QoS follows the AMQP specification, which makes
Celery ask for a per-consumer limit of the same size. The tasks do what the rebound jobs of the benchmark do:
f() returns 1, g(50) multiplies two 50x50 numpy matrices. Like rebound's
preload list, numpy, lxml.etree, json, random and math are imported when the
worker loads the app, before it forks its pool.

The client times each round trip from just before task.delay() to the end
of AsyncResult.get(), keeping up to W tasks in flight (W = 1: one at a time;
--gap-ms then pauses after each result, as bench_client does), and prints one
line in the format of bench_client:

  bench_client jobs=2000 ok=2000 window=1 p50_ms=1.2 p99_ms=2.5 jobs_per_s=830.1 seconds=2.41

Exit status 0 when every task returned the expected value, 1 otherwise.
"""
import argparse
import collections
import json  # noqa: F401  (preloaded, as by rebound)
import logging
import math  # noqa: F401
import os
import random  # noqa: F401
import sys
import time

import lxml.etree  # noqa: F401
import numpy as np
from celery import Celery, signals
from kombu import Queue

QUEUE = os.environ.get("REBOUND_BENCH_CELERY_QUEUE", "bench.celery")
QUEUE_TYPE = os.environ.get("REBOUND_BENCH_CELERY_QUEUE_TYPE", "classic")
if QUEUE_TYPE not in ("classic", "quorum"):
    sys.exit("celery_bench: REBOUND_BENCH_CELERY_QUEUE_TYPE: classic or quorum")

app = Celery("celery_bench",
             broker=os.environ.get("REBOUND_BENCH_CELERY_BROKER", "amqp://guest:guest@127.0.0.1//"),
             backend="rpc://")
app.conf.update(
    task_default_queue=QUEUE,
    task_queues=[Queue(QUEUE, routing_key=QUEUE,
                       queue_arguments={"x-queue-type": QUEUE_TYPE})],
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_timeout=10,
)


if QUEUE_TYPE == "quorum":
    # Celery 5.2 asks for global QoS, which quorum queues refuse (see above).
    import kombu.transport.pyamqp

    kombu.transport.pyamqp.Transport.qos_semantics_matches_spec = lambda self, conn: True


@signals.after_setup_logger.connect
def quiet_task_lines(**_):
    """Keep the worker's INFO lines (its "ready." line tells the driver that
    it consumes) but not the two lines per task INFO adds, which would be
    measured too: a worker run at its default level (WARNING) writes none."""
    for name in ("celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)


@app.task(name="bench.f")
def f():
    return 1


@app.task(name="bench.g")
def g(n):
    a = np.arange(n * n, dtype=float).reshape(n, n)
    return float((a @ a.T).trace())


TASKS = {"f": (f, ()), "g": (g, (50,))}


def pct(sorted_v, p):
    return sorted_v[int(p * (len(sorted_v) - 1) + 0.5)]


def send(task, args):
    res = task.delay(*args)
    # Register the result with the backend at once, so that its reply is
    # matched to it whenever it arrives. Otherwise a reply that comes in while
    # the client waits for another task is parked, and a later get() on it
    # still waits for one more message from the broker (up to 1 s) before it
    # looks at it: with results arriving out of order (concurrency 2) that
    # added seconds to every run.
    res.backend.add_pending_result(res)
    return res


def run(task, args, want, jobs, window, timeout, gap_ms=0):
    """Returns (latencies in ms, ok count, seconds from first send to last result)."""
    lat = []
    ok = 0
    pending = collections.deque()
    sent = 0
    t_first = time.perf_counter()
    while len(lat) < jobs:
        while sent < jobs and len(pending) < window:
            pending.append((time.perf_counter(), send(task, args)))
            sent += 1
        # The oldest first: the rpc backend keeps results that arrive for
        # the others until they are asked for.
        t0, res = pending.popleft()
        val = res.get(timeout=timeout)
        lat.append((time.perf_counter() - t0) * 1e3)
        ok += val == want
        if gap_ms > 0 and window == 1 and sent < jobs:
            time.sleep(gap_ms / 1000.0)
    return lat, ok, time.perf_counter() - t_first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=sorted(TASKS), default="f")
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per result")
    ap.add_argument("--gap-ms", type=int, default=0, help="pause after each result (window 1)")
    a = ap.parse_args()
    task, args = TASKS[a.task]
    want = task.run(*args)  # the value the worker must send back
    try:
        _, wok, _ = run(task, args, want, a.warmup, 1, a.timeout)
        if wok < a.warmup:
            print("celery_bench: %d of %d warm-up tasks failed" % (a.warmup - wok, a.warmup),
                  file=sys.stderr)
            return 1
        lat, ok, secs = run(task, args, want, a.jobs, a.window, a.timeout, a.gap_ms)
    except Exception as e:  # a timeout or a broker failure: say which
        print("celery_bench: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    lat.sort()
    print("bench_client jobs=%d ok=%d window=%d p50_ms=%.4f p99_ms=%.4f jobs_per_s=%.1f "
          "seconds=%.3f" % (a.jobs, ok, a.window, pct(lat, 0.5), pct(lat, 0.99),
                            a.jobs / secs if secs > 0 else 0.0, secs))
    return 0 if ok == a.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
