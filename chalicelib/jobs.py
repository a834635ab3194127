"""Jobs: one unit of warehouse work, its statuses and the transitions between them (pure)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar


class JobStatus(str, Enum):
    QUEUED = "QUEUED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class JobKind(str, Enum):
    LOAD = "LOAD"
    FOLLOWUP = "FOLLOWUP"
    UNLOAD = "UNLOAD"            # a query or table to an S3 prefix
    ARCHIVE = "ARCHIVE"          # UNLOAD rows older than a cutoff, then DELETE exactly those
    TABLE_COPY = "TABLE_COPY"    # one table from a source warehouse to a target (UNLOAD, then COPY)
    COPY_RUN = "COPY_RUN"        # a copy of tables / schemas: fans out TABLE_COPY jobs, then views


# Kinds whose work is described by `params` and moves data out of or between warehouses.
MOVE_KINDS = frozenset({JobKind.UNLOAD, JobKind.ARCHIVE, JobKind.TABLE_COPY, JobKind.COPY_RUN})


# QUEUED again from SUBMITTED/RUNNING is a retry (or a chain's next step); from
# FAILED/CANCELLED it is a retry someone asked for. QUEUED -> RUNNING without a
# statement is a copy run supervising its table jobs.
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.SUBMITTED: frozenset({JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED,
                                    JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED, JobStatus.CANCELLED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED}),
}


class InvalidTransition(ValueError):
    def __init__(self, job_id: str, current: JobStatus, wanted: JobStatus) -> None:
        super().__init__(f"job {job_id}: cannot go from {current.value} to {wanted.value}")


# File references one batch or job may store: DynamoDB items hold at most 400 KB, and a job's
# item also carries its errors and steps. 1,000 files of 1 KB keys would not fit.
FILE_RECORD_BUDGET = 256 * 1024


def split_for_job(files: tuple[FileRef, ...], max_files: int) -> tuple[tuple[FileRef, ...], tuple[FileRef, ...]]:
    """The files one job takes (at most `max_files`, within FILE_RECORD_BUDGET; at least one) and the rest."""
    used, take = 0, 0
    for f in files[:max_files]:
        if take and used + f.record_bytes > FILE_RECORD_BUDGET:
            break
        used += f.record_bytes
        take += 1
    return files[:take], files[take:]


@dataclass(frozen=True)
class FileRef:
    """One version of one S3 object."""

    bucket: str
    key: str
    version: str  # version id, or the ETag where the bucket is not versioned
    size: int
    created: str = ""  # when S3 says it was written (ISO-8601); orders an upsert's files

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def as_json(self) -> str:
        """The reference as compact JSON text, the form the ledger stores it in."""
        return json.dumps([self.bucket, self.key, self.version, self.size, self.created], ensure_ascii=False,
                          separators=(",", ":"))

    @property
    def record_bytes(self) -> int:
        """What this reference takes in a stored batch or job: its JSON text (escapes included: a key of
        quotes doubles) and a little overhead. A DynamoDB item holds at most 400 KB; S3 keys may be 1 KB."""
        return len(self.as_json().encode()) + 8


@dataclass(frozen=True)
class LoadError:
    """A bad row as the load error views describe it."""

    file: str
    line: int | None
    column: str
    value: str
    reason: str
    code: int | None = None


@dataclass(frozen=True)
class Job:
    id: str
    kind: JobKind
    pipeline: str          # load pipeline or follow-up name
    target: str            # "<warehouse>:<schema.table>" (the FIFO group)
    status: JobStatus
    files: tuple[FileRef, ...]
    statement_id: str | None
    attempt: int
    max_attempts: int
    created_at: float
    updated_at: float
    submitted_at: float | None
    finished_at: float | None
    rows: int | None
    error: str | None
    load_errors: tuple[LoadError, ...] = ()
    steps: tuple[str, ...] = ()
    step: int = 0          # next step of a chained follow-up or of a multi-step move
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)   # what a move job does (fixed when it is created)
    results: Mapping[str, Any] = field(default_factory=dict, hash=False)  # what its finished steps found (row counts, files)
    parent: str | None = None  # the copy run a TABLE_COPY job belongs to

    def transition(self, status: JobStatus, now: float, **changes: Any) -> Job:
        if status not in ALLOWED[self.status] and status is not self.status:
            raise InvalidTransition(self.id, self.status, status)
        if "files" in changes:  # the ledger writes them once, with the job (a retry or split is a new job)
            raise ValueError(f"job '{self.id}': a job's files are fixed when it is created")
        return dataclasses.replace(self, status=status, updated_at=now, **changes)

    # -- persistence: plain JSON/DynamoDB values; times as integer epoch milliseconds, because
    # DynamoDB rejects Python floats and a float round trip through Decimal is not exact.
    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.id, "kind": self.kind.value, "pipeline": self.pipeline, "target": self.target,
            "status": self.status.value, "attempt": self.attempt, "max_attempts": self.max_attempts,
            "created_ms": _ms(self.created_at), "updated_ms": _ms(self.updated_at), "step": self.step,
            "files": [{"bucket": f.bucket, "key": f.key, "version": f.version, "size": f.size, "created": f.created} for f in self.files],
            "load_errors": [dataclasses.asdict(e) for e in self.load_errors],
            "steps": list(self.steps),
        }
        # JSON text: DynamoDB rejects floats, and these maps are read whole, never queried.
        if self.params:
            item["params_json"] = json.dumps(self.params, sort_keys=True)
        if self.results:
            item["results_json"] = json.dumps(self.results, sort_keys=True)
        for name in ("statement_id", "rows", "error", "parent"):
            value = getattr(self, name)
            if value is not None:
                item[name] = value
        for name in ("submitted_at", "finished_at"):
            value = getattr(self, name)
            if value is not None:
                item[name.replace("_at", "_ms")] = _ms(value)
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        return cls(
            id=item["id"], kind=JobKind(item["kind"]), pipeline=item["pipeline"], target=item["target"],
            status=JobStatus(item["status"]),
            files=tuple(FileRef(f["bucket"], f["key"], f["version"], int(f["size"]), f.get("created", ""))
                        for f in item.get("files", [])),
            statement_id=item.get("statement_id"), attempt=int(item["attempt"]),
            max_attempts=int(item["max_attempts"]), created_at=_time(item, "created"),
            updated_at=_time(item, "updated"), submitted_at=_time(item, "submitted"),
            finished_at=_time(item, "finished"), rows=_int(item.get("rows")), error=item.get("error"),
            load_errors=tuple(LoadError(**e) for e in item.get("load_errors", [])),
            steps=tuple(item.get("steps", [])), step=int(item.get("step", 0)),
            params=json.loads(item["params_json"]) if item.get("params_json") else {},
            results=json.loads(item["results_json"]) if item.get("results_json") else {},
            parent=item.get("parent"),
        )

    def to_public_dict(self) -> dict[str, Any]:
        """What GET /jobs/{id} and the job events show."""
        return {
            "id": self.id, "kind": self.kind.value, "pipeline": self.pipeline, "target": self.target,
            "status": self.status.value, "attempt": self.attempt, "max_attempts": self.max_attempts,
            "created_at": _iso(self.created_at), "updated_at": _iso(self.updated_at),
            "submitted_at": _iso(self.submitted_at), "finished_at": _iso(self.finished_at),
            "duration_seconds": round(self.finished_at - self.created_at, 3) if self.finished_at else None,
            "files": [f.url for f in self.files], "file_count": len(self.files),
            "bytes": sum(f.size for f in self.files), "rows": self.rows, "statement_id": self.statement_id,
            "steps": list(self.steps), "error": self.error,
            "load_errors": [dataclasses.asdict(e) for e in self.load_errors],
            **({"params": dict(self.params)} if self.params else {}),
            **({"results": dict(self.results)} if self.results else {}),
            **({"parent": self.parent} if self.parent else {}),
        }


def new_job_id(now: float, rand: str) -> str:
    """Time-sortable: `20261122T113400Z-3f9a1c2b`."""
    stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{rand}"


_RETRYABLE = re.compile(r"\b1023\b|serializable isolation|throttl|rate exceeded|activestatementsexceeded|"
                        r"activesessionsexceeded|connection reset|server closed the connection|"
                        r"terminating connection|could not connect", re.IGNORECASE)


def is_retryable_error(message: str | None) -> bool:
    """Errors that a later attempt can get past (conflicts, throttling, dropped connections)."""
    return bool(message) and bool(_RETRYABLE.search(message or ""))


def retry_delay(attempt: int) -> int:
    """Seconds before attempt `attempt + 1`: 5, 10, 20, … capped at 300 (deterministic)."""
    return min(5 * 2 ** max(0, attempt - 1), 300)


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class JobSummary:
    """An unfinished job as the sweeper and the busy checks see it: read without its file list,
    which may hold hundreds of references (reading them all on every sweep grew with the backlog)."""

    id: str
    kind: JobKind
    pipeline: str
    target: str
    status: JobStatus
    updated_at: float

    FIELDS: ClassVar[tuple[str, ...]] = ("id", "kind", "pipeline", "target", "status", "updated_ms")

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> JobSummary:
        return cls(id=item["id"], kind=JobKind(item["kind"]), pipeline=item["pipeline"], target=item["target"],
                   status=JobStatus(item["status"]), updated_at=_time(item, "updated"))

    @classmethod
    def of(cls, job: Job) -> JobSummary:
        return cls(job.id, job.kind, job.pipeline, job.target, job.status, job.updated_at)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _time(item: dict[str, Any], name: str) -> Any:
    """Epoch seconds from `<name>_ms` (or a legacy float `<name>_at`); None when absent."""
    if item.get(f"{name}_ms") is not None:
        return int(item[f"{name}_ms"]) / 1000
    legacy = item.get(f"{name}_at")
    return None if legacy is None else float(legacy)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


__all__ = [
    "FileRef",
    "InvalidTransition",
    "Job",
    "JobKind",
    "JobStatus",
    "JobSummary",
    "MOVE_KINDS",
    "LoadError",
    "is_retryable_error",
    "new_job_id",
    "retry_delay",
]
