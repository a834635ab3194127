"""One client session of the Redshift-protocol endpoint: Redshift SQL run the way the Data API runs it.

A wire session owns one PostgreSQL connection (a Redshift session: TEMP tables and
settings live as long as the client stays connected). Statements take the emulator's
paths: the rule rewriter for Redshift SQL, `run_copy` / `run_unload` for COPY and
UNLOAD (from the local S3), TRUNCATE committing the open transaction as on Redshift.

Plain statements that rewrite to one PostgreSQL statement become PostgreSQL prepared
statements, so parameters, their binary formats and result descriptions come from
PostgreSQL itself. COPY, UNLOAD, TRUNCATE and statements the rewriter splits run at
Execute and describe as returning no rows (none of them returns rows on Redshift).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

from devstack.redshift.contracts import ExecContext, RedshiftError
from devstack.redshift.rewrite import rewrite, split_statements, statement_kind
from devstack.redshift.sessions import Databases, Target
from devstack.redshift.wirecodec import Column, reported_oid

FIRST_QUERY_ID = 500_000_000  # the Data API engine counts from 100,000: ids never collide in stl_load_errors
_query_ids = itertools.count(FIRST_QUERY_ID)
_TXN = {pq.TransactionStatus.IDLE: "I", pq.TransactionStatus.INTRANS: "T", pq.TransactionStatus.INERROR: "E"}


class WireError(Exception):
    """An ErrorResponse to send: PostgreSQL's field codes (S, V, C, M, D, H, P)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(fields.get("M", ""))
        self.fields = fields


@dataclass
class Prepared:
    sql: str
    kind: str
    param_oids: list[int]
    pg_name: bytes | None = None                       # a PostgreSQL prepared statement
    parts: list[str] = field(default_factory=list)     # otherwise, what runs at Execute
    columns: list[Column] = field(default_factory=list)


@dataclass
class Portal:
    prepared: Prepared
    values: list[bytes | None]
    param_formats: list[int]
    result_formats: list[int]


@dataclass
class Outcome:
    tag: str
    columns: list[Column] = field(default_factory=list)
    rows: list[list[bytes | None]] = field(default_factory=list)
    empty: bool = False


class WireSession:
    def __init__(self, databases: Databases, *, target: Target, database: str, user: str, pid: int,
                 s3: Any) -> None:
        self.databases = databases
        self.target, self.database, self.user, self.pid = target, database, user, pid
        self.dbname = databases.ensure(target, database)
        self.conn = databases.connect(self.dbname)
        self.s3 = s3
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self._pg_names = itertools.count(1)
        self._failed_copy_id: int | None = None  # pg_last_copy_id() once the failed COPY's transaction ends

    # ------------------------------------------------------------- lifecycle
    @property
    def transaction_status(self) -> str:
        return _TXN.get(self.conn.pgconn.transaction_status, "I")

    def cancel(self) -> None:
        self.conn.cancel_safe(timeout=2)

    def close(self) -> None:
        self.conn.close()

    # -------------------------------------------------------- extended query
    def parse(self, name: str, sql: str, param_oids: list[int]) -> None:
        kind = statement_kind(sql)
        prepared = Prepared(sql=sql, kind=kind, param_oids=param_oids)
        if kind not in ("copy", "unload"):
            parts = split_statements(rewrite(sql))
            if len(parts) == 1 and kind != "truncate":
                prepared.pg_name = f"w{next(self._pg_names)}".encode()
                pgconn = self.conn.pgconn
                _check(pgconn.prepare(prepared.pg_name, parts[0].encode(), param_oids or None))
                described = _check(pgconn.describe_prepared(prepared.pg_name))
                prepared.param_oids = [described.param_type(i) for i in range(described.nparams)]
                prepared.columns = _columns(described)
            else:
                prepared.parts = parts
        self._forget_statement(name)
        self.statements[name] = prepared

    def bind(self, portal: str, statement: str, values: list[bytes | None], param_formats: list[int],
             result_formats: list[int]) -> None:
        prepared = self._statement(statement)
        if prepared.pg_name is None and values:
            raise _error("0A000", f"devstack: parameters are not supported with {prepared.kind.upper()} statements "
                                  "or statements it rewrites into several (inline the values)")
        self.portals[portal] = Portal(prepared, values, param_formats, result_formats)

    def describe_statement(self, name: str) -> tuple[list[int], list[Column]]:
        prepared = self._statement(name)
        return prepared.param_oids, prepared.columns

    def describe_portal(self, name: str) -> Portal:
        portal = self.portals.get(name)
        if portal is None:
            raise _error("34000", f'portal "{name}" does not exist')
        return portal

    def execute(self, name: str) -> Outcome:
        portal = self.describe_portal(name)
        prepared = portal.prepared
        try:
            if prepared.pg_name is not None:
                formats = portal.param_formats or [0]
                if len(formats) == 1:
                    formats = formats * len(portal.values)
                result = self.conn.pgconn.exec_prepared(prepared.pg_name, portal.values, formats, 0)
                return _outcome(_check(result), prepared.columns)
            return self._run(prepared)
        finally:
            self._settle()

    def close_statement(self, name: str) -> None:
        self._forget_statement(name)

    def close_portal(self, name: str) -> None:
        self.portals.pop(name, None)

    # ----------------------------------------------------------- simple query
    def simple_query(self, sql: str) -> Iterator[Outcome]:
        """Each statement of a Query message in turn; stops at (and raises) the first error."""
        statements = split_statements(sql)
        if not statements:
            yield Outcome("", empty=True)
        for text in statements:
            kind = statement_kind(text)
            prepared = Prepared(sql=text, kind=kind, param_oids=[],
                                parts=[text] if kind in ("copy", "unload") else split_statements(rewrite(text)))
            try:
                outcome = self._run(prepared, with_columns=True)
            finally:
                self._settle()
            yield outcome

    # -------------------------------------------------------------- running
    def _run(self, prepared: Prepared, *, with_columns: bool = False) -> Outcome:
        if prepared.kind in ("copy", "unload"):
            return self._load(prepared.kind, prepared.sql)
        pgconn = self.conn.pgconn
        in_block = pgconn.transaction_status == pq.TransactionStatus.INTRANS
        if prepared.kind == "truncate" and in_block:
            _check(pgconn.exec_(b"COMMIT"))  # Redshift's TRUNCATE commits the open transaction
        outcome = Outcome("", empty=True)
        try:
            for part in prepared.parts:
                result = _check(pgconn.exec_(part.encode()))
                outcome = _outcome(result, _columns(result) if with_columns else [])
        finally:
            if prepared.kind == "truncate" and in_block:
                _check(pgconn.exec_(b"BEGIN"))
        return outcome

    def _load(self, kind: str, sql: str) -> Outcome:
        if kind == "copy":
            from devstack.redshift.copy import run_copy as handler
        else:
            from devstack.redshift.unload import run_unload as handler
        query_id = next(_query_ids)
        ctx = ExecContext(conn=self.conn, s3=self.s3, side_connection=lambda: self.databases.connect(self.dbname),
                          query_id=query_id, session_id=self.pid, user_name=self.user, database=self.database)
        own = self.conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        if own:
            self.conn.execute("BEGIN")
        try:
            outcome = handler(ctx, sql)
        except BaseException as exc:
            if own and self.conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")
            if kind == "copy" and isinstance(exc, RedshiftError) and "stl_load_errors" in exc.message:
                self._failed_copy_id = query_id  # Redshift: pg_last_copy_id() names a COPY that failed on bad data
            raise
        if own:
            self.conn.execute("COMMIT")
        return Outcome(f"{kind.upper()} {outcome.rows}")

    def _settle(self) -> None:
        """After a failed COPY's transaction ends, make pg_last_copy_id() name it (the COPY's own
        set_config was rolled back with it)."""
        if self._failed_copy_id is not None and self.conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            self.conn.execute("SELECT set_config('rs.last_copy_id', %s, false), "
                              "set_config('rs.last_copy_count', '0', false)", (str(self._failed_copy_id),))
            self._failed_copy_id = None

    def _statement(self, name: str) -> Prepared:
        prepared = self.statements.get(name)
        if prepared is None:
            raise _error("26000", f'prepared statement "{name}" does not exist')
        return prepared

    def _forget_statement(self, name: str) -> None:
        old = self.statements.pop(name, None)
        if old is not None and old.pg_name is not None and self.transaction_status != "E":
            try:
                self.conn.pgconn.exec_(b"DEALLOCATE " + old.pg_name)
            except psycopg.Error:
                pass  # a leftover prepared statement costs nothing; it goes with the connection


