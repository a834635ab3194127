"""UNLOAD from PostgreSQL to the local S3, with Redshift's formats, naming and manifests.

The query always runs as `COPY (query) TO STDOUT`, which streams rows, so memory stays flat
whatever the result size; each part is spooled (to disk past 8 MB) and uploaded when it
reaches MAXFILESIZE. The paths:

* CSV without PARTITION BY: PostgreSQL writes the CSV itself (its quoting is Redshift's:
  fields holding the delimiter, `"`, CR or LF are quoted, `"` doubled) and we only cut parts.
* JSON without PARTITION BY: PostgreSQL builds each line with the same text `_json_line` makes.
* PARQUET without PARTITION BY: PostgreSQL's CSV, parsed by pyarrow in blocks of whole rows
  with the column types fixed from the query's description.
* everything else (TEXT, FIXEDWIDTH, any PARTITION BY): PostgreSQL's text format, whose
  values are Redshift's text forms (booleans `t`/`f`, timestamps `YYYY-MM-DD HH:MI:SS[.ffffff]`),
  parsed row by row and formatted here. PARTITION BY sorts on the partition columns so only
  one partition's part is open at a time.

Names follow Redshift: `<prefix>0000_part_00` (PARALLEL ON, one slice here), `<prefix>000`
(PARALLEL OFF), `.gz`/`.bz2`/`.zst`/`.parquet`, `<prefix>manifest`, Hive `col=value/` folders.
"""

from __future__ import annotations

import bz2
import datetime as dt
import decimal
import gzip
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import psycopg
from psycopg import sql as pgsql

from devstack.redshift.contracts import ExecContext, RedshiftError, StatementOutcome
from devstack.redshift.rewrite import rewrite
from devstack.redshift.s3io import split_url
from devstack.redshift.unloadopts import UnloadSpec, parse_unload

_INT_OIDS = {20: "int64", 21: "int16", 23: "int32"}
_FLOAT_OIDS = {700: "float32", 701: "float64"}
_NUMERIC_OID, _BOOL_OID, _DATE_OID, _TS_OID, _TSTZ_OID, _BPCHAR_OID = 1700, 16, 1082, 1114, 1184, 1042
_JSON_OIDS = {114, 3802}  # json, jsonb (devstack's SUPER): nested JSON, as Redshift writes SUPER
_TYPE_NAMES = {16: "boolean", 20: "bigint", 21: "smallint", 23: "integer", 700: "real", 701: "double precision",
               1700: "numeric", 1043: "character varying", 1042: "character", 25: "character varying",
               1082: "date", 1114: "timestamp without time zone", 1184: "timestamp with time zone",
               1083: "time without time zone", 1266: "time with time zone", 3802: "super", 114: "super"}
_PG_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "b": "\b", "f": "\f", "v": "\v"}
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_HIVE_SPECIAL = set('"#%\'*/:=?\\{[]^')
SPOOL_IN_MEMORY = 8 * 1024 * 1024
MULTIPART_ABOVE = 64 * 1024 * 1024   # bigger parts go up as a multipart upload
PARQUET_GROUP = 50_000               # rows per row group on the row path: bounds memory
CSV_BLOCK = 8 * 1024 * 1024          # CSV bytes parsed at a time: ~one Parquet row group
NOT_EMPTY = ("ERROR: Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, "
             "manually removing the target files in S3, or using the ALLOWOVERWRITE option.")


@dataclass(frozen=True)
class OutColumn:
    name: str
    oid: int
    precision: int | None = None   # numeric(p, s)
    scale: int | None = None
    length: int | None = None      # varchar(n) / char(n)


