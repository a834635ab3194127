"""Bugs the soak (bench/soak.py) found under injected faults, pinned with fakes.

Each test failed before its fix.
"""

from __future__ import annotations

import pytest

from chalicelib.events import FileEvent, StatementEvent
from chalicelib.jobs import Job, JobStatus
from chalicelib.pipelines import parse_catalog
from chalicelib.service import Disposition, Service
from chalicelib.settings import Settings
from tests.unit.fakes import FakeLedger, FakeNotifier, FakeQueue, FakeStorage, FakeWarehouse, SteppingClock

CATALOG = """
[warehouses.main]
workgroup = "analytics"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/RedshiftS3"

[[loads]]
name = "events"
warehouse = "main"
bucket = "landing"
prefix = "events/"
table = "analytics.events"
format = "csv"
mode = "append"
batch = { max_files = 3, max_seconds = 10 }
"""
LOAD_FAILED = "ERROR: Load into table 'events' failed. Check 'stl_load_errors' system table for details."


class Died(BaseException):
    """A Lambda killed mid-invocation: no `except Exception` runs."""


class DyingLedger(FakeLedger):
    """Dies right after the write that makes a job terminal, like devstack's die_completion fault."""

    def __init__(self) -> None:
        super().__init__()
        self.deaths = 0

    def save_job(self, job: Job, *, expected: JobStatus, expected_attempt: int | None = None) -> bool:
        saved = super().save_job(job, expected=expected, expected_attempt=expected_attempt)
        if saved and job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) and self.deaths == 0:
            self.deaths += 1
            raise Died(f"completion handler died after saving {job.id} {job.status.value}")
        return saved


@pytest.fixture()
def service() -> Service:
    return Service(catalog=parse_catalog(CATALOG, "pipelines.toml"),
                   settings=Settings.from_env({"MAX_ATTEMPTS": "3", "POLL_SECONDS": "30"}),
                   ledger=DyingLedger(), queue=FakeQueue(), warehouse=FakeWarehouse(), storage=FakeStorage(),
                   notifier=FakeNotifier(), clock=SteppingClock())


def land(service: Service, *keys: str) -> Job:
    events = [FileEvent(bucket="landing", key=k, etag=f"e-{k}", version_id=None, size=10, sequencer=None,
                        event_name="ObjectCreated:Put", event_time="2026-11-22T10:00:00.000Z") for k in keys]
    report = service.files_landed(events)
    return report.jobs[-1] if report.jobs else service.seal("events")


def run_until_statement_fails(service: Service, job: Job, *, bad_url: str | None) -> str:
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    sid = service.ledger.get_job(job.id).statement_id
    service.warehouse.finish(sid, "FAILED", failed_index=1, error=LOAD_FAILED if bad_url else "ERROR: boom")
    if bad_url:
        service.warehouse.query_rows = [{"file_name": bad_url, "line_number": 2, "column_name": "id",
                                         "error_message": "Invalid digit, Value 'x', Pos 0, Type: Integer",
                                         "error_code": 1207}]
    return sid


def finish_event(job: Job, sid: str) -> StatementEvent:
    return StatementEvent(sid, f"redshift-loader:{job.id}:1", "FAILED", None, 1, "t")


def test_completion_dying_after_failing_a_batch_still_loads_its_good_files(service):
    """die_completion: the split of good files happened after the job was saved FAILED, so a death
    there lost them (the redelivered event found the job terminal and did nothing)."""
    job = land(service, "events/good.csv", "events/bad.csv", "events/fine.csv")
    sid = run_until_statement_fails(service, job, bad_url="s3://landing/events/bad.csv")
    with pytest.raises(Died):
        service.statement_finished(finish_event(job, sid))
    service.statement_finished(finish_event(job, sid))  # EventBridge retries the async invocation
    assert service.run_job_message(job.id, receipt="r2", receive_count=2).disposition is Disposition.DONE

    ledger = service.ledger
    split = [j for j in ledger.jobs.values() if j.id != job.id]
    assert len(split) == 1 and split[0].status is JobStatus.QUEUED
    assert sorted(f.key for f in split[0].files) == ["events/fine.csv", "events/good.csv"]
    assert split[0].id in [job_id for job_id, _, _ in service.queue.enqueued]
    status = {f.key: ledger.file_status(f) for f in job.files}
    assert status == {"events/good.csv": "BATCHED", "events/bad.csv": "FAILED", "events/fine.csv": "BATCHED"}


