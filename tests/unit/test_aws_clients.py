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


def test_clients_share_one_session_until_reset(monkeypatch) -> None:
    # A session per client loaded botocore's endpoint data again for each (40-100 ms at cold start).
    sessions: list[Any] = []
    original_init = boto3.session.Session.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        sessions.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "__init__", counting_init)
    monkeypatch.setattr(boto3.session.Session, "client", lambda session, service, **_: (session, service))
    aws.reset()
    made = [aws.client(service) for service in ("dynamodb", "sqs", "s3", "redshift-data")]
    assert len(sessions) == 1 and all(session is sessions[0] for session, _ in made)
    aws.reset()
    assert aws.client("sqs")[0] is not sessions[0] and len(sessions) == 2  # a reset picks up a changed environment
    aws.reset()


def test_a_new_session_sees_a_changed_endpoint(monkeypatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:1111")
    aws.reset()
    assert aws.client("sqs").meta.endpoint_url == "http://127.0.0.1:1111"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:2222")
    aws.reset()
    assert aws.client("sqs").meta.endpoint_url == "http://127.0.0.1:2222"
    aws.reset()
