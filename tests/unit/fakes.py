"""In-memory stand-ins for the ports, with the same conditional-write semantics."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.jobs import FileRef, Job, JobKind, JobStatus, JobSummary
from chalicelib.pipelines import TableName, Warehouse
from chalicelib.ports import ADD_GROUP, AddResult, BatchTally, JobPage, OpenBatch, StatementInfo, SubStatement

TERMINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


class FakeLedger:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.batches: dict[str, OpenBatch] = {}
        self.jobs: dict[str, Job] = {}
        self.receipts: dict[str, str] = {}

    def add_files(self, pipeline: str, files: Sequence[FileRef], *, now: float, batch_id: str,
                  force: bool) -> AddResult:
        assert len(files) <= ADD_GROUP
        added: list[FileRef] = []
        duplicates: list[tuple[FileRef, str | None]] = []
        for file in files:
            ident = (file.bucket, file.key, file.version)
            if ident in self.files and (not force or file in added):
                duplicates.append((file, self.files[ident]["status"]))
                continue
            self.files[ident] = {"status": "BATCHED", "pipeline": pipeline}
            added.append(file)
        if not added:
            return AddResult(duplicates=tuple(duplicates))
        current = self.batches.get(pipeline)
        if current is None:
            current = OpenBatch(pipeline, batch_id, tuple(added), now, 1)
        else:
            current = OpenBatch(pipeline, current.batch_id, current.files + tuple(added), current.opened_at,
                                current.version + 1)
        self.batches[pipeline] = current
        return AddResult(added=tuple(added), duplicates=tuple(duplicates),
                         tally=BatchTally.of(current.batch_id, current.files), opened=current.batch_id == batch_id)

    def open_batch(self, pipeline: str) -> OpenBatch | None:
        return self.batches.get(pipeline)

    def open_batches(self) -> list[OpenBatch]:
        return list(self.batches.values())

    def seal_batch(self, batch: OpenBatch, job: Job, *, remainder: tuple[FileRef, ...] = (),
                   remainder_id: str | None = None) -> bool:
        current = self.batches.get(batch.pipeline)
        if current is None or current.version != batch.version or job.id in self.jobs:
            return False
        if remainder:
            self.batches[batch.pipeline] = OpenBatch(batch.pipeline, remainder_id or "", remainder,
                                                     batch.opened_at, batch.version + 1)
        else:
            del self.batches[batch.pipeline]
        self.jobs[job.id] = job
        return True

    def create_job(self, job: Job) -> bool:
        if job.id in self.jobs:
            return False
        self.jobs[job.id] = job
        return True

    def get_job(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def save_job(self, job: Job, *, expected: JobStatus, expected_attempt: int | None = None) -> bool:
        current = self.jobs.get(job.id)
        if current is None or current.status != expected:
            return False
        if expected_attempt is not None and current.attempt != expected_attempt:
            return False
        self.jobs[job.id] = dataclasses.replace(job, files=current.files)  # as DynamoLedger: files written once
        return True

    def set_receipt(self, job_id: str, receipt: str | None) -> Job | None:
        if job_id not in self.jobs:
            return None
        self.receipts[job_id] = receipt or ""
        return self.jobs[job_id]

    def get_receipt(self, job_id: str) -> str | None:
        return self.receipts.get(job_id) or None

    def list_jobs(self, *, pipeline: str | None, status: str | None, since: float | None, limit: int,
                  next_token: str | None) -> JobPage:
        jobs = sorted(self.jobs.values(), key=lambda j: j.id, reverse=True)
        jobs = [j for j in jobs if (not pipeline or j.pipeline == pipeline)
                and (not status or j.status.value == status) and (since is None or j.created_at >= since)]
        start = int(next_token or 0)
        page = jobs[start:start + limit]
        return JobPage(page, str(start + limit) if start + limit < len(jobs) else None)

    def active_jobs(self) -> list[JobSummary]:
        return [JobSummary.of(j) for j in self.jobs.values() if j.status not in TERMINAL]

    def busy_pipelines(self) -> set[str]:
        return set(self.batches) | {j.pipeline for j in self.active_jobs() if j.kind is JobKind.LOAD}

    def mark_files(self, files: Iterable[FileRef], status: str, job_id: str) -> None:
        for f in files:
            self.files[(f.bucket, f.key, f.version)].update(status=status, job_id=job_id)

    def file_status(self, file: FileRef) -> str | None:
        entry = self.files.get((file.bucket, file.key, file.version))
        return entry["status"] if entry else None


@dataclass
class FakeQueue:
    enqueued: list[tuple[str, str, str]] = field(default_factory=list)   # (job_id, group, dedup)
    hidden: list[tuple[str, int]] = field(default_factory=list)
    flushes: list[tuple[str, str, int]] = field(default_factory=list)
    dead: list[tuple[str, str, str]] = field(default_factory=list)

    def enqueue_job(self, job_id: str, *, group: str, dedup_id: str) -> None:
        self.enqueued.append((job_id, group, dedup_id))

    def hide(self, receipt: str, seconds: int) -> None:
        self.hidden.append((receipt, seconds))

    def schedule_flush(self, pipeline: str, batch_id: str, delay_seconds: int) -> None:
        self.flushes.append((pipeline, batch_id, delay_seconds))

    def dead_letter(self, queue: str, body: str, reason: str) -> None:
        self.dead.append((queue, body, reason))


class FakeWarehouse:
    """Statements 'run' when the test says so: `finish(id, status, error=...)`."""

    def __init__(self) -> None:
        self.submitted: dict[str, tuple[Warehouse, list[str], str]] = {}
        self.tokens: dict[str, str] = {}
        self.states: dict[str, StatementInfo] = {}
        self.columns: dict[str, list[str]] = {}
        self.query_rows: list[dict[str, Any]] = []
        self.queries: list[str] = []
        self.cancelled: list[str] = []
        self._ids = itertools.count(1)
        self.fail_submit: Exception | None = None

    def submit(self, warehouse: Warehouse, sqls: Sequence[str], *, name: str, token: str) -> str:
        if self.fail_submit:
            raise self.fail_submit
        if token in self.tokens:  # ClientToken idempotency, like the Data API
            return self.tokens[token]
        sid = f"stmt-{next(self._ids)}"
        self.tokens[token] = sid
        self.submitted[sid] = (warehouse, list(sqls), name)
        self.states[sid] = StatementInfo(id=sid, status="SUBMITTED")
        return sid

    def finish(self, sid: str, status: str = "FINISHED", *, error: str | None = None, rows: int = 10,
               failed_index: int = 0) -> None:
        sqls = self.submitted[sid][1]
        subs = []
        for i, text in enumerate(sqls):
            if status == "FINISHED":
                subs.append(SubStatement(f"{sid}:{i + 1}", "FINISHED", rows=rows if text.startswith(("COPY", "DELETE")) else 0,
                                         query_id=100 + i, sql=text))
            elif i == failed_index:
                subs.append(SubStatement(f"{sid}:{i + 1}", "FAILED", error=error, query_id=100 + i, sql=text))
            else:
                subs.append(SubStatement(f"{sid}:{i + 1}", "ABORTED" if i > failed_index else "FINISHED", sql=text))
        self.states[sid] = StatementInfo(id=sid, status=status, error=error, sub_statements=tuple(subs))

    def describe(self, statement_id: str) -> StatementInfo:
        return self.states[statement_id]

    def cancel(self, statement_id: str) -> None:
        self.cancelled.append(statement_id)

    def query(self, warehouse: Warehouse, sql: str, *, timeout: float = 15.0) -> list[dict[str, Any]]:
        self.queries.append(sql)
        return list(self.query_rows)

    def table_columns(self, warehouse: Warehouse, table: TableName) -> list[str]:
        return self.columns.get(table.qualified, ["id", "name", "updated_at"])

    def ping(self, warehouse: Warehouse) -> None:
        if self.fail_submit:
            raise self.fail_submit


@dataclass
class FakeStorage:
    objects: dict[tuple[str, str], str] = field(default_factory=dict)
    listing: dict[str, list[FileRef]] = field(default_factory=dict)
    deleted_prefixes: list[tuple[str, str]] = field(default_factory=list)
    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)   # binary objects (gzip files)

    def put_text(self, bucket: str, key: str, body: str) -> None:
        self.objects[(bucket, key)] = body

    def head(self, bucket: str, key: str) -> FileRef | None:
        for files in self.listing.values():
            for f in files:
                if f.bucket == bucket and f.key == key:
                    return f
        return None

    def list(self, bucket: str, prefix: str) -> list[FileRef]:
        return [f for f in self.listing.get(bucket, []) if f.key.startswith(prefix)]

    def read_head(self, bucket: str, key: str, size: int) -> bytes:
        if (bucket, key) in self.blobs:
            return self.blobs[(bucket, key)][:size]
        return self.objects.get((bucket, key), "").encode()[:size]

    def get_text(self, bucket: str, key: str) -> str | None:
        return self.objects.get((bucket, key))

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        doomed = [k for k in self.objects if k[0] == bucket and k[1].startswith(prefix)]
        for k in doomed:
            del self.objects[k]
        self.deleted_prefixes.append((bucket, prefix))
        return len(doomed)


@dataclass
class FakeNotifier:
    finished: list[Job] = field(default_factory=list)

    def job_finished(self, job: Job) -> None:
        self.finished.append(job)


@dataclass
class SteppingClock:
    value: float = 1_790_000_000.0

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds
