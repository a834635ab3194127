"""devstack's Lambda poller: what its polling costs moto while queues are idle or a window gathers."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import boto3

from devstack.pump import FIFO_IDLE_SECONDS, Pump


def _pump(moto_endpoint: str) -> tuple[Pump, list[str]]:
    pump = Pump(SimpleNamespace(event_sources=[], handler_map={}), endpoint=moto_endpoint)
    calls: list[str] = []
    pump._sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **_: calls.append("receive"))
    return pump, calls


def test_idle_fifo_pollers_take_turns_a_few_polls_a_second(moto_endpoint):
    # Five worker pollers each short-polled every 0.2 s: 25 receives a second on an idle queue, each
    # a few ms of moto's CPU, all through a burst of files. Now one poll per FIFO_IDLE_SECONDS.
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName="pump-idle.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    pump, calls = _pump(moto_endpoint)
    got: list[list] = []

    def poll() -> None:
        while not pump._stop.is_set():
            got.append(pump._receive(url, 1, 0.0))

    pollers = [threading.Thread(target=poll) for _ in range(5)]
    started = time.monotonic()
    for poller in pollers:
        poller.start()
    time.sleep(1.0)
    sqs.send_message(QueueUrl=url, MessageBody="job", MessageGroupId="t", MessageDeduplicationId="1")
    deadline = time.monotonic() + 3
    while not any(got) and time.monotonic() < deadline:
        time.sleep(0.02)
    polls, seconds = len(calls), time.monotonic() - started
    pump._stop.set()
    for poller in pollers:
        poller.join()
    assert [m["Body"] for batch in got for m in batch] == ["job"]  # still delivered, once
    assert polls <= seconds / FIFO_IDLE_SECONDS + 2, (polls, seconds)


def test_a_batching_window_gathers_without_spinning_on_empty_polls(moto_endpoint):
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName="pump-window")["QueueUrl"]
    pump, calls = _pump(moto_endpoint)
    sqs.send_message(QueueUrl=url, MessageBody="first")
    threading.Timer(0.5, lambda: sqs.send_message(QueueUrl=url, MessageBody="later")).start()
    started = time.monotonic()
    messages = pump._receive(url, 100, 1.0)
    took = time.monotonic() - started
    assert sorted(m["Body"] for m in messages) == ["first", "later"]  # both, within the one window
    assert 0.9 <= took < 2.0
    assert len(calls) <= 15, len(calls)  # one look every 0.1 s at most (it spun: hundreds)


def test_a_fifo_poller_looks_again_as_soon_as_an_invocation_ends(moto_endpoint):
    """After an empty poll a FIFO poller paused FIFO_IDLE_SECONDS; a job a router invocation had just
    enqueued waited out the pause (a long poll returns with the message)."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName="pump-wake.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    pump, calls = _pump(moto_endpoint)
    got: list[tuple[float, list]] = []

    def poll() -> None:
        while not got and not pump._stop.is_set():
            batch = pump._receive(url, 1, 0.0)
            if batch:
                got.append((time.monotonic(), batch))

    poller = threading.Thread(target=poll)
    poller.start()
    while not calls:
        time.sleep(0.005)
    time.sleep(0.02)  # the first poll came back empty: the poller is in its pause

    def router(event, context):
        sqs.send_message(QueueUrl=url, MessageBody="job", MessageGroupId="t", MessageDeduplicationId="w1")

    pump._call("router", router, {"Records": []})
    ended = time.monotonic()
    poller.join(timeout=5)
    pump._stop.set()
    assert [m["Body"] for m in got[0][1]] == ["job"]
    assert got[0][0] - ended < FIFO_IDLE_SECONDS / 2
