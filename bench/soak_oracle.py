"""What the soak lands, and what the warehouse and the ledger must show afterwards (pure).

The workload is a seeded stream of files for the soak catalog (bench/soak_pipelines.toml)
and DMS "full load finished" events; a few files carry a bad row on purpose. The oracle
computes from those files alone what each table must hold and checks what was observed:
no file lost, none loaded twice, upserts equal to the highest version of each key,
the replace table equal to the last snapshot, every failed job carrying a reason, and
every file's ledger status matching its fate.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.jobs import Job, JobKind, JobStatus

APPEND, UPSERT, REPLACE = "soak_events", "soak_accounts", "soak_snapshot"
FOLLOWUP_STEPS = {"soak-atomic": ("atomic",), "soak-chain": ("first", "second")}
DMS_TASKS = {"soak-atomic": "arn:aws:dms:us-east-1:123456789012:task:SOAKATOMIC",
             "soak-chain": "arn:aws:dms:us-east-1:123456789012:task:SOAKCHAIN"}
UPSERT_KEYS = 150
BUCKET = "soak-landing"
SCHEMA_SQL = [
    "CREATE SCHEMA IF NOT EXISTS soak",
    "CREATE TABLE soak.events (file_no INTEGER NOT NULL, row_no INTEGER NOT NULL, payload VARCHAR(40))",
    "CREATE TABLE soak.accounts (k INTEGER NOT NULL, ver INTEGER NOT NULL, val VARCHAR(40), file_no INTEGER)",
    "CREATE TABLE soak.snapshot (snap INTEGER NOT NULL, row_no INTEGER NOT NULL, val VARCHAR(40))",
    "CREATE TABLE soak.followup_log (step VARCHAR(10), at TIMESTAMP DEFAULT GETDATE())",
    "CREATE OR REPLACE PROCEDURE soak.log_step(step VARCHAR) AS $$ BEGIN "
    "INSERT INTO soak.followup_log (step) VALUES (step); END; $$ LANGUAGE plpgsql",
]
HEADERS = {APPEND: "file_no,row_no,payload", UPSERT: "k,ver,val,file_no", REPLACE: "snap,row_no,val"}
PREFIXES = {APPEND: "events/", UPSERT: "accounts/", REPLACE: "snapshot/"}
MIX = ((APPEND, 0.55), (UPSERT, 0.35), (REPLACE, 0.10))


@dataclass(frozen=True)
class SoakFile:
    n: int                              # landing order, also the upsert version
    pipeline: str
    rows: tuple[tuple[Any, ...], ...]   # the rows a good file loads (as the table returns them)
    bad: bool                           # carries a row COPY must reject

    @property
    def key(self) -> str:
        return f"{PREFIXES[self.pipeline]}{self.n:07d}.csv"

    @property
    def url(self) -> str:
        return f"s3://{BUCKET}/{self.key}"

    def body(self) -> bytes:
        lines = [HEADERS[self.pipeline]] + [",".join(str(v) for v in row) for row in self.rows]
        if self.bad:  # a second field that is no integer: "Invalid digit" on its line
            lines.insert(1 + len(self.rows) // 2, f"{self.n},not-a-number,bad")
        return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class DmsRun:
    n: int
    followup: str

    @property
    def time(self) -> str:
        """Distinct per run: the follow-up's job id is derived from it (duplicates map to one job)."""
        at = datetime(2026, 11, 22, 10, 0, tzinfo=UTC) + timedelta(minutes=self.n)
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def workload(seed: int, *, bad_rate: float = 0.03, dms_every: int = 40) -> Iterator[SoakFile | DmsRun]:
    """An endless seeded stream: files of the three pipelines and, every `dms_every` files, a DMS run."""
    rng = random.Random(seed)
    n = 0
    while True:
        n += 1
        pick, acc = rng.random(), 0.0
        pipeline = MIX[-1][0]
        for name, share in MIX:
            acc += share
            if pick < acc:
                pipeline = name
                break
        yield make_file(n, pipeline, rng, bad=rng.random() < bad_rate)
        if dms_every and n % dms_every == 0:
            yield DmsRun(n // dms_every, "soak-atomic" if (n // dms_every) % 2 else "soak-chain")


def make_file(n: int, pipeline: str, rng: random.Random, *, bad: bool = False) -> SoakFile:
    if pipeline == APPEND:
        rows = tuple((n, r, f"p{n}-{r}") for r in range(1 + rng.randrange(12)))
    elif pipeline == UPSERT:
        keys = rng.sample(range(UPSERT_KEYS), 1 + rng.randrange(8))
        rows = tuple((k, n, f"v{k}-{n}", n) for k in sorted(keys))
    else:
        rows = tuple((n, r, f"s{n}-{r}") for r in range(1 + rng.randrange(6)))
    return SoakFile(n, pipeline, rows, bad)


# ------------------------------------------------------------------ the oracle
@dataclass
class Observed:
    """What the run left behind."""

    events: list[tuple[Any, ...]]            # soak.events rows (file_no, row_no, payload)
    accounts: list[tuple[Any, ...]]          # soak.accounts rows (k, ver, val, file_no)
    snapshot: list[tuple[Any, ...]]          # soak.snapshot rows (snap, row_no, val)
    followup_log: list[str]                  # soak.followup_log steps
    jobs: list[Job]
    file_status: dict[str, str | None]       # s3 url → ledger status


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < 200:  # enough to diagnose; a broken run must not print a million lines
            self.problems.append(problem)
        elif len(self.problems) == 200:
            self.problems.append("... (more problems left out)")


def check(files: Sequence[SoakFile], dms_runs: Sequence[DmsRun], final_snapshot: SoakFile | None,
          seen: Observed) -> Verdict:
    verdict = Verdict()
    good = [f for f in files if not f.bad]
    _check_append(verdict, [f for f in good if f.pipeline == APPEND], seen.events)
    _check_upsert(verdict, [f for f in good if f.pipeline == UPSERT], seen.accounts)
    if final_snapshot is not None:
        _same_rows(verdict, "soak.snapshot (the last snapshot)", list(final_snapshot.rows), seen.snapshot)
    _check_jobs(verdict, files, seen.jobs, seen.file_status)
    _check_followups(verdict, dms_runs, seen.jobs, seen.followup_log)
    verdict.checked = {"files": len(files), "good_files": len(good), "bad_files": len(files) - len(good),
                       "dms_runs": len(dms_runs), "jobs": len(seen.jobs),
                       "rows_checked": len(seen.events) + len(seen.accounts) + len(seen.snapshot)}
    return verdict


def _check_append(verdict: Verdict, good: Sequence[SoakFile], rows: Sequence[tuple[Any, ...]]) -> None:
    expected = {row for f in good for row in f.rows}
    counts = collections.Counter(tuple(r) for r in rows)
    for row, count in sorted(counts.items()):
        if row not in expected:
            verdict.add(f"soak.events: row {row} comes from no good file")
        elif count > 1:
            verdict.add(f"soak.events: row {row} loaded {count} times")
    lost = sorted(expected - set(counts))
    for row in lost[:20]:
        verdict.add(f"soak.events: row {row} is missing")
    if len(lost) > 20:
        verdict.add(f"soak.events: {len(lost)} rows missing in all")


def _check_upsert(verdict: Verdict, good: Sequence[SoakFile], rows: Sequence[tuple[Any, ...]]) -> None:
    latest: dict[int, tuple[Any, ...]] = {}
    for f in good:
        for row in f.rows:
            if row[0] not in latest or row[1] > latest[row[0]][1]:
                latest[row[0]] = row
    by_key = collections.defaultdict(list)
    for row in rows:
        by_key[row[0]].append(tuple(row))
    for key in sorted(set(by_key) | set(latest)):
        got, want = by_key.get(key, []), latest.get(key)
        if want is None:
            verdict.add(f"soak.accounts: key {key} has rows {got} but no good file has it")
        elif len(got) != 1:
            verdict.add(f"soak.accounts: key {key} has {len(got)} rows {got}; expected one, {want}")
        elif got[0] != want:
            verdict.add(f"soak.accounts: key {key} is {got[0]}; the highest version is {want}")


def _same_rows(verdict: Verdict, what: str, expected: list[tuple[Any, ...]], got: Sequence[tuple[Any, ...]]) -> None:
    if collections.Counter(map(tuple, got)) != collections.Counter(expected):
        verdict.add(f"{what}: holds {sorted(map(tuple, got))[:10]} ({len(got)} rows); expected "
                    f"{sorted(expected)[:10]} ({len(expected)} rows)")


def _check_jobs(verdict: Verdict, files: Sequence[SoakFile], jobs: Sequence[Job],
                status: dict[str, str | None]) -> None:
    terminal = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
    for job in jobs:
        if job.status not in terminal:
            verdict.add(f"job {job.id} ({job.pipeline}) is still {job.status.value}")
        elif job.status is not JobStatus.SUCCEEDED and not (job.error or "").strip():
            verdict.add(f"job {job.id} ({job.pipeline}) is {job.status.value} without a reason")
    succeeded: dict[str, list[str]] = collections.defaultdict(list)
    failed: dict[str, list[Job]] = collections.defaultdict(list)
    for job in jobs:
        if job.kind is not JobKind.LOAD:
            continue
        for ref in job.files:
            if job.status is JobStatus.SUCCEEDED:
                succeeded[ref.url].append(job.id)
            elif job.status is JobStatus.FAILED:
                failed[ref.url].append(job)
    for f in files:
        ok_jobs, bad_jobs = succeeded.get(f.url, []), failed.get(f.url, [])
        if f.bad:
            named = [j for j in bad_jobs if any(e.file == f.url for e in j.load_errors)]
            if f.pipeline == REPLACE and not named:
                # A replace batch is never split around a bad file, and COPY stops at its first bad
                # row: with two bad snapshots in one batch only the first is named. The other is in
                # the same failed job, whose load errors name a file of it.
                named = [j for j in bad_jobs if j.load_errors and (j.error or "").strip()]
            if ok_jobs:
                verdict.add(f"{f.url} has a bad row but job(s) {ok_jobs} loaded it")
            elif not named:
                verdict.add(f"{f.url} has a bad row but no failed job names it in its load errors "
                            f"(failed jobs: {[j.id for j in bad_jobs]})")
            elif status.get(f.url) != "FAILED":
                verdict.add(f"{f.url} has a bad row; its ledger status is {status.get(f.url)}, not FAILED")
            continue
        if len(ok_jobs) > 1:
            verdict.add(f"{f.url} was loaded by {len(ok_jobs)} jobs: {ok_jobs}")
        elif ok_jobs:
            if status.get(f.url) != "LOADED":
                verdict.add(f"{f.url} was loaded by {ok_jobs[0]}; its ledger status is {status.get(f.url)}")
        elif f.pipeline == REPLACE and bad_jobs and all((j.error or "").strip() for j in bad_jobs):
            # An earlier snapshot may stay FAILED with its reason: batched with a bad snapshot (part of
            # a snapshot must not replace a table), or out of retries (it is stale, nobody retries it).
            if status.get(f.url) != "FAILED":
                verdict.add(f"{f.url} failed with its batch; its ledger status is {status.get(f.url)}")
        else:
            reasons = [f"{j.id}: {j.error}" for j in bad_jobs]
            verdict.add(f"{f.url} was never loaded (status {status.get(f.url)}, failed jobs {reasons})")


def _check_followups(verdict: Verdict, runs: Sequence[DmsRun], jobs: Sequence[Job], log: Sequence[str]) -> None:
    for name, steps in FOLLOWUP_STEPS.items():
        wanted = sum(1 for r in runs if r.followup == name)
        mine = [j for j in jobs if j.kind is JobKind.FOLLOWUP and j.pipeline == name]
        done = [j for j in mine if j.status is JobStatus.SUCCEEDED]
        if len(mine) != wanted or len(done) != wanted:
            verdict.add(f"follow-up {name}: {wanted} DMS runs made {len(mine)} jobs, {len(done)} SUCCEEDED "
                        f"({[(j.id, j.status.value, j.error) for j in mine if j.status is not JobStatus.SUCCEEDED][:5]})")
        for step in steps:
            ran = sum(1 for s in log if s == step)
            if ran != wanted:
                verdict.add(f"follow-up {name}: step {step!r} ran {ran} times for {wanted} DMS runs")
