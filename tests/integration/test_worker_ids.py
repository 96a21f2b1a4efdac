#!/usr/bin/python3
"""Worker ids with several consumers: `--consumers 2 --worker-id X` makes
two consumer processes, X.1 and X.2, each one worker id: in the Redis set
of workers, in its own hash (`id`, and `pid` the consumer's process), on
its AMQP connection (its name), and in the `worker` field of the results
it sends; each hash counts the jobs whose results name it. (With a single
consumer the id is X itself: test_worker_basic.)

One slot per consumer, so prefetch 1: the broker cannot give a consumer a
second job before the first is acked, so jobs of 0.3 s go to both.
"""
import collections
import unittest

from worker_itest import (REDIS_URL, Client, Worker, call, delete_queues, job, rabbitmqctl,
                          redis_client, run_tests, unique_queue, wait_until)

JOBS = 8


class ConsumerIds(unittest.TestCase):
    def test_two_consumers_are_x1_and_x2(self):
        queue = unique_queue("ids")
        prefix = "rbtest-ids-%s" % queue
        wid = "wids"
        ids = {wid + ".1", wid + ".2"}

        def key(i):
            return "%s:worker:%s" % (prefix, i)

        worker = Worker(queue, consumers=2, slots=1,
                        args=["--redis-url", REDIS_URL, "--redis-prefix", prefix,
                              "--heartbeat-ms", "200", "--worker-id", wid])
        client = Client()
        r = redis_client()
        try:
            wait_until(lambda: set(r.zrange(prefix + ":workers", 0, -1)) == ids, 30,
                       "%s in %s:workers" % (sorted(ids), prefix))
            self.assertEqual({r.hget(key(i), "id") for i in ids}, ids)
            self.assertEqual({int(r.hget(key(i), "pid")) for i in ids},
                             set(worker.consumer_pids()))
            names = {n for row in rabbitmqctl("list_connections", "client_properties")
                     for n in ids if '{"connection_name","%s"}' % n in row[0]}
            self.assertEqual(names, ids)

            cids = [client.send(queue, job("i%d" % n, [call("sleep", 0.3, n)]))
                    for n in range(JOBS)]
            client.wait(cids, 60)
            by = collections.Counter()
            for n, cid in enumerate(cids):
                res = client.replies[cid][0]
                self.assertEqual((res["status"], res["results"][0]["val"]), ("ok", n))
                by[res["worker"]] += 1
            self.assertEqual(set(by), ids)
            wait_until(lambda: {i: int(r.hget(key(i), "jobs_ok") or -1) for i in ids}
                       == dict(by), 10, "jobs_ok of each consumer = its results: %s" % dict(by))
            worker.stop()
            self.assertEqual(r.zrange(prefix + ":workers", 0, -1), [])
            self.assertEqual([r.exists(key(i)) for i in sorted(ids)], [0, 0])
        finally:
            client.close()
            worker.cleanup()
            delete_queues(queue, queue + ".dead")


if __name__ == "__main__":
    run_tests([ConsumerIds], redis=True)
