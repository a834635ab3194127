"""Validation of [[unloads]], [[copies]] and [[archives]] — for the catalog and for HTTP requests alike.

Both go through the catalog's `Checker`, so a request field and a catalog field are held to the
same rules and reported the same way (section, name, field, message).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.movespecs import COMPRESSIONS, COPY_MODES, UNLOAD_FORMATS, ArchiveSpec, CopySpec, UnloadOptions, UnloadSpec
from chalicelib.pipelines import TableName, Warehouse
from chalicelib.schedules import Schedule, ScheduleError, parse_schedule

if TYPE_CHECKING:
    from chalicelib.catalogcheck import Checker

KMS_RE = re.compile(r"^(arn:aws[\w-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/+=,.@-]+|alias/[\w/+=,.@-]+|"
                    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
MAX_FILE_SIZE_MB = (5, 6200)   # UNLOAD MAXFILESIZE: 5 MB .. 6.2 GB
MAX_PARALLEL = (1, 32)

_UNLOAD_OPTION_FIELDS: dict[str, tuple[str, bool]] = {
    "format": ("str", False), "header": ("bool", False), "compression": ("str", False),
    "partition_by": ("idents", False), "max_file_size_mb": ("int", False), "manifest": ("bool", False),
    "kms_key_id": ("str", False), "parallel": ("bool", False), "overwrite": ("bool", False)}
UNLOAD_FIELDS: dict[str, tuple[str, bool]] = {
    "name": ("str", True), "warehouse": ("str", True), "query": ("str", False), "table": ("str", False),
    "bucket": ("str", True), "prefix": ("str", False), "schedule": ("str", False), **_UNLOAD_OPTION_FIELDS}
ARCHIVE_FIELDS: dict[str, tuple[str, bool]] = {
    "name": ("str", True), "warehouse": ("str", True), "table": ("str", True), "timestamp_column": ("ident", True),
    "retention_days": ("int", True), "bucket": ("str", True), "prefix": ("str", False), "format": ("str", False),
    "compression": ("str", False), "kms_key_id": ("str", False), "max_file_size_mb": ("int", False),
    "schedule": ("str", False)}
COPY_FIELDS: dict[str, tuple[str, bool]] = {
    "name": ("str", True), "source": ("str", True), "target": ("str", True), "tables": ("strs", False),
    "schemas": ("idents", False), "staging_bucket": ("str", True), "staging_prefix": ("str", False),
    "mode": ("str", False), "create_missing": ("bool", False), "clean_staging": ("bool", False),
    "verify_counts": ("bool", False), "allow_new_columns": ("bool", False), "include_views": ("bool", False),
    "max_parallel": ("int", False), "kms_key_id": ("str", False), "schedule": ("str", False)}


def check_unload(ch: Checker, sec: str, name: str | None, raw: dict[str, Any],
                 warehouses: Mapping[str, Warehouse], *, allow_query: bool = True) -> UnloadSpec | None:
    spec = UNLOAD_FIELDS if allow_query else {k: v for k, v in UNLOAD_FIELDS.items() if k not in ("query", "schedule")}
    f = ch.fields(sec, name, raw, spec)
    _warehouse(ch, sec, name, f, "warehouse", warehouses)
    _bucket_prefix(ch, sec, name, f, "bucket", "prefix")
    if ("query" in raw) == ("table" in raw):
        ch.add(sec, name, "table" if not allow_query else "query", "give exactly one of 'query' or 'table'"
               if allow_query else "'table' is required")
    query = f.get("query")
    if query is not None:
        query = _query(ch, sec, name, query)
    table = _table(ch, sec, name, f, "table")
    options = _unload_options(ch, sec, name, f)
    schedule = _schedule(ch, sec, name, f)
    if name is None or "warehouse" not in f or "bucket" not in f or options is None or (query is None and table is None):
        return None
    return UnloadSpec(name=name, warehouse=f["warehouse"], bucket=f["bucket"], prefix=f.get("prefix", ""),
                      options=options, query=query, table=table, schedule=schedule)


def check_archive(ch: Checker, sec: str, name: str | None, raw: dict[str, Any],
                  warehouses: Mapping[str, Warehouse]) -> ArchiveSpec | None:
    f = ch.fields(sec, name, raw, ARCHIVE_FIELDS)
    _warehouse(ch, sec, name, f, "warehouse", warehouses)
    _bucket_prefix(ch, sec, name, f, "bucket", "prefix")
    table = _table(ch, sec, name, f, "table")
    days = f.get("retention_days")
    if days is not None and not 1 <= days <= 36500:
        ch.add(sec, name, "retention_days", f"{days} is out of range (1..36500 days)")
    options = _unload_options(ch, sec, name, {**f, "manifest": True})
    schedule = _schedule(ch, sec, name, f)
    if None in (name, table, days, options) or not {"warehouse", "bucket", "timestamp_column"} <= set(f):
        return None
    assert name is not None and table is not None and options is not None
    return ArchiveSpec(name=name, warehouse=f["warehouse"], table=table, timestamp_column=f["timestamp_column"],
                       retention_days=int(days), bucket=f["bucket"], prefix=f.get("prefix", ""), options=options,
                       schedule=schedule)


def check_copy(ch: Checker, sec: str, name: str | None, raw: dict[str, Any],
               warehouses: Mapping[str, Warehouse]) -> CopySpec | None:
    f = ch.fields(sec, name, raw, COPY_FIELDS)
    _warehouse(ch, sec, name, f, "source", warehouses)
    _warehouse(ch, sec, name, f, "target", warehouses)
    if "source" in f and f.get("source") == f.get("target"):
        ch.add(sec, name, "target", "source and target are the same warehouse; a copy needs two")
    _bucket_prefix(ch, sec, name, f, "staging_bucket", "staging_prefix")
    tables: list[TableName] = []
    from chalicelib.catalogcheck import parse_table

    for i, text in enumerate(f.get("tables", ())):
        try:
            tables.append(parse_table(text))
        except ValueError as exc:
            ch.add(sec, name, f"tables[{i}]", str(exc))
    schemas = tuple(f.get("schemas", ()))
    if not f.get("tables") and not schemas:
        ch.add(sec, name, "tables", "give 'tables' (schema.table, ...) and/or 'schemas' to copy")
    mode = f.get("mode", "replace")
    if mode not in COPY_MODES:
        ch.add(sec, name, "mode", f"{mode!r} is not one of {', '.join(COPY_MODES)}")
    parallel = f.get("max_parallel", 4)
    if not MAX_PARALLEL[0] <= parallel <= MAX_PARALLEL[1]:
        ch.add(sec, name, "max_parallel", f"{parallel} is out of range ({MAX_PARALLEL[0]}..{MAX_PARALLEL[1]})")
    _kms(ch, sec, name, f)
    schedule = _schedule(ch, sec, name, f)
    if name is None or not {"source", "target", "staging_bucket"} <= set(f):
        return None
    return CopySpec(name=name, source=f["source"], target=f["target"], tables=tuple(tables), schemas=schemas,
                    staging_bucket=f["staging_bucket"], staging_prefix=f.get("staging_prefix", ""), mode=mode,
                    create_missing=f.get("create_missing", True), clean_staging=f.get("clean_staging", True),
                    verify_counts=f.get("verify_counts", True), allow_new_columns=f.get("allow_new_columns", False),
                    include_views=f.get("include_views", True), max_parallel=parallel,
                    kms_key_id=f.get("kms_key_id"), schedule=schedule)


# ------------------------------------------------------------------ parts
def _warehouse(ch: Checker, sec: str, name: str | None, f: dict[str, Any], field: str,
               warehouses: Mapping[str, Warehouse]) -> None:
    if field not in f:
        return
    w = warehouses.get(f[field])
    if w is None:
        ch.add(sec, name, field, f"unknown warehouse '{f[field]}' (defined: {', '.join(warehouses) or 'none'})")
    elif not w.iam_role:
        ch.add("warehouses", w.name, "iam_role", f"required: UNLOAD and COPY need it for {sec} '{name}'")


def _bucket_prefix(ch: Checker, sec: str, name: str | None, f: dict[str, Any], bucket: str, prefix: str) -> None:
    from chalicelib.catalogcheck import BUCKET_RE

    if bucket in f and not BUCKET_RE.match(f[bucket]):
        ch.add(sec, name, bucket, f"{f[bucket]!r} is not a valid S3 bucket name")
    text = f.get(prefix, "")
    if text.startswith("/"):
        ch.add(sec, name, prefix, "S3 keys do not start with '/'; drop the leading slash")
    if text and not text.endswith("/"):
        ch.add(sec, name, prefix, f"{text!r} must end with '/' (files are written below it)")
    if any(c in text for c in "\x00\r\n") or len(text) > 512:
        ch.add(sec, name, prefix, "must be at most 512 characters, without control characters")


def _table(ch: Checker, sec: str, name: str | None, f: dict[str, Any], field: str) -> TableName | None:
    from chalicelib.catalogcheck import parse_table

    if field not in f:
        return None
    try:
        return parse_table(f[field])
    except ValueError as exc:
        ch.add(sec, name, field, str(exc))
        return None


def _query(ch: Checker, sec: str, name: str | None, query: str) -> str | None:
    from chalicelib.catalogcheck import statement_problem

    problem = statement_problem(query)
    if problem:
        ch.add(sec, name, "query", problem)
        return None
    text = query.strip().rstrip(";").strip()
    if not re.match(r"^(SELECT|WITH)\b", text, re.IGNORECASE):
        ch.add(sec, name, "query", "must be a SELECT (or WITH ... SELECT) query")
        return None
    return text


def _unload_options(ch: Checker, sec: str, name: str | None, f: dict[str, Any]) -> UnloadOptions | None:
    ok = True
    fmt = f.get("format", "csv")
    if fmt not in UNLOAD_FORMATS:
        ch.add(sec, name, "format", f"{fmt!r} is not one of {', '.join(UNLOAD_FORMATS)}")
        ok = False
    compression = f.get("compression")
    if compression is not None and compression not in COMPRESSIONS:
        ch.add(sec, name, "compression", f"{compression!r} is not one of {', '.join(COMPRESSIONS)}")
        ok = False
    if compression is not None and fmt == "parquet":
        ch.add(sec, name, "compression", "Parquet files are compressed already (SNAPPY); leave it out")
        ok = False
    if f.get("header") and fmt != "csv":
        ch.add(sec, name, "header", "a header row is only for format 'csv'")
        ok = False
    size = f.get("max_file_size_mb")
    if size is not None and not MAX_FILE_SIZE_MB[0] <= size <= MAX_FILE_SIZE_MB[1]:
        ch.add(sec, name, "max_file_size_mb", f"{size} is out of range ({MAX_FILE_SIZE_MB[0]}..{MAX_FILE_SIZE_MB[1]})")
        ok = False
    if f.get("overwrite") and not f.get("prefix"):
        ch.add(sec, name, "prefix", "overwrite needs a prefix: CLEANPATH would empty the whole bucket")
        ok = False
    ok = _kms(ch, sec, name, f) and ok
    if not ok:
        return None
    return UnloadOptions(format=fmt, header=f.get("header", False), compression=compression,
                         partition_by=tuple(f.get("partition_by", ())), max_file_size_mb=size,
                         manifest=f.get("manifest", True), kms_key_id=f.get("kms_key_id"),
                         parallel=f.get("parallel", True), overwrite=f.get("overwrite", False))


def _kms(ch: Checker, sec: str, name: str | None, f: dict[str, Any]) -> bool:
    key = f.get("kms_key_id")
    if key is not None and not KMS_RE.match(key):
        ch.add(sec, name, "kms_key_id", f"{key!r} is not a KMS key id, key ARN or alias")
        return False
    return True


def _schedule(ch: Checker, sec: str, name: str | None, f: dict[str, Any]) -> Schedule | None:
    if "schedule" not in f:
        return None
    try:
        return parse_schedule(f["schedule"])
    except ScheduleError as exc:
        ch.add(sec, name, "schedule", str(exc))
        return None
