"""A three-node RabbitMQ cluster on loopback, and the node a worker is
connected to stopped mid-stream.

Three nodes (names, ports and directories of their own, one epmd, one
cookie) form a cluster; the job queue is a quorum queue (replicated on all
three). Worker A is given the brokers in the order node 1, 2, 3 and
worker B in the order 2, 3, 1: A is on node 1, B on node 2. The jobs
(each sleeps 80 ms) are sent through node 3 with publisher confirms; when a
third are answered node 1 is stopped (rabbitmqctl stop). A loses its
connection, goes on to node 2 and finishes its part; A's unacked jobs come
back to the queue. Every job must be answered at least once; duplicates
are counted and printed, with the jobs per worker, the time the cluster
took to start and the failover time (from the stop to A connected again,
and to A's first answer after it). Every wait is bounded; the nodes and
workers are stopped whatever happens."""
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import multihost_itest as mh  # noqa: E402

def main():
    mh.require_bin()
    tag = "%d" % os.getpid()
    cleanup = mh.Cleanup()
    state = tempfile.mkdtemp(prefix="rb-failover-")
    cleanup.add("removing " + state, shutil.rmtree, state, True)
    ok = False
    workers = {}
    try:
        t0 = time.monotonic()
        cluster = mh.Cluster(cleanup, state, tag)
        print("cluster of 3 nodes started in %.1f s" % cluster.start())
        queue = "rbtest.failover.%s" % tag
        root = mh.code_root(cleanup)
        u = cluster.urls
        for name, urls in (("A", [u[0], u[1], u[2]]), ("B", [u[1], u[2], u[0]])):
            workers[name] = mh.Worker(cleanup, name, None, ",".join(urls), queue, root, state,
                                      ["--slots", str(mh.SLOTS), "--amqp-heartbeat", "2",
                                       "--drain-ms", "5000"])
        workers["A"].wait_log("(broker 1 of 3)", 120)
        workers["B"].wait_log("(broker 1 of 3)", 120)

        stream = mh.Stream(u[2], confirm=True)
        cleanup.add("closing the stream", stream.close)
        ids, t_start, before = mh.start_stream(stream, queue)
        print("answered before the stop: %s" % before)

        stopped = {}

        def stop_node1():
            try:
                stopped["seconds"] = cluster.nodes[0].stop()
            except Exception as e:
                stopped["error"] = e
        stopper = threading.Thread(target=stop_node1)
        t_stop = time.monotonic()
        stopper.start()
        print("stopping node 1 %.1f s into the stream" % (t_stop - t_start))
        answered_at_stop = set(stream.replies)
        a = workers["A"]
        t_back = None
        deadline = time.monotonic() + 180
        while not all(i in stream.replies for i in ids) or t_back is None:
            if time.monotonic() > deadline:
                missing = [i for i in ids if i not in stream.replies]
                raise AssertionError("after 180 s: A reconnected: %s; %d jobs unanswered"
                                     % (t_back is not None, len(missing)))
            stream.pump(0.1)
            if t_back is None and "(broker 2 of 3)" in a.text():
                t_back = time.monotonic()
        t_end = time.monotonic()
        stopper.join(120)
        assert not stopper.is_alive(), "node 1 did not stop within 120 s"
        assert "error" not in stopped, stopped.get("error")
        stream.pump(1.0)  # a late duplicate, if any

        per, dups, missing = mh.summary(stream, ids)
        a_after = sorted(t for i in ids for t, r in stream.replies[i]
                         if mh.host_of(r) == "A" and t > t_back)
        print("jobs per worker: %s (first answers), duplicates: %d, missing: %d"
              % (per, dups, len(missing)))
        print("node 1 stopped in %.1f s; A connected to node 2 %.1f s after the stop began"
              % (stopped["seconds"], t_back - t_stop))
        if a_after:
            print("A's first answer after the failover: %.1f s after the stop began"
                  % (a_after[0] - t_stop))
        redelivered = [i for i in ids if i not in answered_at_stop and
                       any(r.get("redelivered") for _, r in stream.replies[i])]
        print("%d jobs came back redelivered; stream done %.1f s after the stop (%.1f s in all,"
              " %.1f s with the cluster's start)"
              % (len(redelivered), t_end - t_stop, t_end - t_start, t_end - t0))

        # What A said about the failover.
        said = [line for line in a.text().splitlines()
                if "connection lost" in line or "cannot set up" in line or
                "dead-letter" in line or "connected to" in line]
        print("A's log on the failover:\n  " + "\n  ".join(said[1:12]))

        mh.check_stream(stream, ids, before, workers)
        text = a.text()
        lost = text.find("connection lost")
        assert lost >= 0, "A never lost its connection:\n" + a.tail()
        assert text.find("(broker 2 of 3)", lost) > lost, a.tail()
        assert a_after, "A answered nothing after the failover"
        for w in workers.values():
            w.check_clean()
        ok = True
    finally:
        if not ok:
            for w in workers.values():
                print("---- last lines of %s:\n%s" % (w.name, w.tail(30)), file=sys.stderr)
        if not cleanup.run():
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
