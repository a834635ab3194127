"""COPY ... FORMAT PARQUET's fast path: Arrow batches → CSV bytes → PostgreSQL's own COPY.

The careful path (copyformats.parquet_records + copy.py) turns every value into a Python
object, then into a string, then checks it: faithful but ~100x slower than PostgreSQL's COPY.
Here each file is read batch by batch (never whole), each batch is written as CSV by pyarrow in
one call and streamed into `COPY ... FROM STDIN (FORMAT csv)` inside a savepoint. Like
copyfast.py for CSV/TEXT, anything the fast path cannot judge, or any PostgreSQL error, rolls
back to the savepoint and the careful path runs instead: it knows Redshift's error codes, rows
and MAXERROR. So this module only ever changes speed.

What pyarrow writes and PostgreSQL's CSV parser reads back exactly as the careful path loads it:
- NULL is an unquoted empty field; every string is quoted, so '' stays an empty string.
- integers, booleans (true/false), dates and timestamps in ISO form; tz-aware timestamps are
  written in UTC with `Z` (a TIMESTAMP column keeps the UTC wall time, as the careful path does).
- float32 is widened to float64 first: the careful path loads the double's repr, so must we.
- decimals only when their scale fits the column (Redshift truncates extra scale, PostgreSQL
  rounds) and is at most 6 (beyond that, small values print as 1E-7, which the careful path
  rejects: the two must agree).
Where they would differ, and what sends the data to the careful path instead:
- any (Arrow type, column type) pair not listed in `_fits`: binary, lists, structs, times, ns
  timestamps, strings into non-character columns, ...
- VARCHAR(n)/CHAR(n) count bytes in Redshift, characters in PostgreSQL: the longest value of each
  string column of each batch, in bytes (pyarrow.compute), must fit n.
- a file with another number of columns than the COPY (the careful path raises Redshift's error).
- flags that change values (EMPTYASNULL, TRUNCATECOLUMNS, ...), DATEFORMAT/TIMEFORMAT.
- PostgreSQL loading another number of rows than the files hold (a parsing surprise).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import psycopg
from psycopg import sql as pgsql

from devstack.redshift.copyconvert import Column
from devstack.redshift.copyopts import CopySpec

BATCH_ROWS = 32768
SPOOL_CHUNK = 1 << 20
MAX_DECIMAL_SCALE = 6
_INT_TYPES = frozenset({"int2", "int4", "int8"})
_FLOAT_TYPES = frozenset({"float4", "float8"})
_STRING_TYPES = frozenset({"varchar", "bpchar", "text"})
_CAREFUL_FLAGS = frozenset({"EMPTYASNULL", "BLANKSASNULL", "TRUNCATECOLUMNS", "ACCEPTINVCHARS", "TRIMBLANKS",
                            "NOLOAD", "FILLRECORD", "ROUNDEC", "ACCEPTANYDATE", "ESCAPE", "REMOVEQUOTES"})


class Fallback(Exception):
    """The data needs the careful path; the fast attempt is rolled back."""


@dataclass(frozen=True)
class ParquetPlan:
    statement: pgsql.Composable
    columns: list[Column]


def plan(spec: CopySpec, qualified: pgsql.Composable, columns: list[Column]) -> ParquetPlan | None:
    """The fast COPY for a Parquet load, or None when only the careful path is faithful."""
    if spec.fmt != "PARQUET" or spec.flags & _CAREFUL_FLAGS or spec.accept_inv_chars is not None:
        return None
    if spec.date_format or spec.time_format or not columns:
        return None
    statement = pgsql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL '')").format(
        qualified, pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in columns))
    return ParquetPlan(statement, columns)


def load(conn: psycopg.Connection[Any], fast: ParquetPlan, objects: Sequence[Any],
         open_object: Callable[[Any], IO[bytes] | None]) -> tuple[int, list[int]] | None:
    """Stream every file into PostgreSQL. Returns (rows, rows per file), or None when the
    careful path must run (everything this attempt loaded is rolled back)."""
    rows_per_file: list[int] = []
    conn.execute("SAVEPOINT rs_copy_parquet")
    try:
        with conn.cursor() as cur:
            with cur.copy(fast.statement) as pg_copy:
                for obj in objects:
                    rows_per_file.append(0)
                    for block, rows in _file_blocks(obj, open_object, fast.columns):
                        pg_copy.write(block)
                        rows_per_file[-1] += rows
            loaded = cur.rowcount
        if loaded != sum(rows_per_file):
            raise Fallback()
    except Exception:  # PostgreSQL said no, a check failed, or the file is unreadable: be careful instead
        conn.execute("ROLLBACK TO SAVEPOINT rs_copy_parquet")
        return None
    conn.execute("RELEASE SAVEPOINT rs_copy_parquet")
    return loaded, rows_per_file


def _file_blocks(obj: Any, open_object: Callable[[Any], IO[bytes] | None],
                 columns: list[Column]) -> Iterator[tuple[bytes, int]]:
    """One file's batches as CSV bytes (with their row counts), each checked first."""
    import pyarrow.parquet as pq

    stream = open_object(obj)
    if stream is None:  # an optional manifest entry that does not exist
        return
    with tempfile.TemporaryFile() as spool:  # Parquet needs random access: spool to disk, not memory
        with stream:
            while chunk := stream.read(SPOOL_CHUNK):
                spool.write(chunk)
        spool.seek(0)
        pfile = pq.ParquetFile(spool)
        schema = pfile.schema_arrow
        if len(schema) != len(columns) or not all(_fits(f.type, c) for f, c in zip(schema, columns)):
            raise Fallback()
        limits = {i: c.typmod - 4 for i, c in enumerate(columns) if c.typname in ("varchar", "bpchar") and c.typmod > 4}
        for batch in pfile.iter_batches(batch_size=BATCH_ROWS):
            yield _csv(batch, limits), batch.num_rows


