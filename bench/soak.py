"""Soak: land many files and DMS events on devstack while the cloud misbehaves, then prove nothing was lost.

    .venv/bin/python bench/soak.py [--files 300 | --seconds 600] [--faults all=0.05] [--seed 1]
                                   [--rate 40] [--bad-rate 0.03] [--max-attempts 5] [--json FILE]

Phases:
  1. land  -- files of an append, an upsert and a replace pipeline (bench/soak_pipelines.toml) and
              DMS "full load finished" events, paced at --rate files/s, with every fault of --faults on;
  2. last snapshot -- once every earlier snapshot has settled, one more snapshot file: the replace
              table must end equal to it;
  3. tail  -- faults stay on until everything settled, or for at most --tail seconds;
  4. recovery -- faults off; nobody acts. Timed until every job is SUCCEEDED or FAILED (in sweeper
              periods too);
  5. retry -- FAILED jobs whose cause was a fault, not a bad row, are retried through
              POST /jobs/{id}/retry and must succeed;
  6. oracle -- every table and the ledger against what the files say (bench/soak_oracle.py).

Prints files landed, jobs, faults injected by kind, retries, wall time and the oracle's verdict;
exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
import requests  # noqa: E402

from bench import soak_oracle as oracle  # noqa: E402
from bench.soak_report import SoakReport, format_report  # noqa: E402
from chalicelib.jobs import FileRef, Job, JobKind, JobStatus  # noqa: E402
from devstack.faults import FaultPlan  # noqa: E402
from devstack.stack import Devstack, StackOptions  # noqa: E402

CATALOG = Path(__file__).with_name("soak_pipelines.toml")
TERMINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
DEFAULT_FAULTS = "all=0.05"


@dataclass
class SoakOptions:
    files: int | None = 300
    seconds: float | None = None
    faults: str = DEFAULT_FAULTS
    seed: int = 1
    cover: bool = False             # every fault kind fires at least once (short runs, CI)
    rate: float = 40.0              # files landed per second (0: as fast as the puts go)
    bad_rate: float = 0.03
    dms_every: int = 40             # one DMS run per this many files
    max_attempts: int = 5
    tail_seconds: float = 120.0
    sweep_seconds: float = 5.0      # the sweeper's period (1 minute when deployed)
    settle_timeout: float | None = None  # per waiting phase; None: 900 s + 1 s per file
    workdir: Path | None = None     # the app's JSON log goes here


# --------------------------------------------------------------------- the stack
def stack_options(opts: SoakOptions, plan: FaultPlan, workdir: Path) -> StackOptions:
    return StackOptions(
        pipelines=CATALOG, state_dir=None, serve_http=True, schedule_seconds=opts.sweep_seconds, poll_seconds=2,
        visibility_seconds=10, sweep_grace_seconds=5, log_file=workdir / "app.log", moto_process=True,
        concurrency={"router": 3, "worker": 4, "completion": 2, "dms": 1},
        extra_env={"MAX_ATTEMPTS": str(opts.max_attempts)}, faults=plan)


def relax_landing_visibility(stack: Devstack) -> None:
    """Deployed, the landing queue hides a message for 6 x the router's timeout; devstack's short
    visibility is for the jobs queue (a dead worker's message comes back soon). A router batch
    slower than that on a busy machine would be delivered again and again, each receive counting
    toward the DLQ redrive."""
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=stack.service().settings.landing_queue)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "300"})


def create_schema(stack: Devstack) -> None:
    rsdata = stack.client("redshift-data")
    sid = rsdata.batch_execute_statement(WorkgroupName="soak", Database="dev", Sqls=oracle.SCHEMA_SQL)["Id"]
    while (desc := rsdata.describe_statement(Id=sid))["Status"] not in ("FINISHED", "FAILED", "ABORTED"):
        time.sleep(0.05)
    if desc["Status"] != "FINISHED":
        raise RuntimeError(f"soak schema: {desc.get('Error')}")


class Ledger:
    """The soak's view of the ledger (through the app's own adapter)."""

    def __init__(self, stack: Devstack) -> None:
        service = stack.service()
        self.ledger = service.ledger
        self.sqs = stack.client("sqs")
        self.landing_url = self.sqs.get_queue_url(QueueName=service.settings.landing_queue)["QueueUrl"]

    def quiet(self, pipeline: str | None = None) -> bool:
        """No active job, no open batch (of `pipeline`), and (for all pipelines) no landing message waiting.
        Cheap next to listing every job, which in moto scans the whole ledger table."""
        if any(pipeline in (None, j.pipeline) for j in self.ledger.active_jobs()):
            return False
        if any(pipeline in (None, b.pipeline) for b in self.ledger.open_batches()):
            return False
        if pipeline is not None:
            return True
        return not any(self.landing_counts().values())

    def landing_counts(self) -> dict[str, int]:
        """Messages waiting, in flight and delayed on the landing queue."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.landing_url, AttributeNames=names)["Attributes"]
        return {name: int(attributes.get(name, "0")) for name in names}

    def jobs(self) -> list[Job]:
        jobs, token = [], None
        while True:
            page = self.ledger.list_jobs(pipeline=None, status=None, since=None, limit=1000, next_token=token)
            jobs += page.jobs
            token = page.next_token
            if not token:
                return jobs

    def settled(self, files: list[oracle.SoakFile], dms_runs: int) -> bool:
        if not self.quiet():
            return False
        jobs = self.jobs()
        if any(j.status not in TERMINAL for j in jobs) or self.ledger.open_batches():
            return False
        in_jobs = {ref.url for j in jobs for ref in j.files}
        followups = sum(1 for j in jobs if j.kind is JobKind.FOLLOWUP)
        return followups >= dms_runs and all(f.url in in_jobs for f in files)

    def brief(self) -> str:
        """Unfinished jobs and open batches, without reading any job's file list (every 30 s of a long
        recovery: listing 2,500 jobs with their files kept moto's CPU busy and slowed what it watched)."""
        active = self.ledger.active_jobs()
        waiting = [f"{j.id} {j.pipeline} {j.status.value}" for j in sorted(active, key=lambda j: j.id)]
        batches = [f"{b.batch_id} {b.pipeline} ({len(b.files)} files)" for b in self.ledger.open_batches()]
        return (f"jobs not finished {len(active)} {dict(sorted(_count(j.status.value for j in active).items()))}: "
                f"{waiting[:5]}; open batches {batches[:5]}; landing queue {self.landing_counts()}")

    def unsettled(self, files: list[oracle.SoakFile], dms_runs: int) -> str:
        """What keeps `settled` false, for a soak that timed out waiting."""
        jobs = self.jobs()
        open_jobs = [f"{j.id} {j.pipeline} {j.status.value} attempt {j.attempt}" for j in jobs if j.status not in TERMINAL]
        batches = [f"{b.batch_id} {b.pipeline} ({len(b.files)} files)" for b in self.ledger.open_batches()]
        in_jobs = {ref.url for j in jobs for ref in j.files}
        orphans = [f.url for f in files if f.url not in in_jobs]
        followups = sum(1 for j in jobs if j.kind is JobKind.FOLLOWUP)
        return (f"jobs not finished {len(open_jobs)}: {open_jobs[:10]}; open batches {batches[:10]}; "
                f"files not in a job {len(orphans)}: {orphans[:10]}; follow-ups {followups} of {dms_runs}; "
                f"landing queue {self.landing_counts()}")


