"""Use cases for data leaving or moving between warehouses: start unloads, archives and copy runs.

Each becomes a job on the same queue, ledger, statuses and retries as loads (issue #5). The
steps themselves are planned and judged by `chalicelib.movesteps` (UNLOAD, ARCHIVE, TABLE_COPY)
and `chalicelib.copyruns` (COPY_RUN: a copy of tables or whole schemas, one TABLE_COPY job per
table). Schedules are checked by the sweeper, once a minute.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from chalicelib import logs
from chalicelib.copyruns import CopyRuns
from chalicelib.jobs import Job, JobKind, JobStatus, new_job_id
from chalicelib.movespecs import ArchiveSpec, CopySpec, UnloadSpec
from chalicelib.movesteps import MoveSteps
from chalicelib.service import Service
from chalicelib.sql_moves import render_archive_select, render_select_table

SCHEDULE_WINDOW_SECONDS = 15 * 60  # a due time missed by more than this (sweeper down) is skipped


class Moves:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.steps = MoveSteps(service)
        self.runs = CopyRuns(service)
        for kind in (JobKind.UNLOAD, JobKind.ARCHIVE, JobKind.TABLE_COPY):
            service.runners[kind] = self.steps
        service.runners[JobKind.COPY_RUN] = self.runs
        service.sweep_hooks.append(self.run_due)
        service.moves = self

    @classmethod
    def of(cls, service: Service) -> Moves:
        """The Moves registered on `service` (one per service)."""
        existing = getattr(service, "moves", None)
        return existing if isinstance(existing, Moves) else cls(service)

    # ------------------------------------------------------------ starting
    def start_unload(self, spec: UnloadSpec, *, run_key: str | None = None, at: float | None = None) -> Job | None:
        job_id = self._job_id(run_key, at)
        url = _run_url(spec.bucket, spec.prefix, job_id, spec.options.overwrite)
        select = spec.query if spec.query is not None else render_select_table(spec.table)  # type: ignore[arg-type]
        params = {"warehouse": spec.warehouse, "select": select, "url": url, "options": spec.options.to_params(),
                  "source": spec.source_text()}
        return self._create(job_id, JobKind.UNLOAD, spec.name, f"{spec.warehouse}:unload:{spec.name}", params)

    def start_archive(self, spec: ArchiveSpec, *, run_key: str | None = None, at: float | None = None) -> Job | None:
        job_id = self._job_id(run_key, at)
        started = at if at is not None else self.service.clock.now()
        # One cutoff, fixed now: the UNLOAD and the DELETE both use it, so they touch the same rows.
        cutoff = datetime.fromtimestamp(int(started) - spec.retention_days * 86400, tz=UTC).strftime(
            "%Y-%m-%d %H:%M:%S")
        url = _run_url(spec.bucket, spec.prefix, job_id, False)
        params = {"warehouse": spec.warehouse, "table": spec.table.qualified, "column": spec.timestamp_column,
                  "cutoff": cutoff, "retention_days": spec.retention_days, "url": url,
                  "options": spec.options.to_params(),
                  "select": render_archive_select(spec.table, spec.timestamp_column, cutoff)}
        return self._create(job_id, JobKind.ARCHIVE, spec.name, f"{spec.warehouse}:{spec.table.qualified}", params)

    def start_copy(self, spec: CopySpec, *, run_key: str | None = None, at: float | None = None) -> Job | None:
        job_id = self._job_id(run_key, at)
        params = {**spec.to_params(), "run_url": _run_url(spec.staging_bucket, spec.staging_prefix, job_id, False)}
        return self._create(job_id, JobKind.COPY_RUN, spec.name, f"copyrun:{job_id}", params)

    def _job_id(self, run_key: str | None, at: float | None) -> str:
        when = at if at is not None else self.service.clock.now()
        suffix = hashlib.sha256(run_key.encode()).hexdigest()[:8] if run_key else secrets.token_hex(4)
        return new_job_id(when, suffix)

    def _create(self, job_id: str, kind: JobKind, name: str, group: str, params: dict[str, Any]) -> Job | None:
        service = self.service
        now = service.clock.now()
        job = Job(id=job_id, kind=kind, pipeline=name, target=group, status=JobStatus.QUEUED, files=(),
                  statement_id=None, attempt=1, max_attempts=service.settings.max_attempts, created_at=now,
                  updated_at=now, submitted_at=None, finished_at=None, rows=None, error=None, params=params)
        if not service.ledger.create_job(job):
            logs.info("move_duplicate_run", job_id=job_id, kind=kind.value, name=name)
            return None
        service.queue.enqueue_job(job.id, group=group, dedup_id=f"{job.id}-1")
        logs.info("move_queued", job_id=job.id, kind=kind.value, name=name)
        return job

    # ----------------------------------------------------------- schedules
    def run_due(self, now: float) -> list[Job]:
        """Start every scheduled unload, copy and archive whose time has come (once per due time)."""
        started = []
        catalog = self.service.catalog
        for section, start in (("unloads", self.start_unload), ("copies", self.start_copy),
                               ("archives", self.start_archive)):
            for spec in getattr(catalog, section):
                due = spec.schedule.due(now, SCHEDULE_WINDOW_SECONDS) if spec.schedule else None
                if due is None:
                    continue
                job = start(spec, run_key=f"{section}|{spec.name}|{int(due)}", at=due)  # type: ignore[operator]
                if job is not None:
                    logs.info("scheduled_run_started", kind=job.kind.value, name=spec.name, job_id=job.id,
                              schedule=spec.schedule.text)
                    started.append(job)
        return started


def _run_url(bucket: str, prefix: str, job_id: str, overwrite: bool) -> str:
    """Each run writes below its own folder (the job id starts with its time) unless asked to overwrite."""
    return f"s3://{bucket}/{prefix}" if overwrite else f"s3://{bucket}/{prefix}{job_id}/"
