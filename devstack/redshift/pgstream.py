"""Streaming from PostgreSQL: one statement's rows into a ResultSet, and COPY ... TO STDOUT
read in blocks of whole rows (UNLOAD)."""

from __future__ import annotations

import select
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import psycopg
from psycopg import pq
from psycopg._encodings import conn_encoding  # pinned psycopg 3.3.9, see stream_statement
from psycopg.errors import error_from_result
from psycopg.generators import fetch

from devstack.redshift.contracts import RedshiftError
from devstack.redshift.results import TYPES, Column, ResultOptions, ResultSet, precision_scale, type_for

CHUNK_ROWS = 1000


@dataclass
class ExecResult:
    command_status: str
    rowcount: int  # rows returned / affected; -1 when the command reports none
    result: ResultSet | None = None


@dataclass
class _RawColumn:
    name: str
    oid: int
    fmod: int
    table_oid: int
    table_col: int


def stream_statement(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, str] | None, options: ResultOptions
) -> ExecResult:
    """Run ONE statement, streaming any rows into a ResultSet.

    psycopg's public `Cursor.stream()` refuses statements without rows (and then
    loses the command tag), so this is the same loop using its generator
    internals (`_stream_send_gen`, `generators.fetch`); psycopg is pinned.
    Raw text values are read straight off each PGresult chunk.
    """
    cur = conn.cursor()
    pgconn = conn.pgconn
    encoding = conn_encoding(conn)
    result: ResultSet | None = None
    raw_cols: list[_RawColumn] = []
    status, rowcount = "", -1
    error: Exception | None = None
    size = CHUNK_ROWS if pq.version() >= 170000 else 1
    with conn.lock:
        try:
            conn.wait(cur._stream_send_gen(sql, params, size=size))
            while (res := conn.wait(fetch(pgconn))) is not None:
                st = res.status
                if st in (pq.ExecStatus.SINGLE_TUPLE, pq.ExecStatus.TUPLES_CHUNK, pq.ExecStatus.TUPLES_OK):
                    if result is None and error is None:
                        raw_cols = _raw_columns(res, encoding)
                        result = options.new([])
                    if error is None and result is not None:
                        nf = res.nfields
                        for r in range(res.ntuples):
                            result.add([_text(res.get_value(r, c), encoding) for c in range(nf)])
                    if st == pq.ExecStatus.TUPLES_OK:
                        status = (res.command_status or b"").decode()
                elif st in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.EMPTY_QUERY):
                    status = (res.command_status or b"").decode()
                    tuples = res.command_tuples
                    rowcount = tuples if tuples is not None else -1
                elif st == pq.ExecStatus.FATAL_ERROR:
                    error = error or error_from_result(res, encoding=encoding)
                else:  # COPY FROM STDIN / TO STDOUT: Redshift has neither
                    raise RedshiftError("ERROR: COPY FROM STDIN and COPY TO STDOUT are not supported")
        except BaseException:
            if pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
                # Stop the server sending the rest, then drain what already arrived.
                conn._try_cancel()
                try:
                    while conn.wait(fetch(pgconn)) is not None:
                        pass
                except Exception:
                    pass
            raise
    if error is not None:
        if result is not None:
            result.close()
        raise error
    if result is not None:
        result.finish()
        result.columns = describe_columns(conn, raw_cols)
        rowcount = result.total_rows
    return ExecResult(status, rowcount, result)


def _text(value: bytes | None, encoding: str) -> str | None:
    return None if value is None else value.decode(encoding, "replace")


def _raw_columns(res: Any, encoding: str) -> list[_RawColumn]:
    return [
        _RawColumn((res.fname(i) or b"").decode(encoding), res.ftype(i), res.fmod(i), res.ftable(i), res.ftablecol(i))
        for i in range(res.nfields)
    ]


def describe_columns(conn: psycopg.Connection[Any], raw: list[_RawColumn]) -> list[Column]:
    """ColumnMetadata for a result: types, and table/schema/nullability of table columns."""
    table_info: dict[tuple[int, int], tuple[str, str, bool]] = {}
    typnames: dict[int, str] = {}
    attrs = [(c.table_oid, c.table_col) for c in raw if c.table_oid]
    unknown = [c.oid for c in raw if c.oid not in TYPES]
    if attrs or unknown:
        with conn.cursor() as cur:
            if attrs:
                cur.execute(
                    "SELECT a.attrelid::int8, a.attnum::int4, n.nspname, c.relname, a.attnotnull"
                    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE (a.attrelid::int8, a.attnum::int4) IN (SELECT * FROM unnest(%s::int8[], %s::int4[]))",
                    ([a for a, _ in attrs], [b for _, b in attrs]),
                )
                for relid, attnum, nsp, rel, notnull in cur.fetchall():
                    table_info[(relid, attnum)] = (nsp, rel, notnull)
            if unknown:
                cur.execute("SELECT oid::int8, typname FROM pg_type WHERE oid = ANY(%s::oid[])", (unknown,))
                typnames = dict(cur.fetchall())
    columns = []
    for c in raw:
        t = type_for(c.oid, typnames.get(c.oid))
        precision, scale = precision_scale(t, c.oid, c.fmod)
        col = Column(c.name, c.oid, t, precision, scale)
        info = table_info.get((c.table_oid, c.table_col))
        if info:
            col.schema_name, col.table_name = info[0], info[1]
            col.nullable = 0 if info[2] else 1
        columns.append(col)
    return columns


