"""The soak's report: what it prints and writes as JSON (bench/soak.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SoakReport:
    files: int = 0
    bad_files: int = 0
    dms_runs: int = 0
    jobs: int = 0
    jobs_by_status: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    fault_rates: str = ""
    job_retries: int = 0            # attempts beyond the first, over all jobs
    split_jobs: int = 0             # good files of a batch with a bad file, loaded again as a new job
    api_retries: int = 0
    api_retries_succeeded: int = 0
    api_retries_bad_rows: int = 0   # a retry that got as far as a bad row (its files are split off)
    retried_jobs: list[str] = field(default_factory=list)
    lambda_deaths: dict[str, int] = field(default_factory=dict)
    lambda_errors: dict[str, int] = field(default_factory=dict)
    events_given_up: dict[str, int] = field(default_factory=dict)  # EventBridge events failed on every attempt
    land_seconds: float = 0.0
    recovery_seconds: float = 0.0
    recovery_sweeps: int = 0        # sweeper runs during the recovery
    outstanding_at_faults_off: str = ""
    wall_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def format_report(r: SoakReport) -> str:
    faults = ", ".join(f"{k} {v}" for k, v in r.faults.items()) or "none"
    lines = [
        f"\nsoak: {r.files} files ({r.bad_files} with a bad row) and {r.dms_runs} DMS runs; faults {r.fault_rates}",
        f"  jobs                         {r.jobs}  {r.jobs_by_status}",
        f"  faults injected              {sum(r.faults.values())}: {faults}",
        f"  retries                      {r.job_retries} job attempts beyond the first; {r.split_jobs} batches split "
        f"around a bad file; {r.api_retries} retried through the API ({r.api_retries_succeeded} succeeded, "
        f"{r.api_retries_bad_rows} then failed on a bad row)",
        f"  Lambda deaths / errors       {r.lambda_deaths} / {r.lambda_errors}",
        f"  events given up (3 attempts) {r.events_given_up or 'none'}",
        f"  landing                      {r.land_seconds:8.1f} s",
        f"  recovery after faults stop   {r.recovery_seconds:8.1f} s  ({r.recovery_sweeps} sweeper runs; at faults off: "
        f"{r.outstanding_at_faults_off})",
        f"  wall                         {r.wall_seconds:8.1f} s",
        f"  verdict                      {'OK: nothing lost, nothing loaded twice' if r.ok else 'MISMATCH'}",
    ]
    lines += [f"    - {p}" for p in r.problems[:50]]
    return "\n".join(lines)