def run_unload(ctx: ExecContext, sql_text: str) -> StatementOutcome:
    spec = parse_unload(sql_text)
    bucket, prefix = split_url(spec.destination)
    # The newline ends a trailing `-- comment`, which would otherwise swallow our closing parenthesis.
    query = rewrite(spec.query).strip().rstrip(";") + "\n"
    columns = _describe(ctx.conn, query)
    names = [c.name for c in columns]
    for col in spec.partition_by:
        if col not in names:
            raise RedshiftError(f"ERROR: PARTITION BY column \"{col}\" is not in the query's output")
    part_cols = [names.index(c) for c in spec.partition_by]
    keep = [i for i in range(len(columns)) if spec.partition_include or i not in part_cols]
    out_cols = [columns[i] for i in keep]
    if not out_cols:
        raise RedshiftError("ERROR: UNLOAD with PARTITION BY needs at least one column outside the partition "
                            "columns (or INCLUDE)")
    if spec.fixed_width is not None and len(spec.fixed_width) != len(out_cols):
        raise RedshiftError(f"ERROR: FIXEDWIDTH specifies {len(spec.fixed_width)} columns but the query "
                            f"unloads {len(out_cols)}")
    _prepare_destination(ctx.s3, bucket, prefix, spec)
    sink = _Destination(ctx.s3, bucket, prefix, spec, out_cols)
    try:
        if part_cols:
            rows = _unload_partitioned(ctx.conn, query, spec, columns, part_cols, keep, sink)
        elif spec.fmt == "CSV":
            rows = _unload_csv(ctx.conn, query, spec, sink.writer(""))
        elif spec.fmt == "PARQUET":
            rows = _unload_parquet(ctx.conn, query, out_cols, sink.writer(""))
        elif spec.fmt == "JSON":
            rows = _unload_json(ctx.conn, query, out_cols, spec, sink.writer(""))
        else:
            writer = sink.writer("")
            rows = 0
            for values in _text_rows(ctx.conn, query):
                writer.add(values)
                rows += 1
    except psycopg.Error as exc:
        raise _pg_error(exc) from None
    entries = sink.close(empty_file=not part_cols)  # Redshift writes a file even for no rows
    if spec.manifest:
        _write_manifest(ctx.s3, bucket, prefix, spec, out_cols, entries, rows, sink.extra)
    return StatementOutcome(rows=rows)


def _pg_error(exc: psycopg.Error) -> RedshiftError:
    return RedshiftError(f"ERROR: {(exc.diag.message_primary or str(exc)).strip()}")


def _describe(conn: psycopg.Connection[Any], query: str) -> list[OutColumn]:
    try:
        with conn.cursor() as cur:
            cur.execute(pgsql.SQL("SELECT * FROM ({}) AS unload_query LIMIT 0").format(pgsql.SQL(query)))
            return [OutColumn(d.name, d.type_code, d.precision, d.scale, d.display_size)
                    for d in cur.description or []]
    except psycopg.Error as exc:
        raise _pg_error(exc) from None


def _prepare_destination(s3: Any, bucket: str, prefix: str, spec: UnloadSpec) -> None:
    if spec.allow_overwrite:
        return
    existing = _list(s3, bucket, prefix)
    if not existing:
        return
    if not spec.clean_path:
        raise RedshiftError(NOT_EMPTY)
    if not spec.partition_by:  # with PARTITION BY, CLEANPATH empties only the folders written to
        _delete(s3, bucket, existing)


def _list(s3: Any, bucket: str, prefix: str) -> list[str]:
    try:
        return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for o in page.get("Contents", [])]
    except Exception as exc:
        code = str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            raise RedshiftError(f"ERROR: S3ServiceException:The specified bucket does not exist, Bucket '{bucket}'") \
                from None
        raise


def _delete(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})


# --- the three paths -------------------------------------------------------------------------

