"""The loader running on devstack with the integration catalog, shared by the end-to-end tests."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from chalicelib.jobs import JobStatus

SCHEMA = Path(__file__).with_name("schema.sql")
TERMINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


@pytest.fixture(scope="session")
def env(stack):
    from devstack.redshift.rewrite import split_statements

    rsdata = stack.client("redshift-data")
    sid = rsdata.batch_execute_statement(WorkgroupName="it-analytics", Database="dev",
                                         Sqls=split_statements(SCHEMA.read_text()))["Id"]
    _wait_statement(rsdata, sid)
    sid = rsdata.execute_statement(ClusterIdentifier="it-cluster", Database="other", DbUser="loader",
                                   Sql="CREATE TABLE public.events (event_id VARCHAR(20), user_id INT, kind VARCHAR(10))")["Id"]
    _wait_statement(rsdata, sid)
    return Env(stack)


def _wait_statement(rsdata, sid: str) -> None:
    for _ in range(400):
        d = rsdata.describe_statement(Id=sid)
        if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            assert d["Status"] == "FINISHED", d.get("Error")
            return
        time.sleep(0.05)
    raise TimeoutError(sid)


class Env:
    def __init__(self, stack) -> None:
        self.stack = stack
        self.s3 = stack.client("s3")
        self.sqs = stack.client("sqs")

    def put(self, key: str, body: bytes | str, bucket: str = "it-landing") -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def jobs(self, pipeline: str) -> list:
        page = self.stack.service().ledger.list_jobs(pipeline=pipeline, status=None, since=None, limit=500,
                                                     next_token=None)
        return sorted(page.jobs, key=lambda j: j.id)

    def wait_jobs(self, pipeline: str, count: int, timeout: float = 45.0) -> list:
        def done():
            jobs = self.jobs(pipeline)
            return jobs if len(jobs) >= count and all(j.status in TERMINAL for j in jobs) else None
        return self.stack.wait_for(done, timeout=timeout, what=f"{count} finished job(s) of {pipeline}")

    def rows(self, sql: str, warehouse: str = "main") -> list[tuple]:
        with psycopg.connect(self.stack.warehouse_dsn(warehouse)) as conn:
            return conn.execute(sql).fetchall()