# ------------------------------------------------------------------------ landing
class Lander:
    def __init__(self, stack: Devstack) -> None:
        self.s3 = stack.client("s3")
        self.events = stack.client("events")
        self.versions: dict[str, FileRef] = {}
        self._lock = threading.Lock()

    def put(self, f: oracle.SoakFile) -> None:
        body = f.body()
        etag = self.s3.put_object(Bucket=oracle.BUCKET, Key=f.key, Body=body)["ETag"].strip('"')
        with self._lock:
            self.versions[f.url] = FileRef(bucket=oracle.BUCKET, key=f.key, version=etag, size=len(body))

    def dms(self, run: oracle.DmsRun) -> None:
        self.events.put_events(Entries=[{
            "Source": "aws.dms", "DetailType": "DMS Replication Task State Change",
            "Resources": [oracle.DMS_TASKS[run.followup]], "Time": run.time,
            "Detail": json.dumps({"type": "REPLICATION_TASK", "category": "StateChange",
                                  "eventType": "REPLICATION_TASK_STOPPED", "eventId": "DMS-EVENT-0079",
                                  "detailMessage": "Stop Reason FULL_LOAD_ONLY_FINISHED"})}])


def land(lander: Lander, opts: SoakOptions, log: Callable[[str], None] = print,
         faults: FaultPlan | None = None) -> tuple[list[oracle.SoakFile], list[oracle.DmsRun]]:
    """Phase 1: the stream, paced; stops after --files files or --seconds seconds."""
    files: list[oracle.SoakFile] = []
    runs: list[oracle.DmsRun] = []
    started = time.monotonic()
    pool = ThreadPoolExecutor(4)
    pending: collections.deque[Future[None]] = collections.deque()
    try:
        for item in oracle.workload(opts.seed, bad_rate=opts.bad_rate, dms_every=opts.dms_every):
            if isinstance(item, oracle.DmsRun):  # it follows the file that completes its share
                runs.append(item)
                pending.append(pool.submit(lander.dms, item))
                continue
            if opts.files is not None and len(files) >= opts.files:
                break
            if opts.seconds is not None and time.monotonic() - started >= opts.seconds:
                break
            files.append(item)
            pending.append(pool.submit(lander.put, item))
            if len(files) % 1000 == 0:
                log(f"soak: {len(files)} files landed in {time.monotonic() - started:.0f} s; faults so far "
                    f"{sum(faults.injected().values()) if faults else 0}")
            while len(pending) > 32:  # puts slower than the rate: wait, rather than queue thousands
                pending.popleft().result()
            if opts.rate > 0:
                ahead = len(files) / opts.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        for future in pending:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # an interrupted run stops landing at once
    return files, runs


