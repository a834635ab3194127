"""Types shared by the emulator's parts: the statement runner, the SQL rewriter and COPY/UNLOAD.

The Data API server (server.py / engine.py) executes each statement of a request on one
psycopg connection inside the request's transaction. Plain SQL goes through
`rewrite.rewrite()`; COPY and UNLOAD go to `copy.run_copy()` / `unload.run_unload()`
with an `ExecContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg


class RedshiftError(Exception):
    """An error the emulated warehouse reports back, shaped like Redshift's.

    `message` is what DescribeStatement's `Error` shows (e.g.
    "ERROR: Load into table 'orders' failed. Check 'stl_load_errors' system table for details.").
    `code` is Redshift's numeric error code where one exists (1023, 1207, 8001, ...).
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UnsupportedSql(RedshiftError):
    """A Redshift construct the emulator cannot run faithfully; names the construct."""

    def __init__(self, construct: str, detail: str = "") -> None:
        text = f"ERROR: devstack does not support {construct}"
        super().__init__(text + (f": {detail}" if detail else ""))
        self.construct = construct


@dataclass
class ExecContext:
    """What COPY/UNLOAD need to run one statement.

    conn        -- the request's connection, inside its open transaction (do not commit it)
    s3          -- a boto3 S3 client pointed at the local S3 (moto)
    side_connection -- opens a NEW autocommit connection to the same database; load errors
                   are written through it so they survive the COPY's rollback
    query_id    -- the emulated Redshift query id of this statement (stl_load_errors.query,
                   sys_load_error_detail.query_id, DescribeStatement RedshiftQueryId)
    session_id  -- the emulated session (process) id
    user_name   -- database user the statement runs as
    database    -- the Redshift database name the client asked for
    """

    conn: psycopg.Connection[Any]
    s3: Any
    side_connection: Callable[[], psycopg.Connection[Any]]
    query_id: int
    session_id: int
    user_name: str
    database: str


@dataclass(frozen=True)
class StatementOutcome:
    """Rows affected (COPY: rows loaded; UNLOAD: rows unloaded) and an optional result set."""

    rows: int
    columns: tuple[str, ...] = ()
    records: tuple[tuple[Any, ...], ...] = ()