def _unload_csv(conn: psycopg.Connection[Any], query: str, spec: UnloadSpec, writer: _PartWriter) -> int:
    statement = pgsql.SQL("COPY ({}) TO STDOUT (FORMAT csv, DELIMITER {}, NULL {}{})").format(
        pgsql.SQL(query), pgsql.Literal(spec.effective_delimiter), pgsql.Literal(spec.null_as or ""),
        pgsql.SQL(", FORCE_QUOTE *" if spec.add_quotes else ""))
    rows = 0
    with conn.cursor() as cur, cur.copy(statement) as out:
        batch: list[bytes] = []
        room = spec.max_file_size - writer.size
        for data in out:  # one CopyData message per row
            batch.append(bytes(data))
            room -= len(data)
            if len(batch) >= 2000 or room <= 0:  # a part ends on a row, so it may overshoot by one row
                writer.add_raw(batch)
                rows, batch, room = rows + len(batch), [], spec.max_file_size - writer.size
        writer.add_raw(batch)
    return rows + len(batch)


def _unload_json(conn: psycopg.Connection[Any], query: str, columns: list[OutColumn], spec: UnloadSpec,
                 writer: _PartWriter) -> int:
    """PostgreSQL builds each line (the same text `_json_line` makes), so Python only cuts parts."""
    parts: list[pgsql.Composable] = []
    for i, col in enumerate(columns):
        c = pgsql.Identifier(f"_c{i}")
        if col.oid in _INT_OIDS or col.oid in _FLOAT_OIDS or col.oid == _NUMERIC_OID:
            value = pgsql.SQL("CASE WHEN {c}::text IN ('NaN', 'Infinity', '-Infinity') THEN '\"' || {c}::text || '\"' "
                              "ELSE {c}::text END").format(c=c)
        elif col.oid == _BOOL_OID:
            value = pgsql.SQL("CASE WHEN {c} THEN '\"t\"' WHEN NOT {c} THEN '\"f\"' END").format(c=c)
        elif col.oid in _JSON_OIDS:
            value = pgsql.SQL("{c}::text").format(c=c)
        elif col.oid == _BPCHAR_OID:  # bpchar::text drops the padding that COPY (and Redshift) keep
            value = pgsql.SQL("to_json({c})::text").format(c=c)
        else:
            value = pgsql.SQL("to_json({c}::text)::text").format(c=c)
        key = ("," if i else "{") + json.dumps(col.name, ensure_ascii=False) + ":"
        parts.append(pgsql.SQL("{} || coalesce({}, 'null')").format(pgsql.Literal(key), value))
    names = pgsql.SQL(", ").join(pgsql.Identifier(f"_c{i}") for i in range(len(columns)))
    lines = pgsql.SQL("SELECT {} || '}}' FROM ({}) AS unload_query ({})").format(
        pgsql.SQL(" || ").join(parts), pgsql.SQL(query), names)
    rows = 0
    with conn.cursor() as cur, cur.copy(pgsql.SQL("COPY ({}) TO STDOUT").format(lines)) as out:
        batch: list[bytes] = []
        room = spec.max_file_size - writer.size
        for data in out:
            line = bytes(data)
            if b"\\" in line:  # COPY's text format escaped it (a backslash, or raw whitespace in json)
                line = _parse_line(line)[0].encode("utf-8") + b"\n"  # type: ignore[union-attr]
            batch.append(line)
            room -= len(line)
            if len(batch) >= 2000 or room <= 0:
                writer.add_raw(batch)
                rows, batch, room = rows + len(batch), [], spec.max_file_size - writer.size
        writer.add_raw(batch)
    return rows + len(batch)


def _text_rows(conn: psycopg.Connection[Any], query: str) -> Iterator[list[str | None]]:
    with conn.cursor() as cur, cur.copy(pgsql.SQL("COPY ({}) TO STDOUT").format(pgsql.SQL(query))) as out:
        for data in out:
            yield _parse_line(bytes(data))