# ------------------------------------------------------------------------ the run
def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 1.0,
               log: Callable[[str], None] | None = None, progress: Callable[[], str] | None = None,
               detail: Callable[[], str] | None = None) -> float:
    """Seconds until `condition()`; checked every `interval` (listing every job costs moto CPU).
    `progress` is logged every 30 s; `detail` (default `progress`) explains a timeout."""
    started = last = time.monotonic()
    detail = detail or progress
    while not condition():
        now = time.monotonic()
        if now - started > timeout:
            raise TimeoutError(f"soak: {what} did not happen within {timeout:.0f} s"
                               + (f"; {detail()}" if detail else ""))
        if log and progress and now - last >= 30:
            log(f"soak: waiting for {what} ({now - started:.0f} s): {progress()}")
            last = now
        time.sleep(interval)
    return time.monotonic() - started


def run(stack: Devstack, opts: SoakOptions, log: Callable[[str], None] = print) -> SoakReport:
    """Phases 1-6 on a started devstack with the soak catalog and schema."""
    report = SoakReport(fault_rates=stack.faults.describe())
    plan, ledger, lander = stack.faults, Ledger(stack), Lander(stack)
    started = time.monotonic()
    timeout = opts.settle_timeout or 900.0 + (opts.files or opts.rate * (opts.seconds or 0))
    every = 2.0 if (opts.files or 0) < 2000 and not opts.seconds else 5.0
    plan.enabled = True
    files, runs = land(lander, opts, log, plan)
    report.land_seconds = time.monotonic() - started
    log(f"soak: landed {len(files)} files and {len(runs)} DMS runs in {report.land_seconds:.1f} s; faults so far "
        f"{sum(plan.injected().values())}")

    # A DMS event the dms Lambda failed on three times is gone (deployed, it goes to the Lambda's
    # on-failure queue): its follow-up never runs. That is a problem to report, not a reason to wait.
    expected_followups = lambda: len(runs) - stack.pump.stats.given_up.get("dms", 0)  # noqa: E731
    snapshots = [f for f in files if f.pipeline == oracle.REPLACE]
    progress = lambda: _progress(ledger, files)  # noqa: E731
    wait_until(lambda: _snapshots_settled(ledger, snapshots), timeout, "every snapshot settled", every,
               log=log, progress=ledger.brief, detail=progress)
    last = oracle.make_file(len(files) + 1, oracle.REPLACE, _rng(opts.seed))
    lander.put(last)
    files.append(last)
    log("soak: landed the last snapshot")

    tail_end = time.monotonic() + opts.tail_seconds
    while time.monotonic() < tail_end and not ledger.settled(files, expected_followups()):
        time.sleep(every)
    plan.enabled = False
    report.outstanding_at_faults_off = progress()
    sweeps_before = stack.pump.stats.invocations.get("sweeper", 0)
    log(f"soak: faults off after {time.monotonic() - started:.1f} s ({report.outstanding_at_faults_off}); "
        "waiting for recovery with nobody acting")
    report.recovery_seconds = wait_until(lambda: ledger.settled(files, expected_followups()), timeout,
                                         "recovery (every job SUCCEEDED or FAILED)", every, log=log,
                                         progress=ledger.brief,
                                         detail=lambda: ledger.unsettled(files, expected_followups()))
    report.recovery_sweeps = stack.pump.stats.invocations.get("sweeper", 0) - sweeps_before

    retry_failed_jobs(stack, ledger, report, last)
    if report.api_retries:
        wait_until(lambda: ledger.settled(files, expected_followups()), timeout, "retried jobs finished", every,
                   progress=lambda: ledger.unsettled(files, expected_followups()))
        retried = [j for j in ledger.jobs() if j.id in report.retried_jobs]
        report.api_retries_succeeded = sum(1 for j in retried if j.status is JobStatus.SUCCEEDED)
        # A retry may now get as far as a bad row it never reached: that is a reason, not a lost file.
        report.api_retries_bad_rows = sum(1 for j in retried if j.status is JobStatus.FAILED and j.load_errors)
    report.wall_seconds = time.monotonic() - started

    jobs = ledger.jobs()
    verdict = oracle.check(files, runs, last, observe(stack, ledger, jobs, lander))
    report.files, report.bad_files, report.dms_runs = len(files), sum(f.bad for f in files), len(runs)
    report.jobs = len(jobs)
    report.jobs_by_status = dict(sorted(_count(j.status.value for j in jobs).items()))
    report.faults = plan.injected()
    report.job_retries = sum(max(0, j.attempt - 1) for j in jobs)
    report.split_jobs = _split_jobs(jobs)
    report.lambda_deaths = dict(stack.pump.stats.deaths)
    report.lambda_errors = dict(stack.pump.stats.errors)
    report.events_given_up = dict(stack.pump.stats.given_up)
    report.problems = list(verdict.problems)
    if stack.pump.stats.given_up.get("dms"):
        report.problems.append(f"{stack.pump.stats.given_up['dms']} DMS events failed the dms Lambda on every "
                               "attempt: their follow-ups never ran")
    unresolved = report.api_retries - report.api_retries_succeeded - report.api_retries_bad_rows
    if unresolved:
        report.problems.append(f"{unresolved} of {report.api_retries} jobs retried through the API did not succeed "
                               "once the faults had stopped")
    return report


