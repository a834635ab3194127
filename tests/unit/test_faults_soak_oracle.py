"""The soak's oracle (bench/soak_oracle.py) passes a perfect run and names every kind of damage."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from bench import soak_oracle as oracle
from chalicelib.jobs import FileRef, Job, JobKind, JobStatus, LoadError

_ids = itertools.count(1)


def job(files: list[oracle.SoakFile], status: JobStatus = JobStatus.SUCCEEDED, *, error: str | None = None,
        bad: oracle.SoakFile | None = None, kind: JobKind = JobKind.LOAD, pipeline: str | None = None) -> Job:
    refs = tuple(FileRef(oracle.BUCKET, f.key, "v", 1) for f in files)
    errors = (LoadError(file=bad.url, line=3, column="row_no", value="n", reason="Invalid digit"),) if bad else ()
    return Job(id=f"job-{next(_ids)}", kind=kind, pipeline=pipeline or (files[0].pipeline if files else "x"),
               target="t", status=status, files=refs, statement_id="s", attempt=1, max_attempts=5, created_at=0,
               updated_at=0, submitted_at=0, finished_at=0, rows=None, error=error, load_errors=errors)


@pytest.fixture()
def run():
    rng = random.Random(5)
    files = [oracle.make_file(1, oracle.APPEND, rng), oracle.make_file(2, oracle.UPSERT, rng),
             oracle.make_file(3, oracle.APPEND, rng, bad=True), oracle.make_file(4, oracle.UPSERT, rng),
             oracle.make_file(5, oracle.REPLACE, rng), oracle.make_file(6, oracle.REPLACE, rng)]
    good = [f for f in files if not f.bad]
    runs = [oracle.DmsRun(1, "soak-atomic"), oracle.DmsRun(2, "soak-chain")]
    jobs = [job([files[0], files[2]], JobStatus.FAILED, error="ERROR: Load into table failed", bad=files[2]),
            job([files[0]]), job([files[1], files[3]]), job([files[4]]), job([files[5]]),
            job([], kind=JobKind.FOLLOWUP, pipeline="soak-atomic"), job([], kind=JobKind.FOLLOWUP, pipeline="soak-chain")]
    latest: dict[int, tuple] = {}
    for f in (files[1], files[3]):
        for row in f.rows:
            latest[row[0]] = row  # file 4 is newer than file 2
    seen = oracle.Observed(
        events=[r for f in good if f.pipeline == oracle.APPEND for r in f.rows],
        accounts=list(latest.values()), snapshot=list(files[5].rows), followup_log=["atomic", "first", "second"],
        jobs=jobs, file_status={f.url: "FAILED" if f.bad else "LOADED" for f in files})
    return files, runs, files[5], seen


def test_a_perfect_run_passes(run):
    verdict = oracle.check(*run)
    assert verdict.ok, verdict.problems
    assert verdict.checked["bad_files"] == 1 and verdict.checked["dms_runs"] == 2


@pytest.mark.parametrize("damage, expected", [
    (lambda s: s.events.pop(), "is missing"),
    (lambda s: s.events.append(s.events[0]), "loaded 2 times"),
    (lambda s: s.events.append((3, 0, "p3-0")), "comes from no good file"),
    (lambda s: s.accounts.__setitem__(0, (s.accounts[0][0], 2, "old", 2)), "the highest version is"),
    (lambda s: s.accounts.append(s.accounts[0]), "expected one"),
    (lambda s: s.snapshot.pop(), "soak.snapshot (the last snapshot)"),
    (lambda s: s.followup_log.append("atomic"), "step 'atomic' ran 2 times"),
    (lambda s: s.file_status.update({"s3://soak-landing/events/0000001.csv": "BATCHED"}), "ledger status is BATCHED"),
    (lambda s: s.jobs.__setitem__(1, dataclasses.replace(s.jobs[1], status=JobStatus.QUEUED)), "is still QUEUED"),
    (lambda s: s.jobs.append(job([], JobStatus.FAILED, pipeline="soak_events")), "FAILED without a reason"),
    (lambda s: s.jobs.append(dataclasses.replace(s.jobs[1], id="again")), "was loaded by 2 jobs"),
    (lambda s: s.jobs.pop(5), "follow-up soak-atomic: 1 DMS runs made 0 jobs"),
])
def test_each_kind_of_damage_is_named(run, damage, expected):
    files, runs, last, seen = run
    damage(seen)
    verdict = oracle.check(files, runs, last, seen)
    assert not verdict.ok and any(expected in p for p in verdict.problems), verdict.problems


def test_a_bad_file_must_be_named_by_a_failed_job(run):
    files, runs, last, seen = run
    seen.jobs[0] = dataclasses.replace(seen.jobs[0], load_errors=())
    assert any("no failed job names it" in p for p in oracle.check(files, runs, last, seen).problems)


def test_the_workload_is_seeded_and_bad_files_really_are_bad():
    first = list(itertools.islice(oracle.workload(3, bad_rate=0.2, dms_every=5), 60))
    assert first == list(itertools.islice(oracle.workload(3, bad_rate=0.2, dms_every=5), 60))
    files = [x for x in first if isinstance(x, oracle.SoakFile)]
    assert {f.pipeline for f in files} == {oracle.APPEND, oracle.UPSERT, oracle.REPLACE}
    assert sum(isinstance(x, oracle.DmsRun) for x in first) == len(files) // 5
    bad = next(f for f in files if f.bad)
    assert b"not-a-number" in bad.body() and all(b"not-a-number" not in f.body() for f in files if not f.bad)


def test_an_earlier_snapshot_may_stay_failed_with_its_reason_but_not_an_append_file(run):
    files, runs, last, seen = run
    snapshot_job = next(i for i, j in enumerate(seen.jobs) if j.files and j.files[0].key == files[4].key)
    seen.jobs[snapshot_job] = dataclasses.replace(seen.jobs[snapshot_job], status=JobStatus.FAILED,
                                                  error="ERROR: 1023 DETAIL: Serializable isolation violation")
    seen.file_status[files[4].url] = "FAILED"
    assert oracle.check(files, runs, last, seen).ok
    seen.jobs[1] = dataclasses.replace(seen.jobs[1], status=JobStatus.FAILED, error="ERROR: 1023")
    seen.file_status[files[0].url] = "FAILED"
    assert any("was never loaded" in p for p in oracle.check(files, runs, last, seen).problems)


def test_two_bad_snapshots_in_one_failed_replace_batch_need_only_one_named():
    # Found by a 3,000-file soak: COPY stops at the first bad row, and replace batches are not split.
    rng = random.Random(9)
    first, second = (oracle.make_file(n, oracle.REPLACE, rng, bad=True) for n in (1, 2))
    last = oracle.make_file(3, oracle.REPLACE, rng)
    jobs = [job([first, second], JobStatus.FAILED, error="ERROR: Load into table failed", bad=first), job([last])]
    seen = oracle.Observed(events=[], accounts=[], snapshot=list(last.rows), followup_log=[], jobs=jobs,
                           file_status={first.url: "FAILED", second.url: "FAILED", last.url: "LOADED"})
    assert oracle.check([first, second, last], [], last, seen).ok
    append_bad = [oracle.make_file(n, oracle.APPEND, rng, bad=True) for n in (4, 5)]
    jobs = [job(append_bad, JobStatus.FAILED, error="ERROR: Load into table failed", bad=append_bad[0]), job([last])]
    seen = dataclasses.replace(seen, jobs=jobs, file_status={**{f.url: "FAILED" for f in append_bad}, last.url: "LOADED"})
    problems = oracle.check([*append_bad, last], [], last, seen).problems
    assert any(append_bad[1].url in p and "no failed job names it" in p for p in problems)  # appends are split
