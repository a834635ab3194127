"""UNLOAD from PostgreSQL to the local S3, with Redshift's formats, naming and manifests.

The query runs as `COPY (query) TO STDOUT` (PostgreSQL's text format gives Redshift's text
forms for every type: booleans `t`/`f`, timestamps `YYYY-MM-DD HH:MI:SS`), read row by row
and written into parts of at most MAXFILESIZE, each spooled to disk and uploaded when full,
so memory stays flat. Names follow Redshift: `<prefix>0000_part_00` (PARALLEL ON, one slice
here), `<prefix>000` (PARALLEL OFF), `.gz`/`.bz2`/`.zst`/`.parquet` suffixes,
`<prefix>manifest`, and Hive-style `col=value/` folders with PARTITION BY.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import json
import tempfile
import urllib.parse
from typing import IO, Any

import psycopg
from psycopg import sql as pgsql

from devstack.redshift.contracts import ExecContext, RedshiftError, StatementOutcome
from devstack.redshift.rewrite import rewrite
from devstack.redshift.s3io import split_url
from devstack.redshift.unloadopts import UnloadSpec, parse_unload

_NUMERIC_OIDS = {20, 21, 23, 700, 701, 1700}   # int8 int2 int4 float4 float8 numeric
_BOOL_OID = 16
PARQUET_GROUP = 50_000  # rows per Parquet row group: bounds memory
_TYPE_NAMES = {16: "boolean", 20: "bigint", 21: "smallint", 23: "integer", 700: "real", 701: "double precision",
               1700: "numeric", 1043: "character varying", 1042: "character", 25: "text", 1082: "date",
               1114: "timestamp without time zone", 1184: "timestamp with time zone"}
_PG_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "b": "\b", "f": "\f", "v": "\v"}
NOT_EMPTY = ("ERROR: Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, "
             "manually removing the target files in S3, or using the ALLOWOVERWRITE option.")


def run_unload(ctx: ExecContext, sql_text: str) -> StatementOutcome:
    spec = parse_unload(sql_text)
    bucket, prefix = split_url(spec.destination)
    query = rewrite(spec.query).strip().rstrip(";")
    columns = _describe(ctx.conn, query)
    missing = [c for c in spec.partition_by if c not in [name for name, _ in columns]]
    if missing:
        raise RedshiftError(f"ERROR: PARTITION BY column \"{missing[0]}\" is not in the query's output")
    _prepare_destination(ctx.s3, bucket, prefix, spec)
    writers: dict[str, _PartWriter] = {}
    part_cols = [i for i, (name, _) in enumerate(columns) if name in spec.partition_by]
    out_cols = [c for i, c in enumerate(columns) if spec.partition_include or i not in part_cols]
    rows = 0
    csv_direct = spec.fmt == "CSV" and not part_cols  # PostgreSQL's CSV output is Redshift's: pass it through
    statement = pgsql.SQL("COPY ({}) TO STDOUT").format(pgsql.SQL(query))
    if csv_direct:
        statement = pgsql.SQL("COPY ({}) TO STDOUT (FORMAT csv, DELIMITER {}, NULL {}{})").format(
            pgsql.SQL(query), pgsql.Literal(spec.effective_delimiter), pgsql.Literal(spec.null_as or ""),
            pgsql.SQL(", FORCE_QUOTE *" if spec.add_quotes else ""))
    try:
        with ctx.conn.cursor() as cur, cur.copy(statement) as out:
            if csv_direct:
                writer = writers[""] = _PartWriter(ctx.s3, bucket, prefix, spec, out_cols)
                batch: list[bytes] = []
                room = spec.max_file_size
                for data in out:
                    batch.append(bytes(data))
                    room -= len(data)
                    if len(batch) >= 2000 or room <= 0:
                        writer.add_raw(batch)
                        rows, batch, room = rows + len(batch), [], spec.max_file_size - writer.size
                writer.add_raw(batch)
                rows += len(batch)
            for data in ([] if csv_direct else out):
                values = _parse_line(bytes(data))
                folder = _partition_folder(spec, columns, values, part_cols)
                writer = writers.get(folder)
                if writer is None:
                    writer = writers[folder] = _PartWriter(ctx.s3, bucket, prefix + folder, spec, out_cols)
                writer.add([v for i, v in enumerate(values) if spec.partition_include or i not in part_cols])
                rows += 1
    except psycopg.Error as exc:
        raise RedshiftError(f"ERROR: {(exc.diag.message_primary or str(exc)).strip()}") from None
    if not writers and not spec.partition_by:  # Redshift writes an (empty) file even for no rows
        writers[""] = _PartWriter(ctx.s3, bucket, prefix, spec, out_cols)
    entries: list[dict[str, Any]] = []
    for writer in writers.values():
        entries += writer.close()
    if spec.manifest:
        _write_manifest(ctx.s3, bucket, prefix, spec, columns, entries, rows)
    return StatementOutcome(rows=rows)


def _describe(conn: psycopg.Connection[Any], query: str) -> list[tuple[str, int]]:
    try:
        with conn.cursor() as cur:
            cur.execute(pgsql.SQL("SELECT * FROM ({}) AS unload_query LIMIT 0").format(pgsql.SQL(query)))
            return [(d.name, d.type_code) for d in cur.description or []]
    except psycopg.Error as exc:
        raise RedshiftError(f"ERROR: {(exc.diag.message_primary or str(exc)).strip()}") from None


def _prepare_destination(s3: Any, bucket: str, prefix: str, spec: UnloadSpec) -> None:
    existing = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for o in page.get("Contents", [])]
    if not existing or spec.allow_overwrite:
        return
    if not spec.clean_path:
        raise RedshiftError(NOT_EMPTY)
    for start in range(0, len(existing), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in existing[start:start + 1000]]})


def _parse_line(line: bytes) -> list[str | None]:
    """One row of PostgreSQL's COPY text format: tab-separated, `\\N` for NULL, backslash escapes."""
    text = line.decode("utf-8").rstrip("\n")
    values: list[str | None] = []
    for field in text.split("\t"):
        if field == "\\N":
            values.append(None)
        elif "\\" in field:
            values.append(_unescape(field))
        else:
            values.append(field)
    return values


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