def retry_failed_jobs(stack: Devstack, ledger: Ledger, report: SoakReport, last: oracle.SoakFile) -> None:
    """Phase 5: a FAILED job without bad rows failed because of a fault; once faults stop, a retry must work.
    Not an earlier snapshot's: loading it again would replace the table with stale data."""
    for job in ledger.jobs():
        stale = job.pipeline == oracle.REPLACE and last.url not in {ref.url for ref in job.files}
        if job.status is JobStatus.FAILED and not job.load_errors and not stale:
            reply = requests.post(f"{stack.api_url}/jobs/{job.id}/retry", timeout=30)
            if reply.status_code >= 300:
                report.problems.append(f"POST /jobs/{job.id}/retry answered {reply.status_code}: {reply.text[:200]}")
                continue
            report.retried_jobs.append(job.id)
            report.api_retries += 1


def _progress(ledger: Ledger, files: list[oracle.SoakFile]) -> str:
    jobs = ledger.jobs()
    in_jobs = {ref.url for j in jobs for ref in j.files}
    return (f"jobs {dict(sorted(_count(j.status.value for j in jobs).items()))}, "
            f"{sum(1 for f in files if f.url not in in_jobs)} files not in a job yet")


def _snapshots_settled(ledger: Ledger, snapshots: list[oracle.SoakFile]) -> bool:
    if not ledger.quiet(oracle.REPLACE):
        return False
    done = {ref.url for j in ledger.jobs() if j.pipeline == oracle.REPLACE and j.status in TERMINAL for ref in j.files}
    return all(f.url in done for f in snapshots)


