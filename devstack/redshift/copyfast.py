"""COPY's fast path: hand the file bytes straight to PostgreSQL's own CSV parser.

Checking every value in Python (copy.py's careful path) is faithful but ~7x slower than
PostgreSQL's COPY. When the options and column types are ones where PostgreSQL parses
exactly as Redshift would, and each chunk passes cheap byte-level checks that rule out the
cases where they differ, the decompressed bytes go to `COPY ... FROM STDIN (FORMAT csv)`
untouched, inside a savepoint. Anything PostgreSQL rejects, or any chunk that fails a check,
rolls back to the savepoint and the careful path runs instead — it is the one that knows
Redshift's error codes, line numbers and MAXERROR. So the fast path only ever changes speed.

Where the two parsers could disagree, and the check that sends such data to the careful path:
- `\\N` is Redshift's NULL marker (PostgreSQL CSV knows only the empty field): no `\\N`.
- VARCHAR(n) counts bytes in Redshift, characters in PostgreSQL: ASCII data only.
- Extra decimal scale is truncated by Redshift, rounded by PostgreSQL: no fraction longer
  than the smallest numeric scale.
- TEXT format is read as CSV with a quote character that must not occur (\\x01).
"""

from __future__ import annotations

import collections
import itertools
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

import psycopg
from psycopg import sql as pgsql

from devstack.redshift.copyconvert import Column
from devstack.redshift.copyopts import CopySpec

CHUNK = 1 << 20
PREFETCH = 4      # chunks read ahead of PostgreSQL
OPEN_AHEAD = 4    # objects requested ahead of the one being read
TAIL = 64         # bytes of the previous chunk searched again with the next (a marker or a fraction split in two)
NO_QUOTE = "\x01"
_FAST_TYPES = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8", "bool", "date", "timestamp",
                         "timestamptz", "varchar", "bpchar", "text"})
_CAREFUL_FLAGS = frozenset({"EMPTYASNULL", "BLANKSASNULL", "TRUNCATECOLUMNS", "ACCEPTINVCHARS", "ESCAPE",
                            "REMOVEQUOTES", "FILLRECORD", "ROUNDEC", "TRIMBLANKS", "NOLOAD", "IGNOREBLANKLINES",
                            "ACCEPTANYDATE"})
_NULL_MARKER = re.compile(rb"\\[N.]")


class Fallback(Exception):
    """The data needs the careful path; the fast attempt is rolled back."""


@dataclass(frozen=True)
class FastPlan:
    statement: pgsql.Composable
    ascii_only: bool
    max_scale: int | None     # longest decimal fraction the data may have
    text_format: bool


def plan(spec: CopySpec, qualified: pgsql.Composable, columns: list[Column]) -> FastPlan | None:
    """The fast COPY for this statement, or None when only the careful path is faithful."""
    if spec.fmt not in ("CSV", "TEXT") or spec.flags & _CAREFUL_FLAGS or spec.max_error:
        return None
    if spec.null_as is not None or spec.date_format or spec.time_format or spec.encoding != "utf-8":
        return None
    if any(c.typname not in _FAST_TYPES for c in columns):
        return None
    scales = [(c.typmod - 4) & 0xFFFF for c in columns if c.typname == "numeric" and c.typmod >= 4]
    char_cols = [c for c in columns if c.is_char]
    options = [pgsql.SQL("FORMAT csv"), pgsql.SQL("DELIMITER {}").format(pgsql.Literal(spec.effective_delimiter)),
               pgsql.SQL("QUOTE {}").format(pgsql.Literal(spec.quote if spec.fmt == "CSV" else NO_QUOTE)),
               pgsql.SQL("NULL ''")]
    if char_cols:  # an empty character field is '' in Redshift, not NULL
        options.append(pgsql.SQL("FORCE_NOT_NULL ({})").format(
            pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in char_cols)))
    statement = pgsql.SQL("COPY {} ({}) FROM STDIN ({})").format(
        qualified, pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in columns), pgsql.SQL(", ").join(options))
    limited = any(c.typname in ("varchar", "bpchar") and c.typmod > 4 for c in columns)
    return FastPlan(statement, ascii_only=limited, max_scale=min(scales) if scales else None,
                    text_format=spec.fmt == "TEXT")


