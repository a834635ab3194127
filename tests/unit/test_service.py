"""The use cases with every adapter replaced by an in-memory fake."""

from __future__ import annotations

import dataclasses
import json

import pytest

from chalicelib import handlers
from chalicelib.events import FileEvent, StatementEvent
from chalicelib.jobs import FILE_RECORD_BUDGET, JobStatus
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
name = "orders"
warehouse = "main"
bucket = "landing"
prefix = "orders/"
table = "sales.orders"
format = "csv"
options = ["IGNOREHEADER 1"]
mode = "upsert"
keys = ["id"]
post_load = ["CALL sales.refresh()"]
batch = { max_files = 3, max_seconds = 10 }

[[loads]]
name = "events"
warehouse = "main"
bucket = "landing"
prefix = "events/"
table = "analytics.events"
format = "json"
mode = "append"
batch = { max_files = 2, max_seconds = 10 }

[[loads]]
name = "snapshot"
warehouse = "main"
bucket = "landing"
prefix = "snapshot/"
table = "sales.snapshot"
format = "csv"
mode = "replace"
batch = { max_files = 2, max_seconds = 10 }
"""


@pytest.fixture()
def env():
    catalog = parse_catalog(CATALOG, "pipelines.toml")
    settings = Settings.from_env({"MAX_ATTEMPTS": "3", "POLL_SECONDS": "30", "SWEEP_GRACE_SECONDS": "60"})
    fakes = dict(ledger=FakeLedger(), queue=FakeQueue(), warehouse=FakeWarehouse(), storage=FakeStorage(),
                 notifier=FakeNotifier())
    clock = SteppingClock()
    service = Service(catalog=catalog, settings=settings, clock=clock, **fakes)  # type: ignore[arg-type]
    return service, clock


def file_event(key: str, etag: str = "e1", size: int = 100, bucket: str = "landing",
               time: str = "2026-11-22T10:00:00.000Z") -> FileEvent:
    return FileEvent(bucket=bucket, key=key, etag=etag, version_id=None, size=size, sequencer=None,
                     event_name="ObjectCreated:Put", event_time=time)


def land_and_seal(service: Service, *keys: str):
    report = service.files_landed([file_event(k) for k in keys])
    if report.jobs:  # the batch filled up and sealed itself
        return report.jobs[-1]
    pipeline = service.catalog.match("landing", keys[0]).pipeline
    return service.seal(pipeline.name)


def test_new_file_opens_a_batch_and_schedules_its_flush(env):
    service, _ = env
    report = service.files_landed([file_event("orders/a.csv")])
    assert [f.key for f in report.queued_files] == ["orders/a.csv"]
    batch = service.ledger.open_batch("orders")
    assert [f.key for f in batch.files] == ["orders/a.csv"]
    assert service.queue.flushes == [("orders", batch.batch_id, 10)]
    assert service.queue.enqueued == []


def test_duplicate_event_is_recorded_once(env):
    service, _ = env
    service.files_landed([file_event("orders/a.csv")])
    report = service.files_landed([file_event("orders/a.csv")])
    assert report.duplicates and not report.queued_files
    assert len(service.ledger.open_batch("orders").files) == 1


def test_reuploaded_key_with_new_content_is_a_new_version(env):
    service, _ = env
    service.files_landed([file_event("orders/a.csv", etag="v1")])
    report = service.files_landed([file_event("orders/a.csv", etag="v2")])
    assert len(report.queued_files) == 1
    assert len(service.ledger.open_batch("orders").files) == 2


def test_forced_reload_adds_an_already_loaded_file(env):
    service, _ = env
    service.files_landed([file_event("orders/a.csv")])
    report = service.files_landed([file_event("orders/a.csv")], force=True)
    assert len(report.queued_files) == 1


def test_folders_zero_byte_and_unmatched_keys_are_skipped_with_reasons(env):
    service, _ = env
    report = service.files_landed([file_event("orders/"), file_event("orders/empty.csv", size=0),
                                   file_event("nowhere/x.csv"), file_event("x.csv", bucket="other")])
    reasons = [reason for _, reason in report.skipped]
    assert reasons[0] == "folder marker" and reasons[1] == "zero-byte object"
    assert "nowhere/x.csv" in reasons[2] or "prefix" in reasons[2]
    assert "other" in reasons[3]
    assert not service.ledger.batches


def test_full_batch_is_sealed_into_one_queued_job_per_table(env):
    service, _ = env
    report = service.files_landed([file_event(f"orders/{i}.csv") for i in range(3)])
    assert len(report.jobs) == 1
    job = report.jobs[0]
    assert job.status is JobStatus.QUEUED and len(job.files) == 3
    assert service.queue.enqueued == [(job.id, "main:sales.orders", f"{job.id}-1")]
    assert service.ledger.open_batch("orders") is None


def test_a_batch_of_long_keys_is_sealed_before_its_references_outgrow_a_ledger_item(env):
    # 1 KB keys: max_files would take ~400 KB of references, past DynamoDB's item limit; the
    # batch is sealed once its references reach the budget, and every file ends up in a job.
    service, _ = env
    service.catalog = parse_catalog(CATALOG.replace("max_files = 2, max_seconds = 10", "max_files = 1000"), "p.toml")
    keys = [f"events/{i:04d}-" + "k" * 1000 + ".json" for i in range(400)]
    report = service.files_landed([file_event(k) for k in keys])
    sealed = [f.key for job in report.jobs for f in job.files]
    assert report.jobs and len(report.jobs[0].files) < len(keys)
    assert all(sum(f.record_bytes for f in job.files) <= FILE_RECORD_BUDGET for job in report.jobs)
    left = service.ledger.open_batch("events")
    assert sorted(sealed + [f.key for f in (left.files if left else ())]) == sorted(keys)


def test_flush_of_an_already_sealed_batch_does_nothing(env):
    service, _ = env
    service.files_landed([file_event("events/a.json")])
    batch_id = service.ledger.open_batch("events").batch_id
    assert service.flush("events", batch_id) is not None
    assert service.flush("events", batch_id) is None
    assert len(service.queue.enqueued) == 1


def test_worker_submits_the_plan_once_and_keeps_the_message(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json", "events/b.json")
    result = service.run_job_message(job.id, receipt="r1", receive_count=1)
    assert result.disposition is Disposition.KEEP and result.seconds == 30
    (sid, (_, sqls, name)), = service.warehouse.submitted.items()
    assert name == f"redshift-loader:{job.id}:1"
    assert sqls[0].startswith("LOCK")
    assert any("MANIFEST" in s for s in sqls)
    manifest = json.loads(next(iter(service.storage.objects.values())))
    assert [e["url"] for e in manifest["entries"]] == ["s3://landing/events/a.json", "s3://landing/events/b.json"]
    stored = service.ledger.get_job(job.id)
    assert stored.status is JobStatus.SUBMITTED and stored.statement_id == sid
    # A duplicate delivery while the statement runs submits nothing new.
    again = service.run_job_message(job.id, receipt="r2", receive_count=2)
    assert again.disposition is Disposition.KEEP
    assert len(service.warehouse.submitted) == 1


def test_a_delivery_reads_its_job_only_through_the_receipt_write(env, monkeypatch):
    """It read the job (with every file) before and after recording the receipt: two more requests."""
    from chalicelib.service import PoisonMessage

    service, _ = env
    job = land_and_seal(service, "events/a.json")
    reads: list[str] = []
    original = service.ledger.get_job
    monkeypatch.setattr(service.ledger, "get_job", lambda job_id: reads.append(job_id) or original(job_id))
    assert service.run_job_message(job.id, receipt="r1", receive_count=1).disposition is Disposition.KEEP
    assert reads == [] and service.ledger.get_receipt(job.id) == "r1"
    # Finished by the completion handler meanwhile: the receipt write returns it so, and the message goes.
    stored = service.ledger.get_job(job.id)
    service.ledger.jobs[job.id] = stored.transition(JobStatus.FAILED, 5.0, finished_at=5.0, error="x")
    assert service.run_job_message(job.id, receipt="r2", receive_count=2).disposition is Disposition.DONE
    with pytest.raises(PoisonMessage):
        service.run_job_message("no-such-job", receipt="r3", receive_count=1)


def test_worker_that_died_after_submitting_resubmits_with_the_same_token(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json")
    pipeline = service.catalog.load("events")
    service.warehouse.submit(service.catalog.warehouse_for(pipeline), ["COPY x"], name="n",
                             token=f"{job.id}-1")  # the lost first submission
    service.run_job_message(job.id, receipt="r1", receive_count=2)
    assert len(service.warehouse.submitted) == 1
    assert service.ledger.get_job(job.id).statement_id == "stmt-1"


def test_completion_event_finishes_the_job_and_releases_the_message(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json")
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    sid = service.ledger.get_job(job.id).statement_id
    service.warehouse.finish(sid, rows=42)
    done = service.statement_finished(StatementEvent(statement_id=sid, statement_name=f"redshift-loader:{job.id}:1",
                                                     state="FINISHED", rows=42, redshift_query_id=1, time="t"))
    assert done.status is JobStatus.SUCCEEDED and done.rows == 42
    assert service.queue.hidden == [("r1", 0)]
    assert service.ledger.file_status(job.files[0]) == "LOADED"
    assert [j.status for j in service.notifier.finished] == [JobStatus.SUCCEEDED]
    # The released message comes back once and is then deleted.
    assert service.run_job_message(job.id, receipt="r2", receive_count=2).disposition is Disposition.DONE


def test_a_lost_completion_event_is_caught_by_the_next_receive(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json")
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    sid = service.ledger.get_job(job.id).statement_id
    assert service.run_job_message(job.id, receipt="r2", receive_count=2).disposition is Disposition.KEEP
    service.warehouse.finish(sid)
    assert service.run_job_message(job.id, receipt="r3", receive_count=3).disposition is Disposition.DONE
    assert service.ledger.get_job(job.id).status is JobStatus.SUCCEEDED


def test_serializable_isolation_is_retried_then_fails_after_max_attempts(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json")
    error = "ERROR: 1023 DETAIL: Serializable isolation violation on table - 119371"
    for attempt in (1, 2, 3):
        service.run_job_message(job.id, receipt=f"r{attempt}", receive_count=attempt)
        current = service.ledger.get_job(job.id)
        assert current.attempt == attempt and current.status is JobStatus.SUBMITTED
        service.warehouse.finish(current.statement_id, "FAILED", error=error, failed_index=1)
        service.statement_finished(StatementEvent(current.statement_id, f"redshift-loader:{job.id}:{attempt}",
                                                  "FAILED", None, 1, "t"))
    final = service.ledger.get_job(job.id)
    assert final.status is JobStatus.FAILED and "Serializable" in final.error
    assert len(service.warehouse.submitted) == 3  # one statement per attempt, each with its own token
    ((queue, body, reason),) = service.queue.dead  # retries used up: the message goes to the DLQ too
    assert queue == service.settings.jobs_queue and json.loads(body) == {"job_id": job.id} and "3 attempts" in reason
    assert service.queue.hidden[0][1] > 0 and service.queue.hidden[-1] == ("r3", 0)


def test_bad_row_failure_records_file_line_column_value_and_reason(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json")
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    sid = service.ledger.get_job(job.id).statement_id
    service.warehouse.finish(sid, "FAILED", failed_index=1,
                             error="ERROR: Load into table 'events' failed. Check 'stl_load_errors' system table for details.")
    service.warehouse.query_rows = [{"file_name": "s3://landing/events/a.json", "line_number": 7,
                                     "column_name": "user_id", "raw_field_value": "x1",
                                     "error_message": "Invalid digit, Value 'x', Pos 0, Type: Integer",
                                     "error_code": 1207}]
    service.statement_finished(StatementEvent(sid, f"redshift-loader:{job.id}:1", "FAILED", None, 1, "t"))
    failed = service.ledger.get_job(job.id)
    assert failed.status is JobStatus.FAILED
    (err,) = failed.load_errors
    assert (err.file, err.line, err.column, err.value, err.code) == ("s3://landing/events/a.json", 7, "user_id", "x1", 1207)
    assert "101" in service.warehouse.queries[0]  # looked up by the failed COPY's query id
    assert service.ledger.file_status(job.files[0]) == "FAILED"


def _fail_with_bad_row_in(service, job, bad_url: str) -> None:
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    sid = service.ledger.get_job(job.id).statement_id
    service.warehouse.finish(sid, "FAILED", failed_index=1,
                             error="ERROR: Load into table 't' failed. Check 'stl_load_errors' system table for details.")
    service.warehouse.query_rows = [{"file_name": bad_url, "line_number": 2, "column_name": "id",
                                     "error_message": "Invalid digit, Value 'x', Pos 0, Type: Integer",
                                     "error_code": 1207}]
    service.statement_finished(StatementEvent(sid, f"redshift-loader:{job.id}:1", "FAILED", None, 1, "t"))


def test_good_files_of_a_batch_with_a_bad_file_load_again_as_a_new_job(env):
    service, _ = env
    job = land_and_seal(service, "orders/good.csv", "orders/bad.csv", "orders/fine.csv")
    _fail_with_bad_row_in(service, job, "s3://landing/orders/bad.csv")
    assert service.ledger.get_job(job.id).status is JobStatus.FAILED
    (new_id, group, _) = service.queue.enqueued[-1]
    new = service.ledger.get_job(new_id)
    assert new.status is JobStatus.QUEUED and group == job.target
    assert sorted(f.key for f in new.files) == ["orders/fine.csv", "orders/good.csv"]
    assert service.ledger.file_status(next(f for f in job.files if f.key == "orders/bad.csv")) == "FAILED"
    assert service.ledger.file_status(new.files[0]) == "BATCHED"


def test_a_replace_batch_with_a_bad_file_is_not_split(env):
    service, _ = env
    job = land_and_seal(service, "snapshot/a.csv", "snapshot/b.csv")
    before = len(service.queue.enqueued)
    _fail_with_bad_row_in(service, job, "s3://landing/snapshot/b.csv")
    assert service.ledger.get_job(job.id).status is JobStatus.FAILED
    assert len(service.queue.enqueued) == before


def test_upsert_plan_copies_file_by_file_into_staging_and_dedups_latest(env):
    service, _ = env
    job = land_and_seal(service, "orders/1.csv", "orders/2.csv")
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    (_, sqls, _), = service.warehouse.submitted.values()
    copies = [s for s in sqls if s.startswith("COPY")]
    assert len(copies) == 2 and all("MANIFEST" in c for c in copies)
    assert any("ROW_NUMBER()" in s for s in sqls)
    assert sqls[-1] == "CALL sales.refresh()"


def test_unsubmittable_job_fails_with_reason_instead_of_looping(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json")
    service.warehouse.fail_submit = RuntimeError("ValidationException: Database dev does not exist")
    result = service.run_job_message(job.id, receipt="r1", receive_count=1)
    assert result.disposition is Disposition.DONE
    failed = service.ledger.get_job(job.id)
    assert failed.status is JobStatus.FAILED and "does not exist" in failed.error


def test_throttled_submit_is_raised_for_a_later_retry(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json")
    service.warehouse.fail_submit = RuntimeError("An error occurred (ThrottlingException): Rate exceeded")
    with pytest.raises(RuntimeError):
        service.run_job_message(job.id, receipt="r1", receive_count=1)
    assert service.ledger.get_job(job.id).status is JobStatus.QUEUED


def test_a_batch_is_held_while_a_load_of_its_table_waits_to_start(env):
    service, clock = env
    waiting = land_and_seal(service, "orders/1.csv")  # QUEUED: its message has not been run yet
    service.files_landed([file_event("orders/2.csv")])
    batch = service.ledger.open_batch("orders")
    clock.advance(11)
    assert service.flush("orders", batch.batch_id) is None  # a job now would only queue behind `waiting`
    assert service.ledger.open_batch("orders").batch_id == batch.batch_id
    assert service.queue.flushes[-1] == ("orders", batch.batch_id, 10)  # looked at again (min(max_seconds, poll))
    clock.advance(61)
    assert service.sweep().sealed == []
    service.files_landed([file_event("orders/3.csv")])  # meanwhile the batch keeps growing
    service.run_job_message(waiting.id, receipt="r1", receive_count=1)  # the waiting load starts
    job = service.flush("orders", batch.batch_id)
    assert job is not None and [f.key for f in job.files] == ["orders/2.csv", "orders/3.csv"]


def test_a_held_batch_still_seals_when_full_and_other_tables_are_not_held(env):
    service, clock = env
    land_and_seal(service, "orders/1.csv")
    report = service.files_landed([file_event(f"orders/{i}.csv") for i in (2, 3, 4)])  # max_files = 3
    assert len(report.jobs) == 1 and len(report.jobs[0].files) == 3
    service.files_landed([file_event("events/a.json")])
    clock.advance(11)
    assert len(service.sweep().sealed) == 1 and service.ledger.open_batch("events") is None


def test_sweeper_seals_stale_batches_and_finishes_jobs_whose_event_was_lost(env):
    service, clock = env
    service.files_landed([file_event("events/a.json")])
    job = land_and_seal(service, "orders/1.csv")
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    service.warehouse.finish(service.ledger.get_job(job.id).statement_id)
    clock.advance(61)
    report = service.sweep()
    assert len(report.sealed) == 1 and report.finished == [job.id]
    assert service.ledger.get_job(job.id).status is JobStatus.SUCCEEDED
    queued = service.ledger.get_job(report.sealed[0])
    clock.advance(61)
    assert queued.id in service.sweep().requeued


def test_one_job_the_sweeper_cannot_check_does_not_block_the_others(env):
    service, clock = env
    first = land_and_seal(service, "orders/1.csv")
    service.run_job_message(first.id, receipt="r1", receive_count=1)
    second = land_and_seal(service, "events/e.json")
    service.run_job_message(second.id, receipt="r2", receive_count=1)
    service.warehouse.finish(service.ledger.get_job(second.id).statement_id)
    del service.warehouse.states[service.ledger.get_job(first.id).statement_id]  # describe now raises KeyError
    clock.advance(61)
    report = service.sweep()
    assert report.errors == [first.id] and report.finished == [second.id]


def test_sweeper_leaves_a_job_that_finished_after_it_was_listed(env):
    service, clock = env
    job = land_and_seal(service, "orders/1.csv")
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    statement_id = service.ledger.get_job(job.id).statement_id
    listed = service.ledger.active_jobs()
    service.warehouse.finish(statement_id)
    # its completion event lands between the listing and the sweep
    service.statement_finished(StatementEvent(statement_id, f"redshift-loader:{job.id}:1", "FINISHED", 1, 1, "t"))
    service.ledger.active_jobs = lambda: listed
    clock.advance(61)
    report = service.sweep()
    assert report.finished == [] and report.errors == []
    assert service.ledger.get_job(job.id).status is JobStatus.SUCCEEDED


def test_sweeper_fails_a_job_whose_statement_the_data_api_forgot(env):
    service, clock = env
    job = land_and_seal(service, "orders/1.csv")
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    statement_id = service.ledger.get_job(job.id).statement_id

    class ResourceNotFoundException(Exception):
        pass

    def gone(_: str):
        raise ResourceNotFoundException(f"Query {statement_id} does not exist")

    service.warehouse.describe = gone
    clock.advance(61)
    assert service.sweep().finished == [job.id]
    failed = service.ledger.get_job(job.id)
    assert failed.status in (JobStatus.FAILED, JobStatus.QUEUED) and "no longer knows" in (failed.error or "")


# ------------------------------------------------------------------ handlers
def sqs_event(*bodies: str) -> dict:
    return {"Records": [{"messageId": f"m-{i}", "receiptHandle": f"rh-{i}", "body": b,
                         "attributes": {"ApproximateReceiveCount": "1"}} for i, b in enumerate(bodies)]}


def s3_body(key: str) -> str:
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                                    "eventTime": "2026-11-22T10:00:00.000Z", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": "landing"},
                                           "object": {"key": key, "size": 10, "eTag": "abc"}}}]})


def test_router_parks_malformed_messages_and_processes_the_rest(env):
    service, _ = env
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"})
    response = handlers.route_landing(service, sqs_event("{not json", s3_body("events/a+b.json"), test_event,
                                                         json.dumps({"unexpected": True})))
    assert response == {"batchItemFailures": []}
    assert [d[1] for d in service.queue.dead] == ["{not json", json.dumps({"unexpected": True})]
    assert all(d[2] for d in service.queue.dead)  # each with a reason
    assert [f.key for f in service.ledger.open_batch("events").files] == ["events/a b.json"]


def test_router_reports_only_the_message_that_hit_an_unexpected_error(env, monkeypatch):
    service, _ = env
    original = service.files_landed

    def flaky(events, **kw):
        if any(e.key.startswith("events/boom") for e in events):
            raise ConnectionError("ledger unreachable")
        return original(events, **kw)

    monkeypatch.setattr(service, "files_landed", flaky)
    response = handlers.route_landing(service, sqs_event(s3_body("events/ok.json"), s3_body("events/boom.json")))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert [f.key for f in service.ledger.open_batch("events").files] == ["events/ok.json"]


def test_a_batch_sealed_right_after_our_append_is_not_an_error(env, monkeypatch):
    """Found by the 20,000-file soak: the counters read after the append found no open batch (a flush
    had sealed it, with our file) and the router failed the message on an assertion."""
    service, _ = env
    original = service.ledger.add_files

    def then_sealed(pipeline, files, **kw):
        result = original(pipeline, files, **kw)
        service.seal(pipeline)
        return dataclasses.replace(result, tally=None)

    monkeypatch.setattr(service.ledger, "add_files", then_sealed)
    response = handlers.route_landing(service, sqs_event(s3_body("events/a.json")))
    assert response == {"batchItemFailures": []}
    jobs = service.ledger.list_jobs(pipeline="events", status=None, since=None, limit=10, next_token=None).jobs
    assert [f.key for j in jobs for f in j.files] == ["events/a.json"]


def test_router_records_a_delivery_in_one_ledger_write_per_pipeline(env, monkeypatch):
    service, _ = env
    writes = []
    original = service.ledger.add_files

    def counted(pipeline, files, **kw):
        writes.append((pipeline, [f.key for f in files]))
        return original(pipeline, files, **kw)

    monkeypatch.setattr(service.ledger, "add_files", counted)
    bodies = [s3_body(f"events/{i}.json") for i in range(4)] + [s3_body("orders/1.csv"), s3_body("events/0.json")]
    response = handlers.route_landing(service, sqs_event(*bodies))
    assert response == {"batchItemFailures": []}
    assert writes == [("events", ["events/0.json", "events/1.json", "events/2.json", "events/3.json", "events/0.json"]),
                      ("orders", ["orders/1.csv"])]
    recorded = sorted(key for _, key, _ in service.ledger.files)
    assert recorded == [f"events/{i}.json" for i in range(4)] + ["orders/1.csv"]  # the second 0.json: a duplicate


def test_worker_keeps_a_running_job_in_flight_and_parks_unknown_jobs(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json")
    hidden = []
    response = handlers.run_jobs(service, sqs_event(json.dumps({"job_id": job.id})), lambda r, s: hidden.append((r, s)))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert hidden == [("rh-0", 30)]
    response = handlers.run_jobs(service, sqs_event(json.dumps({"job_id": "nope"}), "garbage"), lambda r, s: None)
    assert response == {"batchItemFailures": []}
    assert len(service.queue.dead) == 2 and "does not exist" in service.queue.dead[0][2]


def test_completion_event_that_beats_the_worker_is_not_lost(env):
    service, _ = env
    job = land_and_seal(service, "events/a.json")
    # The statement runs and ends before the worker records SUBMITTED.
    pipeline = service.catalog.load("events")
    sid = service.warehouse.submit(service.catalog.warehouse_for(pipeline), ["COPY x"], name="n", token=f"{job.id}-1")
    service.warehouse.finish(sid)
    done = service.statement_finished(StatementEvent(sid, f"redshift-loader:{job.id}:1", "FINISHED", 1, 1, "t"))
    assert done.status is JobStatus.SUCCEEDED
    # The worker's late bookkeeping notices and lets the message go instead of polling.
    assert service.run_job_message(job.id, receipt="r1", receive_count=1).disposition is Disposition.DONE


def test_upsert_files_load_in_the_order_s3_wrote_them_not_the_order_events_came(env):
    service, _ = env
    service.files_landed([file_event("orders/newer.csv", time="2026-11-22T10:00:02.000Z"),
                          file_event("orders/older.csv", time="2026-11-22T10:00:01.000Z")])
    job = service.seal("orders")
    service.run_job_message(job.id, receipt="r1", receive_count=1)
    manifests = [json.loads(body)["entries"][0]["url"] for (_, key), body in sorted(service.storage.objects.items())]
    assert manifests == ["s3://landing/orders/older.csv", "s3://landing/orders/newer.csv"]


def test_a_hundred_files_of_one_pipeline_take_two_even_ledger_writes(env, monkeypatch):
    """A router batch holds up to 100 messages; in groups of 25 it took four writes, each paying for
    the whole open batch (a transaction holds 100 items: 99 files and the append)."""
    service, _ = env
    writes: list[int] = []
    original = service.ledger.add_files

    def counted(pipeline, files, **kw):
        writes.append(len(files))
        return original(pipeline, files, **kw)

    monkeypatch.setattr(service.ledger, "add_files", counted)
    for n, expected in ((99, [99]), (100, [50, 50]), (1, [1])):
        writes.clear()
        bodies = [s3_body(f"events/{n}-{i}.json") for i in range(n)]
        assert handlers.route_landing(service, sqs_event(*bodies)) == {"batchItemFailures": []}
        assert writes == expected


def test_ledger_groups_keep_file_references_within_what_one_batch_item_can_take() -> None:
    from chalicelib.jobs import FileRef
    from chalicelib.ports import ADD_GROUP, ADD_GROUP_BYTES, ledger_groups

    long_keys = [FileRef("landing", "k/" + "x" * 1000 + f"{i:03d}", "v" * 32, 1) for i in range(99)]
    groups = ledger_groups(long_keys)
    assert [f for g in groups for f in g] == long_keys
    assert all(sum(f.record_bytes for f in g) <= ADD_GROUP_BYTES for g in groups) and len(groups) == 2
    short = [FileRef("landing", f"k/{i}", "v", 1) for i in range(250)]
    assert [len(g) for g in ledger_groups(short)] == [84, 84, 82] and max(map(len, ledger_groups(short))) <= ADD_GROUP
    assert ledger_groups([]) == []
