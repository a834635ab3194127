"""Interfaces between the use cases (service.py) and the outside world.

Adapters under chalicelib/adapters implement them against AWS; unit tests
replace them with the in-memory fakes in tests/unit/fakes.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.jobs import FileRef, Job, JobStatus, JobSummary
from chalicelib.pipelines import TableName, Warehouse

TERMINAL_STATEMENT_STATES = frozenset({"FINISHED", "FAILED", "ABORTED"})


@dataclass(frozen=True)
class SubStatement:
    id: str
    status: str
    error: str | None = None
    rows: int | None = None
    query_id: int | None = None
    sql: str = ""

    @property
    def is_copy(self) -> bool:
        return self.sql.lstrip().upper().startswith("COPY ")


@dataclass(frozen=True)
class StatementInfo:
    """What DescribeStatement says about a (batch) statement."""

    id: str
    status: str
    error: str | None = None
    rows: int | None = None
    duration_ms: float | None = None
    sub_statements: tuple[SubStatement, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATEMENT_STATES

    def failed_query_ids(self) -> list[int]:
        """Redshift query ids of failed sub-statements (to look up load errors)."""
        ids = [s.query_id for s in self.sub_statements if s.status == "FAILED" and s.query_id not in (None, -1)]
        return [int(i) for i in ids if i is not None]

    def copy_rows(self) -> int | None:
        """Rows read from files by the COPY sub-statements (None when unknown)."""
        known = [s.rows for s in self.sub_statements if s.is_copy and s.rows is not None and s.rows >= 0]
        if known:
            return sum(known)
        return self.rows if self.rows is not None and self.rows >= 0 else None


class WarehousePort(Protocol):
    def submit(self, warehouse: Warehouse, sqls: Sequence[str], *, name: str, token: str) -> str:
        """Submit statements as one transaction with a completion event; returns the statement id."""

    def describe(self, statement_id: str) -> StatementInfo: ...

    def cancel(self, statement_id: str) -> None: ...

    def query(self, warehouse: Warehouse, sql: str, *, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Run a short read-only query and return its rows (polls with backoff)."""

    def table_columns(self, warehouse: Warehouse, table: TableName) -> list[str]: ...

    def ping(self, warehouse: Warehouse) -> None:
        """Raise if the warehouse cannot be reached with the configured credentials."""


@dataclass(frozen=True)
class OpenBatch:
    """Files collected for one pipeline, not yet handed to a job."""

    pipeline: str
    batch_id: str
    files: tuple[FileRef, ...]
    opened_at: float
    version: int  # bumps on every change; sealing is conditional on it

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class BatchTally:
    """What an open batch holds, without its file list (cheap to read after every append)."""

    batch_id: str
    files: int
    bytes: int
    record_bytes: int  # the stored size of its file references (see FileRef.record_bytes)

    @classmethod
    def of(cls, batch_id: str, files: tuple[FileRef, ...]) -> BatchTally:
        return cls(batch_id, len(files), sum(f.size for f in files), sum(f.record_bytes for f in files))


@dataclass(frozen=True)
class AddResult:
    """What recording a group of landed files did: new ones went into the open batch together."""

    added: tuple[FileRef, ...] = ()
    duplicates: tuple[tuple[FileRef, str | None], ...] = ()  # (file, the status it already had)
    tally: BatchTally | None = None  # the open batch the new files went into
    opened: bool = False  # this call opened the batch


@dataclass
class JobPage:
    jobs: list[Job]
    next_token: str | None = None


# Files per ledger write: a transaction holds at most 100 items (each file's record and the append).
ADD_GROUP = 99
# File references per ledger write: the open batch seals at FILE_RECORD_BUDGET (256 KB), so one more
# group keeps its item under DynamoDB's 400 KB even for files with 1 KB keys.
ADD_GROUP_BYTES = 96 * 1024