def _partition_folder(spec: UnloadSpec, columns: list[tuple[str, int]], values: list[str | None],
                      part_cols: list[int]) -> str:
    if not part_cols:
        return ""
    parts = []
    for i in part_cols:
        value = values[i]
        text = "__HIVE_DEFAULT_PARTITION__" if value is None else urllib.parse.quote(value, safe=" -_.")
        parts.append(f"{columns[i][0]}={text}/")
    return "".join(parts)


class _PartWriter:
    """Writes one destination folder's parts, rolling over at MAXFILESIZE."""

    def __init__(self, s3: Any, bucket: str, prefix: str, spec: UnloadSpec, columns: list[tuple[str, int]]) -> None:
        self.s3, self.bucket, self.prefix, self.spec, self.columns = s3, bucket, prefix, spec, columns
        self.part = 0
        self.entries: list[dict[str, Any]] = []
        self._open()

    def _open(self) -> None:
        self.spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        self.sink: Any = _compressor(self.spool, self.spec.compression)
        self.size = 0
        self.records = 0
        self.parquet_rows: list[list[str | None]] = []
        self.parquet_writer: Any = None
        if self.spec.header and self.spec.fmt in ("CSV", "TEXT"):
            self._write(self.spec.effective_delimiter.join(
                _quote_csv(n, self.spec.effective_delimiter) if self.spec.fmt == "CSV" else n
                for n, _ in self.columns) + "\n")

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.sink.write(data)
        self.size += len(data)

    def add(self, values: list[str | None]) -> None:
        fmt = self.spec.fmt
        if fmt == "PARQUET":
            self.parquet_rows.append(values)
            self.size += sum(len(v or "") + 1 for v in values)
            if len(self.parquet_rows) >= PARQUET_GROUP:
                self._flush_parquet()
        elif fmt == "JSON":
            self._write(_json_line(self.columns, values) + "\n")
        elif fmt == "CSV":
            null = self.spec.null_as or ""
            d = self.spec.effective_delimiter
            self._write(d.join(null if v is None else _quote_csv(v, d, self.spec.add_quotes) for v in values) + "\n")
        else:
            self._write(_text_line(values, self.spec) + "\n")
        self.records += 1
        if self.size >= self.spec.max_file_size:
            self._upload()
            self.part += 1
            self._open()

    def _flush_parquet(self) -> None:
        table = _arrow_table(self.columns, self.parquet_rows)
        if self.parquet_writer is None:
            import pyarrow.parquet as pq

            self.parquet_writer = pq.ParquetWriter(self.spool, table.schema, compression="snappy")
        self.parquet_writer.write_table(table)
        self.parquet_rows = []

    def add_raw(self, lines: list[bytes]) -> None:
        """Rows already formatted (PostgreSQL's CSV output); written before the size check, so
        the caller hands over at most what fits (one row may overshoot, as a part ends on a row)."""
        if not lines:
            return
        data = b"".join(lines)
        self.sink.write(data)
        self.size += len(data)
        self.records += len(lines)
        if self.size >= self.spec.max_file_size:
            self._upload()
            self.part += 1
            self._open()

    def close(self) -> list[dict[str, Any]]:
        if self.records or not self.entries:
            self._upload()
        return self.entries

    def _name(self) -> str:
        base = f"{self.prefix}{self.part:03d}" if not self.spec.parallel else f"{self.prefix}0000_part_{self.part:02d}"
        suffix = {"GZIP": ".gz", "BZIP2": ".bz2", "ZSTD": ".zst"}.get(self.spec.compression or "", "")
        if self.spec.fmt == "PARQUET":
            suffix = ".parquet"
        if self.spec.extension:
            suffix = f".{self.spec.extension}{suffix if self.spec.fmt != 'PARQUET' else ''}"
        return base + suffix

    def _upload(self) -> None:
        if self.spec.fmt == "PARQUET":
            if self.parquet_rows or self.parquet_writer is None:
                self._flush_parquet()
            self.parquet_writer.close()
        elif self.sink is not self.spool:
            self.sink.close()
        length = self.spool.tell()
        self.spool.seek(0)
        key = self._name()
        extra: dict[str, Any] = {}
        if self.spec.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.spec.kms_key_id}
        elif self.spec.encrypted:
            extra = {"ServerSideEncryption": "AES256"}
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=self.spool, ContentLength=length, **extra)
        self.spool.close()
        self.entries.append({"url": f"s3://{self.bucket}/{key}",
                             "meta": {"content_length": length, "record_count": self.records}})


