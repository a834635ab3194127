"""COPY from the local S3 into PostgreSQL, the way Redshift loads.

Files are streamed (listed by prefix or manifest, decompressed on the fly, split into
records, checked per column) and written to PostgreSQL with `COPY ... FROM STDIN` in
1 MiB chunks, so memory stays flat whatever the file size. A bad row becomes a load error
(file, line, column, value, Redshift code and reason) written to STL_LOAD_ERRORS on a side
connection, so it survives the rollback; past MAXERROR (default 0) the COPY fails with
Redshift's message and the caller's transaction rolls back.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import psycopg
from psycopg import sql as pgsql

from devstack.redshift import copyfast, copyparquet
from devstack.redshift.contracts import ExecContext, RedshiftError, StatementOutcome
from devstack.redshift.copyconvert import PG_NULL, Column, Converter, make_converter, pg_text
from devstack.redshift.copyformats import (Fault, FaultError, Record, csv_records, json_records, parquet_records,
                                           parse_jsonpaths, text_records)
from devstack.redshift.copyopts import CopySpec, parse_copy
from devstack.redshift.s3io import DECOMPRESSION_ERRORS, S3Object, check_found, open_object, read_whole, resolve_sources

WRITE_CHUNK = 1 << 20
MAX_RECORDED_ERRORS = 1000
# PostgreSQL error (raised inside COPY despite our checks, e.g. a CHECK constraint) → Redshift code.
_SQLSTATE_CODES = {"22P02": 1207, "22003": 1216, "22007": 1206, "22008": 1206, "23502": 1213, "22001": 1204,
                   "22021": 1220, "23505": 1200}
_PG_CONTEXT = re.compile(r'COPY [^,]+, line (\d+)(?:, column ([^:]+))?(?:: "(.*)")?', re.S)


@dataclass(frozen=True)
class LoadError:
    file: str
    line: int
    column: str
    value: str
    code: int
    reason: str
    raw: str = ""


@dataclass
class _Progress:
    """Where each streamed row came from, without keeping one entry per row: rows of a file
    are consecutive lines except where a checkpoint (multi-line record, skipped row) says."""

    files: list[tuple[int, str]] = field(default_factory=list)          # (first row, url)
    checkpoints: list[tuple[int, int]] = field(default_factory=list)    # (row, line) where lines jump
    rows: int = 0

    def start_file(self, url: str) -> None:
        self.files.append((self.rows, url))

    def add(self, line: int) -> None:
        first_row = self.files[-1][0]
        expected = self._line_of(self.rows, first_row)
        if expected != line:
            self.checkpoints.append((self.rows, line))
        self.rows += 1

    def _line_of(self, row: int, first_row: int) -> int:
        i = bisect.bisect_right(self.checkpoints, (row, 1 << 62)) - 1
        if i >= 0 and self.checkpoints[i][0] >= first_row:
            base_row, base_line = self.checkpoints[i]
            return base_line + (row - base_row)
        return 1 + (row - first_row)

    def locate(self, row: int) -> tuple[str, int]:
        i = bisect.bisect_right(self.files, (row, "\uffff")) - 1
        first_row, url = self.files[max(i, 0)]
        return url, self._line_of(row, first_row)


class _LoadFailed(Exception):
    pass


@dataclass
class _Target:
    oid: int
    name: str               # relation name, as Redshift shows it in messages
    qualified: pgsql.Composable
    columns: list[Column]   # the columns the file's fields go to, in order


def run_copy(ctx: ExecContext, sql_text: str) -> StatementOutcome:
    spec = parse_copy(sql_text)
    target = _resolve_target(ctx.conn, spec)
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    objects = resolve_sources(ctx.s3, spec.source, spec.has("MANIFEST"))
    paths = None
    if spec.fmt == "JSON" and spec.json_paths and spec.json_paths.startswith("s3://"):
        paths = parse_jsonpaths(read_whole(ctx.s3, spec.json_paths), spec.json_paths)
        if len(paths) != len(target.columns):
            raise RedshiftError(f"ERROR: Number of jsonpaths and the number of columns should match. "
                                f"JSONPath size: {len(paths)}, Number of columns in table or column list: "
                                f"{len(target.columns)}")
    converters = [make_converter(c, spec, _default_for(ctx.conn, c, spec)) for c in target.columns]
    loader = _Loader(ctx, spec, target, converters)
    fast = copyfast.plan(spec, target.qualified, target.columns)
    done = fast and copyfast.load(ctx.conn, fast, objects, lambda o: open_object(ctx.s3, o, spec.compression),
                                  spec.ignore_header)
    parquet = not done and copyparquet.plan(spec, target.qualified, target.columns)
    done = done or (parquet and copyparquet.load(ctx.conn, parquet, objects, lambda o: open_object(ctx.s3, o, None)))
    try:
        if done:
            loader.loaded, lines = done
            loader.per_file = [(o, n, 0) for o, n in zip(objects, lines)]
        else:
            loader.load(objects, paths)
        if spec.has("MANIFEST"):
            check_found(objects, spec.source)
    except _LoadFailed:
        _record_errors(ctx, target, loader.errors, started)
        _record_history(ctx, spec, target, loader, started, objects, failed=True)
        raise RedshiftError(f"ERROR: Load into table '{target.name}' failed. "
                            "Check 'stl_load_errors' system table for details.") from None
    if loader.errors:  # skipped under MAXERROR: Redshift still records them
        _record_errors(ctx, target, loader.errors, started)
    _record_history(ctx, spec, target, loader, started, objects, failed=False)
    ctx.conn.execute("SELECT set_config('rs.last_copy_count', %s, false), set_config('rs.last_copy_id', %s, false)",
                     (str(loader.loaded), str(ctx.query_id)))
    return StatementOutcome(rows=loader.loaded)


class _Loader:
    def __init__(self, ctx: ExecContext, spec: CopySpec, target: _Target, converters: list[Converter]) -> None:
        self.ctx, self.spec, self.target, self.converters = ctx, spec, target, converters
        self.errors: list[LoadError] = []
        self.error_count = 0
        self.loaded = 0
        self.per_file: list[tuple[S3Object, int, int]] = []   # (object, lines scanned, errors)
        self.progress = _Progress()

    def load(self, objects: list[S3Object], paths: list[list[str | int]] | None) -> None:
        columns = pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in self.target.columns)
        statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(self.target.qualified, columns)
        if self.spec.has("NOLOAD"):  # check every file, keep nothing
            for obj in objects:
                self._load_file(obj, paths, _Discard())
            self.loaded = 0
            return
        try:
            with self.ctx.conn.cursor() as cur, cur.copy(statement) as pg_copy:
                for obj in objects:
                    self._load_file(obj, paths, pg_copy)
        except psycopg.Error as exc:
            self._from_postgres(exc)
            raise _LoadFailed() from None

    def _load_file(self, obj: S3Object, paths: list[list[str | int]] | None, pg_copy: Any) -> None:
        self.progress.start_file(obj.url)
        scanned, errors_before = 0, self.error_count
        buffer: list[str] = []
        size = 0
        converters = self.converters
        ncols = len(converters)
        fill = self.spec.has("FILLRECORD")
        for record in self._records(obj, paths):
            scanned += 1
            fields = record.fields
            if fields is not None and len(fields) != ncols:
                if fill and len(fields) < ncols:
                    fields = fields + [None] * (ncols - len(fields))
                else:
                    record.fault = (Fault(1202, "Extra column(s) found") if len(fields) > ncols
                                    else Fault(1214, "Delimiter not found"))
            if record.fault is None:
                try:
                    line = "\t".join([conv(v) for conv, v in zip(converters, fields)])  # type: ignore[arg-type]
                except FaultError as exc:
                    record.fault = exc.fault
                else:
                    buffer.append(line)
                    self.progress.add(record.line)
                    size += len(line) + 1
                    if size >= WRITE_CHUNK:
                        pg_copy.write("\n".join(buffer) + "\n")
                        self.loaded += len(buffer)
                        buffer, size = [], 0
                    continue
            self._bad_record(obj, record)
        if buffer:
            pg_copy.write("\n".join(buffer) + "\n")
            self.loaded += len(buffer)
        self.per_file.append((obj, scanned, self.error_count - errors_before))

    def _records(self, obj: S3Object, paths: list[list[str | int]] | None) -> Iterator[Record]:
        stream = open_object(self.ctx.s3, obj, self.spec.compression)
        if stream is None:  # an optional manifest entry that does not exist
            return
        try:
            yield from _guard_decompression(self._reader(stream, obj, paths), obj, self.spec)
        finally:
            stream.close()

    def _reader(self, stream: IO[bytes], obj: S3Object, paths: list[list[str | int]] | None) -> Iterator[Record]:
        fmt = self.spec.fmt
        if fmt == "CSV":
            return csv_records(stream, self.spec)
        if fmt == "JSON":
            return json_records(stream, self.spec, [c.name for c in self.target.columns], paths)
        if fmt == "PARQUET":
            return parquet_records(stream, self.spec, len(self.target.columns), obj.url)
        return text_records(stream, self.spec)

    def _bad_record(self, obj: S3Object, record: Record) -> None:
        fault = record.fault
        assert fault is not None
        self.error_count += 1
        if len(self.errors) < MAX_RECORDED_ERRORS:
            self.errors.append(LoadError(obj.url, record.line, fault.column, fault.value, fault.code, fault.reason,
                                         record.raw or _raw_line(record, self.spec)))
        if self.error_count > self.spec.max_error:
            raise _LoadFailed()

    def _from_postgres(self, exc: psycopg.Error) -> None:
        """PostgreSQL rejected a row we let through: map its context back to file and line."""
        diag = exc.diag
        m = _PG_CONTEXT.search(diag.context or "")
        file, line, column, value = (self.progress.files[-1][1] if self.progress.files else self.target.name), 0, "", ""
        if m:
            file, line = self.progress.locate(int(m.group(1)) - 1)
            column, value = (m.group(2) or "").strip(), m.group(3) or ""
        code = _SQLSTATE_CODES.get(diag.sqlstate or "", 1200)
        self.error_count += 1
        self.errors.append(LoadError(file, line, column, value, code, (diag.message_primary or str(exc)).strip()))


class _Discard:
    def write(self, data: str) -> None:
        pass


def _guard_decompression(records: Iterator[Record], obj: S3Object, spec: CopySpec) -> Iterator[Record]:
    try:
        yield from records
    except DECOMPRESSION_ERRORS as exc:
        raise RedshiftError(f"ERROR: {spec.compression or 'read'} error in {obj.url}: {exc}. "
                            "Check the file's compression matches the COPY options.") from None
    except Exception as exc:
        if type(exc).__module__.startswith("zstd"):
            raise RedshiftError(f"ERROR: ZSTD error in {obj.url}: {exc}") from None
        raise


def _raw_line(record: Record, spec: CopySpec) -> str:
    if record.fields is None:
        return ""
    return spec.effective_delimiter.join("" if f is None else f for f in record.fields)


def _resolve_target(conn: psycopg.Connection[Any], spec: CopySpec) -> _Target:
    row = conn.execute("SELECT to_regclass(%s)::oid::int8", (spec.table,)).fetchone()
    if row is None or row[0] is None:
        raise RedshiftError(f'ERROR: relation "{_display(spec.table)}" does not exist')
    oid = int(row[0])
    name, schema = conn.execute("SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                                " WHERE c.oid = %s", (oid,)).fetchone()  # type: ignore[misc]
    rows = conn.execute(
        "SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod), a.atttypmod, a.attnotnull,"
        " pg_get_expr(d.adbin, d.adrelid), a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid), '')"
        "   LIKE 'nextval(%%' FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)).fetchall()
    by_name = {r[0]: r for r in rows}
    if spec.columns is not None:
        missing = [c for c in spec.columns if c not in by_name]
        if missing:
            raise RedshiftError(f'ERROR: column "{missing[0]}" of relation "{name}" does not exist')
        chosen = [by_name[c] for c in spec.columns]
    else:
        # Without a column list, IDENTITY columns are generated unless EXPLICIT_IDS.
        chosen = [r for r in rows if spec.has("EXPLICIT_IDS") or not r[6]]
    columns = [Column(r[0], r[1], r[2], int(r[3]), bool(r[4]), r[5]) for r in chosen]
    schema_name = schema if not str(schema).startswith("pg_temp") else None
    qualified = pgsql.Identifier(schema_name, name) if schema_name else pgsql.Identifier(name)
    return _Target(oid, name, qualified, columns)


def _display(table: str) -> str:
    return table.split(".")[-1].strip('"')


def _default_for(conn: psycopg.Connection[Any], col: Column, spec: CopySpec) -> str:
    """What a JSON record without the column's key loads: the DEFAULT (evaluated once, before
    the COPY starts, since the connection is busy streaming during it), else NULL."""
    if spec.fmt != "JSON" or not col.default or "nextval(" in col.default:
        return PG_NULL
    value = conn.execute(pgsql.SQL("SELECT ({})::text").format(pgsql.SQL(col.default))).fetchone()[0]  # type: ignore[index]
    return PG_NULL if value is None else pg_text(value)


def _record_errors(ctx: ExecContext, target: _Target, errors: list[LoadError], started: dt.datetime) -> None:
    if not errors:
        return
    rows = [(100, 0, target.oid, started, ctx.session_id, ctx.query_id, _clean(e.file, 256), e.line,
             _clean(e.column, 127), _type_of(target, e.column), _clean(e.raw, 1024), _clean(e.value, 1024), e.code,
             _clean(e.reason, 100), ctx.database, target.name, _clean(e.reason, 4096)) for e in errors]
    with ctx.side_connection() as side:
        with side.cursor() as cur:
            cur.executemany(
                "INSERT INTO rs_compat.stl_load_errors (userid, slice, tbl, starttime, session, query, filename,"
                " line_number, colname, type, raw_line, raw_field_value, err_code, err_reason, database_name,"
                " table_name, error_detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows)


def _clean(text: str, limit: int) -> str:
    """Fit a value into a system-table column: invalid bytes shown as U+FFFD, no NULs, cut to size."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "\ufffd")
    return text[:limit]


