"""Environment variables → typed settings, read once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chalicelib import resources

DEFAULT_CATALOG = Path(__file__).with_name("pipelines.toml")


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    landing_queue: str
    jobs_queue: str
    ledger_table: str
    manifest_bucket: str
    catalog_path: str
    statement_prefix: str       # StatementName prefix that marks our statements
    max_attempts: int           # submissions per job before it is FAILED
    poll_seconds: int           # how long a running job's message stays hidden between checks
    sweep_grace_seconds: int    # a job untouched this long is looked at by the sweeper
    event_source: str           # EventBridge source of our job status events
    failure_topic_arn: str | None
    file_ttl_days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        stage = env.get("STAGE", "dev")
        return cls(
            stage=stage,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            landing_queue=env.get(resources.LANDING_QUEUE.env_var, resources.LANDING_QUEUE.default_name),
            jobs_queue=env.get(resources.JOBS_QUEUE.env_var, resources.JOBS_QUEUE.default_name),
            ledger_table=env.get(resources.LEDGER_TABLE.env_var, resources.LEDGER_TABLE.default_name),
            manifest_bucket=env.get(resources.MANIFEST_BUCKET_ENV, resources.MANIFEST_BUCKET_DEFAULT),
            catalog_path=env.get("PIPELINES_FILE", str(DEFAULT_CATALOG)),
            statement_prefix=env.get("STATEMENT_PREFIX", "redshift-loader"),
            max_attempts=_int(env, "MAX_ATTEMPTS", 5),
            poll_seconds=_int(env, "POLL_SECONDS", 30),
            sweep_grace_seconds=_int(env, "SWEEP_GRACE_SECONDS", 120),
            event_source=env.get("EVENT_SOURCE", "redshift-loader"),
            failure_topic_arn=env.get("FAILURE_TOPIC_ARN") or None,
            file_ttl_days=_int(env, "FILE_TTL_DAYS", 400),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from exc
