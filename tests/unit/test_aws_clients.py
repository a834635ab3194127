"""The app's boto3 clients: one per service, however many threads ask first."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3

from chalicelib.adapters import aws


def test_threads_asking_at_once_share_one_new_client(monkeypatch) -> None:
    # devstack runs many invocations in one process; each router thread of a burst built its own.
    made: list[str] = []

    def slow_client(session: Any, service: str, **_: Any) -> Any:
        made.append(service)
        time.sleep(0.05)  # building a client takes ~100 ms: long enough for the others to ask too
        return object()

    monkeypatch.setattr(boto3.session.Session, "client", slow_client)
    aws.reset()
    start = threading.Barrier(8)
    got: list[Any] = []

    def ask() -> None:
        start.wait()
        got.append(aws.client("dynamodb"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == ["dynamodb"]
    assert len(got) == 8 and all(c is got[0] for c in got)
    assert aws.client("sqs") is not got[0] and made == ["dynamodb", "sqs"]
    aws.reset()
    assert aws.client("dynamodb") is not got[0]  # reset forgets them (devstack changes endpoints)
    aws.reset()