class CopyOut:
    """`COPY (...) TO STDOUT` read in blocks of whole rows, for UNLOAD.

    PostgreSQL sends one CopyData message per row and psycopg's Copy iterator spends ~1.2 µs
    of Python per row on them; this loop over the documented low-level `PGconn` (non-blocking
    `get_copy_data`, rows appended to a bytearray, a poll() on the socket only when libpq's
    buffer is empty, which releases the GIL) spends ~0.4 µs. Holds the connection's lock from
    `__enter__` to `__exit__`; leaving early (an exception) cancels the COPY and drains it.

        with CopyOut(conn, "COPY (SELECT ...) TO STDOUT (FORMAT csv)") as out:
            while block := out.read(1 << 20):
                ...
    """

    def __init__(self, conn: psycopg.Connection[Any], statement: str) -> None:
        self.conn, self.pgconn = conn, conn.pgconn
        self.statement = statement.encode(conn_encoding(conn))
        self.rows = 0                       # rows in the block `read` returned last
        self.pending: bytes | None = None   # the next row, read but not yet returned
        self.at_boundary = False            # `pending` did not start with read()'s `strip` prefix
        self.done = False
        self._active = False
        self._poll = select.poll()

    def __enter__(self) -> CopyOut:
        self.conn.lock.acquire()
        try:
            self._poll.register(self.pgconn.socket, select.POLLIN)
            self.pgconn.send_query(self.statement)
            if self.pgconn.flush():  # a non-blocking connection may not send it all at once
                writable = select.poll()
                writable.register(self.pgconn.socket, select.POLLOUT)
                while self.pgconn.flush():
                    writable.poll()
            result = self._next_result()
            if result is None or result.status != pq.ExecStatus.COPY_OUT:
                self._drain()
                if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
                    raise error_from_result(result, encoding=conn_encoding(self.conn))
                raise RedshiftError("ERROR: expected a COPY TO STDOUT statement")
            self._active = True
        except BaseException:
            self.conn.lock.release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._active:  # left before the end: stop the server sending the rest
                self._active = False
                try:
                    self.conn.cancel_safe(timeout=10)
                except Exception:
                    pass
                try:
                    while self._get(block=True)[0] > 0:
                        pass
                    self._drain()
                except Exception:
                    pass
        finally:
            self.conn.lock.release()

    def read(self, limit: int, strip: bytes | None = None) -> bytearray:
        """The next whole rows, at most `limit` bytes (but at least one row); empty at the end.

        With `strip`, every row must start with it and loses it; the first row that does not
        ends the block and waits in `pending` with `at_boundary` set (the caller takes it)."""
        block, rows, used = bytearray(), 0, 0
        if self.pending is not None and not self.at_boundary:
            block += self.pending
            rows, used, self.pending = 1, len(self.pending), None
        elif self.pending is not None:
            raise RuntimeError("take the boundary row (take_pending) before reading on")
        if self.done:
            self.rows = rows
            return block
        get, consume, wait = self.pgconn.get_copy_data, self.pgconn.consume_input, self._poll.poll
        cut = len(strip) if strip is not None else 0
        while True:  # once per row: keep it lean
            size, data = get(1)
            if size > 0:
                if cut:
                    if data[:cut] != strip:
                        self.pending, self.at_boundary = bytes(data), True
                        break
                    data, size = data[cut:], size - cut
                if rows and used + size > limit:
                    self.pending = bytes(data)
                    break
                block += data
                used += size
                rows += 1
            elif size == 0:  # libpq's buffer is empty: wait for the server (without the GIL)
                wait()
                consume()
            else:
                self._finish(size)
                break
        self.rows = rows
        return block

    def take_pending(self) -> bytes:
        """The boundary row `read` stopped at."""
        row, self.pending, self.at_boundary = self.pending, None, False
        assert row is not None
        return row

    def _get(self, block: bool) -> tuple[int, Any]:
        while True:
            size, data = self.pgconn.get_copy_data(1)
            if size != 0 or not block:
                return size, data
            self._poll.poll()
            self.pgconn.consume_input()

    def _next_result(self) -> Any:
        while self.pgconn.is_busy():
            self._poll.poll()
            self.pgconn.consume_input()
        return self.pgconn.get_result()

    def _finish(self, size: int) -> None:
        self._active, self.done = False, True
        if size == -2:
            raise psycopg.OperationalError(self.pgconn.get_error_message())
        result = self._next_result()
        self._drain()
        if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
            raise error_from_result(result, encoding=conn_encoding(self.conn))

    def _drain(self) -> None:
        while self._next_result() is not None:
            pass