def _compressor(spool: IO[bytes], compression: str | None) -> Any:
    if compression == "GZIP":
        return gzip.GzipFile(fileobj=spool, mode="wb")
    if compression == "BZIP2":
        return bz2.BZ2File(spool, mode="wb")
    if compression == "ZSTD":
        import zstandard

        return zstandard.ZstdCompressor().stream_writer(spool, closefd=False)
    return spool


def _quote_csv(value: str, delimiter: str, always: bool = False) -> str:
    if always or any(c in value for c in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _text_line(values: list[str | None], spec: UnloadSpec) -> str:
    d = spec.effective_delimiter
    null = spec.null_as if spec.null_as is not None else ""
    out = []
    for v in values:
        if v is None:
            out.append(null)
            continue
        if spec.escape:
            v = v.replace("\\", "\\\\").replace(d, "\\" + d).replace("\n", "\\\n").replace("\r", "\\\r")
            if spec.add_quotes:
                v = v.replace('"', '\\"')
        out.append(f'"{v}"' if spec.add_quotes else v)
    return d.join(out)


def _json_line(columns: list[tuple[str, int]], values: list[str | None]) -> str:
    """One object per line; numbers as PostgreSQL wrote them, booleans true/false."""
    parts = []
    for (name, oid), v in zip(columns, values):
        if v is None:
            text = "null"
        elif oid in _NUMERIC_OIDS and v not in ("NaN", "Infinity", "-Infinity"):
            text = v
        elif oid == _BOOL_OID:
            text = "true" if v == "t" else "false"
        else:
            text = json.dumps(v, ensure_ascii=False)
        parts.append(f"{json.dumps(name)}:{text}")
    return "{" + ",".join(parts) + "}"


_ARROW_CASTS = {16: "bool", 20: "int64", 21: "int16", 23: "int32", 700: "float32", 701: "float64",
                1082: "date32", 1114: "timestamp", 1184: "timestamptz"}


def _arrow_table(columns: list[tuple[str, int]], rows: list[list[str | None]]) -> Any:
    import pyarrow as pa

    arrays, fields = [], []
    for i, (name, oid) in enumerate(columns):
        kind = _ARROW_CASTS.get(oid, "string")
        raw = [r[i] for r in rows]
        if kind == "bool":
            arr = pa.array([None if v is None else v == "t" for v in raw], pa.bool_())
        elif kind in ("int64", "int16", "int32"):
            arr = pa.array([None if v is None else int(v) for v in raw], getattr(pa, kind)())
        elif kind in ("float32", "float64"):
            arr = pa.array([None if v is None else float(v) for v in raw], getattr(pa, kind)())
        elif kind == "date32":
            arr = pa.array([None if v is None else dt.date.fromisoformat(v) for v in raw], pa.date32())
        elif kind in ("timestamp", "timestamptz"):
            tz = "UTC" if kind == "timestamptz" else None
            arr = pa.array([None if v is None else dt.datetime.fromisoformat(v) for v in raw], pa.timestamp("us", tz=tz))
        else:
            arr = pa.array(raw, pa.string())
        arrays.append(arr)
        fields.append(pa.field(name, arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _write_manifest(s3: Any, bucket: str, prefix: str, spec: UnloadSpec, columns: list[tuple[str, int]],
                    entries: list[dict[str, Any]], rows: int) -> None:
    if spec.verbose:
        body: dict[str, Any] = {
            "entries": entries,
            "schema": {"elements": [{"name": n, "type": {"base": _TYPE_NAMES.get(oid, "character varying")}}
                                   for n, oid in columns]},
            "meta": {"content_length": sum(e["meta"]["content_length"] for e in entries), "record_count": rows},
            "author": {"name": "Amazon Redshift", "version": "1.0.0"},
        }
    else:
        body = {"entries": [{"url": e["url"]} for e in entries]}
    s3.put_object(Bucket=bucket, Key=f"{prefix}manifest", Body=json.dumps(body, indent=1).encode())
