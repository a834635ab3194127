"""What unloads, table copies and archives do: values from `pipelines.toml` or an HTTP request (pure).

They become UNLOAD, COPY_RUN (fanning out TABLE_COPY) and ARCHIVE jobs; a job keeps its spec as
plain JSON in `Job.params`, so a later catalog change never alters a job already under way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.pipelines import TableName
from chalicelib.schedules import Schedule

UNLOAD_FORMATS = ("csv", "parquet", "json")
COMPRESSIONS = ("gzip", "bzip2", "zstd")
COPY_MODES = ("replace", "append")


@dataclass(frozen=True)
class UnloadOptions:
    format: str = "csv"
    header: bool = False                  # csv only
    compression: str | None = None        # csv / json only
    partition_by: tuple[str, ...] = ()
    max_file_size_mb: int | None = None
    manifest: bool = True
    kms_key_id: str | None = None         # ENCRYPTED KMS_KEY_ID (otherwise S3's default encryption)
    parallel: bool = True
    overwrite: bool = False               # write into the prefix itself (CLEANPATH) instead of a run folder

    def to_params(self) -> dict[str, Any]:
        return {"format": self.format, "header": self.header, "compression": self.compression,
                "partition_by": list(self.partition_by), "max_file_size_mb": self.max_file_size_mb,
                "manifest": self.manifest, "kms_key_id": self.kms_key_id, "parallel": self.parallel,
                "overwrite": self.overwrite}

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> UnloadOptions:
        return cls(format=p["format"], header=p["header"], compression=p["compression"],
                   partition_by=tuple(p["partition_by"]), max_file_size_mb=p["max_file_size_mb"],
                   manifest=p["manifest"], kms_key_id=p["kms_key_id"], parallel=p["parallel"],
                   overwrite=p["overwrite"])


@dataclass(frozen=True)
class UnloadSpec:
    name: str
    warehouse: str
    bucket: str
    prefix: str
    options: UnloadOptions
    query: str | None = None              # from the catalog only (trusted, like post_load statements)
    table: TableName | None = None        # or a whole table (the HTTP API offers only this)
    schedule: Schedule | None = None

    def source_text(self) -> str:
        return self.query if self.query is not None else f"table {self.table.qualified if self.table else '?'}"


@dataclass(frozen=True)
class ArchiveSpec:
    name: str
    warehouse: str
    table: TableName
    timestamp_column: str
    retention_days: int
    bucket: str
    prefix: str
    options: UnloadOptions
    schedule: Schedule | None = None


@dataclass(frozen=True)
class CopySpec:
    name: str
    source: str                           # warehouse names
    target: str
    tables: tuple[TableName, ...]
    schemas: tuple[str, ...]
    staging_bucket: str
    staging_prefix: str
    mode: str = "replace"                 # replace | append
    create_missing: bool = True           # create a missing target table from the source's DDL
    clean_staging: bool = True
    verify_counts: bool = True
    allow_new_columns: bool = False       # schema drift: add the source's new columns (nullable) first
    include_views: bool = True            # schemas: recreate views and procedures, refresh materialized views
    max_parallel: int = 4
    kms_key_id: str | None = None
    schedule: Schedule | None = None

    def to_params(self) -> dict[str, Any]:
        return {"copy": self.name, "source": self.source, "target": self.target,
                "tables": [t.qualified for t in self.tables], "schemas": list(self.schemas),
                "staging_bucket": self.staging_bucket, "staging_prefix": self.staging_prefix, "mode": self.mode,
                "create_missing": self.create_missing, "clean_staging": self.clean_staging,
                "verify_counts": self.verify_counts, "allow_new_columns": self.allow_new_columns,
                "include_views": self.include_views, "max_parallel": self.max_parallel,
                "kms_key_id": self.kms_key_id}