def _check(result: Any) -> Any:
    if result.status == pq.ExecStatus.FATAL_ERROR:
        raise error_from_result(result, encoding="utf-8")
    if result.status in (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH):
        raise RedshiftError("ERROR: COPY FROM STDIN and COPY TO STDOUT are not supported")
    return result


def _columns(result: Any) -> list[Column]:
    return [Column(name=(result.fname(i) or b"").decode(), type_oid=reported_oid(result.ftype(i)),
                   table_oid=result.ftable(i), column_number=result.ftablecol(i), type_size=result.fsize(i),
                   type_modifier=result.fmod(i), source_oid=result.ftype(i))
            for i in range(result.nfields)]


def _outcome(result: Any, columns: Sequence[Column]) -> Outcome:
    if result.status == pq.ExecStatus.EMPTY_QUERY:
        return Outcome("", empty=True)
    tag = (result.command_status or b"").decode()
    if result.status != pq.ExecStatus.TUPLES_OK:
        return Outcome(tag)
    rows = [[result.get_value(r, c) for c in range(result.nfields)] for r in range(result.ntuples)]
    return Outcome(tag, list(columns), rows)


def _error(code: str, message: str) -> WireError:
    return WireError({"S": "ERROR", "V": "ERROR", "C": code, "M": message})


def error_fields(exc: BaseException) -> dict[str, str]:
    """ErrorResponse fields for anything a statement raised, Redshift-style where the emulator made it."""
    if isinstance(exc, WireError):
        return exc.fields
    if isinstance(exc, RedshiftError):
        return {"S": "ERROR", "V": "ERROR", "C": "XX000", "M": exc.message.removeprefix("ERROR: ").strip()}
    if isinstance(exc, psycopg.Error) and exc.diag is not None and exc.diag.sqlstate:
        d = exc.diag
        fields = {"S": d.severity or "ERROR", "V": d.severity_nonlocalized or "ERROR", "C": d.sqlstate or "XX000",
                  "M": d.message_primary or str(exc)}
        for code, value in (("D", d.message_detail), ("H", d.message_hint), ("P", d.statement_position)):
            if value:
                fields[code] = value
        return fields
    return {"S": "ERROR", "V": "ERROR", "C": "XX000", "M": f"{type(exc).__name__}: {exc}"}
