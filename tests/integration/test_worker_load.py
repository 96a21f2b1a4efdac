#!/usr/bin/python3
"""1000 jobs from 4 concurrent clients: every job answered exactly once,
with its own result, to its own client (no loss, no duplicates, no
cross-talk), by two consumer processes."""
import threading
import unittest

from worker_itest import Client, Worker, call, delete_queues, job, run_tests, unique_queue

CLIENTS = 4
JOBS_PER_CLIENT = 250


class Load(unittest.TestCase):
    def test_1000_jobs_4_clients(self):
        queue = unique_queue("load")
        worker = Worker(queue, consumers=2, slots=2)
        outcome = {}

        def client(k):
            c = Client()
            try:
                sent = {}
                for i in range(JOBS_PER_CLIENT):
                    n = k * 100000 + i
                    cid = c.send(queue, job("c%d-%d" % (k, i), [call("add", n, 1)]))
                    sent[cid] = n
                c.wait(list(sent), timeout=400)
                # Let any stray duplicate arrive before counting.
                c.conn.process_data_events(time_limit=1)
                outcome[k] = (sent, dict(c.replies))
            except Exception as e:  # reported by the main thread
                outcome[k] = e
            finally:
                c.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
                self.assertFalse(t.is_alive(), "a client thread is stuck")
            for k in range(CLIENTS):
                if isinstance(outcome[k], Exception):
                    raise outcome[k]
                sent, replies = outcome[k]
                self.assertEqual(set(replies), set(sent), "client %d: foreign or missing" % k)
                for cid, n in sent.items():
                    got = replies[cid]
                    self.assertEqual(len(got), 1, "client %d: %s answered %d times"
                                     % (k, cid, len(got)))
                    self.assertEqual(got[0]["status"], "ok")
                    self.assertEqual(got[0]["id"], "c%d-%d" % (k, n - k * 100000))
                    self.assertEqual(got[0]["results"][0]["val"], n + 1)
            text = worker.text()
            self.assertIn(queue, text)
            worker.stop()
        finally:
            worker.cleanup()
            delete_queues(queue, queue + ".dead")


if __name__ == "__main__":
    run_tests([Load])
