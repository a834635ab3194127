"""DMS follow-ups with fakes: which events run which steps, once, in order."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from chalicelib.events import StatementEvent, parse_dms_event
from chalicelib.followups import Followups
from chalicelib.jobs import JobKind, JobStatus
from chalicelib.pipelines import parse_catalog
from chalicelib.service import Disposition, Service
from chalicelib.settings import Settings
from tests.unit.fakes import FakeLedger, FakeNotifier, FakeQueue, FakeStorage, FakeWarehouse, SteppingClock
from tests.unit.test_service import CATALOG, file_event

FIXTURES = Path(__file__).with_name("fixtures")
FOLLOWUPS = """
[[dms_followups]]
name = "customer-sales"
warehouse = "main"
task = "taskName"
steps = ["CALL dbo.sp_load_cust_dim()", "CALL dbo.sp_load_fact_sales()"]

[[dms_followups]]
name = "chained"
warehouse = "main"
task = "arn:aws:dms:us-east-1:012345678901:task:CHAINED"
atomic = false
steps = ["CALL a.one()", "CALL a.two()", "CALL a.three()"]

[[dms_followups]]
name = "after-orders"
warehouse = "main"
task = "arn:aws:dms:us-east-1:012345678901:task:WAITER"
steps = ["CALL sales.rollup()"]
wait_for = ["orders"]
"""


class FakeDms:
    def __init__(self, reason: str | None = "FULL_LOAD_ONLY_FINISHED", identifier: str | None = None) -> None:
        self.reason = reason
        self.identifier = identifier
        self.calls: list[str] = []

    def stop_reason(self, task: str) -> str | None:
        self.calls.append(task)
        return self.reason

    def task_identifier(self, task_arn: str) -> str | None:
        self.calls.append(task_arn)
        return self.identifier


@pytest.fixture()
def setup():
    catalog = parse_catalog(CATALOG + FOLLOWUPS, "pipelines.toml")
    service = Service(catalog=catalog, settings=Settings.from_env({}), ledger=FakeLedger(), queue=FakeQueue(),
                      warehouse=FakeWarehouse(), storage=FakeStorage(), notifier=FakeNotifier(), clock=SteppingClock())
    dms = FakeDms()
    return service, Followups(service, dms), dms


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def event(task_arn: str | None = None, message: str | None = None, time: str | None = None):
    raw = copy.deepcopy(fixture("dms_full_load_finished.json"))
    if task_arn:
        raw["resources"] = [task_arn]
    if message is not None:
        raw["detail"]["detailMessage"] = message
    if time:
        raw["time"] = time
    return parse_dms_event(raw)


def finish(service: Service, job_id: str, status: str = "FINISHED", error: str | None = None):
    job = service.ledger.get_job(job_id)
    service.warehouse.finish(job.statement_id, status, error=error)
    return service.statement_finished(StatementEvent(job.statement_id, f"redshift-loader:{job.id}:x", status,
                                                     None, 1, "t"))


def test_full_load_finished_runs_both_steps_in_one_transaction(setup):
    service, followups, _ = setup
    job = followups.task_state_changed(event())  # matched through the console link's task name
    assert job.kind is JobKind.FOLLOWUP and job.status is JobStatus.QUEUED
    assert service.queue.enqueued[0][1] == "main:followup:customer-sales"
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    (_, sqls, name), = service.warehouse.submitted.values()
    assert sqls == ["CALL dbo.sp_load_cust_dim()", "CALL dbo.sp_load_fact_sales()"]
    assert name.startswith(f"redshift-loader:{job.id}:")
    done = finish(service, job.id)
    assert done.status is JobStatus.SUCCEEDED and done.rows is None


def test_duplicate_event_runs_the_follow_up_once_per_task_run(setup):
    service, followups, _ = setup
    assert followups.task_state_changed(event()) is not None
    assert followups.task_state_changed(event()) is None
    assert len(service.queue.enqueued) == 1
    assert followups.task_state_changed(event(time="2026-11-23T10:45:00Z")) is not None  # the next run


def test_failed_task_is_recorded_and_runs_nothing(setup):
    service, followups, _ = setup
    assert followups.task_state_changed(parse_dms_event(fixture("dms_task_failed.json"))) is None
    assert service.queue.enqueued == []


def test_other_stop_reasons_are_ignored_and_ambiguous_ones_confirmed_with_dms(setup):
    service, followups, dms = setup
    assert followups.task_state_changed(event(message="Stop Reason NORMAL")) is None
    dms.reason = "FULL_LOAD_ONLY_FINISHED"
    job = followups.task_state_changed(event(message="Replication task has stopped."))
    assert job is not None and dms.calls  # the stop reason came from DescribeReplicationTasks
    dms.reason = "STOPPED_AFTER_FULL_LOAD"
    assert followups.task_state_changed(event(message="Task stopped", time="2026-12-01T00:00:00Z")) is None


def test_task_identifier_is_resolved_through_dms_when_the_event_does_not_name_it(setup):
    service, followups, dms = setup
    raw = fixture("dms_full_load_finished.json")
    raw["detail"].pop("resourceLink")
    dms.identifier = "taskName"
    assert followups.task_state_changed(parse_dms_event(raw)) is not None


def test_unknown_task_runs_nothing(setup):
    service, followups, dms = setup
    dms.identifier = "someone-else"
    raw = fixture("dms_full_load_finished.json")
    raw["detail"]["resourceLink"] = "https://console.aws.amazon.com/dms/v2/home#taskDetails/unrelated"
    raw["resources"] = ["arn:aws:dms:us-east-1:1:task:OTHER"]
    assert followups.task_state_changed(parse_dms_event(raw)) is None


def test_chained_steps_run_one_after_the_other_and_stop_at_a_failure(setup):
    service, followups, _ = setup
    job = followups.task_state_changed(event(task_arn="arn:aws:dms:us-east-1:012345678901:task:CHAINED"))
    submitted = []
    for step in range(2):
        result = service.run_job_message(job.id, receipt=f"r{step}", receive_count=1)
        assert result.disposition is Disposition.KEEP
        current = service.ledger.get_job(job.id)
        submitted.append(service.warehouse.submitted[current.statement_id][1])
        after = finish(service, job.id)
        assert after.status is JobStatus.QUEUED and after.step == step + 1
        assert service.queue.hidden[-1] == (f"r{step}", 0)  # the next step starts at once
    assert submitted == [["CALL a.one()"], ["CALL a.two()"]]
    service.run_job_message(job.id, receipt="r2", receive_count=1)
    failed = finish(service, job.id, "FAILED", error="ERROR: relation \"a.x\" does not exist")
    assert failed.status is JobStatus.FAILED and "a.x" in failed.error


def test_wait_for_holds_the_follow_up_until_its_loads_are_done(setup):
    service, followups, _ = setup
    service.files_landed([file_event("orders/1.csv")])  # an open batch of 'orders'
    job = followups.task_state_changed(event(task_arn="arn:aws:dms:us-east-1:012345678901:task:WAITER"))
    held = service.run_job_message(job.id, receipt="r1", receive_count=1)
    assert held.disposition is Disposition.KEEP and not service.warehouse.submitted
    load = service.seal("orders")
    service.run_job_message(load.id, receipt="l1", receive_count=1)
    assert service.run_job_message(job.id, receipt="r2", receive_count=2).disposition is Disposition.KEEP
    assert len(service.warehouse.submitted) == 1  # only the load
    finish(service, load.id)
    service.run_job_message(job.id, receipt="r3", receive_count=3)
    assert len(service.warehouse.submitted) == 2


def test_manual_run_and_unknown_name(setup):
    service, followups, _ = setup
    first, second = followups.request("customer-sales"), followups.request("customer-sales")
    assert first.id != second.id
    with pytest.raises(KeyError):
        followups.request("nope")


def test_a_momentary_conflict_or_throttle_does_not_lose_the_dms_event(setup, monkeypatch):
    """EventBridge invokes the Lambda twice more at most: the event is retried here, not given up."""
    service, followups, _ = setup
    monkeypatch.setattr("chalicelib.followups.time.sleep", lambda _: None)
    create, enqueue = service.ledger.create_job, service.queue.enqueue_job
    failures = {"create": [RuntimeError("TransactionConflictException: Transaction is ongoing for the item"),
                           RuntimeError("An error occurred (ProvisionedThroughputExceededException)")],
                "enqueue": [RuntimeError("An error occurred (InternalError) ServiceUnavailable")]}

    def flaky(name, real):
        def call(*args, **kwargs):
            if failures[name]:
                raise failures[name].pop(0)
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(service.ledger, "create_job", flaky("create", create))
    monkeypatch.setattr(service.queue, "enqueue_job", flaky("enqueue", enqueue))
    job = followups.task_state_changed(event())
    assert job is not None and service.ledger.get_job(job.id).status is JobStatus.QUEUED
    assert len(service.queue.enqueued) == 1


def test_a_lasting_or_permanent_error_still_fails_the_invocation(setup, monkeypatch):
    service, followups, _ = setup
    monkeypatch.setattr("chalicelib.followups.time.sleep", lambda _: None)
    calls = []

    def broken(job):
        calls.append(job.id)
        raise RuntimeError("AccessDeniedException: not allowed")

    monkeypatch.setattr(service.ledger, "create_job", broken)
    with pytest.raises(RuntimeError, match="AccessDenied"):
        followups.task_state_changed(event())
    assert len(calls) == 1  # a permanent error is not retried here; EventBridge's own retries remain