def load(conn: psycopg.Connection[Any], fast: FastPlan, objects: Sequence[Any],
         open_object: Callable[[Any], IO[bytes] | None], ignore_header: int) -> tuple[int, list[int]] | None:
    """Stream every file into PostgreSQL. Returns (rows, lines per file), or None when the
    careful path must run (everything this attempt loaded is rolled back).

    A thread reads, decompresses and checks the next chunks while this one waits on
    PostgreSQL: the GET, zlib and PostgreSQL's parser then run side by side."""
    scale_check = re.compile(rb"\.\d{%d,}" % (fast.max_scale + 1)) if fast.max_scale is not None else None
    conn.execute("SAVEPOINT rs_copy_fast")
    lines: list[int] = []
    chunks = _Prefetch(_chunks(objects, open_object, fast, scale_check, ignore_header, lines))
    try:
        with conn.cursor() as cur:
            with cur.copy(fast.statement) as pg_copy:
                for chunk in chunks:
                    pg_copy.write(chunk)
            rows = cur.rowcount
    except Exception:  # PostgreSQL said no, a check failed, or the file is unreadable: be careful instead
        chunks.close()
        conn.execute("ROLLBACK TO SAVEPOINT rs_copy_fast")
        return None
    conn.execute("RELEASE SAVEPOINT rs_copy_fast")
    return rows, lines


class _Prefetch:
    """Runs a generator in a thread, PREFETCH items ahead; its exception reaches the consumer."""

    def __init__(self, items: Iterator[bytes]) -> None:
        self._items = items
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(PREFETCH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="copy prefetch", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._items:
                self._queue.put(("item", item))
                if self._stop.is_set():
                    return
            self._queue.put(("end", None))
        except BaseException as exc:
            self._queue.put(("error", exc))
        finally:
            self._items.close()  # type: ignore[attr-defined]  # closes the open file, in this thread

    def __iter__(self) -> Iterator[bytes]:
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                self._thread.join()
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        """The consumer gave up: let the producer finish (it may wait on a full queue)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass


def _chunks(objects: Sequence[Any], open_object: Callable[[Any], IO[bytes] | None], fast: FastPlan,
            scale_check: re.Pattern[bytes] | None, ignore_header: int, lines: list[int]) -> Iterator[bytes]:
    for stream in opened_in_order(objects, open_object):
        if stream is None:  # an optional manifest entry that does not exist
            lines.append(0)
            continue
        with stream:
            yield from _checked(stream, fast, scale_check, ignore_header, lines)


def opened_in_order(objects: Sequence[Any], open_object: Callable[[Any], IO[bytes] | None],
                    ahead: int = OPEN_AHEAD) -> Iterator[IO[bytes] | None]:
    """`open_object(o)` for each object, in order, with the next `ahead` requests already on their way:
    a manifest of many small files is mostly GET round trips, which Redshift's slices make in parallel.
    Streams opened ahead but never handed out are closed."""
    if ahead <= 1 or len(objects) <= 1:
        yield from (open_object(obj) for obj in objects)
        return
    pool = ThreadPoolExecutor(ahead, thread_name_prefix="copy-open")
    pending: collections.deque[Future[IO[bytes] | None]] = collections.deque()
    rest = iter(objects)
    try:
        for obj in itertools.islice(rest, ahead):
            pending.append(pool.submit(open_object, obj))
        while pending:
            stream = pending.popleft().result()  # an open error reaches the consumer, in file order
            for obj in itertools.islice(rest, 1):
                pending.append(pool.submit(open_object, obj))
            yield stream
    finally:
        for future in pending:
            if not future.cancel() and future.exception() is None and (left := future.result()) is not None:
                left.close()
        pool.shutdown(wait=False)


def _checked(stream: IO[bytes], fast: FastPlan, scale_check: re.Pattern[bytes] | None, ignore_header: int,
             lines: list[int]) -> Iterator[bytes]:
    """One file's chunks, each checked; its line count goes to `lines` at the end."""
    skip, tail, count, last = ignore_header, b"", 0, b"\n"
    while chunk := stream.read(CHUNK):
        if skip:
            chunk, skip = _drop_lines(chunk, skip)
            if not chunk:
                continue
        edge = tail + chunk[:TAIL]  # a marker split across two chunks is still seen
        if b"\\" in chunk or b"\\" in edge:
            if _NULL_MARKER.search(chunk) or _NULL_MARKER.search(edge):
                raise Fallback()
        if fast.ascii_only and not chunk.isascii():
            raise Fallback()
        if scale_check is not None and (scale_check.search(chunk) or scale_check.search(edge)):
            raise Fallback()
        if fast.text_format and NO_QUOTE.encode() in chunk:
            raise Fallback()
        if fast.text_format and b"\r" in chunk:
            raise Fallback()  # TEXT keeps a CR as data; PostgreSQL's CSV parser ends the line there
        count += chunk.count(b"\n")
        tail, last = chunk[-TAIL:], chunk[-1:]
        yield chunk
    if last != b"\n":  # a final line without a newline still counts (and needs one for PostgreSQL)
        count += 1
        yield b"\n"
    lines.append(count)


def _drop_lines(chunk: bytes, n: int) -> tuple[bytes, int]:
    pos = 0
    while n and pos < len(chunk):
        nl = chunk.find(b"\n", pos)
        if nl < 0:
            return b"", n
        pos, n = nl + 1, n - 1
    return chunk[pos:], n
