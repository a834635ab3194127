"""The pipeline catalog: load `pipelines.toml`, validate all of it, answer routing questions.

Every problem is collected before anything is raised, each naming the file, the
section, the pipeline and the field, e.g.
`pipelines.toml: loads 'orders' field 'keys': upsert needs at least one key`.
Check a file without deploying:  python -m chalicelib.pipelines check FILE
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import sql
from chalicelib.sql import CopyOption

FORMATS = sql.FORMATS
MODES = ("append", "replace", "upsert")
CONNECTIONS = ("data-api", "direct")
DEFAULT_STOP_REASONS = ("FULL_LOAD_ONLY_FINISHED",)


# ------------------------------------------------------------------ values
@dataclass(frozen=True)
class TableName:
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Warehouse:
    name: str
    database: str
    workgroup: str | None
    cluster: str | None
    secret_arn: str | None
    db_user: str | None
    iam_role: str | None
    connection: str = "data-api"
    region: str | None = None
    host: str | None = None   # connection "direct": the cluster's or workgroup's endpoint
    port: int = 5439

    @property
    def target(self) -> str:
        return f"workgroup:{self.workgroup}" if self.workgroup else f"cluster:{self.cluster}"


@dataclass(frozen=True)
class BatchLimits:
    max_files: int = 100
    max_bytes: int = 1024 ** 3
    max_seconds: int = 60


@dataclass(frozen=True)
class LoadPipeline:
    name: str
    warehouse: str
    bucket: str
    prefix: str
    suffix: str | None
    table: TableName
    format: str
    options: tuple[CopyOption, ...]
    mode: str
    keys: tuple[str, ...]
    order_by: str | None
    columns: tuple[str, ...] | None
    post_load: tuple[str, ...]
    batch: BatchLimits
    enabled: bool = True
    allow_new_columns: bool = False   # a CSV header naming new columns adds them (nullable) before loading

    def accepts(self, key: str) -> bool:
        return key.startswith(self.prefix) and (self.suffix is None or key.endswith(self.suffix))


@dataclass(frozen=True)
class DmsFollowup:
    name: str
    warehouse: str
    task: str
    stop_reasons: tuple[str, ...]
    steps: tuple[str, ...]
    wait_for: tuple[str, ...] = ()
    atomic: bool = True  # all steps in one transaction; false: each step after the previous committed


@dataclass(frozen=True)
class Match:
    pipeline: LoadPipeline | None
    reason: str


@dataclass(frozen=True)
class CatalogProblem:
    source: str
    section: str
    name: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.section + (f" '{self.name}'" if self.name else "") + (f" field '{self.field}'" if self.field else "")
        return f"{self.source}: {where}: {self.message}" if where else f"{self.source}: {self.message}"


class CatalogError(ValueError):
    """Everything wrong with a catalog, one problem per line."""

    def __init__(self, problems: Sequence[CatalogProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _task_id(task: str) -> str:
    """A DMS task ARN's last ':' part (its resource id); an identifier is itself."""
    return task.rsplit(":", 1)[-1] if task.startswith("arn:") else task


