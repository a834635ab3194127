"""Warehouse faults the engine injects when a fault plan asks it to (devstack/faults.py).

- serializable: a sub-statement of a transaction batch fails with Redshift's error 1023,
  and the whole transaction rolls back, as when a concurrent transaction wins.
- pg_restart: the PostgreSQL backend running a COPY is terminated (what a restart of the
  server does to it), while the COPY streams or, if the COPY outran us, before its COMMIT;
  the statement fails with a connection error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from devstack.redshift.contracts import RedshiftError
from devstack.redshift.events import FaultSource
from devstack.redshift.models import Statement, SubStatement
from devstack.redshift.rewrite import statement_kind

POLL_SECONDS = 0.005
TERMINATE_WAIT_MS = 5000


def serializable_violation(table_id: int, query_ids: tuple[int, int], pid: int) -> RedshiftError:
    """Redshift's wording for a transaction that lost a serializable-isolation cycle."""
    first, second = query_ids
    return RedshiftError(f"ERROR: 1023 DETAIL: Serializable isolation violation on table - {table_id}, "
                         f"transactions forming the cycle are: {first}, {second} (pid:{pid})", code=1023)


class BackendKiller:
    """Terminates one backend once it is seen running COPY, or when `finish()` is called."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], backend_pid: int) -> None:
        self._connect = connect
        self._pid = backend_pid
        self._finish = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pg-restart-{backend_pid}", daemon=True)
        self._thread.start()

    def finish(self, timeout: float = 10.0) -> None:
        """Kill now if not done yet, and wait until the backend is gone."""
        self._finish.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        with self._connect() as admin:
            while not self._finish.wait(POLL_SECONDS):
                row = admin.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s",
                                    (self._pid,)).fetchone()
                if row is None:
                    return  # already gone
                if row[0] == "active" and str(row[1]).lstrip().upper().startswith("COPY"):
                    break
            # With a timeout, pg_terminate_backend waits until the backend has exited.
            admin.execute("SELECT pg_terminate_backend(%s, %s)", (self._pid, TERMINATE_WAIT_MS))


def doomed_sub(faults: FaultSource | None, st: Statement) -> SubStatement | None:
    """The sub-statement of a transaction batch an injected 1023 error hits, if any."""
    if faults is None or not st.is_batch or st.request.execution_mode != "TRANSACTION":
        return None
    if not faults.should("serializable"):
        return None
    return st.subs[faults.randrange(len(st.subs))]


def restarted_copy(faults: FaultSource | None, st: Statement) -> SubStatement | None:
    """The COPY during which an injected server restart hits this statement, if any (one draw per
    statement, however many COPYs it holds)."""
    if faults is None:
        return None
    copies = [sub for sub in st.subs if statement_kind(sub.sql) == "copy"]
    if not copies or not faults.should("pg_restart"):
        return None
    return copies[faults.randrange(len(copies))]


def lost_connection_text(exc: BaseException, error_text: Callable[[BaseException], str]) -> str:
    """The backend went away (terminated, server restarted): say so, not "the connection is closed",
    which is only what the next use of the dead connection reported."""
    if isinstance(exc, psycopg.errors.AdminShutdown):
        return error_text(exc)
    return ("ERROR: server closed the connection unexpectedly. This probably means the server terminated "
            "abnormally before or while processing the request.")