def ledger_groups(files: Sequence[FileRef]) -> list[list[FileRef]]:
    """`files` in as few ledger writes as the limits allow, of even sizes (a 100-file delivery is
    two writes of 50, not 99 and 1)."""
    if not files:
        return []
    count = -(-len(files) // ADD_GROUP)
    size = -(-len(files) // count)
    groups: list[list[FileRef]] = []
    for start in range(0, len(files), size):
        group: list[FileRef] = []
        used = 0
        for file in files[start:start + size]:
            if group and used + file.record_bytes > ADD_GROUP_BYTES:
                groups.append(group)
                group, used = [], 0
            group.append(file)
            used += file.record_bytes
        groups.append(group)
    return groups


class LedgerPort(Protocol):
    def add_files(self, pipeline: str, files: Sequence[FileRef], *, now: float, batch_id: str,
                  force: bool) -> AddResult:
        """Record each file version once and append the new ones to the pipeline's open batch, all in
        one write (at most ADD_GROUP files); `batch_id` names the batch if this opens one."""

    def open_batch(self, pipeline: str) -> OpenBatch | None: ...

    def open_batches(self) -> list[OpenBatch]: ...

    def busy_pipelines(self) -> set[str]:
        """Pipelines with an open batch or an unfinished LOAD job (cheap: no file lists)."""

    def seal_batch(self, batch: OpenBatch, job: Job, *, remainder: tuple[FileRef, ...] = (),
                   remainder_id: str | None = None) -> bool:
        """Atomically close `batch` (if unchanged) and create `job`. False if it changed meanwhile.

        Files in `remainder` stay behind as a new open batch `remainder_id`.
        """

    def create_job(self, job: Job) -> bool: ...

    def get_job(self, job_id: str) -> Job | None: ...

    def save_job(self, job: Job, *, expected: JobStatus, expected_attempt: int | None = None) -> bool:
        """Write `job` if the stored one still has status `expected`; False otherwise. The job's files
        are not written again: they are fixed when it is created."""

    def set_receipt(self, job_id: str, receipt: str | None) -> Job | None:
        """Record a delivery's receipt on the job; the job as stored after that, None if there is none."""

    def get_receipt(self, job_id: str) -> str | None: ...

    def list_jobs(self, *, pipeline: str | None, status: str | None, since: float | None,
                  limit: int, next_token: str | None) -> JobPage: ...

    def active_jobs(self) -> list[JobSummary]: ...

    def mark_files(self, files: Iterable[FileRef], status: str, job_id: str) -> None: ...

    def file_status(self, file: FileRef) -> str | None: ...


class QueuePort(Protocol):
    def enqueue_job(self, job_id: str, *, group: str, dedup_id: str) -> None: ...

    def hide(self, receipt: str, seconds: int) -> None:
        """Change a jobs-queue message's visibility (0 = redeliver now)."""

    def schedule_flush(self, pipeline: str, batch_id: str, delay_seconds: int) -> None:
        """Ask the router, after a delay, to seal the batch if it is still open."""

    def dead_letter(self, queue: str, body: str, reason: str) -> None:
        """Park a message that can never succeed on that queue's DLQ, with the reason."""


class StoragePort(Protocol):
    def put_text(self, bucket: str, key: str, body: str) -> None: ...

    def head(self, bucket: str, key: str) -> FileRef | None: ...

    def list(self, bucket: str, prefix: str) -> Iterable[FileRef]: ...

    def read_head(self, bucket: str, key: str, size: int) -> bytes:
        """The first `size` bytes of an object (a file's header row)."""

    def get_text(self, bucket: str, key: str) -> str | None:
        """A small object's text (a manifest, a report); None if there is no such object."""

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many."""


class NotifierPort(Protocol):
    def job_finished(self, job: Job) -> None: ...


@dataclass
class Clock:
    """Wall-clock seconds; tests substitute a fixed or stepping one."""

    offset: float = 0.0
    _fixed: float | None = field(default=None)

    def now(self) -> float:
        import time

        return (self._fixed if self._fixed is not None else time.time()) + self.offset
