"""The DynamoDB ledger's open-batch counters, against moto: what routing decides on without reading the file list."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import resources
from chalicelib.adapters.ledger import DynamoLedger
from chalicelib.jobs import FileRef, Job, JobKind, JobStatus, JobSummary
from devstack.aws import create_table


def _ledger(moto_endpoint: str, table: str) -> tuple[Any, DynamoLedger]:
    """A fresh ledger table on the session's moto, and the adapter over it."""
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    create_table(ddb, resources.LEDGER_TABLE, table)
    return ddb, DynamoLedger(table, api=ddb)


def _queued_job(files: tuple[FileRef, ...]) -> Job:
    return Job(id="j1", kind=JobKind.LOAD, pipeline="t", target="main:s.t", status=JobStatus.QUEUED, files=files,
               statement_id=None, attempt=1, max_attempts=3, created_at=1.0, updated_at=1.0, submitted_at=None,
               finished_at=None, rows=None, error=None, load_errors=(), steps=())


def test_counters_follow_appends_and_a_seal_that_leaves_files_open(moto_endpoint):
    _, ledger = _ledger(moto_endpoint, "tally-ledger")
    files = [FileRef("b", f"t/{i}.csv" + "k" * i, f"v{i}", 100 + i, "2026-11-30T10:00:00Z") for i in range(4)]
    results = [ledger.add_files("t", [f], now=1.0, batch_id=f"b{i}", force=False) for i, f in enumerate(files)]
    assert [r.opened for r in results] == [True, False, False, False]
    tally = results[-1].tally
    assert (tally.batch_id, tally.files, tally.bytes) == ("b0", 4, sum(f.size for f in files))
    assert tally.record_bytes == sum(f.record_bytes for f in files)
    assert ledger.add_files("t", [files[0]], now=2.0, batch_id="x", force=False).duplicates == ((files[0], "BATCHED"),)

    batch = ledger.open_batch("t")
    job = Job(id=batch.batch_id, kind=JobKind.LOAD, pipeline="t", target="main:s.t", status=JobStatus.QUEUED,
              files=batch.files[:3], statement_id=None, attempt=1, max_attempts=3, created_at=1.0, updated_at=1.0,
              submitted_at=None, finished_at=None, rows=None, error=None, load_errors=(), steps=())
    assert ledger.seal_batch(batch, job, remainder=batch.files[3:], remainder_id="b9")
    after = ledger.add_files("t", [FileRef("b", "t/late.csv", "v", 7, "")], now=3.0, batch_id="b10", force=False).tally
    assert (after.batch_id, after.files, after.bytes) == ("b9", 2, files[3].size + 7)
    assert after.record_bytes == files[3].record_bytes + FileRef("b", "t/late.csv", "v", 7, "").record_bytes


def test_busy_pipelines_are_those_with_an_open_batch_or_an_unfinished_load(moto_endpoint):
    _, ledger = _ledger(moto_endpoint, "busy-ledger")
    ledger.add_files("landing_p", [FileRef("b", "k.csv", "v", 1, "")], now=1.0, batch_id="b1", force=False)

    def job(job_id: str, kind: JobKind, pipeline: str, status: JobStatus) -> Job:
        return Job(id=job_id, kind=kind, pipeline=pipeline, target="main:s.t", status=status, files=(),
                   statement_id=None, attempt=1, max_attempts=3, created_at=1.0, updated_at=1.0, submitted_at=None,
                   finished_at=None, rows=None, error=None, load_errors=(), steps=())

    assert ledger.create_job(job("j1", JobKind.LOAD, "loading_p", JobStatus.QUEUED))
    assert ledger.create_job(job("j2", JobKind.LOAD, "done_p", JobStatus.SUCCEEDED))
    assert ledger.create_job(job("j3", JobKind.FOLLOWUP, "followup_p", JobStatus.QUEUED))
    assert ledger.busy_pipelines() == {"landing_p", "loading_p"}


def test_active_jobs_are_read_as_summaries_without_their_file_lists(moto_endpoint):
    ddb, ledger = _ledger(moto_endpoint, "active-ledger")
    files = tuple(FileRef("b", f"t/{i}.csv", f"v{i}", 10, "") for i in range(300))
    queries: list[dict] = []
    ddb.meta.events.register("provide-client-params.dynamodb.Query", lambda params, **_: queries.append(params))

    def job(job_id: str, status: JobStatus, updated: float) -> Job:
        return Job(id=job_id, kind=JobKind.LOAD, pipeline="p", target="main:s.t", status=status, files=files,
                   statement_id=None, attempt=1, max_attempts=3, created_at=1.0, updated_at=updated,
                   submitted_at=None, finished_at=None, rows=None, error=None, load_errors=(), steps=())

    assert ledger.create_job(job("j1", JobStatus.QUEUED, 2.5))
    assert ledger.create_job(job("j2", JobStatus.SUCCEEDED, 3.0))
    assert ledger.active_jobs() == [JobSummary("j1", JobKind.LOAD, "p", "main:s.t", JobStatus.QUEUED, 2.5)]
    assert "files" not in queries[-1]["ProjectionExpression"]
    assert ledger.get_job("j1").files == files  # the whole job is still there for whoever needs it


def test_a_group_of_files_is_appended_in_one_write_with_duplicates_left_out(moto_endpoint):
    ddb, ledger = _ledger(moto_endpoint, "group-ledger")
    old, new1, new2 = (FileRef("b", f"g/{name}.csv", "v1", 10, "") for name in ("old", "new1", "new2"))
    first = ledger.add_files("g", [old], now=1.0, batch_id="b1", force=False)
    assert first.opened and first.added == (old,)
    writes: list[str] = []
    ddb.meta.events.register("provide-client-params.dynamodb.TransactWriteItems",
                             lambda params, **_: writes.append(len(params["TransactItems"])))
    result = ledger.add_files("g", [new1, old, new2, new1], now=2.0, batch_id="b2", force=False)
    assert result.added == (new1, new2) and not result.opened
    assert result.duplicates == ((new1, "BATCHED"), (old, "BATCHED"))
    assert (result.tally.batch_id, result.tally.files, result.tally.bytes) == ("b1", 3, 30)
    assert writes == [4, 3]  # tried with the old file, cancelled by its condition, then without it
    assert [f.key for f in ledger.open_batch("g").files] == ["g/old.csv", "g/new1.csv", "g/new2.csv"]
    assert ledger.add_files("g", [old, new2], now=3.0, batch_id="b3", force=False).added == ()
    forced = ledger.add_files("g", [old], now=4.0, batch_id="b4", force=True)
    assert forced.added == (old,) and forced.tally.files == 4  # a forced reload is recorded again


def test_files_are_marked_a_hundred_per_request_and_file_by_file_after_a_conflict(moto_endpoint):
    ddb, ledger = _ledger(moto_endpoint, "mark-ledger")
    files = [FileRef("b", f"t/{i}.csv", f"v{i}", 10, "") for i in range(230)]
    for start in range(0, len(files), 25):
        ledger.add_files("t", files[start:start + 25], now=1.0, batch_id="b1", force=False)
    calls: list[str] = []
    ddb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    ledger.mark_files(files + files[:3], "LOADED", "j1")  # a file twice must not fail its transaction
    assert calls == ["TransactWriteItems"] * 3
    assert {ledger.file_status(f) for f in files} == {"LOADED"}

    class Conflicting:  # the ledger's DynamoDB client, with every transaction cancelled by a concurrent write
        def __getattr__(self, name):
            return getattr(ddb, name)

        def transact_write_items(self, **_):
            calls.append("TransactWriteItems")
            raise ClientError({"Error": {"Code": "TransactionConflictException", "Message": "injected"}},
                              "TransactWriteItems")

    ledger = DynamoLedger("mark-ledger", api=Conflicting())
    calls.clear()
    ledger.mark_files(files[:5], "FAILED", "j2")
    assert calls == ["TransactWriteItems"] + ["UpdateItem"] * 5
    assert [ledger.file_status(f) for f in files[:6]] == ["FAILED"] * 5 + ["LOADED"]


def test_recording_a_receipt_returns_the_job_as_stored_and_none_for_no_job(moto_endpoint):
    """The worker's one ledger request per delivery: it used to read the job before and after."""
    ddb, ledger = _ledger(moto_endpoint, "receipt-ledger")
    files = tuple(FileRef("b", f"t/{i}.csv", f"v{i}", 10, "2026-12-01T00:00:00Z") for i in range(200))
    job = _queued_job(files)
    assert ledger.create_job(job)
    calls: list[str] = []
    ddb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    stored = ledger.set_receipt("j1", "rh-1")
    assert stored == ledger.get_job("j1") and stored.files == files and stored.status is JobStatus.QUEUED
    assert calls[0] == "UpdateItem" and ledger.get_receipt("j1") == "rh-1"
    failed = job.transition(JobStatus.FAILED, 2.0, finished_at=2.0, error="finished meanwhile")
    assert ledger.save_job(failed, expected=JobStatus.QUEUED)
    assert ledger.set_receipt("j1", "rh-2").status is JobStatus.FAILED
    assert ledger.set_receipt("missing", "rh") is None


