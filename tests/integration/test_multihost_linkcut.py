"""Three hosts on a private network, and one of them cut off mid-stream.

The test makes three network namespaces of its own: "broker" (a private
RabbitMQ node and Redis, listening on the namespace's addresses only) and
two worker hosts, each joined to the broker by a veth pair on a link of its
own (10.213.1.0/24 and 10.213.2.0/24, inside the namespaces only). A
rebound-worker runs in each worker host (2 slots, --amqp-heartbeat 2: the
broker takes the 2 s the client asks for).

A stream of jobs (each sleeps 80 ms) goes to one quorum queue: both hosts
take a fair part. When a third of them are answered, host 1's link is
taken down (`ip link set ... down` in its namespace). Its unacked jobs go
back to the queue when the broker finds its connection dead (missed
heartbeats) and host 2 finishes them. Every job must be answered at least
once; duplicates are counted and printed, with the jobs per host and the
time from the cut to the first and to the last answer of a job host 1 held.

Namespaces, servers and workers are removed whatever happens; the test is
skipped (exit 77) with the reason printed when namespaces cannot be made."""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import multihost_itest as mh  # noqa: E402

def main():
    mh.require_bin()
    why = mh.can_make_netns()
    if why:
        mh.skip(why)
    tag = "%d" % os.getpid()
    ns_b, ns_1, ns_2 = "rbbroker-" + tag, "rbhost1-" + tag, "rbhost2-" + tag
    cleanup = mh.Cleanup()
    state = tempfile.mkdtemp(prefix="rb-linkcut-")
    cleanup.add("removing " + state, shutil.rmtree, state, True)
    ok = False
    try:
        t0 = time.monotonic()
        for ns in (ns_b, ns_1, ns_2):
            mh.make_netns(cleanup, ns)
        mh.link(ns_b, "b1", "10.213.1.1/24", ns_1, "h1", "10.213.1.2/24")
        mh.link(ns_b, "b2", "10.213.2.1/24", ns_2, "h2", "10.213.2.2/24")

        rabbit = mh.Rabbit(cleanup, os.path.join(state, "rabbit"), "rblinkcut%s@localhost" % tag,
                           5672, 25672, 4369, bind="0.0.0.0", ns=ns_b,
                           # guest may log in from the other hosts: the
                           # network is the test's own.
                           conf="loopback_users.guest = false\n")
        took = rabbit.start()
        print("broker started in %.1f s" % took)
        mh.Redis(cleanup, os.path.join(state, "redis"), 6379,
                 ["127.0.0.1", "10.213.1.1", "10.213.2.1"], ns=ns_b)

        queue = "rbtest.linkcut.%s" % tag
        root = mh.code_root(cleanup)
        common = ["--slots", str(mh.SLOTS), "--amqp-heartbeat", "2", "--heartbeat-ms", "500",
                  "--drain-ms", "2000"]
        workers = {}
        for name, ns, addr in (("host1", ns_1, "10.213.1.1"), ("host2", ns_2, "10.213.2.1")):
            workers[name] = mh.Worker(
                cleanup, name, ns, "amqp://guest:guest@%s:5672/%%2f" % addr, queue, root, state,
                common + ["--redis-url", "redis://%s:6379/0" % addr])
        for w in workers.values():
            w.wait_log("connected to ", 120)
        print("three hosts ready in %.1f s" % (time.monotonic() - t0))

        stream = mh.Stream("amqp://guest:guest@127.0.0.1:5672/%2f", ns=ns_b)
        cleanup.add("closing the stream", stream.close)
        ids, t_start, before = mh.start_stream(stream, queue)
        print("answered before the cut: %s" % before)

        mh.run(["ip", "-n", ns_1, "link", "set", "h1", "down"])
        t_cut = time.monotonic()
        print("host1's link cut %.1f s into the stream" % (t_cut - t_start))
        answered_at_cut = set(stream.replies)

        stream.wait_for(lambda: all(i in stream.replies for i in ids), 180,
                        "every job answered after the cut")
        t_end = time.monotonic()
        # A straggler answered twice comes within a moment, if at all.
        stream.pump(1.0)

        per, dups, missing = mh.summary(stream, ids)
        held = [i for i in ids if i not in answered_at_cut and
                any(r.get("redelivered") for _, r in stream.replies[i])]
        recovered = sorted(t for i in held for t, r in stream.replies[i]
                           if r.get("redelivered"))
        print("jobs per host: %s (first answers), duplicates: %d, missing: %d"
              % (per, dups, len(missing)))
        if recovered:
            print("host1's %d held jobs: first answered %.1f s after the cut, last %.1f s after"
                  % (len(held), recovered[0] - t_cut, recovered[-1] - t_cut))
        print("stream of %d jobs done %.1f s after the cut (%.1f s in all)"
              % (mh.JOBS, t_end - t_cut, t_end - t_start))

        mh.check_stream(stream, ids, before, workers)
        # Host 1 held jobs unacked at the cut: they came back, redelivered,
        # and host 2 answered them.
        assert held, "no job of host1 came back redelivered after the cut"
        for i in held:
            assert any(mh.host_of(r) == "host2" and r.get("redelivered")
                       for _, r in stream.replies[i]), (i, stream.replies[i])
        late1 = [i for i in ids if i not in answered_at_cut and
                 any(t > t_cut + 1 and mh.host_of(r) == "host1"
                     for t, r in stream.replies[i])]
        assert not late1, "host1 answered through a cut link: %s" % late1
        workers["host2"].wait_log("connected to ", 1)
        for w in workers.values():
            w.check_clean()
        ok = True
    finally:
        if not ok:
            for name in ("host1", "host2"):
                path = os.path.join(state, "%s.log" % name)
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        print("---- last lines of %s:\n%s" % (name, "".join(f.readlines()[-30:])),
                              file=sys.stderr)
        clean = cleanup.run()
        left = [ns for ns in (ns_b, ns_1, ns_2)
                if os.path.exists(mh.netns_path(ns))]
        if left:
            print("namespaces left behind: %s" % left, file=sys.stderr)
            ok = False
        if not clean:
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