@dataclass(frozen=True)
class Catalog:
    source: str
    warehouses: Mapping[str, Warehouse]
    loads: tuple[LoadPipeline, ...]
    dms_followups: tuple[DmsFollowup, ...]
    unloads: tuple[Any, ...] = ()     # movespecs.UnloadSpec (that module builds on this one)
    copies: tuple[Any, ...] = ()      # movespecs.CopySpec
    archives: tuple[Any, ...] = ()    # movespecs.ArchiveSpec

    def match(self, bucket: str, key: str) -> Match:
        """The pipeline a new object belongs to, or why none does."""
        if key.endswith("/"):
            return Match(None, f"key '{key}' is a folder marker")
        in_bucket = [p for p in self.loads if p.bucket == bucket]
        if not in_bucket:
            return Match(None, f"no pipeline for bucket '{bucket}'")
        by_prefix = sorted((p for p in in_bucket if key.startswith(p.prefix)), key=lambda p: -len(p.prefix))
        if not by_prefix:
            prefixes = ", ".join(p.prefix or "(whole bucket)" for p in in_bucket)
            return Match(None, f"key '{key}' matches no prefix in bucket '{bucket}' (prefixes: {prefixes})")
        for p in by_prefix:
            if p.enabled and p.accepts(key):
                return Match(p, f"prefix '{p.prefix}' of pipeline '{p.name}'")
        disabled = [p for p in by_prefix if p.accepts(key)]
        if disabled:
            return Match(None, f"pipeline '{disabled[0].name}' is disabled")
        return Match(None, f"key '{key}': " + "; ".join(
            f"suffix '{p.suffix}' required by pipeline '{p.name}'" for p in by_prefix))

    def load(self, name: str) -> LoadPipeline:
        for p in self.loads:
            if p.name == name:
                return p
        raise KeyError(f"no load pipeline named '{name}' in {self.source} "
                       f"(loads: {', '.join(p.name for p in self.loads) or 'none'})")

    def followup(self, name: str) -> DmsFollowup:
        for f in self.dms_followups:
            if f.name == name:
                return f
        raise KeyError(f"no dms_followup named '{name}' in {self.source} "
                       f"(dms_followups: {', '.join(f.name for f in self.dms_followups) or 'none'})")

    def followup_for_task(self, task_arn_or_id: str) -> DmsFollowup | None:
        """By exact identifier or ARN, or by an ARN's last part (either side may be the ARN)."""
        for f in self.dms_followups:
            if f.task == task_arn_or_id or _task_id(f.task) == _task_id(task_arn_or_id):
                return f
        return None

    def move(self, section: str, name: str) -> Any:
        """An [[unloads]], [[copies]] or [[archives]] entry by name."""
        for spec in getattr(self, section):
            if spec.name == name:
                return spec
        raise KeyError(f"no {section[:-1]} named '{name}' in {self.source} "
                       f"({section}: {', '.join(s.name for s in getattr(self, section)) or 'none'})")

    def warehouse(self, name: str) -> Warehouse:
        try:
            return self.warehouses[name]
        except KeyError:
            raise KeyError(f"unknown warehouse '{name}' (defined: {', '.join(self.warehouses)})") from None

    def warehouse_for(self, item: LoadPipeline | DmsFollowup) -> Warehouse:
        try:
            return self.warehouses[item.warehouse]
        except KeyError:
            raise KeyError(f"'{item.name}' names unknown warehouse '{item.warehouse}'") from None

    def to_public_dict(self) -> dict[str, Any]:
        """The catalog for GET /pipelines: no secret ARN (only whether one is set), no local paths."""
        def warehouse(w: Warehouse) -> dict[str, Any]:
            return {"database": w.database, "workgroup": w.workgroup, "cluster": w.cluster, "target": w.target,
                    "auth": "secret" if w.secret_arn else "db_user" if w.db_user else "iam",
                    "secret_arn": "***" if w.secret_arn else None, "db_user": w.db_user, "iam_role": w.iam_role,
                    "connection": w.connection, "region": w.region, "host": w.host,
                    "port": w.port if w.connection == "direct" else None}

        def load(p: LoadPipeline) -> dict[str, Any]:
            return {"name": p.name, "warehouse": p.warehouse, "bucket": p.bucket, "prefix": p.prefix,
                    "suffix": p.suffix, "table": p.table.qualified, "format": p.format,
                    "options": [o.text for o in p.options], "mode": p.mode, "keys": list(p.keys),
                    "order_by": p.order_by, "columns": list(p.columns) if p.columns is not None else None,
                    "post_load": list(p.post_load), "enabled": p.enabled, "allow_new_columns": p.allow_new_columns,
                    "batch": {"max_files": p.batch.max_files, "max_bytes": p.batch.max_bytes,
                              "max_seconds": p.batch.max_seconds}}

        return {"source": os.path.basename(self.source),
                "warehouses": {n: warehouse(w) for n, w in sorted(self.warehouses.items())},
                "loads": [load(p) for p in self.loads],
                "dms_followups": [{"name": f.name, "warehouse": f.warehouse, "task": f.task,
                                   "stop_reasons": list(f.stop_reasons), "steps": list(f.steps),
                                   "wait_for": list(f.wait_for), "atomic": f.atomic} for f in self.dms_followups],
                "unloads": [_move_public(u) for u in self.unloads],
                "copies": [_move_public(c) for c in self.copies],
                "archives": [_move_public(a) for a in self.archives]}


