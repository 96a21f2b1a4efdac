#!/usr/bin/python3
"""kill -9 of a consumer process while jobs are in flight: the supervisor
says why and restarts it, and every job is answered (jobs the dead consumer
held are run again: answered twice at most, counted, allowed)."""
import os
import re
import signal
import unittest

from worker_itest import (Client, Worker, call, delete_queues, job, run_tests, unique_queue,
                          wait_until)

JOBS = 40


class Crash(unittest.TestCase):
    def test_kill_9_consumer(self):
        queue = unique_queue("crash")
        worker = Worker(queue, consumers=2, slots=2)
        client = Client()
        try:
            pids = worker.consumer_pids()
            self.assertEqual(len(pids), 2)
            cids = {client.send(queue, job("j%d" % i, [call("sleep", 0.3, i)])): i
                    for i in range(JOBS)}
            # Both consumers are busy once a few results are back.
            wait_until(lambda: client.conn.process_data_events(time_limit=0.1) or
                       len(client.replies) >= 4, 120, "the first results")
            victim = pids[0]
            os.kill(victim, signal.SIGKILL)
            worker.wait_log(r"consumer \d \(pid %d\) killed by signal 9 \(SIGKILL\); "
                            r"restarting in \d+ ms" % victim)
            client.wait(list(cids), timeout=300)

            twice = 0
            for cid, i in cids.items():
                got = client.replies[cid]
                self.assertLessEqual(len(got), 2, "job j%d answered %d times" % (i, len(got)))
                twice += len(got) > 1
                for res in got:
                    self.assertEqual(res["id"], "j%d" % i)
                    self.assertEqual(res["status"], "ok")
                    self.assertEqual(res["results"][0]["val"], i)
            redelivered = sum(1 for g in client.replies.values() for r in g
                              if r.get("redelivered"))
            print("answered twice: %d; results marked redelivered: %d" % (twice, redelivered))
            # The killed consumer held unacked jobs (prefetch 2, all slots
            # busy): the broker gave them to a consumer again.
            self.assertGreater(redelivered, 0)

            # The restarted consumer is a new process, and it consumes.
            wait_until(lambda: len(worker.consumer_pids()) == 2 and
                       victim not in worker.consumer_pids(), 60, "the restarted consumer")
            started = re.findall(r"consumer (\d) started \(pid (\d+)\)", worker.text())
            self.assertEqual(len(started), 3)
            res = client.call(queue, job("after", [call("add", 1, 1)]))
            self.assertEqual(res["results"][0]["val"], 2)
            worker.stop()
        finally:
            client.close()
            worker.cleanup()
            delete_queues(queue, queue + ".dead")


if __name__ == "__main__":
    run_tests([Crash])