def test_a_status_change_does_not_write_the_file_list_again(moto_endpoint):
    """Files are written once with the job; every save sent the whole list (~30 KB for 200 files)."""
    ddb, ledger = _ledger(moto_endpoint, "save-ledger")
    files = tuple(FileRef("b", f"t/{i}.csv", f"v{i}", 10, "2026-12-01T00:00:00Z") for i in range(200))
    job = _queued_job(files)
    assert ledger.create_job(job)
    sent: list[dict] = []
    ddb.meta.events.register("provide-client-params.dynamodb.UpdateItem", lambda params, **_: sent.append(params))
    submitted = job.transition(JobStatus.SUBMITTED, 2.0, statement_id="s-1", submitted_at=2.0)
    assert ledger.save_job(submitted, expected=JobStatus.QUEUED)
    assert not {"files", "files_json"} & set(sent[0]["ExpressionAttributeNames"].values())
    assert len(str(sent[0])) < 2000
    stored = ledger.get_job("j1")
    assert stored == submitted and stored.files == files


def test_a_full_group_is_one_transaction_of_a_hundred_items(moto_endpoint):
    """ADD_GROUP files and the append: DynamoDB's (and moto's) limit of 100 items per transaction."""
    from chalicelib.ports import ADD_GROUP

    ddb, ledger = _ledger(moto_endpoint, "full-group-ledger")
    files = [FileRef("b", f"f/{i}.csv", "v1", 10, "") for i in range(ADD_GROUP)]
    writes: list[int] = []
    ddb.meta.events.register("provide-client-params.dynamodb.TransactWriteItems",
                             lambda params, **_: writes.append(len(params["TransactItems"])))
    result = ledger.add_files("f", files, now=1.0, batch_id="b1", force=False)
    assert writes == [100] and result.added == tuple(files) and result.tally.files == ADD_GROUP
    with pytest.raises(ValueError, match="at most 99 files"):
        ledger.add_files("f", files + [FileRef("b", "f/extra.csv", "v1", 10, "")], now=2.0, batch_id="b2",
                         force=False)


def test_file_references_are_stored_as_json_text_and_old_maps_still_read(moto_endpoint):
    """A job's files are one JSON string and a batch's one string per file: maps of five typed attributes
    per file made every read of a 200-file job (the worker's, each delivery) mostly type conversions."""
    ddb, ledger = _ledger(moto_endpoint, "text-ledger")
    files = tuple(FileRef("b", f"t/{i} ü'\"q.csv", f"v{i}", 10 + i, "2026-12-01T00:00:00Z") for i in range(3))
    added = ledger.add_files("t", list(files), now=1.0, batch_id="b1", force=False)
    raw_batch = ddb.get_item(TableName="text-ledger", Key={"pk": {"S": "open#t"}})["Item"]
    assert [list(v) for v in raw_batch["files"]["L"]] == [["S"]] * 3
    assert ledger.open_batch("t").files == files == added.added
    job = _queued_job(files)
    assert ledger.create_job(job)
    raw_job = ddb.get_item(TableName="text-ledger", Key={"pk": {"S": "job#j1"}})["Item"]
    assert "files" not in raw_job and list(raw_job["files_json"]) == ["S"]
    assert ledger.get_job("j1") == job and ledger.set_receipt("j1", "rh").files == files
    # Written by an earlier version: maps in the batch, a "files" list of maps on the job.
    ddb.put_item(TableName="text-ledger", Item={
        "pk": {"S": "open#old"}, "item_type": {"S": "open"}, "pipeline": {"S": "old"}, "batch_id": {"S": "b0"},
        "opened_at": {"N": "1"}, "version": {"N": "1"}, "g2pk": {"S": "open"}, "g2sk": {"S": "b0"},
        "files": {"L": [{"M": {"b": {"S": "b"}, "k": {"S": "old.csv"}, "v": {"S": "e1"}, "s": {"N": "5"}}}]}})
    assert ledger.open_batch("old").files == (FileRef("b", "old.csv", "e1", 5, ""),)
    old_job = {**{k: v for k, v in raw_job.items() if k != "files_json"}, "pk": {"S": "job#j0"}, "id": {"S": "j0"},
               "files": {"L": [{"M": {"bucket": {"S": "b"}, "key": {"S": "old.csv"}, "version": {"S": "e1"},
                                      "size": {"N": "5"}, "created": {"S": ""}}}]}}
    ddb.put_item(TableName="text-ledger", Item=old_job)
    assert ledger.get_job("j0").files == (FileRef("b", "old.csv", "e1", 5, ""),)