def _move_public(spec: Any) -> dict[str, Any]:
    """An unload, copy or archive for GET /pipelines: its fields as plain JSON values."""
    import dataclasses

    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if isinstance(value, TableName):
            value = value.qualified
        elif isinstance(value, tuple):
            value = [v.qualified if isinstance(v, TableName) else v for v in value]
        elif f.name == "schedule":
            value = value.text if value else None
        elif f.name == "options":
            value = value.to_params()
        out[f.name] = value
    return out


# ------------------------------------------------------------------ loading
def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            text = fh.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError([CatalogProblem(source, "", None, None, f"cannot read the catalog: {exc}")]) from None
    return parse_catalog(text, source)


def parse_catalog(text: str, source: str) -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"line {found.group(1)}, column {found.group(2)}: " if found else ""
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise CatalogError([CatalogProblem(source, "", None, None, f"invalid TOML: {where}{message}")]) from None
    from chalicelib.catalogcheck import (
        Checker,  # validation lives apart; it needs these types
    )

    return Checker(source).build(data)


def _summary(c: Catalog) -> list[str]:
    lines = []
    for p in c.loads:
        how = p.mode + (f" on {', '.join(p.keys)}" if p.keys else "") + (f" latest by {p.order_by}" if p.order_by else "")
        lines.append(f"load {p.name}: s3://{p.bucket}/{p.prefix}*{p.suffix or ''} -> {p.warehouse}:"
                     f"{p.table.qualified} ({p.format}, {how}, batch {p.batch.max_files} files / "
                     f"{p.batch.max_bytes} bytes / {p.batch.max_seconds}s)" + ("" if p.enabled else " [disabled]"))
    for f in c.dms_followups:
        lines.append(f"followup {f.name}: task {f.task} ({', '.join(f.stop_reasons)}) -> {len(f.steps)} step(s) "
                     f"on {f.warehouse}" + (f" after {', '.join(f.wait_for)}" if f.wait_for else ""))
    for u in c.unloads:
        lines.append(f"unload {u.name}: {u.warehouse} {u.source_text()} -> s3://{u.bucket}/{u.prefix} "
                     f"({u.options.format})" + (f" on {u.schedule.text}" if u.schedule else ""))
    for cp in c.copies:
        what = ", ".join([t.qualified for t in cp.tables] + [f"schema {s}" for s in cp.schemas])
        lines.append(f"copy {cp.name}: {cp.source} -> {cp.target}: {what} ({cp.mode}, {cp.max_parallel} at once)"
                     + (f" on {cp.schedule.text}" if cp.schedule else ""))
    for a in c.archives:
        lines.append(f"archive {a.name}: {a.warehouse}:{a.table.qualified} rows older than {a.retention_days} days "
                     f"by {a.timestamp_column} -> s3://{a.bucket}/{a.prefix}"
                     + (f" on {a.schedule.text}" if a.schedule else ""))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.pipelines", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("check", "show"))
    parser.add_argument("file")
    args = parser.parse_args(argv)
    try:
        catalog = load_catalog(args.file)
    except CatalogError as exc:
        print(str(exc), file=sys.stderr)
        print(f"{len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    if args.command == "show":
        print(json.dumps(catalog.to_public_dict(), indent=2))
    else:
        print("\n".join(_summary(catalog) + ["ok"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