def observe(stack: Devstack, ledger: Ledger, jobs: list[Job], lander: Lander) -> oracle.Observed:
    with psycopg.connect(stack.warehouse_dsn("main")) as conn:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(sql).fetchall()]

        events = rows("SELECT file_no, row_no, payload FROM soak.events")
        accounts = rows("SELECT k, ver, val, file_no FROM soak.accounts")
        snapshot = rows("SELECT snap, row_no, val FROM soak.snapshot")
        steps = [r[0] for r in rows("SELECT step FROM soak.followup_log")]
    with ThreadPoolExecutor(8) as pool:
        refs = list(lander.versions.items())
        statuses = dict(zip([url for url, _ in refs], pool.map(lambda item: ledger.ledger.file_status(item[1]), refs)))
    return oracle.Observed(events=events, accounts=accounts, snapshot=snapshot, followup_log=steps, jobs=jobs,
                           file_status=statuses)


def _split_jobs(jobs: list[Job]) -> int:
    failed_with_errors = [j for j in jobs if j.status is JobStatus.FAILED and j.load_errors]
    return sum(1 for j in failed_with_errors if len(j.files) > len({e.file for e in j.load_errors}))


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _rng(seed: int) -> Any:
    import random

    return random.Random(seed * 7919 + 1)


# ---------------------------------------------------------------------- reporting
def parse_args(argv: list[str] | None) -> tuple[SoakOptions, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--files", type=int, default=None, help="land this many files (default 300)")
    size.add_argument("--seconds", type=float, default=None, help="land files for this long instead")
    parser.add_argument("--faults", default=DEFAULT_FAULTS, help=f"fault rates (default {DEFAULT_FAULTS})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cover", action="store_true",
                        help="make every fault kind fire within its first few chances (short runs still see each)")
    parser.add_argument("--rate", type=float, default=40.0, help="files per second (0: as fast as possible)")
    parser.add_argument("--bad-rate", type=float, default=0.03, help="share of files with a bad row")
    parser.add_argument("--dms-every", type=int, default=40, help="one DMS run per this many files (0: none)")
    parser.add_argument("--max-attempts", type=int, default=5, help="MAX_ATTEMPTS of the loader")
    parser.add_argument("--tail", type=float, default=120.0,
                        help="faults stay on after the landing until all settled, or at most this long")
    parser.add_argument("--sweep-seconds", type=float, default=5.0, help="the sweeper's period")
    parser.add_argument("--settle-timeout", type=float, default=None,
                        help="seconds each waiting phase may take before the soak fails (default 900 + 1 per file)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the app's JSON log here")
    args = parser.parse_args(argv)
    files = args.files if args.files is not None else (None if args.seconds is not None else 300)
    opts = SoakOptions(files=files, seconds=args.seconds, faults=args.faults, seed=args.seed, cover=args.cover,
                       rate=args.rate,
                       bad_rate=args.bad_rate, dms_every=args.dms_every, max_attempts=args.max_attempts,
                       tail_seconds=args.tail, sweep_seconds=args.sweep_seconds, workdir=args.workdir,
                       settle_timeout=args.settle_timeout)
    FaultPlan.parse(opts.faults)  # a bad --faults fails here, before anything starts
    return opts, args.json


def soak(opts: SoakOptions, log: Callable[[str], None] = print) -> SoakReport:
    """Start a devstack for the soak, run it, stop it."""
    plan = FaultPlan.parse(opts.faults, seed=opts.seed)
    plan.cover = opts.cover
    plan.enabled = False  # not while the schema is made
    with tempfile.TemporaryDirectory() as tmp:
        workdir = opts.workdir or Path(tmp)
        with Devstack(stack_options(opts, plan, workdir)) as stack:
            stack.pump.on_error = lambda name, exc: None  # counted in pump.stats; the app logs its own errors
            relax_landing_visibility(stack)
            create_schema(stack)
            log(f"soak: devstack up in {stack.startup_seconds:.1f} s; app log {workdir / 'app.log'}")
            return run(stack, opts, log)


def main(argv: list[str] | None = None) -> int:
    # A plain kill must still stop the devstack (its PostgreSQL and moto processes) on the way out.
    def stop(signum: int, _frame: object) -> None:
        print(f"soak: stopped by signal {signum} at {time.strftime('%H:%M:%S')}; tearing the devstack down",
              flush=True)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        opts, json_path = parse_args(argv)
    except ValueError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    try:
        report = soak(opts, log=lambda line: print(line, flush=True))
    except TimeoutError as exc:  # stuck: say where, and fail (the devstack is already torn down)
        print(exc, flush=True)
        return 1
    print(format_report(report), flush=True)
    if json_path:
        json_path.write_text(json.dumps({**dataclasses.asdict(report), "ok": report.ok}, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
