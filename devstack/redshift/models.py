"""What the Data API knows about statements: requests, statements, sub-statements, errors.

Plain data; `engine.py` moves them through their states under its lock and
`api.py` renders them as DescribeStatement / ListStatements shapes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from devstack.redshift.results import ResultSet
from devstack.redshift.sessions import Session, Target

TERMINAL = frozenset({"FINISHED", "FAILED", "ABORTED"})
ACTIVE = frozenset({"SUBMITTED", "PICKED", "STARTED"})
RESULT_RETENTION_SECONDS = 24 * 3600


class ApiError(Exception):
    """An error the Data API answers with (becomes {"__type", "message"})."""

    def __init__(self, type_: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.type, self.message, self.status = type_, message, status



@dataclass
class SubStatement:
    parent_id: str
    index: int  # 1-based
    sql: str
    status: str = "SUBMITTED"
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started: float = 0.0  # time.monotonic()
    duration_ns: int = -1
    result_rows: int = -1
    query_id: int = -1
    result: ResultSet | None = None

    @property
    def id(self) -> str:
        return f"{self.parent_id}:{self.index}"

    @property
    def has_result_set(self) -> bool:
        return self.result is not None

    @property
    def result_size(self) -> int:
        if self.result is not None:
            return self.result.total_bytes
        return 0 if self.status in TERMINAL else -1


@dataclass
class Request:
    """A validated ExecuteStatement / BatchExecuteStatement call."""

    sqls: list[str]
    is_batch: bool
    target: Target | None
    database: str | None
    db_user: str | None = None
    secret_arn: str | None = None
    statement_name: str | None = None
    with_event: bool = False
    result_format: str = "JSON"
    params: dict[str, str] = field(default_factory=dict)
    execution_mode: str = "TRANSACTION"
    session_id: str | None = None
    keep_alive: int | None = None


@dataclass
class Statement:
    id: str
    seq: int
    request: Request
    target: Target
    database: str
    subs: list[SubStatement]
    session: Session | None = None
    status: str = "SUBMITTED"
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started: float = 0.0
    duration_ns: int = -1
    redshift_pid: int = -1
    cancel_requested: bool = False
    conn: psycopg.Connection[Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def is_batch(self) -> bool:
        return self.request.is_batch

    @property
    def query_id(self) -> int:
        ran = [s.query_id for s in self.subs if s.query_id >= 0]
        return ran[-1] if ran else -1

    @property
    def result_rows(self) -> int:
        if self.status not in TERMINAL:
            return -1
        rows = [s.result_rows for s in self.subs if s.result_rows >= 0]
        return sum(rows) if rows else -1

    @property
    def has_result_set(self) -> bool:
        return any(s.has_result_set for s in self.subs)
