#!/usr/bin/python3
"""Losing the broker: stopped for 5 s and started again while a stream of
jobs flows, the worker reconnects and nothing is lost; frozen (as if the
network were cut), the worker notices by the AMQP heartbeat and reconnects;
the job queue deleted under the worker (basic.cancel), it redeclares it
and goes on.

The broker restart test sends its jobs with publisher confirms and takes
the results from a durable reply queue of its own: direct reply-to
pseudo-queues do not survive a broker restart, a durable queue does.
"""
import os
import signal
import subprocess
import time
import unittest
import uuid

import msgpack
import pika

from worker_itest import (Client, Worker, call, connect, delete_queues, job, run_tests,
                          unique_queue, wait_until)

BROKER_STOP = os.environ.get("REBOUND_TEST_BROKER_STOP", "")
BROKER_START = os.environ.get("REBOUND_TEST_BROKER_START", "")
JOBS = 40


class DurableClient:
    """Confirmed publishes; results from a durable queue, acked once read."""

    def __init__(self, reply_queue, timeout=90):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.conn = connect()
                break
            except pika.exceptions.AMQPConnectionError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()
        self.reply_queue = reply_queue
        self.ch.queue_declare(reply_queue, durable=True)

    def send(self, queue, body, cid):
        # Returns once the broker has confirmed the job (raises otherwise).
        self.ch.basic_publish("", queue, msgpack.packb(body), pika.BasicProperties(
            reply_to=self.reply_queue, correlation_id=cid, delivery_mode=2,
            content_type="application/msgpack"))

    def collect(self, replies):
        while True:
            method, props, body = self.ch.basic_get(self.reply_queue)
            if not method:
                return
            replies.setdefault(props.correlation_id, []).append(msgpack.unpackb(body))
            self.ch.basic_ack(method.delivery_tag)

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def run_ctl(path):
    r = subprocess.run([path], capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise AssertionError("%s failed: %s" % (path, r.stderr))


class BrokerRestart(unittest.TestCase):
    def test_broker_stopped_for_5_s(self):
        if not (BROKER_STOP and BROKER_START):
            self.skipTest("REBOUND_TEST_BROKER_STOP/START not set")
        queue = unique_queue("restart")
        reply_queue = queue + ".replies"
        worker = Worker(queue, slots=2, args=["--amqp-heartbeat", "5"])
        replies = {}
        cids = {}
        client = DurableClient(reply_queue)
        broker_down = False
        try:
            for i in range(JOBS // 2):
                cid = uuid.uuid4().hex
                client.send(queue, job("r%d" % i, [call("sleep", 0.2, i)]), cid)
                cids[cid] = i

            def some_done():
                client.collect(replies)
                return len(replies) >= 3
            wait_until(some_done, 120, "the first results", step=0.1)
            client.close()

            run_ctl(BROKER_STOP)
            broker_down = True
            worker.wait_log(r"connection lost", timeout=60)
            time.sleep(5)  # the outage itself: the scenario, not a wait for an event
            run_ctl(BROKER_START)
            broker_down = False
            worker.wait_log(r"connected to ", count=2, timeout=120)

            client = DurableClient(reply_queue)
            for i in range(JOBS // 2, JOBS):
                cid = uuid.uuid4().hex
                client.send(queue, job("r%d" % i, [call("sleep", 0.05, i)]), cid)
                cids[cid] = i

            def all_done():
                client.collect(replies)
                return all(c in replies for c in cids)
            wait_until(all_done, 300, "a result for each of the %d jobs" % JOBS, step=0.2)

            twice = 0
            for cid, i in cids.items():
                for res in replies[cid]:
                    self.assertEqual(res["id"], "r%d" % i)
                    self.assertEqual(res["status"], "ok")
                    self.assertEqual(res["results"][0]["val"], i)
                twice += len(replies[cid]) > 1
            print("jobs answered more than once: %d of %d" % (twice, JOBS))
            self.assertEqual(worker.proc.poll(), None, "the worker must survive the outage")
            self.assertRegex(worker.text(), r"reconnecting in \d+ ms")
            worker.stop()
        finally:
            client.close()
            if broker_down:
                run_ctl(BROKER_START)
            worker.cleanup()
            delete_queues(queue, queue + ".dead", reply_queue)


class BrokerFrozen(unittest.TestCase):
    def test_heartbeat_notices_a_silent_broker(self):
        servers = os.environ.get("REBOUND_TEST_SERVERS_DIR", "")
        pid_file = os.path.join(servers, "rabbit.pid")
        if not servers or not os.path.exists(pid_file):
            self.skipTest("REBOUND_TEST_SERVERS_DIR/rabbit.pid not available")
        with open(pid_file) as f:
            vm = int(f.read().strip())
        queue = unique_queue("frozen")
        worker = Worker(queue, args=["--amqp-heartbeat", "1"])
        client = None
        try:
            # SIGSTOP: the socket stays open but nothing comes back, like a
            # cut network. Only the heartbeat can tell.
            os.kill(vm, signal.SIGSTOP)
            try:
                worker.wait_log(r"connection lost: heartbeat timeout", timeout=60)
            finally:
                os.kill(vm, signal.SIGCONT)
            worker.wait_log(r"connected to ", count=2, timeout=120)
            client = Client()
            res = client.call(queue, job("thawed", [call("add", 3, 4)]))
            self.assertEqual(res["results"][0]["val"], 7)
            worker.stop()
        finally:
            if client:
                client.close()
            worker.cleanup()
            delete_queues(queue, queue + ".dead")


class QueueDeleted(unittest.TestCase):
    def test_queue_deleted_under_the_worker(self):
        queue = unique_queue("deleted")
        worker = Worker(queue)
        client = Client()
        try:
            self.assertEqual(client.call(queue, job("before", [call("add", 1, 1)]))["status"],
                             "ok")
            conn = connect()
            conn.channel().queue_delete(queue)
            conn.close()
            worker.wait_log(r"cancelled our consumer")
            worker.wait_log(r"connected to ", count=2)
            res = client.call(queue, job("after", [call("add", 2, 2)]))
            self.assertEqual(res["results"][0]["val"], 4)
            worker.stop()
        finally:
            client.close()
            worker.cleanup()
            delete_queues(queue, queue + ".dead")


if __name__ == "__main__":
    run_tests([BrokerRestart, BrokerFrozen, QueueDeleted])
