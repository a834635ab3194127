"""Shared fixtures: a throwaway PostgreSQL and a moto server, one per test session.

Integration tests talk to these over real sockets; nothing is mocked in between.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

# Tests must never reach real AWS, whatever the developer's shell says.
for _name in list(os.environ):
    if _name.startswith("AWS_ENDPOINT_URL") or _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        del os.environ[_name]
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_XRAY_SDK_ENABLED="false",
)


@pytest.fixture(scope="session")
def pg_server() -> Iterator["PostgresServer"]:  # noqa: F821
    from devstack.redshift.postgres import PostgresServer

    with PostgresServer() as server:
        yield server


@pytest.fixture()
def pg_database(pg_server) -> Iterator[str]:
    """A fresh, empty database on the session server; yields its DSN."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"host=127.0.0.1 port={pg_server.port} user=postgres dbname={name}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on loopback serving S3, SQS, EventBridge, DynamoDB, ..."""
    from devstack.motoserver import KeepAliveMotoServer, patch_moto

    patch_moto()
    server = KeepAliveMotoServer()
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def s3(moto_endpoint):
    import boto3

    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture()
def bucket(s3) -> str:
    """A new, empty bucket on the moto server."""
    name = f"b-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def stack(pg_server):
    """The whole system on devstack with the integration-test catalog, shared by the session."""
    from pathlib import Path

    from devstack.stack import Devstack, StackOptions

    options = StackOptions(
        pipelines=Path(__file__).parent / "integration" / "pipelines.toml",
        dsn=pg_server.dsn, state_dir=None, schedule_seconds=1.0, poll_seconds=2,
        visibility_seconds=10, sweep_grace_seconds=5)
    with Devstack(options) as running:
        yield running
