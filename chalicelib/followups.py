"""DMS follow-ups: when a replication task's full load finishes, run its procedures in order.

A follow-up becomes a FOLLOWUP job on the same queue, ledger, statuses and
retries as loads. Its steps run in one transaction (`atomic = true`, the
default) or as a chain, each step in its own transaction after the previous
one succeeded (for procedures that commit on their own).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from chalicelib import logs
from chalicelib.events import DmsTaskEvent
from chalicelib.jobs import Job, JobKind, JobStatus, new_job_id
from chalicelib.outcomes import is_transient
from chalicelib.pipelines import DmsFollowup
from chalicelib.service import Service

T = TypeVar("T")


class DmsPort(Protocol):
    def stop_reason(self, task: str) -> str | None:
        """The task's StopReason from DescribeReplicationTasks (task ARN or identifier)."""

    def task_identifier(self, task_arn: str) -> str | None:
        """The ReplicationTaskIdentifier behind an ARN (ARNs end in a random resource id)."""


class Followups:
    def __init__(self, service: Service, dms: DmsPort) -> None:
        self.service = service
        self.dms = dms

    def task_state_changed(self, event: DmsTaskEvent) -> Job | None:
        """A DMS Replication Task State Change event: maybe run the configured follow-up."""
        followup = self._followup_for(event)
        with logs.bound(task=event.task_arn, dms_event=event.event_id):
            if followup is None:
                logs.info("dms_event_no_followup")
                return None
            if event.is_failure:
                logs.warning("dms_task_failed", followup=followup.name, message=event.detail_message)
                return None
            reason = event.stop_reason
            if reason is None:  # an ambiguous message: ask DMS why the task stopped
                reason = self.dms.stop_reason(event.task_arn)
                logs.info("dms_stop_reason_confirmed", stop_reason=reason)
            if reason not in followup.stop_reasons:
                logs.info("dms_stop_reason_ignored", followup=followup.name, stop_reason=reason,
                          wanted=list(followup.stop_reasons))
                return None
            # One run per task run: duplicate deliveries of this event map to the same job id.
            run_key = f"{followup.name}|{event.task_arn}|{event.time}"
            return self.start(followup, run_key=run_key, at=_epoch(event.time) or self.service.clock.now())

    def _followup_for(self, event: DmsTaskEvent) -> DmsFollowup | None:
        """Match by ARN, then by the identifier in the event's console link, then ask DMS."""
        catalog = self.service.catalog
        found = catalog.followup_for_task(event.task_arn)
        if found is None and event.task_name:
            found = catalog.followup_for_task(event.task_name)
        if found is None and catalog.dms_followups:
            try:
                identifier = self.dms.task_identifier(event.task_arn)
            except Exception as exc:  # no DMS access: the ARN and link were all we had
                logs.warning("dms_task_lookup_failed", error=f"{type(exc).__name__}: {exc}")
                identifier = None
            found = catalog.followup_for_task(identifier) if identifier else None
        return found

    def request(self, name: str) -> Job:
        """POST /followups/{name}: run a follow-up by hand (a new run every time)."""
        followup = self.service.catalog.followup(name)
        now = self.service.clock.now()
        job = self.start(followup, run_key=f"{name}|manual|{secrets.token_hex(8)}", at=now)
        assert job is not None
        return job

    def start(self, followup: DmsFollowup, *, run_key: str, at: float) -> Job | None:
        service = self.service
        now = service.clock.now()
        # surrogatepass: the run key holds the event's time, which a JSON "\ud800" escape can make unencodable
        job_id = new_job_id(at, hashlib.sha256(run_key.encode("utf-8", "surrogatepass")).hexdigest()[:8])
        warehouse = followup.warehouse
        job = Job(id=job_id, kind=JobKind.FOLLOWUP, pipeline=followup.name, target=f"{warehouse}:followup:{followup.name}",
                  status=JobStatus.QUEUED, files=(), statement_id=None, attempt=1,
                  max_attempts=service.settings.max_attempts, created_at=now, updated_at=now, submitted_at=None,
                  finished_at=None, rows=None, error=None, load_errors=(), steps=tuple(followup.steps))
        if not _retrying(lambda: service.ledger.create_job(job), "create the follow-up job", job_id):
            logs.info("followup_duplicate_run", followup=followup.name, job_id=job_id)
            return None
        # Once the job exists, a redelivered event finds it and stops; the sweeper re-sends a QUEUED
        # job's message if this one never got out.
        _retrying(lambda: service.queue.enqueue_job(job.id, group=job.target, dedup_id=f"{job.id}-1"),
                  "queue the follow-up job", job_id)
        logs.info("followup_queued", followup=followup.name, job_id=job.id, steps=len(job.steps))
        return job


WRITE_ATTEMPTS = 4  # in this invocation: an EventBridge-invoked Lambda gets only two more, then the event is gone


def _retrying(call: Callable[[], T], what: str, job_id: str) -> T:
    """`call()`, tried again after a throttle, a 5xx or a DynamoDB transaction conflict (which botocore
    does not retry). A DMS event exists once: losing it to a momentary conflict loses the follow-up."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return call()
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            if attempt == WRITE_ATTEMPTS or not (is_transient(exc) or "TransactionConflict" in text):
                logs.error("followup_write_failed", what=what, job_id=job_id, attempt=attempt, error=text)
                raise
            logs.warning("followup_write_retried", what=what, job_id=job_id, attempt=attempt, error=text)
            time.sleep(0.05 * 2 ** attempt)
    raise AssertionError("unreachable")


def _epoch(text: str | None) -> float | None:
    """Epoch seconds of an ISO-8601 time; None if it is not one, or is outside years 1–9999 in UTC."""
    from datetime import UTC, datetime

    if not text:
        return None
    try:
        seconds = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        datetime.fromtimestamp(seconds, tz=UTC)  # job ids are stamped with it: it must be a UTC date too
    except (ValueError, OverflowError, OSError):
        return None
    return seconds
