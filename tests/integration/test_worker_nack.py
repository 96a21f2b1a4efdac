#!/usr/bin/python3
"""Publisher confirms: a result the broker refuses (basic.nack: the reply
queue is full, with overflow reject-publish) is published again later, and
the job stays unacked until the broker has taken its result."""
import unittest
import uuid

import msgpack
import pika

from worker_itest import (Worker, call, connect, delete_queues, job, queue_counts, run_tests,
                          unique_queue, wait_until)


class Nack(unittest.TestCase):
    def test_refused_result_is_published_again(self):
        queue = unique_queue("nack")
        replies = queue + ".replies"
        worker = Worker(queue)
        conn = connect()
        try:
            ch = conn.channel()
            ch.queue_declare(replies, arguments={"x-max-length": 1,
                                                 "x-overflow": "reject-publish"})
            ch.basic_publish("", replies, b"filler")
            wait_until(lambda: queue_counts(replies)[0] == 1, 30, "the filler message")

            cid = uuid.uuid4().hex
            ch.basic_publish("", queue, msgpack.packb(job("n1", [call("add", 20, 22)])),
                             pika.BasicProperties(reply_to=replies, correlation_id=cid,
                                                  content_type="application/msgpack"))
            worker.wait_log(r"refused a result for %s \(basic.nack 1\)" % replies)
            # Not confirmed, so not acked: the job is still the worker's.
            self.assertEqual(queue_counts(queue)[0], 0)

            method, props, body = ch.basic_get(replies, auto_ack=True)
            self.assertEqual(body, b"filler")

            def result():
                m, p, b = ch.basic_get(replies, auto_ack=True)
                return (p, b) if m else None
            props, body = wait_until(result, 60, "the result after the queue had room", 0.1)
            self.assertEqual(props.correlation_id, cid)
            res = msgpack.unpackb(body)
            self.assertEqual(res["id"], "n1")
            self.assertEqual(res["results"][0]["val"], 42)
            # Confirmed now, so acked: a warm stop leaves nothing behind.
            worker.stop()
            self.assertEqual(queue_counts(queue), (0, 0))
        finally:
            conn.close()
            worker.cleanup()
            delete_queues(queue, queue + ".dead", replies)


if __name__ == "__main__":
    run_tests([Nack])
