"""Fixtures for the Data API emulator tests: a running emulator and a plain boto3 client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

TERMINAL = ("FINISHED", "FAILED", "ABORTED")


def wait(client: Any, statement_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """Poll DescribeStatement until the statement is FINISHED, FAILED or ABORTED."""
    deadline = time.monotonic() + timeout
    while True:
        desc = client.describe_statement(Id=statement_id)
        if desc["Status"] in TERMINAL:
            return desc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{statement_id} still {desc['Status']} after {timeout}s")
        time.sleep(0.005)


@pytest.fixture(scope="session")
def emulator(pg_server, moto_endpoint) -> Iterator[Any]:
    """One emulator for the test session. Its own namespace keeps its databases apart
    from other emulators on the same PostgreSQL (e.g. the devstack `stack` fixture)."""
    from devstack.redshift import RedshiftEmulator

    with RedshiftEmulator(pg_server.dsn, s3_endpoint=moto_endpoint, events_endpoint=moto_endpoint,
                          namespace="rsit") as running:
        yield running
        running.reset()


@pytest.fixture()
def rsdata(emulator) -> Any:
    import boto3

    return boto3.client("redshift-data", endpoint_url=emulator.url, region_name="us-east-1")


@pytest.fixture(name="wait")
def wait_fixture() -> Callable[..., dict[str, Any]]:
    return wait


@pytest.fixture()
def database() -> str:
    """A Redshift database name no other test uses (so each test gets a fresh PostgreSQL database)."""
    return f"db_{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def run(rsdata, database) -> Callable[..., dict[str, Any]]:
    """run(sql, **kwargs) → DescribeStatement of the finished statement, on workgroup `wg-test`."""

    def _run(sql: str, *, expect: str | None = "FINISHED", **kwargs: Any) -> dict[str, Any]:
        target = {} if "SessionId" in kwargs else {"WorkgroupName": "wg-test", "Database": database}
        sid = rsdata.execute_statement(Sql=sql, **target, **kwargs)["Id"]
        desc = wait(rsdata, sid)
        if expect:
            assert desc["Status"] == expect, desc.get("Error")
        return desc

    return _run


from tests.integration.loader_env import env  # noqa: E402,F401  (the end-to-end fixture)
