"""Use cases: files landed → batches → jobs → statements → finished jobs.

Nothing here waits on the warehouse. The worker submits a job's plan and keeps
the job's FIFO message in flight (that is what serialises one table); the
completion event, a later receive of that message, or the sweeper finishes it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from chalicelib import logs, tracing
from chalicelib.drift import HEAD_BYTES, NEW_COLUMN_TYPE, DriftError, plan_columns
from chalicelib.events import FileEvent, StatementEvent
from chalicelib.jobs import (FILE_RECORD_BUDGET, MOVE_KINDS, FileRef, Job, JobKind, JobStatus, JobSummary,
                            LoadError, is_retryable_error, new_job_id, split_for_job)
from chalicelib.outcomes import first_error, is_transient, load_error_from_row, requeue_delay
from chalicelib.pipelines import Catalog, LoadPipeline, Warehouse
from chalicelib.planner import build_load_plan
from chalicelib.ports import (BatchTally, Clock, LedgerPort, NotifierPort, QueuePort, StatementInfo, StoragePort,
                              WarehousePort, ledger_groups)
from chalicelib.settings import Settings
from chalicelib.sql import max_files_per_job, render_call, render_load_errors_query, render_stl_load_errors_query
from chalicelib.sql_moves import render_add_column

TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
IN_FLIGHT = frozenset({JobStatus.SUBMITTED, JobStatus.RUNNING})


SEAL_ATTEMPTS = 30

class PoisonMessage(ValueError):
    """A message that can never be processed; it goes to the dead-letter queue with this reason."""


class JobFailure(Exception):
    """A job that cannot run as asked (say, the target's columns differ); its text is the job's error."""


@dataclass(frozen=True)
class StepOutcome:
    """What a finished step of a multi-step job means: the next step, success, or a failed check."""

    next_step: int | None = None
    results: dict[str, Any] = field(default_factory=dict)   # merged into the job's results
    rows: int | None = None
    error: str | None = None


class StepRunner(Protocol):
    """Plans and judges the steps of one job kind (unloads, archives, table copies, copy runs)."""

    def plan(self, job: Job) -> tuple[Warehouse, list[str]]: ...

    def step_done(self, job: Job, info: StatementInfo) -> StepOutcome: ...

    def explain(self, job: Job, info: StatementInfo, error: str) -> str: ...

    def finished(self, job: Job) -> None: ...

    def supervises(self, job: Job) -> bool:
        """True while the job has no statement of its own (a copy run waiting on its tables)."""

    def supervise(self, job: Job) -> None: ...

    def retry(self, job: Job) -> Job: ...


class Disposition(Enum):
    DONE = "done"   # delete the message
    KEEP = "keep"   # leave it in flight for `seconds`, then look again


@dataclass(frozen=True)
class WorkerResult:
    disposition: Disposition
    seconds: int = 0


@dataclass
class LandingReport:
    queued_files: list[FileRef] = field(default_factory=list)
    duplicates: list[FileRef] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (s3 url, reason)
    jobs: list[Job] = field(default_factory=list)


@dataclass
class SweepReport:
    sealed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Service:
    def __init__(self, *, catalog: Catalog, settings: Settings, ledger: LedgerPort, queue: QueuePort,
                 warehouse: WarehousePort, storage: StoragePort, notifier: NotifierPort,
                 clock: Clock | None = None) -> None:
        self.catalog = catalog
        self.settings = settings
        self.ledger = ledger
        self.queue = queue
        self.warehouse = warehouse
        self.storage = storage
        self.notifier = notifier
        self.clock = clock or Clock()
        self._logged_unmatched: set[str] = set()
        self._columns: dict[tuple[str, str], list[str]] = {}
        self.runners: dict[JobKind, StepRunner] = {}       # move kinds (chalicelib/moves.py registers them)
        self.sweep_hooks: list[Any] = []                   # called with `now` on every sweep (schedules)
        self.moves: Any = None                             # chalicelib.moves.Moves, once registered

    # ---------------------------------------------------------------- landing
    def files_landed(self, events: Sequence[FileEvent], *, force: bool = False) -> LandingReport:
        """Record each new file version once and add it to its pipeline's open batch. The files of one
        pipeline in `events` are recorded in as few ledger writes as a transaction allows (ledger_groups):
        appending to the open batch costs the size of the batch, so a delivery of a hundred files pays it
        twice, not a hundred times."""
        report = LandingReport()
        by_pipeline: dict[str, tuple[LoadPipeline, list[FileRef]]] = {}
        for event in events:
            url = f"s3://{event.bucket}/{event.key}"
            if event.key.endswith("/") or event.size == 0:
                reason = "folder marker" if event.key.endswith("/") else "zero-byte object"
                report.skipped.append((url, reason))
                logs.info("file_skipped", file=url, reason=reason)
                continue
            match = self.catalog.match(event.bucket, event.key)
            if match.pipeline is None:
                report.skipped.append((url, match.reason))
                self._log_unmatched(url, match.reason)
                continue
            ref = FileRef(bucket=event.bucket, key=event.key, version=event.version, size=event.size,
                          created=event.event_time)
            by_pipeline.setdefault(match.pipeline.name, (match.pipeline, []))[1].append(ref)
        for pipeline, refs in by_pipeline.values():
            with logs.bound(pipeline=pipeline.name, table=pipeline.table.qualified):
                for group in ledger_groups(refs):
                    self._add_to_batch(pipeline, group, force, report)
        return report

    def _add_to_batch(self, pipeline: LoadPipeline, refs: list[FileRef], force: bool, report: LandingReport) -> None:
        result = self.ledger.add_files(pipeline.name, refs, now=self.clock.now(), batch_id=self._new_id(), force=force)
        for ref, status in result.duplicates:
            report.duplicates.append(ref)
            logs.info("file_duplicate", file=ref.url, version=ref.version, status=status)
        if not result.added:
            return
        report.queued_files.extend(result.added)
        tally = result.tally
        if tally is None:
            # Another router or the flush timer sealed the batch between our append and our read of
            # its counters; a seal is conditional on the batch's version, so our files went with it.
            for ref in result.added:
                logs.info("file_batched", file=ref.url, version=ref.version, batch_id=None, batch_files=None)
            return
        for ref in result.added:
            logs.info("file_batched", file=ref.url, version=ref.version, batch_id=tally.batch_id,
                      batch_files=tally.files)
        if result.opened:
            self.queue.schedule_flush(pipeline.name, tally.batch_id, pipeline.batch.max_seconds)
        if self._batch_full(pipeline, tally):
            job = self.seal(pipeline.name, tally.batch_id)
            if job:
                report.jobs.append(job)

    def _log_unmatched(self, url: str, reason: str) -> None:
        # Once per reason per container: a misrouted prefix would otherwise flood the logs.
        if reason not in self._logged_unmatched:
            self._logged_unmatched.add(reason)
            logs.warning("file_unmatched", file=url, reason=reason)

    def _batch_full(self, pipeline: LoadPipeline, tally: BatchTally) -> bool:
        return (tally.files >= max_files_per_job(pipeline) or tally.bytes >= pipeline.batch.max_bytes
                or tally.record_bytes >= FILE_RECORD_BUDGET)

    def flush(self, pipeline_name: str, batch_id: str) -> Job | None:
        """The batch's age limit passed: seal it if it is still the open one.

        Not while its table already has a load waiting to start: a job sealed now would only queue
        behind that one, so the batch keeps growing (up to its file and byte limits, which still seal
        it at once) and is looked at again shortly. A busy table then gets fewer, larger COPYs instead
        of a backlog of small ones, each paying a COPY's fixed cost."""
        pipeline = self.catalog.load(pipeline_name)
        if self._target(pipeline) in self._tables_with_waiting_loads(self.ledger.active_jobs()):
            batch = self.ledger.open_batch(pipeline_name)  # read here only: seal() reads it for itself
            if batch is None or batch.batch_id != batch_id:
                return None
            delay = max(1, min(pipeline.batch.max_seconds, self.settings.poll_seconds))
            self.queue.schedule_flush(pipeline_name, batch_id, delay)
            logs.info("batch_held", pipeline=pipeline_name, batch_id=batch_id, batch_files=len(batch.files),
                      recheck_seconds=delay, reason="a load of this table is waiting to start")
            return None
        return self.seal(pipeline_name, batch_id)

    @staticmethod
    def _tables_with_waiting_loads(active: Sequence[JobSummary]) -> set[str]:
        # Loads only: a follow-up may itself wait for this pipeline's batch to be loaded.
        return {j.target for j in active if j.status is JobStatus.QUEUED and j.kind is JobKind.LOAD}

    def seal(self, pipeline_name: str, batch_id: str | None = None) -> Job | None:
        """Turn the open batch into a QUEUED job and enqueue it. None if nothing (or another) is open."""
        pipeline = self.catalog.load(pipeline_name)
        for attempt in range(SEAL_ATTEMPTS):  # conflicts only with concurrent appends; each retry sees more files
            if attempt:
                # A burst of appends keeps changing the batch: back off (with jitter) so the seal gets in.
                time.sleep(min(0.01 * 2 ** attempt, 0.5) * (0.5 + secrets.randbelow(1000) / 1000))
            batch = self.ledger.open_batch(pipeline_name)
            if batch is None or (batch_id is not None and batch.batch_id != batch_id):
                return None
            now = self.clock.now()
            # Concurrent appends can overshoot the limit; the overflow stays open as a new batch.
            files, rest = split_for_job(batch.files, max_files_per_job(pipeline))
            job = Job(id=batch.batch_id, kind=JobKind.LOAD, pipeline=pipeline.name,
                      target=self._target(pipeline), status=JobStatus.QUEUED, files=files,
                      statement_id=None, attempt=1, max_attempts=self.settings.max_attempts,
                      created_at=now, updated_at=now, submitted_at=None, finished_at=None, rows=None,
                      error=None, load_errors=(), steps=())
            if self.ledger.seal_batch(batch, job, remainder=rest, remainder_id=self._new_id() if rest else None):
                self.queue.enqueue_job(job.id, group=self._group(pipeline), dedup_id=f"{job.id}-1")
                logs.info("job_queued", job_id=job.id, pipeline=pipeline.name, files=len(job.files),
                          bytes=sum(f.size for f in files), left_open=len(rest))
                return job
        # The flush message or the sweeper tries again; the files stay safely in the open batch.
        raise RuntimeError(f"could not seal the open batch of pipeline '{pipeline_name}': "
                           f"{SEAL_ATTEMPTS} conflicting appends in a row")

    def _target(self, pipeline: LoadPipeline) -> str:
        return f"{pipeline.warehouse}:{pipeline.table.qualified}"

    def _group(self, pipeline: LoadPipeline) -> str:
        """FIFO message group: one table of one warehouse loads one job at a time."""
        return self._target(pipeline)

    def _new_id(self) -> str:
        return new_job_id(self.clock.now(), secrets.token_hex(4))

    # ----------------------------------------------------------------- worker
    def run_job_message(self, job_id: str, *, receipt: str, receive_count: int) -> WorkerResult:
        """One delivery of a job's message: submit it, check on it, or let it go."""
        # Recorded first, read back in the same request: the completion handler uses the receipt to
        # release the message, and the job as of now shows whether it finished meanwhile.
        job = self.ledger.set_receipt(job_id, receipt)
        if job is None:
            raise PoisonMessage(f"job '{job_id}' does not exist in the ledger")
        with tracing.job_scope("run_job", job_id=job.id, pipeline=job.pipeline, table=job.target):
            if job.status in TERMINAL:
                return WorkerResult(Disposition.DONE)
            runner = self.runners.get(job.kind)
            if runner is not None and runner.supervises(job):
                runner.supervise(job)  # it moves on when its table jobs finish; nothing to hold
                return WorkerResult(Disposition.DONE)
            if job.status is JobStatus.QUEUED:
                if self._waiting_for_loads(job):
                    return WorkerResult(Disposition.KEEP, self._poll_delay(receive_count))
                return self._submit(job)
            info = self.warehouse.describe(job.statement_id or "")
            if info.finished:
                job = self._finish(job, info)
                return self._after(job)
            if job.status is JobStatus.SUBMITTED and info.status == "STARTED":
                running = job.transition(JobStatus.RUNNING, self.clock.now())
                if self.ledger.save_job(running, expected=JobStatus.SUBMITTED):
                    job = running
            return WorkerResult(Disposition.KEEP, self._poll_delay(receive_count))

    def _poll_delay(self, receive_count: int) -> int:
        # Each look is one receive; back off so a long statement doesn't exhaust maxReceiveCount.
        return min(self.settings.poll_seconds * 2 ** max(0, receive_count - 2), 900)

    def _after(self, job: Job) -> WorkerResult:
        if job.status is JobStatus.QUEUED:  # a retry after its backoff, or a chain's next step at once
            return WorkerResult(Disposition.KEEP, requeue_delay(job))
        return WorkerResult(Disposition.DONE)

    @staticmethod
    def _run_label(job: Job) -> str:
        """Which run of a job a statement belongs to: the attempt (and a chain's step)."""
        chained = job.kind is JobKind.FOLLOWUP or job.kind in MOVE_KINDS
        return f"{job.attempt}.{job.step}" if chained else str(job.attempt)

    def _waiting_for_loads(self, job: Job) -> bool:
        """A follow-up with `wait_for` runs only once those pipelines have nothing open or running."""
        if job.kind is not JobKind.FOLLOWUP:
            return False
        waits = set(self.catalog.followup(job.pipeline).wait_for)
        if not waits:
            return False
        busy = self.ledger.busy_pipelines()  # every check: so without the jobs' file lists
        if busy & waits:
            logs.info("followup_waiting_for_loads", pipelines=sorted(busy & waits))
            return True
        return False

    def _plan(self, job: Job) -> tuple[Warehouse, list[str]]:
        runner = self.runners.get(job.kind)
        if runner is not None:
            return runner.plan(job)
        if job.kind is JobKind.FOLLOWUP:
            followup = self.catalog.followup(job.pipeline)
            steps = [render_call(step) for step in job.steps]
            return self.catalog.warehouse_for(followup), steps if followup.atomic else [steps[job.step]]
        pipeline = self.catalog.load(job.pipeline)
        warehouse = self.catalog.warehouse_for(pipeline)
        file_columns, added = self._check_header(job, pipeline)
        columns = self._table_columns(pipeline) + added if pipeline.mode == "upsert" else None
        plan = build_load_plan(job, pipeline, warehouse, storage=self.storage,
                               manifest_bucket=self.settings.manifest_bucket, target_columns=columns,
                               file_columns=file_columns,
                               before=[render_add_column(pipeline.table, c, NEW_COLUMN_TYPE) for c in added])
        return warehouse, list(plan.sqls)

    def _check_header(self, job: Job, pipeline: LoadPipeline) -> tuple[list[str] | None, list[str]]:
        """Schema drift: compare the files' CSV header with the table before loading (chalicelib/drift.py)."""
        header_rows = next((o.argument for o in pipeline.options if o.keyword == "IGNOREHEADER"), None)
        if pipeline.format != "csv" or header_rows in (None, "0"):
            return None, []
        options = {o.keyword: o.argument for o in pipeline.options}
        compression = next((k for k in ("GZIP", "BZIP2", "ZSTD") if k in options), None)
        # Fresh, not the container's cache: another container may have added a column since.
        self._columns.pop((pipeline.warehouse, pipeline.table.qualified), None)
        try:
            return plan_columns(job.files, lambda f: self.storage.read_head(f.bucket, f.key, HEAD_BYTES),
                                table=pipeline.table.qualified, expected=self._table_columns(pipeline),
                                compression=compression, delimiter=options.get("DELIMITER") or ",",
                                quote=options.get("QUOTE") or '"', allow_new_columns=pipeline.allow_new_columns)
        except DriftError as exc:
            raise JobFailure(str(exc)) from None

    def _submit(self, job: Job) -> WorkerResult:
        try:
            warehouse, sqls = self._plan(job)
            run = self._run_label(job)
            name = f"{self.settings.statement_prefix}:{job.id}:{run}"
            # Same token on a redelivery: the Data API returns the statement it already started.
            statement_id = self.warehouse.submit(warehouse, sqls, name=name, token=f"{job.id}-{run}")
        except JobFailure as exc:
            self._fail_before_submit(job, str(exc))
            return WorkerResult(Disposition.DONE)
        except Exception as exc:
            if is_transient(exc):
                raise  # the message comes back after a backoff; the job stays QUEUED
            self._fail_before_submit(job, f"could not submit: {type(exc).__name__}: {exc}")
            return WorkerResult(Disposition.DONE)
        now = self.clock.now()
        submitted = job.transition(JobStatus.SUBMITTED, now, statement_id=statement_id, submitted_at=now)
        if not self.ledger.save_job(submitted, expected=JobStatus.QUEUED, expected_attempt=job.attempt):
            current = self.ledger.get_job(job.id)
            logs.info("job_submit_raced", statement_id=statement_id, status=current.status.value if current else None)
            if current is None or current.status in TERMINAL:  # its completion event was faster than us
                return WorkerResult(Disposition.DONE)
        else:
            logs.info("job_submitted", statement_id=statement_id, attempt=job.attempt,
                      statements=len(sqls), files=len(job.files))
            if warehouse.connection == "direct":
                # A direct connection ran the batch inside submit (no completion event exists for it):
                # finish the job now rather than at the next look.
                return self._after(self._finish(submitted, self.warehouse.describe(statement_id)))
        return WorkerResult(Disposition.KEEP, self.settings.poll_seconds)

    def _fail_before_submit(self, job: Job, error: str) -> None:
        now = self.clock.now()
        failed = job.transition(JobStatus.FAILED, now, finished_at=now, error=error)
        if self.ledger.save_job(failed, expected=JobStatus.QUEUED, expected_attempt=job.attempt):
            self.ledger.mark_files(failed.files, JobStatus.FAILED.value, failed.id)
            logs.error("job_failed_before_submit", error=error)
            self.notifier.job_finished(failed)
            self._after_terminal(failed)

    def _table_columns(self, pipeline: LoadPipeline) -> list[str]:
        if pipeline.columns:
            return list(pipeline.columns)
        key = (pipeline.warehouse, pipeline.table.qualified)
        if key not in self._columns:
            columns = self.warehouse.table_columns(self.catalog.warehouse_for(pipeline), pipeline.table)
            if not columns:
                raise RuntimeError(f"table {pipeline.table.qualified} not found in warehouse '{pipeline.warehouse}'")
            self._columns[key] = columns
        return self._columns[key]

    # ------------------------------------------------------------- completion
    def statement_finished(self, event: StatementEvent) -> Job | None:
        """A Data API status-change event for one of our statements."""
        parts = (event.statement_name or "").split(":")
        if len(parts) != 3 or parts[0] != self.settings.statement_prefix:
            logs.info("statement_event_ignored", statement_name=event.statement_name)
            return None
        job = self.ledger.get_job(parts[1])
        if job is None:
            logs.warning("statement_event_unknown_job", statement_name=event.statement_name)
            return None
        with tracing.job_scope("finish_job", job_id=job.id, pipeline=job.pipeline, table=job.target):
            if job.status is JobStatus.QUEUED and parts[2] == self._run_label(job):
                # The statement ended before the worker recorded its submission: record it here.
                submitted = job.transition(JobStatus.SUBMITTED, self.clock.now(), statement_id=event.statement_id,
                                           submitted_at=self.clock.now())
                if self.ledger.save_job(submitted, expected=JobStatus.QUEUED, expected_attempt=job.attempt):
                    job = submitted
                else:
                    job = self.ledger.get_job(job.id) or job
            if job.status not in IN_FLIGHT or job.statement_id != event.statement_id:
                logs.info("statement_event_stale", statement_id=event.statement_id, status=job.status.value)
                return job
            job = self._finish(job, self.warehouse.describe(event.statement_id))
            self._release(job)
            return job

    def _sweep_job(self, job: Job, now: float, report: SweepReport) -> None:
        if job.status is JobStatus.QUEUED:
            # Its message may have been lost; a duplicate is harmless (the worker checks status).
            # The job's target is its FIFO group, for loads and follow-ups alike.
            slot = int(now // max(1, self.settings.sweep_grace_seconds))
            self.queue.enqueue_job(job.id, group=job.target, dedup_id=f"{job.id}-{job.attempt}-s{slot}")
            report.requeued.append(job.id)
            logs.info("job_requeued_by_sweeper")
        elif job.status in IN_FLIGHT and job.kind in self.runners and self.runners[job.kind].supervises(job):
            self.runners[job.kind].supervise(job)  # a copy run whose table jobs' hooks were missed
        elif job.status in IN_FLIGHT and job.statement_id:
            try:
                info = self.warehouse.describe(job.statement_id)
            except Exception as exc:
                if is_transient(exc) or "ResourceNotFound" not in f"{type(exc).__name__}: {exc}":
                    raise
                # The Data API forgot the statement (results are kept 24 h): nothing will ever finish it.
                info = StatementInfo(id=job.statement_id, status="FAILED",
                                     error=f"the Data API no longer knows statement {job.statement_id}: {exc}")
            if info.finished:
                finished = self._finish(job, info)
                self._release(finished)
                report.finished.append(job.id)
                logs.info("job_finished_by_sweeper", status=finished.status.value)

    def _release(self, job: Job) -> None:
        """Let the job's held FIFO message go now (or after the retry backoff)."""
        receipt = self.ledger.get_receipt(job.id)
        if receipt:
            self.queue.hide(receipt, requeue_delay(job) if job.status is JobStatus.QUEUED else 0)

    def _finish(self, job: Job, info: StatementInfo) -> Job:
        now = self.clock.now()
        exhausted = False
        runner = self.runners.get(job.kind)
        if info.status == "FINISHED" and runner is not None:
            outcome = runner.step_done(job, info)
            results = {**job.results, **outcome.results}
            if outcome.error:
                new = job.transition(JobStatus.FAILED, now, finished_at=now, error=outcome.error, results=results)
            elif outcome.next_step is not None:
                new = job.transition(JobStatus.QUEUED, now, step=outcome.next_step, statement_id=None, error=None,
                                     results=results)
                logs.info("job_step_done", step=job.step, next_step=outcome.next_step)
            else:
                new = job.transition(JobStatus.SUCCEEDED, now, rows=outcome.rows, finished_at=now, error=None,
                                     results=results)
        elif info.status == "FINISHED" and self._next_step(job) is not None:
            new = job.transition(JobStatus.QUEUED, now, step=job.step + 1, statement_id=None, error=None)
            logs.info("followup_step_done", step=job.step + 1, of=len(job.steps))
        elif info.status == "FINISHED":
            rows = info.copy_rows() if job.kind is JobKind.LOAD else None
            new = job.transition(JobStatus.SUCCEEDED, now, rows=rows, finished_at=now, error=None)
        elif info.status == "ABORTED":
            new = job.transition(JobStatus.CANCELLED, now, finished_at=now, error="statement was cancelled")
        else:
            error = first_error(info)
            if runner is not None:
                error = runner.explain(job, info, error)
            if is_retryable_error(error) and job.attempt < job.max_attempts:
                new = job.transition(JobStatus.QUEUED, now, attempt=job.attempt + 1, statement_id=None, error=error)
                logs.warning("job_retry", error=error, attempt=job.attempt, next_attempt=job.attempt + 1)
            else:
                new = job.transition(JobStatus.FAILED, now, finished_at=now, error=error,
                                     load_errors=tuple(self._load_errors(job, info)))
                exhausted = is_retryable_error(error)
        if new.status in TERMINAL:
            # Before the save that makes the job terminal: nobody finishes a terminal job again, so a
            # finisher dying right after that save would leave its files unmarked and the good files
            # of a batch with a bad file never loaded. Done first, a death leaves the job in flight and
            # the next finisher repeats these idempotent steps.
            self.ledger.mark_files(new.files, "LOADED" if new.status is JobStatus.SUCCEEDED else new.status.value,
                                   new.id)
            if new.status is JobStatus.FAILED and new.load_errors:
                self._requeue_good_files(new)
        if not self.ledger.save_job(new, expected=job.status, expected_attempt=job.attempt):
            current = self.ledger.get_job(job.id)
            logs.info("job_finish_raced", status=current.status.value if current else None)
            return current or new
        if new.status is JobStatus.FAILED and exhausted:
            # Retries used up: park the job's message on the DLQ (alarms watch it) as well as failing the job.
            self.queue.dead_letter(self.settings.jobs_queue, json.dumps({"job_id": new.id}),
                                   f"job {new.id} failed after {new.attempt} attempts: {new.error}")
        if new.status in TERMINAL:
            logs.info("job_finished", status=new.status.value, rows=new.rows, error=new.error,
                      attempt=new.attempt, duration_s=round(now - (job.submitted_at or now), 3))
            self.notifier.job_finished(new)
            self._after_terminal(new)
        return new

    def _after_terminal(self, job: Job) -> None:
        """Let a move kind react to its job ending (clean staging files, start a run's next table)."""
        runner = self.runners.get(job.kind)
        if runner is None:
            return
        try:
            runner.finished(job)
        except Exception as exc:  # the job's own outcome stands; the sweeper retries what this missed
            logs.error("job_finished_hook_failed", error=f"{type(exc).__name__}: {exc}")

    def _requeue_good_files(self, failed: Job) -> Job | None:
        """A bad file fails its whole batch (one COPY). The files the load errors do not name load
        again at once as a new job, so one bad file never holds good data back; the bad ones stay
        FAILED with their reason. Not for `replace`: part of a snapshot must not replace a table."""
        if failed.kind is not JobKind.LOAD:  # a table copy's COPY has no files of its own to split
            return None
        pipeline = self.catalog.load(failed.pipeline)
        bad = {e.file for e in failed.load_errors}
        good = tuple(f for f in failed.files if f.url not in bad)
        if pipeline.mode == "replace" or not good or len(good) == len(failed.files):
            return None
        now = self.clock.now()
        # The same id whoever splits this attempt, however often: a finisher that died after the split
        # and before saving the failed job must not split it twice (the good files would load twice).
        digest = hashlib.sha256(f"{failed.id}:split:{failed.attempt}".encode()).hexdigest()[:8]
        job = Job(id=new_job_id(failed.submitted_at or failed.created_at, digest), kind=JobKind.LOAD,
                  pipeline=failed.pipeline, target=failed.target,
                  status=JobStatus.QUEUED, files=good, statement_id=None, attempt=1, max_attempts=failed.max_attempts,
                  created_at=now, updated_at=now, submitted_at=None, finished_at=None, rows=None, error=None,
                  load_errors=(), steps=())
        created = self.ledger.create_job(job)
        self.ledger.mark_files(good, "BATCHED", job.id)
        self.queue.enqueue_job(job.id, group=failed.target, dedup_id=f"{job.id}-1")  # again if repeated: harmless
        if created:
            logs.info("job_split", failed_job=failed.id, new_job=job.id, requeued_files=len(good),
                      bad_files=sorted(bad))
        return job

    def _next_step(self, job: Job) -> int | None:
        if job.kind is not JobKind.FOLLOWUP or self.catalog.followup(job.pipeline).atomic:
            return None
        return job.step + 1 if job.step + 1 < len(job.steps) else None

    def _load_errors(self, job: Job, info: StatementInfo) -> list[LoadError]:
        """Bad-row details (file, line, column, value, reason) from the load error views."""
        query_ids = info.failed_query_ids()
        if not query_ids or "load" not in (info.error or "").lower():
            return []
        try:  # a move job's COPY loads into its target warehouse
            warehouse = (self.catalog.warehouse(job.params["target"]) if job.kind in MOVE_KINDS
                         else self.catalog.warehouse_for(self.catalog.load(job.pipeline)))
        except KeyError:
            return []
        # Serverless has only SYS_LOAD_ERROR_DETAIL; clusters' STL_LOAD_ERRORS also keeps the raw value.
        sql = (render_load_errors_query(query_ids) if warehouse.workgroup
               else render_stl_load_errors_query(query_ids[0]))
        try:
            rows = self.warehouse.query(warehouse, sql)
        except Exception as exc:  # diagnostics must never hide the original failure
            logs.warning("load_errors_lookup_failed", error=str(exc))
            return []
        return [load_error_from_row(r) for r in rows]

    # ------------------------------------------------------- people steering
    def retry(self, job: Job) -> Job:
        """Run a FAILED or CANCELLED job again, with a fresh attempt budget."""
        runner = self.runners.get(job.kind)
        if runner is not None:
            return runner.retry(job)
        return self.requeue(job)

    def requeue(self, job: Job, **changes: Any) -> Job:
        """Queue a FAILED or CANCELLED job again (a retry), with `changes` (say, its first step again)."""
        now = self.clock.now()
        retried = job.transition(JobStatus.QUEUED, now, attempt=job.attempt + 1,
                                 max_attempts=job.attempt + self.settings.max_attempts, statement_id=None,
                                 error=None, load_errors=(), finished_at=None, rows=None, **changes)
        if not self.ledger.save_job(retried, expected=job.status, expected_attempt=job.attempt):
            raise RuntimeError(f"job '{job.id}' changed while it was being retried; try again")
        self.ledger.mark_files(retried.files, "BATCHED", retried.id)
        self.queue.enqueue_job(job.id, group=job.target, dedup_id=f"{job.id}-{retried.attempt}")
        logs.info("job_retry_requested", job_id=job.id, attempt=retried.attempt)
        return retried

    def cancel(self, job: Job) -> Job:
        """Cancel a queued job at once, or a running one's statement (its ABORTED event finishes it)."""
        if job.status is JobStatus.QUEUED:
            now = self.clock.now()
            cancelled = job.transition(JobStatus.CANCELLED, now, finished_at=now, error="cancelled before it ran")
            if self.ledger.save_job(cancelled, expected=JobStatus.QUEUED, expected_attempt=job.attempt):
                self.ledger.mark_files(cancelled.files, JobStatus.CANCELLED.value, job.id)
                self.notifier.job_finished(cancelled)
                return cancelled
            job = self.ledger.get_job(job.id) or job
        if job.status in IN_FLIGHT and job.statement_id:
            self.warehouse.cancel(job.statement_id)
            logs.info("job_cancel_requested", job_id=job.id, statement_id=job.statement_id)
        return job

    def health(self) -> dict[str, dict[str, object]]:
        checks: dict[str, dict[str, object]] = {}
        try:
            self.ledger.get_job("health-check")
            checks["ledger"] = {"ok": True}
        except Exception as exc:
            checks["ledger"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        for name, warehouse in self.catalog.warehouses.items():
            try:
                self.warehouse.ping(warehouse)
                checks[f"warehouse:{name}"] = {"ok": True}
            except Exception as exc:
                checks[f"warehouse:{name}"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        return checks

    # ---------------------------------------------------------------- sweeper
    def sweep(self) -> SweepReport:
        """Backstop for lost flush messages, lost job messages and lost completion events."""
        report = SweepReport()
        now = self.clock.now()
        # Read once: jobs sealed or created below are younger than the grace period and skipped anyway.
        active = self.ledger.active_jobs()
        waiting = self._tables_with_waiting_loads(active)
        for batch in self.ledger.open_batches():
            try:
                pipeline = self.catalog.load(batch.pipeline)
            except KeyError:
                logs.error("open_batch_unknown_pipeline", pipeline=batch.pipeline, batch_id=batch.batch_id)
                continue
            if now - batch.opened_at >= pipeline.batch.max_seconds and self._target(pipeline) not in waiting:
                if self.seal(batch.pipeline, batch.batch_id):
                    report.sealed.append(batch.batch_id)
        for hook in self.sweep_hooks:
            try:
                hook(now)
            except Exception as exc:
                report.errors.append(getattr(hook, "__name__", "hook"))
                logs.error("sweep_hook_failed", error=f"{type(exc).__name__}: {exc}")
        # A table's FIFO group hands out one message at a time, in order: only its first waiting job's
        # message is worth replacing; later ones wait behind it anyway. (A copy for every waiting job on
        # every sweep flooded a busy table's queue, and the worker spent its time deleting them.)
        first_waiting: dict[str, str] = {}
        for job in sorted(active, key=lambda j: j.id):
            if job.status is JobStatus.QUEUED:
                first_waiting.setdefault(job.target, job.id)
        for summary in active:
            if now - summary.updated_at < self.settings.sweep_grace_seconds:
                continue
            if summary.status is JobStatus.QUEUED and first_waiting.get(summary.target) != summary.id:
                continue
            with tracing.job_scope("sweep_job", job_id=summary.id, pipeline=summary.pipeline, table=summary.target):
                try:
                    job = self.ledger.get_job(summary.id)  # whole, now that it is worth sweeping
                    if job is not None and job.status not in TERMINAL:
                        self._sweep_job(job, now, report)
                except Exception as exc:  # one job's trouble must not leave every later job unswept
                    report.errors.append(summary.id)
                    logs.error("sweep_job_failed", error=f"{type(exc).__name__}: {exc}")
        return report
