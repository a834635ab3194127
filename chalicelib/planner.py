"""Turn a load job into the statements of one BatchExecuteStatement.

Every COPY reads from a manifest, never from a bare key: a key used as a COPY
source is a *prefix* (`orders/a.csv` would also load `orders/a.csv.bak`).
Manifests are written once per job (same content on every attempt).
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib import sql
from chalicelib.jobs import FileRef, Job
from chalicelib.pipelines import LoadPipeline, Warehouse
from chalicelib.ports import StoragePort


@dataclass(frozen=True)
class Plan:
    sqls: tuple[str, ...]

    @property
    def copy_positions(self) -> tuple[int, ...]:
        """0-based positions of the COPY statements (their row counts are the rows loaded)."""
        return tuple(i for i, s in enumerate(self.sqls) if s.lstrip().upper().startswith("COPY "))


def file_url(f: FileRef) -> str:
    return f"s3://{f.bucket}/{f.key}"


def manifest_key(job_id: str, part: int | None = None) -> str:
    return f"manifests/{job_id}.manifest" if part is None else f"manifests/{job_id}/{part:04d}.manifest"


def build_load_plan(job: Job, pipeline: LoadPipeline, warehouse: Warehouse, *, storage: StoragePort,
                    manifest_bucket: str, target_columns: list[str] | None,
                    file_columns: list[str] | None = None, before: list[str] | None = None) -> Plan:
    files = _unique(job.files)
    if pipeline.mode == "upsert":
        # Latest file wins: order by when S3 says each was written, not by when its event was processed.
        files.sort(key=lambda f: f.created)
        # One manifest per file: the per-file COPYs let the latest file win on key conflicts.
        urls = []
        for i, f in enumerate(files, start=1):
            key = manifest_key(job.id, i)
            storage.put_text(manifest_bucket, key, sql.render_manifest([(file_url(f), f.size)]))
            urls.append(f"s3://{manifest_bucket}/{key}")
        manifest_url = None
    else:
        key = manifest_key(job.id)
        storage.put_text(manifest_bucket, key, sql.render_manifest([(file_url(f), f.size) for f in files]))
        urls = [file_url(f) for f in files]
        manifest_url = f"s3://{manifest_bucket}/{key}"
    statements = sql.render_load_plan(
        pipeline,
        iam_role=warehouse.iam_role or "",
        files=urls,
        manifest_url=manifest_url,
        staging_name=staging_name(job.id),
        target_columns=target_columns,
        file_columns=file_columns,
        before=before or (),
    )
    return Plan(tuple(statements))


def staging_name(job_id: str) -> str:
    """A temp table name unique to the job, already quoted (it never comes from input)."""
    suffix = "".join(ch for ch in job_id.lower() if ch.isalnum())[-24:]
    return sql.quote_ident(f"stage_{suffix}")


def _unique(files: tuple[FileRef, ...]) -> list[FileRef]:
    """Drop repeated file versions (a forced re-add can list one twice), keep arrival order."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in files:
        ident = (f.bucket, f.key, f.version)
        if ident not in seen:
            seen.add(ident)
            out.append(f)
    return out