def _type_of(target: _Target, column: str) -> str:
    for c in target.columns:
        if c.name == column:
            return c.type_text[:10]
    return ""


def _record_history(ctx: ExecContext, spec: CopySpec, target: _Target, loader: _Loader, started: dt.datetime,
                    objects: list[S3Object], *, failed: bool) -> None:
    ended = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    total_bytes = sum(max(o.size, 0) for o in objects)
    with ctx.side_connection() as side:
        with side.cursor() as cur:
            if not failed:
                cur.executemany(
                    "INSERT INTO rs_compat.stl_load_commits (userid, query, slice, name, filename, byte_offset,"
                    " lines_scanned, errors, status, curtime, file_format, is_partial, start_offset)"
                    " VALUES (100, %s, 0, %s, %s, 0, %s, %s, 1, %s, %s, 0, 0)",
                    [(ctx.query_id, target.name[:256], o.url[:256], scanned, errs, ended, spec.fmt)
                     for o, scanned, errs in loader.per_file])
            cur.execute(
                "INSERT INTO rs_compat.sys_load_history (user_id, query_id, status, session_id, database_name,"
                " table_name, start_time, end_time, duration, data_source, file_format, loaded_rows, loaded_bytes,"
                " source_file_count, source_file_bytes, file_count_scanned, file_bytes_scanned, error_count)"
                " VALUES (100, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (ctx.query_id, "failed" if failed else "completed", ctx.session_id, ctx.database, target.name,
                 started, ended, int((ended - started).total_seconds() * 1_000_000), spec.source[:256], spec.fmt,
                 0 if failed else loader.loaded, 0 if failed else total_bytes, len(objects), total_bytes,
                 len(loader.per_file), total_bytes, loader.error_count))