def _unload_partitioned(conn: psycopg.Connection[Any], query: str, spec: UnloadSpec, columns: list[OutColumn],
                        part_cols: list[int], keep: list[int], sink: _Destination) -> int:
    # Sorting on the partition columns keeps one writer (one spool) open at a time; the row
    # number keeps the query's own order within a partition.
    order = pgsql.SQL(", ").join(pgsql.SQL("unload_sorted.{}").format(pgsql.Identifier(f"_c{i}")) for i in part_cols)
    renamed = pgsql.SQL(", ").join(pgsql.Identifier(f"_c{i}") for i in range(len(columns)))
    sorted_query = pgsql.SQL(
        "SELECT * FROM (SELECT *, row_number() OVER () AS _unload_rn FROM ({}) AS unload_query ({})) AS unload_sorted "
        "ORDER BY {}, _unload_rn").format(pgsql.SQL(query), renamed, order).as_string(conn)
    rows, folder, writer = 0, None, None
    for values in _text_rows(conn, sorted_query):
        here = _partition_folder(columns, values, part_cols)
        if here != folder:
            if writer is not None:
                writer.end_part()  # a folder whose text repeats later continues with its next part
            folder, writer = here, sink.writer(here)
        assert writer is not None
        writer.add([values[i] for i in keep])
        rows += 1
    return rows


def _unload_parquet(conn: psycopg.Connection[Any], query: str, columns: list[OutColumn], writer: _PartWriter) -> int:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    schema = _arrow_schema(columns)
    fields = [f"_c{i}" for i in range(len(columns))]  # the query may repeat a name
    read_options = pacsv.ReadOptions(column_names=fields)
    parse_options = pacsv.ParseOptions(newlines_in_values=True)
    convert_options = pacsv.ConvertOptions(
        column_types=dict(zip(fields, schema.types)), true_values=["t"], false_values=["f"],
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False)

    def write(block: list[bytes]) -> int:
        # Each COPY message is one whole row, so a block of them parses on its own; parsing
        # block by block (not pyarrow's streaming reader, which reads ahead) bounds memory.
        try:
            table = pacsv.read_csv(pa.py_buffer(b"".join(block)), read_options=read_options,
                                   parse_options=parse_options, convert_options=convert_options)
        except pa.ArrowInvalid as exc:
            raise RedshiftError(f"ERROR: cannot write the query's result as Parquet: {exc}") from None
        for batch in table.rename_columns(schema.names).cast(schema).to_batches():
            writer.add_batch(batch)
        return table.num_rows

    statement = pgsql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(pgsql.SQL(query))
    rows, block, size = 0, [], 0
    with conn.cursor() as cur, cur.copy(statement) as out:
        for data in out:
            block.append(bytes(data))
            size += len(data)
            if size >= CSV_BLOCK:
                rows += write(block)
                block, size = [], 0
    return rows + (write(block) if block else 0)


# --- rows ------------------------------------------------------------------------------------

def _parse_line(line: bytes) -> list[str | None]:
    """One row of PostgreSQL's COPY text format: tab-separated, `\\N` for NULL, backslash escapes."""
    text = line.decode("utf-8").rstrip("\n")
    return [None if f == "\\N" else _unescape(f) if "\\" in f else f for f in text.split("\t")]


