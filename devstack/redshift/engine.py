"""Statement execution: the asynchronous heart of the Data API emulator.

A submitted statement (ExecuteStatement) or batch (BatchExecuteStatement) is a
`Statement` holding one `SubStatement` per SQL text; both go SUBMITTED →
PICKED → STARTED → FINISHED | FAILED | ABORTED on a thread pool.

Transaction rules, chosen to match Redshift:
- ExecuteStatement runs in autocommit (its own implicit transaction); COPY and
  UNLOAD get an explicit BEGIN/COMMIT around them so a failed load leaves
  nothing behind. Inside a session with an open user transaction (`BEGIN` sent
  earlier) statements just join it.
- A TRANSACTION batch is one transaction: the first failure rolls back all,
  the failing sub-statement is FAILED and the rest ABORTED.
- TRUNCATE commits implicitly in Redshift (PostgreSQL's is transactional), so
  inside a batch we COMMIT before and after it: work before a TRUNCATE survives
  a later failure, exactly as on Redshift.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import pq
from psycopg import sql as pgsql

from devstack.redshift.contracts import ExecContext, RedshiftError, StatementOutcome
from devstack.redshift.ddlhook import ddl_hook
from devstack.redshift.events import FaultSource
from devstack.redshift.injected import (BackendKiller, doomed_sub, lost_connection_text, restarted_copy,
                                        serializable_violation)
from devstack.redshift.models import RESULT_RETENTION_SECONDS, TERMINAL, ApiError, Request, Statement, SubStatement
from devstack.redshift.params import referenced_names, to_literals, to_pyformat
from devstack.redshift.pgstream import stream_statement
from devstack.redshift.results import ResultOptions, ResultSet, result_from_outcome
from devstack.redshift.sessions import Databases, Session

from devstack.redshift.rewrite import rewrite, split_statements, statement_kind

FIRST_QUERY_ID = 100_000
MAX_SESSIONS_PER_TARGET = 500
FIRST_PID = 1_073_750_000  # Redshift process ids look like this


class _Cancelled(Exception):
    pass


class Engine:
    def __init__(
        self,
        databases: Databases,
        *,
        s3_endpoint: str | None,
        region: str,
        max_workers: int,
        max_active_statements: int = 200,
        result_options: ResultOptions | None = None,
        on_terminal: Callable[[Statement], None] | None = None,
    ) -> None:
        self.databases = databases
        self.s3_endpoint = s3_endpoint
        self.region = region
        self.max_active_statements = max_active_statements
        self.result_options = result_options or ResultOptions()
        self.on_terminal = on_terminal
        self.statements: dict[str, Statement] = {}
        self.sessions: dict[str, Session] = {}
        self._active: dict[str, set[str]] = {}  # target key → ids of unfinished statements
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._query_ids = itertools.count(FIRST_QUERY_ID)
        self._pids = itertools.count(FIRST_PID)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="redshift-data")
        self._s3: Any = None
        self._s3_lock = threading.Lock()
        self.faults: FaultSource | None = None  # injected warehouse faults (serializable, pg_restart)

    # --- submit / lookup -----------------------------------------------------

    def submit(self, req: Request) -> Statement:
        with self._lock:
            session = None
            if req.session_id:
                session = self.sessions.get(req.session_id.split(":")[0])
                if session is None or session.closed:
                    raise ApiError("ValidationException", f"Session {req.session_id} does not exist or has expired.")
                if session.busy_with:
                    raise ApiError("ValidationException",
                                   f"Session {session.id} is busy running statement {session.busy_with}. "
                                   "Statements in a session run one at a time.")
                target, database = session.target, session.database
                if req.keep_alive:
                    session.keep_alive = req.keep_alive
            else:
                assert req.target is not None and req.database is not None
                target, database = req.target, req.database
            active = self._active.setdefault(target.key, set())
            if len(active) >= self.max_active_statements:
                raise ApiError("ActiveStatementsExceededException",
                               f"Active statements exceeded the allowed quota ({self.max_active_statements}).")
            sid = str(uuid.uuid4())
            if session is None and req.keep_alive:
                open_sessions = sum(1 for s in self.sessions.values() if s.target == target and not s.closed)
                if open_sessions >= MAX_SESSIONS_PER_TARGET:
                    raise ApiError("ActiveSessionsExceededException",
                                   f"Active sessions exceeded the allowed quota ({MAX_SESSIONS_PER_TARGET}).")
                session = Session(str(uuid.uuid4()), target, database, req.db_user, req.secret_arn,
                                  None, req.keep_alive, next(self._pids))
                self.sessions[session.id] = session
            subs = [SubStatement(sid, i + 1, text) for i, text in enumerate(req.sqls)]
            st = Statement(sid, next(self._seq), req, target, database, subs, session)
            if session is not None:
                session.busy_with = sid
            self.statements[sid] = st
            active.add(sid)
        self._executor.submit(self._run, st)
        return st

    def lookup(self, statement_id: str) -> tuple[Statement, SubStatement | None]:
        """The statement for an Id, and the sub-statement when the Id is `<id>:<n>`."""
        base, _, index = statement_id.partition(":")
        st = self.statements.get(base)
        if st is None:
            raise ApiError("ResourceNotFoundException", "Query does not exist.")
        if not index:
            return st, None
        try:
            return st, st.subs[int(index) - 1] if int(index) >= 1 else None  # type: ignore[return-value]
        except (ValueError, IndexError):
            raise ApiError("ResourceNotFoundException", "Query does not exist.") from None

    # --- cancel --------------------------------------------------------------

    def cancel(self, statement_id: str) -> None:
        st, _ = self.lookup(statement_id)
        with self._lock:
            if st.status in TERMINAL:
                raise ApiError("ValidationException",
                               f"Could not cancel a query that is already in {st.status} state.")
            st.cancel_requested = True
            if st.status != "STARTED":
                # Not running yet: the worker will see the flag and skip it.
                self._finish(st, "ABORTED", None)
                return
        threading.Thread(target=self._keep_cancelling, args=(st,), daemon=True).start()

    def _keep_cancelling(self, st: Statement) -> None:
        # A cancel request that lands between two sub-statements (or before the
        # query reached the server) hits nothing, so repeat until it sticks.
        deadline = time.monotonic() + 30
        while not st.done.is_set() and time.monotonic() < deadline:
            conn = st.conn
            if conn is not None and not conn.closed:
                try:
                    conn.cancel_safe(timeout=2)
                except Exception:
                    pass
            st.done.wait(0.1)

    # --- execution -----------------------------------------------------------

    def _run(self, st: Statement) -> None:
        conn: psycopg.Connection[Any] | None = None
        session = st.session
        try:
            with self._lock:
                if st.status in TERMINAL:
                    return
                self._set(st, "PICKED")
            dbname = self.databases.ensure(st.target, st.database)
            if session is not None:
                if session.conn is None or session.conn.closed or session.conn.broken:
                    session.conn = self.databases.connect(dbname)
                    session.dbname = dbname
                conn, pid = session.conn, session.pid
            else:
                conn, pid = self.databases.pool(dbname).acquire(), next(self._pids)
            with self._lock:
                if st.status in TERMINAL:
                    return
                st.conn, st.redshift_pid, st.started = conn, pid, time.monotonic()
                self._set(st, "STARTED")
            self._execute(st, conn, pid, dbname)
        except Exception as exc:  # connection or database creation failed
            with self._lock:
                self._finish(st, "FAILED", _error_text(exc))
        finally:
            with self._lock:
                st.conn = None
                if session is not None:
                    session.busy_with = None
                    session.touch()
            if conn is not None and session is None:
                self.databases.pool(self.databases.ensure(st.target, st.database)).release(
                    conn, reusable=not st.cancel_requested)

    def _execute(self, st: Statement, conn: psycopg.Connection[Any], pid: int, dbname: str) -> None:
        user_txn = conn.info.transaction_status != pq.TransactionStatus.IDLE
        own_txn = st.is_batch and st.request.execution_mode == "TRANSACTION" and not user_txn
        if own_txn:
            conn.execute("BEGIN")
        current: SubStatement | None = None
        doomed, restart = doomed_sub(self.faults, st), restarted_copy(self.faults, st)
        try:
            for sub in st.subs:
                if st.cancel_requested:
                    raise _Cancelled()
                current = sub
                with self._lock:
                    sub.query_id, sub.started = next(self._query_ids), time.monotonic()
                    self._set_sub(sub, "STARTED")
                if sub is doomed:
                    raise serializable_violation(100_000 + st.seq, (sub.query_id - 1, sub.query_id), pid)
                self._run_sub(st, sub, conn, pid, dbname, own_txn, restart=sub is restart)
                with self._lock:
                    sub.duration_ns = int((time.monotonic() - sub.started) * 1e9)
                    self._set_sub(sub, "FINISHED")
            current = None
            if own_txn and conn.info.transaction_status == pq.TransactionStatus.INTRANS:
                conn.execute("COMMIT")
        except Exception as exc:
            # Whatever the cancel interrupted (a query, an S3 read in COPY), a user
            # cancel ends the statement ABORTED, like the service.
            cancelled = st.cancel_requested
            if own_txn and conn.info.transaction_status in (pq.TransactionStatus.INTRANS,
                                                             pq.TransactionStatus.INERROR):
                conn.execute("ROLLBACK")
            with self._lock:
                lost = not cancelled and conn.closed
                message = None if cancelled else lost_connection_text(exc, _error_text) if lost else _error_text(exc)
                if current is not None:
                    current.duration_ns = int((time.monotonic() - current.started) * 1e9)
                    current.error = message
                    self._set_sub(current, "ABORTED" if cancelled else "FAILED")
                for sub in st.subs:
                    if sub.status not in TERMINAL:
                        self._set_sub(sub, "ABORTED")
                self._finish(st, "ABORTED" if cancelled else "FAILED", message)
            return
        with self._lock:
            self._finish(st, "FINISHED", None)

    def _run_sub(self, st: Statement, sub: SubStatement, conn: psycopg.Connection[Any], pid: int,
                 dbname: str, own_txn: bool, restart: bool = False) -> None:
        kind = statement_kind(sub.sql)
        all_params = st.request.params
        names = referenced_names(sub.sql, frozenset(all_params)) if all_params else []
        params = {n: all_params[n] for n in names}
        if kind in ("copy", "unload"):
            text = to_literals(sub.sql, params, lambda v: pgsql.Literal(v).as_string(conn)) if params else sub.sql
            outcome = self._load(st, kind, text, conn, sub.query_id, pid, dbname, restart=restart)
            sub.result_rows = outcome.rows
            sub.result = result_from_outcome(outcome, self.result_options)
            return
        if kind == "truncate" and own_txn:
            conn.execute("COMMIT")  # Redshift's TRUNCATE commits the open transaction
            try:
                self._run_plain(sub, conn, params)
            finally:
                conn.execute("BEGIN")
            return
        self._run_plain(sub, conn, params)

    def _run_plain(self, sub: SubStatement, conn: psycopg.Connection[Any], params: dict[str, str]) -> None:
        # SHOW TABLE/VIEW/PROCEDURE and DDL with Redshift-only attributes (ddlhook.py) need the catalog.
        hook = ddl_hook(sub.sql)
        run = lambda parts: self._run_parts(conn, parts, params)  # noqa: E731
        sub.result_rows, sub.result = hook(conn, run) if hook else run(split_statements(rewrite(sub.sql)) or [""])

    def _run_parts(self, conn: psycopg.Connection[Any], parts: list[str],
                   params: dict[str, str]) -> tuple[int, ResultSet | None]:
        rowcount, result = -1, None
        for part in parts:
            names = referenced_names(part, frozenset(params)) if params else []
            if names:
                used = {n: params[n] for n in names}
                res = stream_statement(conn, to_pyformat(part, used), used, self.result_options)
            else:
                res = stream_statement(conn, part, None, self.result_options)
            if res.result is not None:
                if result is not None:
                    result.close()
                result = res.result
            rowcount = res.rowcount
        return rowcount, result

    def _load(self, st: Statement, kind: str, text: str, conn: psycopg.Connection[Any], query_id: int,
              pid: int, dbname: str, *, restart: bool = False) -> StatementOutcome:
        """COPY or UNLOAD; `restart`: an injected server restart terminates the backend mid-COPY."""
        try:
            if kind == "copy":
                from devstack.redshift.copy import run_copy as handler
            else:
                from devstack.redshift.unload import run_unload as handler
        except ImportError:
            raise RedshiftError(f"ERROR: {kind.upper()} is not available in this devstack build") from None
        ctx = ExecContext(conn=conn, s3=self._s3_client(), side_connection=lambda: self.databases.connect(dbname),
                          query_id=query_id, session_id=pid, user_name=st.request.db_user or "awsuser",
                          database=st.database)
        own = conn.info.transaction_status == pq.TransactionStatus.IDLE
        if own:
            conn.execute("BEGIN")
        killer = BackendKiller(ctx.side_connection, conn.info.backend_pid) if restart else None
        try:
            outcome = handler(ctx, text)
            if killer is not None:
                killer.finish()  # the COPY outran it: the backend dies before COMMIT instead
        except BaseException:
            if killer is not None:
                killer.finish()
            # On a lost connection a ROLLBACK would only replace the real error with "connection is lost".
            if own and not conn.broken and conn.info.transaction_status != pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            raise
        if own:
            conn.execute("COMMIT")
        return outcome

    def _s3_client(self) -> Any:
        """One S3 client for every statement (made once even when several COPYs start together)."""
        with self._s3_lock:
            if self._s3 is None:
                from devstack.redshift.awsclients import emulator_s3_client

                self._s3 = emulator_s3_client(self.s3_endpoint, self.region)
            return self._s3

    def warm(self) -> None:
        """Make the S3 client now, when a local S3 is configured: made by the first COPY, it cost that
        COPY a third of a second (importing boto3 in a fresh emulator process) in the middle of a burst."""
        if self.s3_endpoint:
            self._s3_client()

    # --- state changes (call with self._lock held) ---------------------------

    def _set(self, st: Statement, status: str) -> None:
        st.status, st.updated_at = status, time.time()

    def _set_sub(self, sub: SubStatement, status: str) -> None:
        sub.status, sub.updated_at = status, time.time()

    def _finish(self, st: Statement, status: str, error: str | None) -> None:
        if st.status in TERMINAL:
            return
        if status == "ABORTED":
            for sub in st.subs:
                if sub.status not in TERMINAL:
                    self._set_sub(sub, "ABORTED")
        if not st.is_batch:
            st.subs[0].error = error if st.subs[0].error is None else st.subs[0].error
            if st.subs[0].status not in TERMINAL:
                self._set_sub(st.subs[0], status)
        st.error = error
        if st.started:
            st.duration_ns = int((time.monotonic() - st.started) * 1e9)
        self._set(st, status)
        self._active.get(st.target.key, set()).discard(st.id)
        st.done.set()
        if self.on_terminal is not None:
            self.on_terminal(st)

    # --- housekeeping --------------------------------------------------------

    def sweep(self) -> None:
        """Forget results older than 24 h and close expired sessions."""
        now, mono = time.time(), time.monotonic()
        with self._lock:
            old = [s for s in self.statements.values()
                   if s.status in TERMINAL and now - s.created_at > RESULT_RETENTION_SECONDS]
            for st in old:
                del self.statements[st.id]
            expired = [s for s in self.sessions.values() if not s.busy_with and s.expires_at and mono > s.expires_at]
            for session in expired:
                del self.sessions[session.id]
        for st in old:
            for sub in st.subs:
                if sub.result is not None:
                    sub.result.close()
        for session in expired:
            session.close()

    def clear(self) -> None:
        """Cancel everything and forget all statements and sessions (tests' reset)."""
        with self._lock:
            running = [s for s in self.statements.values() if s.status not in TERMINAL]
        for st in running:
            try:
                self.cancel(st.id)
            except ApiError:
                pass
        for st in running:
            st.done.wait(10)
        with self._lock:
            statements, self.statements = list(self.statements.values()), {}
            sessions, self.sessions = list(self.sessions.values()), {}
            self._active.clear()
        for st in statements:
            for sub in st.subs:
                if sub.result is not None:
                    sub.result.close()
        for session in sessions:
            session.close()

    def shutdown(self) -> None:
        self.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _error_text(exc: BaseException) -> str:
    """DescribeStatement's Error: Redshift style, "ERROR: <primary message>"."""
    if isinstance(exc, RedshiftError):
        return exc.message
    if isinstance(exc, psycopg.Error):
        primary = exc.diag.message_primary if exc.diag else None
        return f"ERROR: {primary or str(exc).strip()}"
    if isinstance(exc, ApiError):
        return exc.message
    return f"ERROR: {exc}"
