"""Validation of parsed pipelines.toml into a Catalog, recording every problem with where it is."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from chalicelib import sql
from chalicelib.pipelines import (
    CONNECTIONS,
    DEFAULT_STOP_REASONS,
    FORMATS,
    MODES,
    BatchLimits,
    Catalog,
    CatalogError,
    CatalogProblem,
    DmsFollowup,
    LoadPipeline,
    TableName,
    Warehouse,
)
from chalicelib.catalogsecrets import credential_problems
from chalicelib.catalog_moves import check_archive, check_copy, check_unload
from chalicelib.sql import CopyOption

NAME_RE = re.compile(r"^[a-z0-9_-]+$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
SECRET_ARN_RE = re.compile(r"^arn:aws[\w-]*:secretsmanager:[a-z0-9-]*:\d*:secret:[\w/+=.@-]+$")
STOP_REASONS = ("NORMAL", "RECOVERABLE_ERROR", "FATAL_ERROR", "FULL_LOAD_ONLY_FINISHED", "STOPPED_AFTER_FULL_LOAD",
                "STOPPED_AFTER_CACHED_EVENTS", "EXPRESS_LICENSE_LIMITS_REACHED", "STOPPED_AFTER_DDL_APPLY",
                "STOPPED_DUE_TO_LOW_MEMORY", "STOPPED_DUE_TO_LOW_DISK", "STOPPED_AT_SERVER_TIME",
                "STOPPED_AT_COMMIT_TIME", "RECONFIGURATION_RESTART", "RECYCLE_TASK")
DEFAULT_BATCH = {"max_files": 100, "max_bytes": 1024 ** 3, "max_seconds": 60}
BATCH_RANGES = {"max_files": (1, 1000), "max_bytes": (1, None), "max_seconds": (0, 900)}
# field -> (expected type, required); "ident"/"idents" are SQL identifiers, "stmts" single statements.
WAREHOUSE_FIELDS: dict[str, tuple[str, bool]] = {
    "workgroup": ("str", False), "cluster": ("str", False), "database": ("str", True), "secret_arn": ("str", False),
    "db_user": ("str", False), "iam_role": ("str", False), "connection": ("str", False), "region": ("str", False),
    "host": ("str", False), "port": ("int", False)}
LOAD_FIELDS: dict[str, tuple[str, bool]] = {
    "name": ("str", True), "warehouse": ("str", True), "bucket": ("str", True), "prefix": ("str", False),
    "suffix": ("str", False), "table": ("str", True), "format": ("str", True), "options": ("strs", False),
    "mode": ("str", False), "keys": ("idents", False), "order_by": ("ident", False), "columns": ("idents", False),
    "post_load": ("stmts", False), "batch": ("table", False), "enabled": ("bool", False),
    "allow_new_columns": ("bool", False)}
FOLLOWUP_FIELDS: dict[str, tuple[str, bool]] = {
    "name": ("str", True), "warehouse": ("str", True), "task": ("str", True), "stop_reasons": ("strs", False),
    "steps": ("stmts", True), "wait_for": ("strs", False), "atomic": ("bool", False)}
SECTIONS = ("warehouses", "loads", "dms_followups", "unloads", "copies", "archives")



# --------------------------------------------------------------- validation
def statement_problem(text: str) -> str | None:
    """Why `text` is not exactly one statement (a `;` only at the very end, outside quotes), or None."""
    body = text.strip()
    if not body.rstrip(";").strip():
        return "empty statement"
    quote: str | None = None
    for i, ch in enumerate(body):
        if quote:
            quote = None if ch == quote else quote  # a doubled quote closes and reopens: still inside
        elif ch in "'\"":
            quote = ch
        elif ch == ";" and body[i + 1:].strip():
            return f"must be a single statement; found ';' followed by {body[i + 1:].strip()[:40]!r}"
    return "unterminated quoted text" if quote else None


def parse_table(text: str) -> TableName:
    """`sales.orders` -> TableName('sales', 'orders'); `orders` -> public.orders. Lower-cased like Redshift."""
    parts = text.split(".")
    if len(parts) == 1:
        parts = ["public", parts[0]]
    if len(parts) != 2 or not all(sql.is_identifier(x) for x in parts):
        raise ValueError(f"{text!r} is not schema.table or table made of plain identifiers")
    return TableName(parts[0].lower(), parts[1].lower())


_KIND_TEXT = {"str": "a non-empty string", "strs": "a list of strings", "idents": "a list of SQL identifiers",
              "ident": "a SQL identifier (string)", "stmts": "a list of SQL statements (strings)", "table": "a table",
              "bool": "true or false", "int": "a whole number"}


class Checker:
    """Builds a Catalog from parsed TOML, recording every problem instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[CatalogProblem] = []
        self.leaked: set[tuple[str, str | None, str | None]] = set()

    def add(self, section: str, name: str | None, field: str | None, message: str) -> None:
        if (section, name, field) in self.leaked:
            return
        self.problems.append(CatalogProblem(self.source, section, name, field, message))

    def fields(self, section: str, name: str | None, raw: dict[str, Any],
               spec: dict[str, tuple[str, bool]]) -> dict[str, Any]:
        """Type-checked fields; unknown, missing and mistyped ones become problems (and are left out)."""
        for f in sorted(set(raw) - set(spec)):
            self.add(section, name, f, f"unknown field (allowed: {', '.join(spec)})")
        out: dict[str, Any] = {}
        for f, (kind, required) in spec.items():
            if f not in raw:
                if required:
                    self.add(section, name, f, "required field is missing")
                continue
            value = raw[f]
            ok = {"str": lambda v: isinstance(v, str) and v.strip() != "",
                  "ident": lambda v: isinstance(v, str),
                  "bool": lambda v: isinstance(v, bool),
                  "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "table": lambda v: isinstance(v, dict)}.get(
                kind, lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))(value)
            if not ok:
                self.add(section, name, f, f"must be {_KIND_TEXT[kind]}, got {type(value).__name__} {value!r}")
                continue
            if kind in ("ident", "idents"):
                items = [value] if kind == "ident" else value
                bad = [x for x in items if not sql.is_identifier(x)]
                for x in bad:
                    self.add(section, name, f, f"{x!r} is not a plain SQL identifier "
                                               "(letters, digits and _, not starting with a digit, <= 127 chars)")
                lowered = [x.lower() for x in items]
                dupes = sorted({x for x in lowered if lowered.count(x) > 1})
                if dupes:
                    self.add(section, name, f, f"repeated: {', '.join(dupes)}")
                if bad or dupes:
                    continue
                value = lowered[0] if kind == "ident" else tuple(lowered)
            elif kind == "stmts":
                problems = [(i, statement_problem(x)) for i, x in enumerate(value)]
                for i, problem in problems:
                    if problem:
                        self.add(section, name, f, f"statement {i + 1} ({value[i].strip()[:60]!r}): {problem}")
                if any(p for _, p in problems):
                    continue
                value = tuple(x.strip() for x in value)
            elif kind == "strs":
                value = tuple(value)
            out[f] = value
        return out

    def build(self, data: dict[str, Any]) -> Catalog:
        self.problems += credential_problems(data, self.source)
        # Nothing else is said about a field that holds a credential: those messages quote the value.
        self.leaked = {(p.section, p.name, p.field) for p in self.problems}
        for key in data:
            if key not in SECTIONS:
                self.add("", None, None, f"unknown section '{key}' (allowed: {', '.join(SECTIONS)})")
        warehouses = self.warehouses(data.get("warehouses", {}))
        loads = self.loads(data.get("loads", []), warehouses)
        followups = self.followups(data.get("dms_followups", []), warehouses, loads)
        moves = {section: self.moves(section, data.get(section, []), warehouses, check)
                 for section, check in (("unloads", check_unload), ("copies", check_copy),
                                        ("archives", check_archive))}
        self.cross_checks(warehouses, loads)
        if self.problems:
            raise CatalogError(self.problems)
        return Catalog(self.source, MappingProxyType(dict(warehouses)), tuple(loads), tuple(followups),
                       unloads=tuple(moves["unloads"]), copies=tuple(moves["copies"]),
                       archives=tuple(moves["archives"]))

    def moves(self, section: str, raw: Any, warehouses: Mapping[str, Warehouse], check: Any) -> list[Any]:
        """[[unloads]], [[copies]] or [[archives]]: names share the loads' namespace."""
        out = []
        for i, table in self.table_list(section, raw):
            sec, name = self.named(section, i, table)
            if name is not None and not NAME_RE.match(name):
                self.add(sec, name, "name", "must use only a-z, 0-9, _ and -")
            if name is not None and name in self.seen:
                self.add(sec, name, "name", "duplicate name (all names in the catalog share one namespace)")
            if name is not None:
                self.seen.add(name)
            spec = check(self, sec, name, table, warehouses)
            if spec is not None:
                out.append(spec)
        return out

    def table_list(self, section: str, raw: Any) -> list[tuple[int, dict[str, Any]]]:
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            self.add(section, None, None, f"must be an array of tables ([[{section}]]), got {type(raw).__name__}")
            return []
        return list(enumerate(raw))

    def warehouses(self, raw: Any) -> dict[str, Warehouse]:
        if not isinstance(raw, dict) or not all(isinstance(x, dict) for x in raw.values()):
            self.add("warehouses", None, None, "must be tables like [warehouses.main]")
            return {}
        out = {}
        for name, table in raw.items():
            f = self.fields("warehouses", name, table, WAREHOUSE_FIELDS)
            if not NAME_RE.match(name):
                self.add("warehouses", name, None, "name must use only a-z, 0-9, _ and -")
            if ("workgroup" in table) == ("cluster" in table):
                self.add("warehouses", name, "workgroup", "set exactly one of 'workgroup' (Serverless) or 'cluster'")
            if "secret_arn" in table and "db_user" in table:
                self.add("warehouses", name, "secret_arn", "set 'secret_arn' or 'db_user', not both")
            elif "workgroup" in table and "db_user" in table:
                self.add("warehouses", name, "db_user", "db_user (temporary credentials) is for clusters only; a "
                         "Serverless workgroup signs in with secret_arn or, with neither, as the IAM identity")
            if "secret_arn" in f and not SECRET_ARN_RE.match(f["secret_arn"]):
                shown = f"{f['secret_arn']!r} is" if f["secret_arn"].startswith("arn:") else "is"  # maybe a password
                self.add("warehouses", name, "secret_arn", f"{shown} not a Secrets Manager ARN "
                         "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME); the catalog names the secret, "
                         "it never holds the password")
            if "iam_role" in f and not re.match(r"^arn:aws[\w-]*:iam::\d{12}:role/\S+$", f["iam_role"]):
                self.add("warehouses", name, "iam_role", f"{f['iam_role']!r} is not an IAM role ARN")
            if f.get("connection", "data-api") not in CONNECTIONS:
                self.add("warehouses", name, "connection",
                         f"{f['connection']!r} is not one of {', '.join(CONNECTIONS)}")
            if "region" in f and not REGION_RE.match(f["region"]):
                self.add("warehouses", name, "region", f"{f['region']!r} is not a Region name like 'us-east-1'")
            self.endpoint(name, table, f)
            out[name] = Warehouse(name=name, database=f.get("database", ""), workgroup=f.get("workgroup"),
                                  cluster=f.get("cluster"), secret_arn=f.get("secret_arn"), db_user=f.get("db_user"),
                                  iam_role=f.get("iam_role"), connection=f.get("connection", "data-api"),
                                  region=f.get("region"), host=f.get("host"), port=f.get("port", 5439))
        return out

    def endpoint(self, name: str, table: dict[str, Any], f: dict[str, Any]) -> None:
        """host/port: required (host) for connection "direct", meaningless for the Data API."""
        direct = f.get("connection") == "direct"
        if direct and "host" not in table:
            self.add("warehouses", name, "host", "required with connection 'direct': the endpoint host of the "
                                                 "cluster or workgroup (without the port)")
        for field in ("host", "port"):
            if field in table and not direct:
                self.add("warehouses", name, field, "only for connection 'direct' (the Data API finds the "
                                                    "warehouse by its cluster or workgroup)")
        if "host" in f and not HOST_RE.match(f["host"]):
            self.add("warehouses", name, "host", f"{f['host']!r} is not a host name (no scheme, port or path: "
                                                 "the port goes in 'port')")
        if "port" in f and not 1 <= f["port"] <= 65535:
            self.add("warehouses", name, "port", f"{f['port']} is not a TCP port (1..65535)")

    def named(self, section: str, i: int, table: dict[str, Any]) -> tuple[str, str | None]:
        """The section label and name to report under (the position when the name is unusable)."""
        name = table.get("name")
        return (section, name) if isinstance(name, str) and name else (f"{section} #{i + 1}", None)

    def common(self, sec: str, name: str | None, f: dict[str, Any], warehouses: Mapping[str, Warehouse],
               seen: set[str]) -> None:
        if name is not None and not NAME_RE.match(name):
            self.add(sec, name, "name", "must use only a-z, 0-9, _ and -")
        if name is not None and name in seen:
            self.add(sec, name, "name", "duplicate name (load and follow-up names share one namespace)")
        if name is not None:
            seen.add(name)
        if "warehouse" in f and f["warehouse"] not in warehouses:
            self.add(sec, name, "warehouse", f"unknown warehouse '{f['warehouse']}' "
                                             f"(defined: {', '.join(warehouses) or 'none'})")

    def loads(self, raw: Any, warehouses: Mapping[str, Warehouse]) -> list[LoadPipeline]:
        self.seen: set[str] = set()
        out = []
        for i, table in self.table_list("loads", raw):
            sec, name = self.named("loads", i, table)
            f = self.fields(sec, name, table, LOAD_FIELDS)
            self.common(sec, name, f, warehouses, self.seen)
            if "bucket" in f and not BUCKET_RE.match(f["bucket"]):
                self.add(sec, name, "bucket", f"{f['bucket']!r} is not a valid S3 bucket name")
            if f.get("prefix", "").startswith("/"):
                self.add(sec, name, "prefix", "S3 keys do not start with '/'; drop the leading slash")
            fmt, mode = f.get("format"), f.get("mode", "append")
            if fmt is not None and fmt not in FORMATS:
                self.add(sec, name, "format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
            if mode not in MODES:
                self.add(sec, name, "mode", f"{mode!r} is not one of {', '.join(MODES)}")
            table_name = None
            if "table" in f:
                try:
                    table_name = parse_table(f["table"])
                except ValueError as exc:
                    self.add(sec, name, "table", str(exc))
            options = self.options(sec, name, f.get("options", ()), fmt if fmt in FORMATS else None)
            keys, order_by, columns = f.get("keys", ()), f.get("order_by"), f.get("columns")
            if mode == "upsert" and "keys" not in table or mode == "upsert" and "keys" in f and not keys:
                self.add(sec, name, "keys", "upsert needs at least one key")
            elif mode != "upsert" and "keys" in table:
                self.add(sec, name, "keys", f"keys are only for mode 'upsert' (mode is '{mode}')")
            if mode != "upsert" and "order_by" in table:
                self.add(sec, name, "order_by", f"order_by is only for mode 'upsert' (mode is '{mode}')")
            if columns is not None and not columns:
                self.add(sec, name, "columns", "leave 'columns' out instead of giving an empty list")
            if columns:
                for k in [*keys, *([order_by] if order_by else [])]:
                    if k not in columns:
                        self.add(sec, name, "keys" if k in keys else "order_by",
                                 f"column '{k}' is not in 'columns' ({', '.join(columns)})")
            post_load = f.get("post_load", ())
            room = {"append": 38, "replace": 37, "upsert": 32}.get(mode, 38)  # LOCK, DELETE, COPY(s), staging
            if len(post_load) > room:
                self.add(sec, name, "post_load", f"{len(post_load)} statements leave no room in one batch of "
                                                 f"{sql.MAX_BATCH_STATEMENTS} (at most {room} with mode '{mode}')")
            if f.get("allow_new_columns"):
                has_header = any(o.keyword == "IGNOREHEADER" and o.argument not in (None, "0") for o in options)
                if fmt != "csv" or not has_header:
                    self.add(sec, name, "allow_new_columns", "needs a header row to name the new columns: "
                                                             "format 'csv' with IGNOREHEADER 1")
                elif columns:
                    self.add(sec, name, "allow_new_columns", "cannot be combined with 'columns' (the header, "
                                                             "not a fixed list, says which columns a file has)")
            batch = self.batch(sec, name, f.get("batch", {}))
            if None in (name, table_name, fmt) or "warehouse" not in f or "bucket" not in f:
                continue  # already reported; nothing sensible to build
            assert name is not None and table_name is not None and fmt is not None
            out.append(LoadPipeline(name=name, warehouse=f["warehouse"], bucket=f["bucket"],
                                    prefix=f.get("prefix", ""), suffix=f.get("suffix"), table=table_name,
                                    format=fmt, options=options, mode=mode, keys=tuple(keys), order_by=order_by,
                                    columns=tuple(columns) if columns else None, post_load=tuple(post_load),
                                    batch=batch, enabled=f.get("enabled", True),
                                    allow_new_columns=f.get("allow_new_columns", False)))
        return out

    def options(self, sec: str, name: str | None, texts: Sequence[str], fmt: str | None) -> tuple[CopyOption, ...]:
        parsed: list[CopyOption] = []
        for text in texts:
            try:
                option = sql.parse_copy_option(text)
            except ValueError as exc:
                self.add(sec, name, "options", str(exc))
                continue
            if fmt is not None and not option.valid_for(fmt):
                self.add(sec, name, "options", f"COPY option {text!r} is not valid with format '{fmt}'")
            elif any(o.keyword == option.keyword for o in parsed):
                self.add(sec, name, "options", f"COPY option {option.keyword} is given twice")
            elif option.keyword in sql.COMPRESSION and any(o.keyword in sql.COMPRESSION for o in parsed):
                self.add(sec, name, "options", f"COPY option {text!r}: only one compression (GZIP, BZIP2, ZSTD)")
            parsed.append(option)
        return tuple(parsed)

    def batch(self, sec: str, name: str | None, raw: dict[str, Any]) -> BatchLimits:
        values = dict(DEFAULT_BATCH)
        for key, value in raw.items():
            field = f"batch.{key}"
            if key not in BATCH_RANGES:
                self.add(sec, name, field, f"unknown field (allowed: {', '.join(BATCH_RANGES)})")
                continue
            low, high = BATCH_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int):
                self.add(sec, name, field, f"must be a whole number, got {type(value).__name__} {value!r}")
            elif value < low or (high is not None and value > high):
                self.add(sec, name, field, f"{value} is out of range ({low}..{high if high is not None else ''})")
            else:
                values[key] = value
        return BatchLimits(**values)

    def followups(self, raw: Any, warehouses: Mapping[str, Warehouse],
                  loads: Sequence[LoadPipeline]) -> list[DmsFollowup]:
        out = []
        load_names = {p.name for p in loads}
        for i, table in self.table_list("dms_followups", raw):
            sec, name = self.named("dms_followups", i, table)
            f = self.fields(sec, name, table, FOLLOWUP_FIELDS)
            self.common(sec, name, f, warehouses, self.seen)
            reasons = f.get("stop_reasons", DEFAULT_STOP_REASONS)
            if not reasons:
                self.add(sec, name, "stop_reasons", "give at least one stop reason (or leave the field out)")
            for r in reasons:
                if r not in STOP_REASONS:
                    self.add(sec, name, "stop_reasons", f"{r!r} is not a DMS stop reason ({', '.join(STOP_REASONS)})")
            if "steps" in f and not f["steps"]:
                self.add(sec, name, "steps", "give at least one step")
            if len(f.get("steps", ())) > sql.MAX_BATCH_STATEMENTS and f.get("atomic", True):
                self.add(sec, name, "steps", f"more than {sql.MAX_BATCH_STATEMENTS} steps cannot run in one "
                                             "transaction; set atomic = false")
            for w in f.get("wait_for", ()):
                if w not in load_names:
                    self.add(sec, name, "wait_for", f"unknown load '{w}' (loads: {', '.join(sorted(load_names))})")
            if name is None or not {"warehouse", "task", "steps"} <= set(f):
                continue
            out.append(DmsFollowup(name=name, warehouse=f["warehouse"], task=f["task"], stop_reasons=tuple(reasons),
                                   steps=f["steps"], wait_for=tuple(f.get("wait_for", ())),
                                   atomic=f.get("atomic", True)))
        return out

    def cross_checks(self, warehouses: Mapping[str, Warehouse], loads: Sequence[LoadPipeline]) -> None:
        for w in sorted({p.warehouse for p in loads}):
            if w in warehouses and not warehouses[w].iam_role:
                users = ", ".join(p.name for p in loads if p.warehouse == w)
                self.add("warehouses", w, "iam_role", f"required: COPY needs it for loads {users}")
        enabled = [p for p in loads if p.enabled]
        for i, a in enumerate(enabled):
            for b in enabled[i + 1:]:
                nested = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
                suffixes = a.suffix is None or b.suffix is None or a.suffix.endswith(b.suffix) \
                    or b.suffix.endswith(a.suffix)
                if a.bucket == b.bucket and nested and suffixes:
                    self.add("loads", b.name, "prefix", f"overlaps pipeline '{a.name}' in bucket '{a.bucket}' "
                             f"(prefixes '{a.prefix}' and '{b.prefix}', suffixes {a.suffix!r} and {b.suffix!r}): "
                             "a file could match both")


# ---------------------------------------------------------------------- CLI
