"""Redshift over a direct connection (redshift-connector), for warehouses the Data API cannot reach.

Chosen per warehouse with `connection = "direct"` in the catalog. It implements the same
WarehousePort as the Data API adapter, so the worker runs the same plans, with one
difference the Data API hides: the Lambda has to hold the connection while the batch
runs. So:

- `submit` runs the statements as one transaction, synchronously, within a budget
  below the Lambda timeout (each statement gets `SET statement_timeout` to what is
  left). It records the outcome - status, error, per-statement rows and query ids,
  duration - in the statement store under a statement id derived from the client
  token, so any Lambda can `describe` it, and a resubmission with the same token
  returns that id instead of running the batch twice.
- No completion event is published: EventBridge refuses `aws.*` sources from
  PutEvents, so a "Redshift Data Statement Status Change" cannot be faked. The
  worker finishes the job right after `submit` returns (service.py); should it die
  first, its message comes back and `describe` finishes the job, and the sweeper
  does the same for jobs nobody looks at.
- A STARTED record whose deadline passed long ago lost its worker (timeout, crash).
  The connection's end rolled the transaction back, so it is reported FAILED.
- Errors read like the Data API's ("ERROR: <message>"), so `is_retryable_error`
  classifies them the same; a connection that cannot be opened raises
  DirectConnectError ("could not connect ...": transient, the job stays QUEUED).
- Load errors (`query`), table columns and pings run over a fresh connection too.

redshift_connector is imported only when a direct warehouse is first used.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chalicelib import resources
from chalicelib.adapters.redshift_signin import RedshiftSignIn, SignInError
from chalicelib.adapters.statement_store import STARTED, StatementRecord, StatementStore, SubOutcome
from chalicelib.pipelines import TableName, Warehouse
from chalicelib.ports import StatementInfo, SubStatement

STATEMENT_ID_PREFIX = "direct-"
# A worker must record the outcome before Lambda stops it: leave time to connect, commit and write.
DEFAULT_BUDGET_SECONDS = resources.FUNCTION_TIMEOUT_SECONDS - 15
LOST_AFTER_SECONDS = 60  # past the deadline, a STARTED record's worker is certainly gone
_ID_NAMESPACE = uuid.UUID("7d1f3c52-2b4e-4d0e-9a55-6c1c2f4e8b10")
_AUTH_FAILURES = ("28000", "28P01", "password authentication failed")

Connect = Callable[..., Any]


class DirectConnectError(ConnectionError):
    """The warehouse endpoint could not be reached; worth trying again later."""


class DirectStatementNotFound(LookupError):
    """ResourceNotFound: the statement store has no such statement (expired or never ran)."""


def is_direct_statement(statement_id: str) -> bool:
    return statement_id.startswith(STATEMENT_ID_PREFIX)


def statement_id_for(warehouse: str, token: str) -> str:
    """Same warehouse + client token → same id, which is what makes submit idempotent."""
    return STATEMENT_ID_PREFIX + str(uuid.uuid5(_ID_NAMESPACE, f"{warehouse}\0{token}"))


def _connector_connect(**kwargs: Any) -> Any:
    import redshift_connector  # lazy: only Lambdas that reach a direct warehouse pay for the import

    return redshift_connector.connect(**kwargs)


class DirectWarehouse:
    def __init__(self, *, store: StatementStore, warehouses: Mapping[str, Warehouse],
                 sign_in: RedshiftSignIn | None = None, connect: Connect = _connector_connect,
                 endpoint_override: str | None = None, budget_seconds: float = DEFAULT_BUDGET_SECONDS,
                 now: Callable[[], float] = time.time) -> None:
        self.store = store
        self.warehouses = warehouses
        self.sign_in = sign_in or RedshiftSignIn()
        self._connect_fn = connect
        # devstack's local endpoint ("host:port", plain TCP on loopback) in place of every catalog host.
        self.endpoint_override = endpoint_override
        self.budget_seconds = budget_seconds
        self._now = now

    # ------------------------------------------------------------- the batch
    def submit(self, warehouse: Warehouse, sqls: Sequence[str], *, name: str, token: str) -> str:
        statement_id = statement_id_for(warehouse.name, token)
        if self.store.get(statement_id) is not None:
            return statement_id  # a redelivery: the batch ran (or runs) already
        started, clock = self._now(), time.monotonic()
        conn = self._open(warehouse, timeout=self.budget_seconds)
        try:
            record = StatementRecord(id=statement_id, token=token, warehouse=warehouse.name, name=name,
                                     status=STARTED, started_at=started, deadline=started + self.budget_seconds,
                                     subs=tuple(SubOutcome(sql=s) for s in sqls))
            if self.store.claim(record) is not None:
                return statement_id  # another worker got there first
            status, error, subs = self._run(conn, record, list(sqls), clock)
        finally:
            _close(conn)
        self.store.finish(statement_id, status=status, error=error, subs=subs, finished_at=self._now())
        return statement_id

    def _run(self, conn: Any, record: StatementRecord, sqls: list[str],
             clock: float) -> tuple[str, str | None, list[SubOutcome]]:
        deadline = clock + self.budget_seconds
        cursor = conn.cursor()
        subs: list[SubOutcome] = []
        try:
            cursor.execute("SELECT pg_backend_pid()")
            self.store.set_backend(record.id, int(cursor.fetchone()[0]))
            for sql in sqls:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _OutOfTime()
                if subs and self._cancel_requested(record.id):
                    raise _Cancelled()
                # An int we computed, not input: bounds this statement by what is left of the budget.
                cursor.execute(f"SET statement_timeout TO {max(1, int(left * 1000))}")
                began = time.monotonic()
                cursor.execute(sql)
                rows: int | None = cursor.rowcount if cursor.rowcount is not None and cursor.rowcount >= 0 else None
                query_id = None
                if _is_copy(sql):  # rows loaded and the query id, as the Data API reports them
                    cursor.execute("SELECT pg_last_copy_count(), pg_last_copy_id()")
                    rows, query_id = (int(v) for v in cursor.fetchone())
                subs.append(SubOutcome(sql=sql, status="FINISHED", rows=rows, query_id=query_id,
                                       duration_ms=(time.monotonic() - began) * 1000))
            conn.commit()
            return "FINISHED", None, subs
        except Exception as exc:
            return self._failed(conn, cursor, record, sqls, subs, exc, deadline)

    def _failed(self, conn: Any, cursor: Any, record: StatementRecord, sqls: list[str], subs: list[SubOutcome],
                exc: Exception, deadline: float) -> tuple[str, str | None, list[SubOutcome]]:
        _rollback(conn)
        cancelled = isinstance(exc, _Cancelled) or self._cancel_requested(record.id)
        if cancelled:
            error = None
        elif isinstance(exc, _OutOfTime) or time.monotonic() >= deadline:
            error = (f"ERROR: the batch ran past the direct connection's budget of {self.budget_seconds:g}s "
                     f"(it must end before the worker Lambda's timeout): {error_text(exc)}")
        else:
            error = error_text(exc)
        failed_at = len(subs)
        if failed_at < len(sqls) and not isinstance(exc, (_OutOfTime, _Cancelled)):
            query_id = _last_copy_id(cursor) if _is_copy(sqls[failed_at]) else None
            subs.append(SubOutcome(sql=sqls[failed_at], status="ABORTED" if cancelled else "FAILED", error=error,
                                   query_id=query_id))
        subs += [SubOutcome(sql=s, status="ABORTED") for s in sqls[len(subs):]]
        return ("ABORTED" if cancelled else "FAILED"), error, subs

    def _cancel_requested(self, statement_id: str) -> bool:
        current = self.store.get(statement_id)
        return bool(current and current.cancel_requested)

    # ---------------------------------------------------------- the outcome
    def describe(self, statement_id: str) -> StatementInfo:
        record = self.store.get(statement_id)
        if record is None:
            raise DirectStatementNotFound(f"ResourceNotFoundException: direct statement {statement_id} is not in "
                                          "the statement store (it expired, or never ran)")
        if not record.finished and self._now() > record.deadline + LOST_AFTER_SECONDS:
            error = (f"ERROR: the worker running direct statement {statement_id} stopped before recording its "
                     "outcome (Lambda timeout or crash); the dropped connection rolled the batch back")
            subs = [SubOutcome(sql=s.sql, status="ABORTED") for s in record.subs]
            record = self.store.finish(statement_id, status="FAILED", error=error, subs=subs,
                                       finished_at=self._now()) or self.store.get(statement_id) or record
        return _info(record)

    def cancel(self, statement_id: str) -> None:
        record = self.store.request_cancel(statement_id)
        if record is None:
            raise DirectStatementNotFound(f"ResourceNotFoundException: direct statement {statement_id} is unknown")
        if record.finished or record.backend_pid is None:
            return  # finished already, or the worker checks the flag before its first statement
        warehouse = self.warehouses[record.warehouse]
        conn = self._open(warehouse, timeout=15)
        try:
            conn.autocommit = True
            conn.cursor().execute("SELECT pg_cancel_backend(%s)", (record.backend_pid,))
        finally:
            _close(conn)

    # ------------------------------------------------------- short queries
    def query(self, warehouse: Warehouse, sql: str, *, timeout: float = 15.0) -> list[dict[str, Any]]:
        conn = self._open(warehouse, timeout=timeout)
        try:
            conn.autocommit = True
            cursor = conn.cursor()
            cursor.execute(sql)
            if not cursor.description:
                return []
            names = [_text(d[0]) for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        finally:
            _close(conn)

    def table_columns(self, warehouse: Warehouse, table: TableName) -> list[str]:
        conn = self._open(warehouse, timeout=15)
        try:
            conn.autocommit = True
            cursor = conn.cursor()
            cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                           "AND table_name = %s ORDER BY ordinal_position", (table.schema, table.name))
            return [_text(row[0]) for row in cursor.fetchall()]
        finally:
            _close(conn)

    def ping(self, warehouse: Warehouse) -> None:
        conn = self._open(warehouse, timeout=10)
        try:
            conn.autocommit = True
            conn.cursor().execute("SELECT 1")
        finally:
            _close(conn)

    # ---------------------------------------------------------- connecting
    def endpoint(self, warehouse: Warehouse) -> tuple[str, int, bool]:
        """(host, port, ssl) to connect to: the catalog's, or devstack's override without SSL."""
        if self.endpoint_override:
            host, _, port = self.endpoint_override.rpartition(":")
            return host, int(port), False
        return warehouse.host or "", warehouse.port, True

    def _open(self, warehouse: Warehouse, *, timeout: float) -> Any:
        try:
            creds = self.sign_in.credentials(warehouse)
        except SignInError:
            raise
        except Exception as exc:
            raise SignInError(f"warehouse '{warehouse.name}': could not get database credentials: "
                              f"{type(exc).__name__}: {exc}") from exc
        host, port, ssl = self.endpoint(warehouse)
        try:
            return self._connect_fn(host=host, port=port, database=warehouse.database, user=creds.user,
                                    password=creds.password, ssl=ssl, timeout=int(timeout) + 5,
                                    application_name="redshift-loader")
        except Exception as exc:
            text = error_text(exc)
            if any(marker in text for marker in _AUTH_FAILURES):
                self.sign_in.forget(warehouse)  # a rotated secret: fetch it again next time
                raise SignInError(f"warehouse '{warehouse.name}': {host}:{port} refused user {creds.user}: "
                                  f"{text}") from None
            raise DirectConnectError(f"could not connect to warehouse '{warehouse.name}' at {host}:{port}: "
                                     f"{text}") from None


class _OutOfTime(Exception):
    pass


class _Cancelled(Exception):
    pass


def error_text(exc: BaseException) -> str:
    """An error as the Data API words it ("ERROR: <message>"), whatever layer raised it."""
    fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else None
    if fields and "M" in fields:  # a server ErrorResponse: S(everity), C(ode), M(essage), D(etail)
        text = f"ERROR: {fields['M']}"
        if fields.get("D"):
            text += f"\n  Detail: {fields['D']}"
        return text
    name = type(exc).__name__
    if name in ("InterfaceError", "OperationalError") or isinstance(exc, OSError):
        # The driver's socket-level failures: word them so the retry policy sees a dropped connection.
        return f"server closed the connection unexpectedly ({name}: {exc})"
    return f"ERROR: {name}: {exc}"


def _info(record: StatementRecord) -> StatementInfo:
    subs = tuple(SubStatement(id=f"{record.id}:{i}", status=s.status, error=s.error, rows=s.rows,
                              query_id=s.query_id, sql=s.sql)
                 for i, s in enumerate(record.subs, start=1))
    known = [s.rows for s in record.subs if s.rows is not None and s.rows >= 0]
    status = record.status if record.finished else "STARTED"
    duration = (record.finished_at - record.started_at) * 1000 if record.finished_at is not None else None
    return StatementInfo(id=record.id, status=status, error=record.error,
                         rows=sum(known) if known and record.finished else None, duration_ms=duration,
                         sub_statements=subs)


def _is_copy(sql: str) -> bool:
    return sql.lstrip().upper().startswith("COPY ")


def _last_copy_id(cursor: Any) -> int | None:
    """The failed COPY's query id (Redshift keeps pg_last_copy_id for a COPY that failed on bad data)."""
    try:
        cursor.execute("SELECT pg_last_copy_id()")
        value = int(cursor.fetchone()[0])
    except Exception:  # diagnostics only: the batch's error is what matters
        return None
    return value if value > 0 else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


def _rollback(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:
        pass  # the connection may be gone; closing it rolls back just the same


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass
