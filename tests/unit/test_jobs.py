"""Jobs: transitions, persistence round trip, public view, ids, retry classification."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from chalicelib.jobs import (
    FILE_RECORD_BUDGET,
    FileRef,
    InvalidTransition,
    Job,
    JobKind,
    JobStatus,
    LoadError,
    is_retryable_error,
    new_job_id,
    retry_delay,
    split_for_job,
)

NOW = 1795347240.0  # 2026-11-22T11:34:00Z
S = JobStatus


def job(status: JobStatus = S.QUEUED, **changes: object) -> Job:
    base = Job(id="20261122T113400Z-3f9a1c2b", kind=JobKind.LOAD, pipeline="orders", target="main:sales.orders",
               status=status, files=(FileRef("landing", "orders/a b.csv", "etag1", 10),), statement_id=None,
               attempt=1, max_attempts=5, created_at=NOW, updated_at=NOW, submitted_at=None, finished_at=None,
               rows=None, error=None)
    return Job(**{**base.__dict__, **changes})  # type: ignore[arg-type]


ALLOWED = {
    (S.QUEUED, S.SUBMITTED), (S.QUEUED, S.FAILED), (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.RUNNING),  # a copy run supervising its table jobs
    (S.SUBMITTED, S.RUNNING), (S.SUBMITTED, S.SUCCEEDED), (S.SUBMITTED, S.FAILED), (S.SUBMITTED, S.QUEUED),
    (S.SUBMITTED, S.CANCELLED),
    (S.RUNNING, S.SUCCEEDED), (S.RUNNING, S.FAILED), (S.RUNNING, S.QUEUED), (S.RUNNING, S.CANCELLED),
    (S.FAILED, S.QUEUED), (S.CANCELLED, S.QUEUED),  # retries someone asked for
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("wanted", list(S))
def test_transition_table(current: JobStatus, wanted: JobStatus) -> None:
    if current is wanted or (current, wanted) in ALLOWED:
        moved = job(current).transition(wanted, NOW + 5)
        assert moved.status is wanted and moved.updated_at == NOW + 5
    else:
        with pytest.raises(InvalidTransition) as err:
            job(current).transition(wanted, NOW + 5)
        text = str(err.value)
        assert current.value in text and wanted.value in text and "20261122T113400Z-3f9a1c2b" in text


def test_succeeded_is_terminal() -> None:
    done = job(S.RUNNING).transition(S.SUCCEEDED, NOW + 9, rows=3, finished_at=NOW + 9)
    for wanted in (S.QUEUED, S.FAILED, S.RUNNING):
        with pytest.raises(InvalidTransition):
            done.transition(wanted, NOW + 10)


def test_transition_returns_a_new_job_with_changes() -> None:
    original = job()
    submitted = original.transition(S.SUBMITTED, NOW + 1, statement_id="s-1", submitted_at=NOW + 1)
    assert original.status is S.QUEUED and original.statement_id is None
    assert (submitted.status, submitted.statement_id, submitted.submitted_at) == (S.SUBMITTED, "s-1", NOW + 1)
    with pytest.raises(TypeError):
        original.transition(S.SUBMITTED, NOW, no_such_field=1)


def full_job() -> Job:
    return job(S.FAILED, statement_id="abc:1", attempt=3, submitted_at=NOW + 1.5, finished_at=NOW + 62.125,
               updated_at=NOW + 62.125, rows=0, error="ERROR: Load into table 'orders' failed",
               load_errors=(LoadError("s3://landing/orders/a b.csv", 7, "amount", "12x", "Invalid digit", 1207),
                            LoadError("s3://landing/orders/a b.csv", None, "", "", "no line", None)),
               kind=JobKind.FOLLOWUP, steps=("CALL a()", "CALL b()"), step=1)


def test_item_round_trip_keeps_every_field() -> None:
    original = full_job()
    item = original.to_item()
    assert Job.from_item(json.loads(json.dumps(item))) == original
    assert Job.from_item(job().to_item()) == job()


def test_item_holds_no_floats() -> None:
    # DynamoDB rejects Python floats: times are integer epoch milliseconds.
    def walk(value: object) -> None:
        assert not isinstance(value, float), value
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    item = full_job().to_item()
    walk(item)
    assert item["created_ms"] == 1795347240000 and item["finished_ms"] == 1795347302125


def test_from_item_accepts_dynamodb_decimals_and_legacy_float_times() -> None:
    item = full_job().to_item()
    decimals = {k: Decimal(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in item.items()}
    assert Job.from_item(decimals) == full_job()
    legacy = {k: v for k, v in job().to_item().items() if not k.endswith("_ms")}
    legacy.update(created_at=NOW, updated_at=NOW)
    assert Job.from_item(legacy) == job()


def test_public_dict() -> None:
    public = full_job().to_public_dict()
    assert json.loads(json.dumps(public)) == public
    assert public["status"] == "FAILED" and public["kind"] == "FOLLOWUP"
    assert public["created_at"] == "2026-11-22T11:34:00.000Z" and public["finished_at"] == "2026-11-22T11:35:02.125Z"
    assert public["files"] == ["s3://landing/orders/a b.csv"] and public["bytes"] == 10
    assert public["load_errors"][0] == {"file": "s3://landing/orders/a b.csv", "line": 7, "column": "amount",
                                        "value": "12x", "reason": "Invalid digit", "code": 1207}


def test_new_job_id_is_time_sortable() -> None:
    assert new_job_id(NOW, "3f9a1c2b") == "20261122T113400Z-3f9a1c2b"
    ids = [new_job_id(NOW + d, "ffffffff" if d == 0 else "00000000") for d in (0, 1, 3600, 86400 * 40)]
    assert ids == sorted(ids)


@pytest.mark.parametrize("message, retryable", [
    ("ERROR: 1023 DETAIL: Serializable isolation violation on table - 119371", True),
    ("{'M': '1023', 'D': 'Serializable isolation violation on table'}", True),
    ("An error occurred (ThrottlingException): Rate exceeded", True),
    ("ActiveStatementsExceededException: too many", True),
    ("ActiveSessionsExceededException", True),
    ("connection reset by peer", True),
    ("server closed the connection unexpectedly", True),
    ("ERROR: Load into table 'orders' failed. Check 'stl_load_errors' system table for details.", False),
    ("ERROR: relation \"sales.orders\" does not exist", False),
    ("ERROR: 10230 rows", False),
    ("", False),
    (None, False),
])
def test_is_retryable_error(message: str | None, retryable: bool) -> None:
    assert is_retryable_error(message) is retryable  # type: ignore[arg-type]


def test_retry_delay_doubles_up_to_a_cap() -> None:
    assert [retry_delay(a) for a in (1, 2, 3, 4, 5, 6, 7, 20)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert retry_delay(0) == 5


def test_a_job_takes_files_up_to_its_count_and_its_record_budget():
    small = tuple(FileRef("b", f"k{i}", "v", 1) for i in range(5))
    assert split_for_job(small, 3) == (small[:3], small[3:])
    big = tuple(FileRef("b", f"{i:03d}" + "x" * 2000, "v", 1) for i in range(300))
    take, rest = split_for_job(big, 1000)
    assert sum(f.record_bytes for f in take) <= FILE_RECORD_BUDGET < sum(f.record_bytes for f in big[:len(take) + 1])
    assert take + rest == big
    huge = (FileRef("b", "x" * (FILE_RECORD_BUDGET + 1), "v", 1),)
    assert split_for_job(huge, 10) == (huge, ())  # never an empty job: one file always goes


def test_a_transition_cannot_change_a_jobs_files() -> None:
    # The ledger writes a job's files once, when it is created; a status change leaves them out.
    with pytest.raises(ValueError, match="files are fixed"):
        job().transition(S.SUBMITTED, NOW, files=())


def test_a_references_stored_size_counts_its_json_escapes() -> None:
    # The ledger stores references as JSON text: a key of quotes or control characters grows when
    # escaped, and the 400 KB item budget must count what is stored, not the raw key.
    quoted = FileRef("landing", "k/" + '"' * 1000, "v" * 32, 1, "2026-12-01T00:00:00Z")
    plain = FileRef("landing", "k/" + "a" * 1000, "v" * 32, 1, "2026-12-01T00:00:00Z")
    assert quoted.record_bytes >= len(quoted.as_json().encode()) > 2000 > plain.record_bytes
    assert json.loads(FileRef("b", "ü\x01\\k", "e", 7, "").as_json()) == ["b", "ü\x01\\k", "e", 7, ""]