def test_completion_dying_after_a_job_succeeded_leaves_its_files_marked_loaded(service):
    job = land(service, "events/a.csv")
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    sid = service.ledger.get_job(job.id).statement_id
    service.warehouse.finish(sid, rows=5)
    event = StatementEvent(sid, f"redshift-loader:{job.id}:1", "FINISHED", 5, 1, "t")
    with pytest.raises(Died):
        service.statement_finished(event)
    assert service.ledger.get_job(job.id).status is JobStatus.SUCCEEDED
    assert service.ledger.file_status(job.files[0]) == "LOADED"


def test_a_failed_batch_finished_twice_is_split_once(service):
    """Two finishers (the completion event and the worker's next look) of the same failed statement,
    or one repeating after a death before its save: the good files get one new job, not two."""
    service.ledger.deaths = 1  # no deaths in this test
    job = land(service, "events/good.csv", "events/bad.csv")
    sid = run_until_statement_fails(service, job, bad_url="s3://landing/events/bad.csv")
    in_flight = service.ledger.get_job(job.id)
    service._finish(in_flight, service.warehouse.describe(sid))   # noqa: SLF001  (a finisher that raced...)
    service._finish(in_flight, service.warehouse.describe(sid))   # noqa: SLF001  (...with this one)
    others = [j for j in service.ledger.jobs.values() if j.id != job.id]
    assert len(others) == 1 and [f.key for f in others[0].files] == ["events/good.csv"]


def test_a_transient_error_late_in_a_jobs_life_hides_its_message_no_longer_than_the_sweep_grace(service):
    """Found by the soak (ddb_conflict on the 5th receive of a retried job): the worker's error backoff
    grew with every receive of the message, polls and retries included, up to 900 s, and the job's
    whole table waited behind the hidden message."""
    import json

    from chalicelib import handlers

    job = land(service, "events/a.csv")
    service.ledger.deaths = 1  # no deaths here

    def conflict(*_: object, **__: object) -> None:
        raise RuntimeError("TransactionConflictException: Transaction is ongoing for the item")

    service.ledger.set_receipt = conflict  # type: ignore[method-assign]
    hidden: list[tuple[str, int]] = []
    event = {"Records": [{"messageId": "m1", "receiptHandle": "rh", "body": json.dumps({"job_id": job.id}),
                          "attributes": {"ApproximateReceiveCount": "5"}}]}
    assert handlers.run_jobs(service, event, lambda r, s: hidden.append((r, s))) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert hidden == [("rh", service.settings.sweep_grace_seconds)]
    assert handlers.error_backoff(service, 1) == 30 and handlers.error_backoff(service, 2) == 60


def test_the_sweeper_requeues_only_the_first_waiting_job_of_a_table(service):
    """Found by the soak: with a table's queue held (a job in flight or backing off), every sweep sent a
    duplicate message for every job waiting behind it; the worker spent its time deleting them."""
    service.ledger.deaths = 1
    service.settings = Settings.from_env({"SWEEP_GRACE_SECONDS": "5"})
    jobs = [land(service, f"events/{i}-a.csv", f"events/{i}-b.csv", f"events/{i}-c.csv") for i in range(4)]
    assert len({j.target for j in jobs}) == 1 and len({j.id for j in jobs}) == 4
    service.clock.advance(60)
    before = len(service.queue.enqueued)
    report = service.sweep()
    assert report.requeued == [min(j.id for j in jobs)]
    assert len(service.queue.enqueued) == before + 1
