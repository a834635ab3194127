"""Structured logs: one JSON object per line, and every line emitted while a job is processed names the job.

The worker, completion and sweeper paths run through the in-memory fakes while every line the
`redshift_loader` logger emits is captured; each must carry the job's id, pipeline and table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import handlers, logs
from chalicelib.events import FileEvent
from chalicelib.jobs import Job, JobStatus
from chalicelib.pipelines import parse_catalog
from chalicelib.service import Service
from chalicelib.settings import Settings
from tests.unit.fakes import FakeLedger, FakeNotifier, FakeQueue, FakeStorage, FakeWarehouse, SteppingClock

CATALOG = """
[warehouses.main]
workgroup = "analytics"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/RedshiftS3"

[[loads]]
name = "orders"
warehouse = "main"
bucket = "landing"
prefix = "orders/"
table = "sales.orders"
format = "csv"
mode = "upsert"
keys = ["id"]
batch = { max_files = 2, max_seconds = 10 }
"""


class Lines(logging.Handler):
    """Every line the app's logger writes, parsed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))  # not JSON: the test fails here

    def take(self) -> list[dict[str, Any]]:
        taken, self.lines = self.lines, []
        return taken


@pytest.fixture()
def captured() -> Iterator[Lines]:
    logger = logging.getLogger("redshift_loader")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture()
def service() -> Service:
    settings = Settings.from_env({"MAX_ATTEMPTS": "3", "POLL_SECONDS": "30", "SWEEP_GRACE_SECONDS": "60"})
    return Service(catalog=parse_catalog(CATALOG, "pipelines.toml"), settings=settings, ledger=FakeLedger(),
                   queue=FakeQueue(), warehouse=FakeWarehouse(), storage=FakeStorage(), notifier=FakeNotifier(),
                   clock=SteppingClock())


def queued_job(service: Service) -> Job:
    events = [FileEvent(bucket="landing", key=f"orders/{n}.csv", etag=n, version_id=None, size=10, sequencer=None,
                        event_name="ObjectCreated:Put", event_time="") for n in ("a", "b")]
    (job,) = service.files_landed(events).jobs
    return job


def deliver(service: Service, job: Job, hidden: list[tuple[str, int]], receive: int = 1) -> dict[str, Any]:
    record = {"messageId": f"m-{receive}", "receiptHandle": f"r-{receive}", "body": json.dumps({"job_id": job.id}),
              "attributes": {"ApproximateReceiveCount": str(receive)}}
    return handlers.run_jobs(service, {"Records": [record]}, lambda receipt, s: hidden.append((receipt, s)))


def assert_all_name_the_job(lines: list[dict[str, Any]], job: Job) -> None:
    assert lines, "the step logged nothing"
    for line in lines:
        assert (line.get("job_id"), line.get("pipeline"), line.get("table")) == (job.id, "orders", job.target), line
        assert {"time", "level", "event"} <= set(line)


def test_every_line_of_a_worker_run_names_job_pipeline_and_table(service: Service, captured: Lines) -> None:
    job = queued_job(service)
    captured.take()  # landing and sealing happen before the job exists
    hidden: list[tuple[str, int]] = []
    warehouse: FakeWarehouse = service.warehouse  # type: ignore[assignment]

    deliver(service, job, hidden)                                   # submit
    submitted = captured.take()
    assert [line["event"] for line in submitted] == ["job_submitted"]
    [sid] = warehouse.submitted
    warehouse.finish(sid, "FAILED", error="ERROR: 1023 serializable isolation violation")
    service.clock.advance(31)  # type: ignore[attr-defined]
    deliver(service, job, hidden, receive=2)                        # look: failed, retried
    retried = captured.take()
    assert "job_retry" in [line["event"] for line in retried]
    warehouse.fail_submit = RuntimeError("ThrottlingException: Rate exceeded")
    deliver(service, job, hidden, receive=3)                        # resubmit throttled: the handler reports it
    throttled = captured.take()
    assert [line["event"] for line in throttled] == ["job_message_failed"]
    warehouse.fail_submit = None
    deliver(service, job, hidden, receive=4)                        # resubmitted
    sid = [s for s in warehouse.submitted if s != sid][0]
    warehouse.finish(sid)
    handlers.statement_changed(service, completion_event(service, job, sid))   # the completion Lambda
    finished = captured.take()
    assert [line["event"] for line in finished][-1] == "job_finished"
    assert service.ledger.get_job(job.id).status is JobStatus.SUCCEEDED
    for lines in (submitted, retried, throttled, finished):
        assert_all_name_the_job(lines, job)
    assert all(line["message_id"].startswith("m-") for line in submitted + retried + throttled)


def test_every_line_of_a_sweep_over_a_stuck_job_names_it(service: Service, captured: Lines) -> None:
    job = queued_job(service)
    hidden: list[tuple[str, int]] = []
    deliver(service, job, hidden)
    [sid] = service.warehouse.submitted  # type: ignore[attr-defined]
    service.warehouse.finish(sid)  # type: ignore[attr-defined]
    captured.take()
    service.clock.advance(600)  # type: ignore[attr-defined]
    service.sweep()                                                  # the completion event was lost
    swept = captured.take()
    assert service.ledger.get_job(job.id).status is JobStatus.SUCCEEDED
    assert_all_name_the_job(swept, job)


def test_a_failure_handled_outside_the_job_keeps_the_jobs_fields(captured: Lines) -> None:
    def failing() -> None:
        with logs.bound(job_id="j-1", pipeline="orders", table="main:sales.orders"):
            raise RuntimeError("boom")

    with logs.bound(message_id="m-1"):
        try:
            failing()
        except RuntimeError:
            logs.error("job_message_failed")
            try:
                raise ValueError("while reporting")
            except ValueError:
                logs.warning("visibility_change_failed")     # a failure while handling the failure
        logs.info("next_message")                            # handled: the job's fields are gone
    lines = captured.take()
    assert [(x["event"], x.get("job_id"), x["message_id"]) for x in lines] == [
        ("job_message_failed", "j-1", "m-1"), ("visibility_change_failed", "j-1", "m-1"),
        ("next_message", None, "m-1")]


def test_inner_blocks_win_and_fields_given_to_a_line_win_over_both(captured: Lines) -> None:
    with logs.bound(job_id="outer", pipeline="p"):
        with logs.bound(job_id="inner", table=None):
            logs.info("e", pipeline="given")
    [line] = captured.take()
    assert (line["job_id"], line["pipeline"], "table" in line) == ("inner", "given", False)


def completion_event(service: Service, job: Job, sid: str) -> dict[str, Any]:
    current = service.ledger.get_job(job.id)
    assert current is not None
    name = f"{service.settings.statement_prefix}:{job.id}:{current.attempt}"
    return {"version": "0", "id": "e-1", "detail-type": "Redshift Data Statement Status Change",
            "source": "aws.redshift-data", "account": "123456789012", "time": "2026-11-22T10:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {"statementId": sid, "statementName": name, "state": "FINISHED", "principal": "x",
                       "rows": 2, "expirationTime": 0}}

