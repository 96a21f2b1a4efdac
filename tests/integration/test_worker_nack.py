#!/usr/bin/python3
"""Publisher confirms: a delivery is acked only after its result has been
confirmed by the broker. A result the broker refuses (basic.nack: the reply
queue is full, with overflow reject-publish) is published again later, and
the job's delivery stays unacknowledged at the broker, through every
refusal, until a publish of its result is accepted; then it is acked.

The job queue is a classic queue (--queue-type classic): `rabbitmqctl
list_queues` reads a classic queue's ready and unacknowledged counts from
the queue itself when asked, while a quorum queue's are a snapshot refreshed
every 5 s, which could still show the delivery unacknowledged after an early
ack. The worker's confirm and ack logic does not depend on the queue type.
"""
import re
import unittest
import uuid

import msgpack
import pika

from worker_itest import (Worker, call, classic_counts, connect, delete_queues, job, run_tests,
                          unique_queue, wait_until)


class Nack(unittest.TestCase):
    def test_job_stays_unacked_until_its_result_is_confirmed(self):
        queue = unique_queue("nack")
        replies = queue + ".replies"
        worker = Worker(queue, args=["--queue-type", "classic"])
        conn = connect()
        try:
            ch = conn.channel()
            # Confirmed publishes: each basic_publish returns once the
            # message is in its queue.
            ch.confirm_delivery()
            ch.queue_declare(replies, arguments={"x-max-length": 1,
                                                 "x-overflow": "reject-publish"})
            ch.basic_publish("", replies, b"filler")
            self.assertEqual(classic_counts(replies), (1, 0))

            cid = uuid.uuid4().hex
            ch.basic_publish("", queue, msgpack.packb(job("n1", [call("add", 20, 22)])),
                             pika.BasicProperties(reply_to=replies, correlation_id=cid,
                                                  content_type="application/msgpack"))
            refused = r"refused a result for %s \(basic.nack %%d\)" % re.escape(replies)
            worker.wait_log(refused % 1)
            # Delivered to the worker, not acked: its result was refused.
            self.assertEqual(classic_counts(queue), (0, 1))
            # Still unacked after the worker has tried again (200 ms later)
            # and been refused again. This is the reading an ack sent along
            # with the first refusal could not slip past: by now the broker
            # has long processed it.
            worker.wait_log(refused % 2)
            self.assertEqual(classic_counts(queue), (0, 1))
            self.assertEqual(classic_counts(replies), (1, 0))  # the filler alone

            # Room in the reply queue: the next attempt is accepted...
            method, props, body = ch.basic_get(replies, auto_ack=True)
            self.assertEqual(body, b"filler")

            def result():
                m, p, b = ch.basic_get(replies, auto_ack=True)
                return (p, b) if m else None
            props, body = wait_until(result, 60, "the result after the queue had room", 0.1)
            self.assertEqual(props.correlation_id, cid)
            res = msgpack.unpackb(body)
            self.assertEqual(res["id"], "n1")
            self.assertEqual(res["status"], "ok")
            self.assertEqual(res["results"][0]["val"], 42)
            # ...confirmed, and then the delivery is acked.
            wait_until(lambda: classic_counts(queue) == (0, 0), 30,
                       "the job acked once its result was confirmed")
            self.assertEqual(classic_counts(replies), (0, 0))  # published once, taken
            worker.stop()
        finally:
            conn.close()
            worker.cleanup()
            delete_queues(queue, queue + ".dead", replies)


if __name__ == "__main__":
    run_tests([Nack])
