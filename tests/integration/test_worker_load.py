#!/usr/bin/python3
"""1000 jobs from 4 concurrent clients: every job answered exactly once,
with its own result, to its own client (no loss, no duplicates, no
cross-talk), by two consumer processes.

"Exactly once" is counted when no further result can come: every job has
been answered, and the broker has nothing of the queue left to give out
again (no message ready, no delivery unacknowledged on the worker's
channels). A delivery is acked only after its result is confirmed, so from
then on nothing is run or published again. Then each client sends one more
job (a fence) and reads until its answer: anything the broker had routed
to the client before arrives before the fence's answer.

The job queue is a quorum queue (the default), whose counts in `rabbitmqctl
list_queues` are a snapshot refreshed every 5 s; the live counts are read
instead: ready messages from a passive declare (with both consumers seen
at the same moment, so not the (0, 0) a quorum queue answers when its
leader is slow), unacknowledged deliveries from `rabbitmqctl list_channels`.
"""
import threading
import unittest

from worker_itest import (Client, Worker, call, delete_queues, job, queue_counts, run_tests,
                          unacked_on_connections, unique_queue, wait_until)

CLIENTS = 4
JOBS_PER_CLIENT = 250
CONSUMERS = 2


class Load(unittest.TestCase):
    def test_1000_jobs_4_clients(self):
        queue = unique_queue("load")
        wid = "wload"
        worker = Worker(queue, consumers=CONSUMERS, slots=2, args=["--worker-id", wid])
        outcome = {}
        answered = [threading.Event() for _ in range(CLIENTS)]
        settled = threading.Event()
        give_up = threading.Event()

        def client(k):
            c = Client()
            try:
                sent = {}
                for i in range(JOBS_PER_CLIENT):
                    n = k * 100000 + i
                    cid = c.send(queue, job("c%d-%d" % (k, i), [call("add", n, 1)]))
                    sent[cid] = n
                c.wait(list(sent), timeout=400)
                answered[k].set()
                # Keep reading (and the connection alive) until the broker
                # has nothing left to deliver again.
                while not settled.is_set():
                    if give_up.is_set():
                        raise AssertionError("client %d: the main thread gave up" % k)
                    c.conn.process_data_events(time_limit=0.1)
                fence = c.send(queue, job("fence%d" % k, [call("add", k, 0)]))
                c.wait([fence], timeout=60)
                replies = dict(c.replies)
                fence_replies = replies.pop(fence)
                outcome[k] = (sent, replies, fence_replies)
            except Exception as e:  # reported by the main thread
                outcome[k] = e
            finally:
                c.close()

        def all_answered():
            for k in range(CLIENTS):
                if isinstance(outcome.get(k), Exception):
                    raise outcome[k]
            return all(e.is_set() for e in answered)

        def nothing_left():
            # Both consumers in the same reading as the ready count: a live
            # answer, not the (0, 0) of a slow quorum leader.
            return (queue_counts(queue) == (0, CONSUMERS)
                    and unacked_on_connections(wid) == (CONSUMERS, 0))

        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(CLIENTS)]
        try:
            for t in threads:
                t.start()
            wait_until(all_answered, 420, "an answer to each of the %d jobs"
                       % (CLIENTS * JOBS_PER_CLIENT), step=0.2)
            wait_until(nothing_left, 60, "no job of %s ready or unacknowledged" % queue, step=0.2)
            settled.set()
            for t in threads:
                t.join(120)
                self.assertFalse(t.is_alive(), "a client thread is stuck")
            for k in range(CLIENTS):
                if isinstance(outcome[k], Exception):
                    raise outcome[k]
                sent, replies, fence_replies = outcome[k]
                self.assertEqual(set(replies), set(sent), "client %d: foreign or missing" % k)
                for cid, n in sent.items():
                    got = replies[cid]
                    self.assertEqual(len(got), 1, "client %d: %s answered %d times"
                                     % (k, cid, len(got)))
                    self.assertEqual(got[0]["status"], "ok")
                    self.assertEqual(got[0]["id"], "c%d-%d" % (k, n - k * 100000))
                    self.assertEqual(got[0]["results"][0]["val"], n + 1)
                self.assertEqual([r["results"][0]["val"] for r in fence_replies], [k])
            # Both consumers took part.
            workers = {r[0]["worker"] for k in range(CLIENTS) for r in outcome[k][1].values()}
            self.assertEqual(workers, {"%s.%d" % (wid, n) for n in range(1, CONSUMERS + 1)})
            worker.stop()
        finally:
            give_up.set()  # a client still waiting stops (daemon threads: none outlives us)
            for t in threads:
                t.join(10)
            worker.cleanup()
            delete_queues(queue, queue + ".dead")


if __name__ == "__main__":
    run_tests([Load])