def _fits(arrow_type: Any, col: Column) -> bool:
    """Whether pyarrow's CSV text of this Arrow type loads into this column exactly as the careful path loads it."""
    import pyarrow as pa

    kind = col.typname
    if pa.types.is_integer(arrow_type):
        return kind in _INT_TYPES or kind in _FLOAT_TYPES or kind == "numeric"
    if pa.types.is_float32(arrow_type) or pa.types.is_float64(arrow_type):
        return kind in _FLOAT_TYPES
    if pa.types.is_boolean(arrow_type):
        return kind == "bool"
    if pa.types.is_decimal(arrow_type):
        if kind != "numeric" or not 0 <= arrow_type.scale <= MAX_DECIMAL_SCALE:
            return False
        return col.typmod < 4 or arrow_type.scale <= (col.typmod - 4) & 0xFFFF
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return kind in _STRING_TYPES
    if pa.types.is_date32(arrow_type):
        return kind == "date"
    if pa.types.is_timestamp(arrow_type):
        return arrow_type.unit != "ns" and kind in ("timestamp", "timestamptz")
    return False


def _csv(batch: Any, limits: dict[int, int]) -> bytes:
    """One batch as CSV: NULL unquoted and empty, every string quoted (so '' is not NULL)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    arrays = []
    for i, array in enumerate(batch.columns):
        kind = array.type
        if i in limits and array.null_count < len(array):
            longest = pc.max(pc.binary_length(array)).as_py()
            if longest is not None and longest > limits[i]:
                raise Fallback()  # Redshift's limit is in bytes: the careful path reports the error
        if pa.types.is_float32(kind):
            array = array.cast(pa.float64())
        elif pa.types.is_timestamp(kind) and kind.tz is not None and kind.tz != "UTC":
            array = array.cast(pa.timestamp(kind.unit, tz="UTC"))  # same instants, written with Z
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
    out = io.BytesIO()
    pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return out.getvalue()