def _unescape(field: str) -> str:
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            out.append(_PG_UNESCAPE.get(field[i + 1], field[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _partition_folder(columns: list[OutColumn], values: list[str | None], part_cols: list[int]) -> str:
    return "".join(f"{columns[i].name}={_hive_escape(values[i])}/" for i in part_cols)


def _hive_escape(value: str | None) -> str:
    """Hive's path escaping (FileUtils.escapePathName): %XX for control characters and "#%'*/:=?\\{[]^."""
    if value is None:
        return HIVE_NULL
    return "".join(f"%{ord(c):02X}" if c in _HIVE_SPECIAL or ord(c) < 0x20 or c == "\x7f" else c for c in value)


def _quote_csv(value: str, delimiter: str, null: str, always: bool = False) -> str:
    # PostgreSQL's rule (the fast path's): also quote a value that reads back as the NULL string.
    if always or value == null or any(c in value for c in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _text_line(values: list[str | None], spec: UnloadSpec) -> str:
    null = spec.null_as if spec.null_as is not None else ""
    if spec.fixed_width is not None:
        return "".join(_fixed(v, null, col.label, col.width) for v, col in zip(values, spec.fixed_width))
    d = spec.effective_delimiter
    out = []
    for v in values:
        if v is None:
            out.append(null)
            continue
        if spec.escape:  # Redshift's ESCAPE: a backslash before \, the delimiter, LF, CR (and quotes with ADDQUOTES)
            v = v.replace("\\", "\\\\").replace(d, "\\" + d).replace("\n", "\\\n").replace("\r", "\\\r")
            if spec.add_quotes:
                v = v.replace('"', '\\"').replace("'", "\\'")
        out.append(f'"{v}"' if spec.add_quotes else v)
    return d.join(out)


def _fixed(value: str | None, null: str, label: str, width: int) -> str:
    text = null if value is None else value
    if len(text) > width:  # Redshift fails rather than truncate
        raise RedshiftError(f"ERROR: value of {len(text)} characters does not fit FIXEDWIDTH column "
                            f"'{label}' of width {width}")
    return text.ljust(width)


def _json_line(columns: list[OutColumn], values: list[str | None]) -> str:
    """One object per line: numbers bare, booleans "t"/"f" as Redshift writes them, SUPER nested."""
    parts = []
    for col, v in zip(columns, values):
        if v is None:
            text = "null"
        elif (col.oid in _INT_OIDS or col.oid in _FLOAT_OIDS or col.oid == _NUMERIC_OID) \
                and v not in ("NaN", "Infinity", "-Infinity"):
            text = v
        elif col.oid in _JSON_OIDS:
            text = v
        else:
            text = json.dumps(v, ensure_ascii=False)
        parts.append(f"{json.dumps(col.name, ensure_ascii=False)}:{text}")
    return "{" + ",".join(parts) + "}"


def _arrow_schema(columns: list[OutColumn]) -> Any:
    import pyarrow as pa

    def arrow_type(col: OutColumn) -> Any:
        if col.oid in _INT_OIDS:
            return getattr(pa, _INT_OIDS[col.oid])()
        if col.oid in _FLOAT_OIDS:
            return getattr(pa, _FLOAT_OIDS[col.oid])()
        if col.oid == _NUMERIC_OID and col.precision and col.precision <= 38:
            return pa.decimal128(col.precision, col.scale or 0)
        return {_BOOL_OID: pa.bool_(), _DATE_OID: pa.date32(), _TS_OID: pa.timestamp("us"),
                _TSTZ_OID: pa.timestamp("us", tz="UTC")}.get(col.oid, pa.string())

    return pa.schema([pa.field(c.name, arrow_type(c)) for c in columns])


def _arrow_batch(columns: list[OutColumn], rows: list[list[str | None]]) -> Any:
    """The row path's rows as a RecordBatch of `_arrow_schema` (text values parsed by type)."""
    import pyarrow as pa

    schema = _arrow_schema(columns)
    arrays = []
    for i, type_ in enumerate(schema.types):
        raw = [r[i] for r in rows]
        if pa.types.is_boolean(type_):
            values: list[Any] = [None if v is None else v == "t" for v in raw]
        elif pa.types.is_integer(type_):
            values = [None if v is None else int(v) for v in raw]
        elif pa.types.is_floating(type_):
            values = [None if v is None else float(v) for v in raw]
        elif pa.types.is_decimal(type_):
            values = [None if v is None else decimal.Decimal(v) for v in raw]
        elif pa.types.is_date(type_):
            values = [None if v is None else dt.date.fromisoformat(v) for v in raw]
        elif pa.types.is_timestamp(type_):
            values = [None if v is None else dt.datetime.fromisoformat(v) for v in raw]
        else:
            values = raw
        try:
            arrays.append(pa.array(values, type_))
        except (ValueError, pa.ArrowInvalid) as exc:
            raise RedshiftError(f"ERROR: cannot write column \"{columns[i].name}\" as Parquet: {exc}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# --- parts -----------------------------------------------------------------------------------

class _Destination:
    """The writers of one UNLOAD, one per folder (the prefix itself, or a partition folder)."""

    def __init__(self, s3: Any, bucket: str, prefix: str, spec: UnloadSpec, columns: list[OutColumn]) -> None:
        self.s3, self.bucket, self.prefix, self.spec, self.columns = s3, bucket, prefix, spec, columns
        self.writers: dict[str, _PartWriter] = {}
        self.extra: dict[str, Any] = {}
        if spec.kms_key_id:
            self.extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": spec.kms_key_id}
        elif spec.encrypted:
            self.extra = {"ServerSideEncryption": "AES256"}

    def writer(self, folder: str) -> _PartWriter:
        writer = self.writers.get(folder)
        if writer is None:
            if folder and self.spec.clean_path:
                _delete(self.s3, self.bucket, _list(self.s3, self.bucket, self.prefix + folder))
            writer = self.writers[folder] = _PartWriter(self, self.prefix + folder)
        return writer

    def close(self, empty_file: bool) -> list[dict[str, Any]]:
        if empty_file and not self.writers:
            self.writer("")
        entries: list[dict[str, Any]] = []
        for writer in self.writers.values():
            entries += writer.close()
        return entries


class _PartWriter:
    """Writes one folder's parts, rolling over at MAXFILESIZE; a part is opened on first write."""

    def __init__(self, dest: _Destination, prefix: str) -> None:
        self.dest, self.spec, self.prefix = dest, dest.spec, prefix
        self.part = 0
        self.entries: list[dict[str, Any]] = []
        self.spool: IO[bytes] | None = None
        self.size = 0  # bytes in the open part (before compression)

    def _open(self) -> None:
        self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        self.sink: Any = _compressor(self.spool, self.spec.compression)
        self.size = 0
        self.records = 0
        self.parquet_rows: list[list[str | None]] = []
        self.parquet_writer: Any = None
        if self.spec.header and self.spec.fmt in ("CSV", "TEXT"):
            d = self.spec.effective_delimiter
            null = self.spec.null_as or ""
            self._write(d.join(_quote_csv(c.name, d, null) if self.spec.fmt == "CSV" else c.name
                               for c in self.dest.columns) + "\n")

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.sink.write(data)
        self.size += len(data)

    def add(self, values: list[str | None]) -> None:
        if self.spool is None:
            self._open()
        fmt = self.spec.fmt
        if fmt == "PARQUET":
            self.parquet_rows.append(values)
            self.size += sum(len(v or "") + 1 for v in values)  # an estimate: Parquet compresses
            if len(self.parquet_rows) >= PARQUET_GROUP:
                self._write_parquet(_arrow_batch(self.dest.columns, self.parquet_rows))
                self.parquet_rows = []
        elif fmt == "JSON":
            self._write(_json_line(self.dest.columns, values) + "\n")
        elif fmt == "CSV":
            d, null = self.spec.effective_delimiter, self.spec.null_as or ""
            self._write(d.join(null if v is None else _quote_csv(v, d, null, self.spec.add_quotes)
                               for v in values) + "\n")
        else:
            self._write(_text_line(values, self.spec) + "\n")
        self.records += 1
        self._maybe_roll()

    def add_raw(self, lines: list[bytes]) -> None:
        """Rows already formatted (PostgreSQL's CSV output)."""
        if not lines:
            return
        if self.spool is None:
            self._open()
        data = b"".join(lines)
        self.sink.write(data)
        self.size += len(data)
        self.records += len(lines)
        self._maybe_roll()

    def add_batch(self, batch: Any) -> None:
        """A RecordBatch (the Parquet fast path); the part's size is what pyarrow has written."""
        if batch.num_rows == 0:
            return
        if self.spool is None:
            self._open()
        self._write_parquet(batch)
        self.records += batch.num_rows
        assert self.spool is not None
        self.size = self.spool.tell()
        self._maybe_roll()

    def _write_parquet(self, batch: Any) -> None:
        if self.parquet_writer is None:
            import pyarrow.parquet as pq

            self.parquet_writer = pq.ParquetWriter(self.spool, batch.schema, compression="snappy")
        self.parquet_writer.write_batch(batch)

    def _maybe_roll(self) -> None:
        if self.size >= self.spec.max_file_size:
            self.end_part()

    def end_part(self) -> None:
        """Upload the open part (if any); the next row starts the next part number."""
        if self.spool is not None:
            self._upload()
            self.part += 1

    def close(self) -> list[dict[str, Any]]:
        if self.spool is None and not self.entries:
            self._open()  # an empty result still gets its (empty) file
        self.end_part()
        return self.entries

    def _name(self) -> str:
        base = f"{self.prefix}{self.part:03d}" if not self.spec.parallel else f"{self.prefix}0000_part_{self.part:02d}"
        if self.spec.fmt == "PARQUET":
            return base + (f".{self.spec.extension}" if self.spec.extension else ".parquet")
        suffix = {"GZIP": ".gz", "BZIP2": ".bz2", "ZSTD": ".zst"}.get(self.spec.compression or "", "")
        return base + (f".{self.spec.extension}" if self.spec.extension else "") + suffix

    def _upload(self) -> None:
        assert self.spool is not None
        if self.spec.fmt == "PARQUET":
            if self.parquet_rows or self.parquet_writer is None:
                self._write_parquet(_arrow_batch(self.dest.columns, self.parquet_rows))
                self.parquet_rows = []
            self.parquet_writer.close()
        elif self.sink is not self.spool:
            self.sink.close()
        length = self.spool.tell()
        self.spool.seek(0)
        key, s3, bucket = self._name(), self.dest.s3, self.dest.bucket
        if length > MULTIPART_ABOVE:
            s3.upload_fileobj(self.spool, bucket, key, ExtraArgs=dict(self.dest.extra))
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=self.spool, ContentLength=length, **self.dest.extra)
        self.spool.close()
        self.spool = None
        self.entries.append({"url": f"s3://{bucket}/{key}",
                             "meta": {"content_length": length, "record_count": self.records}})


def _compressor(spool: IO[bytes], compression: str | None) -> Any:
    if compression == "GZIP":
        return gzip.GzipFile(fileobj=spool, mode="wb", compresslevel=6)
    if compression == "BZIP2":
        return bz2.BZ2File(spool, mode="wb")
    if compression == "ZSTD":
        import zstandard

        return zstandard.ZstdCompressor().stream_writer(spool, closefd=False)
    return spool


def _schema_type(col: OutColumn) -> dict[str, Any]:
    out: dict[str, Any] = {"base": _TYPE_NAMES.get(col.oid, "character varying")}
    if col.oid == _NUMERIC_OID and col.precision:
        out.update(precision=col.precision, scale=col.scale or 0)
    elif col.oid in (_BPCHAR_OID, 1043) and col.length:
        out["max_length"] = col.length
    return out


def _write_manifest(s3: Any, bucket: str, prefix: str, spec: UnloadSpec, columns: list[OutColumn],
                    entries: list[dict[str, Any]], rows: int, extra: dict[str, Any]) -> None:
    if spec.verbose:
        body: dict[str, Any] = {
            "entries": entries,
            "schema": {"elements": [{"name": c.name, "type": _schema_type(c)} for c in columns]},
            "meta": {"content_length": sum(e["meta"]["content_length"] for e in entries), "record_count": rows},
            "author": {"name": "Amazon Redshift", "version": "1.0.0"},
        }
    else:
        body = {"entries": [{"url": e["url"]} for e in entries]}
    s3.put_object(Bucket=bucket, Key=f"{prefix}manifest", Body=json.dumps(body, indent=1).encode(), **extra)
