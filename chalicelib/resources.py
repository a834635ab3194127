"""The AWS resources the app needs besides its Lambdas, described once (pure data).

devstack creates them on moto from these definitions, and the CloudFormation
merge template is generated from them, so local and deployed shapes agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Chalice's default timeout is 60 s; the worker and router never wait on the
# warehouse, so a short timeout suffices. Visibility >= 6x timeout (AWS advice).
FUNCTION_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class QueueDef:
    logical_id: str
    env_var: str            # environment variable carrying the queue name
    default_name: str
    fifo: bool
    visibility_timeout: int
    max_receive_count: int  # redrive to the DLQ after this many receives
    retention_seconds: int = 14 * 24 * 3600

    @property
    def dlq_name(self) -> str:
        base = self.default_name.removesuffix(".fifo")
        return f"{base}-dlq.fifo" if self.fifo else f"{base}-dlq"


@dataclass(frozen=True)
class TableDef:
    logical_id: str
    env_var: str
    default_name: str
    hash_key: str
    indexes: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)  # (name, hash, range)
    ttl_attribute: str = "expires_at"


LANDING_QUEUE = QueueDef(
    logical_id="LandingQueue", env_var="LANDING_QUEUE", default_name="redshift-loader-landing",
    fifo=False, visibility_timeout=6 * FUNCTION_TIMEOUT_SECONDS, max_receive_count=5,
)
# A job's message stays in flight while its statement runs (that is what
# serialises one table); each status check is one receive, hence the high count.
JOBS_QUEUE = QueueDef(
    logical_id="JobsQueue", env_var="JOBS_QUEUE", default_name="redshift-loader-jobs.fifo",
    fifo=True, visibility_timeout=6 * FUNCTION_TIMEOUT_SECONDS, max_receive_count=50,
)
QUEUES = (LANDING_QUEUE, JOBS_QUEUE)
# Where an EventBridge event goes once its Lambda (dms, completion) failed on it three times: Lambda's
# on-failure destination. A DMS event exists once; without this it would vanish with its follow-up.
FAILED_EVENTS_QUEUE = "redshift-loader-failed-events"
FAILED_EVENTS_FUNCTIONS = ("dms", "completion")
EVENT_RETRY_ATTEMPTS = 2  # Lambda's own retries of an asynchronous invocation (its maximum)

LEDGER_TABLE = TableDef(
    logical_id="LedgerTable", env_var="LEDGER_TABLE", default_name="redshift-loader-ledger",
    hash_key="pk",
    indexes=(("jobs_by_time", "g1pk", "g1sk"), ("active_jobs", "g2pk", "g2sk")),
)
TABLES = (LEDGER_TABLE,)

MANIFEST_BUCKET_ENV = "MANIFEST_BUCKET"
MANIFEST_BUCKET_DEFAULT = "redshift-loader-manifests"
