"""Lambda event shapes → service calls, with SQS partial batch responses.

A message that can never succeed (bad JSON, unknown shape, unknown job) is
parked on its queue's DLQ with the reason and acknowledged, so it neither
blocks its neighbours nor is retried forever. Anything else that fails is
reported in `batchItemFailures` and comes back later.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib import logs
from chalicelib.events import (EventError, FileEvent, decode_body, is_s3_test_event, parse_dms_event, parse_sqs_body,
                               parse_statement_event)
from chalicelib.followups import Followups
from chalicelib.service import Disposition, PoisonMessage, Service

BatchResponse = dict[str, list[dict[str, str]]]
_REJECT = (EventError, PoisonMessage, json.JSONDecodeError, KeyError, TypeError, ValueError)


def route_landing(service: Service, event: dict[str, Any]) -> BatchResponse:
    """Landing queue: S3 notifications, EventBridge Object Created events, and our flush timers.
    The files of all messages in the delivery are recorded together (one ledger write per pipeline);
    if that fails, each message is tried on its own, so one message's trouble stays its own."""
    failures: list[dict[str, str]] = []
    landed: list[tuple[str, str, list[FileEvent]]] = []  # (message id, body, its files)
    for record in event.get("Records", []):
        body = record.get("body", "")
        with logs.bound(message_id=record.get("messageId")):
            try:
                files = _route_one(service, body)
            except Exception as exc:
                _landing_failed(service, record["messageId"], body, exc, failures)
                continue
            if files:
                landed.append((record["messageId"], body, files))
    if len(landed) > 1:
        try:
            with logs.bound(message_ids=[message_id for message_id, _, _ in landed]):
                service.files_landed([f for _, _, files in landed for f in files])
            return {"batchItemFailures": failures}
        except Exception as exc:
            logs.warning("landing_group_failed", error=f"{type(exc).__name__}: {exc}", messages=len(landed))
    for message_id, body, files in landed:
        with logs.bound(message_id=message_id):
            try:
                service.files_landed(files)
            except Exception as exc:
                _landing_failed(service, message_id, body, exc, failures)
    return {"batchItemFailures": failures}


def _landing_failed(service: Service, message_id: str, body: str, exc: Exception,
                    failures: list[dict[str, str]]) -> None:
    if isinstance(exc, _REJECT):
        if not _park(service, service.settings.landing_queue, body, f"{type(exc).__name__}: {exc}"):
            failures.append({"itemIdentifier": message_id})
    else:
        logs.error("landing_message_failed", error=f"{type(exc).__name__}: {exc}")
        failures.append({"itemIdentifier": message_id})


def _route_one(service: Service, body: str) -> list[FileEvent]:
    """Handle a flush timer or an S3 test event here; return a message's files for routing."""
    parsed = decode_body(body)
    if isinstance(parsed, dict) and "flush" in parsed:
        flush = parsed["flush"]
        if not (isinstance(flush, dict) and _non_empty_str(flush.get("pipeline"))
                and _non_empty_str(flush.get("batch_id"))):
            raise EventError("flush message needs 'flush.pipeline' and 'flush.batch_id' as non-empty strings")
        service.flush(flush["pipeline"], flush["batch_id"])
    elif isinstance(parsed, dict) and is_s3_test_event(parsed):
        logs.info("s3_test_event_skipped", bucket=parsed.get("Bucket"))
    else:
        return parse_sqs_body(body)
    return []


def run_jobs(service: Service, event: dict[str, Any], hide: Callable[[str, int], None]) -> BatchResponse:
    """Jobs FIFO queue. After the first message we keep, the rest are reported too (FIFO order)."""
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        message_id, receipt, body = record["messageId"], record["receiptHandle"], record.get("body", "")
        if failures:
            failures.append({"itemIdentifier": message_id})
            continue
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        with logs.bound(message_id=message_id):
            try:
                job_id = _job_id(body)
                result = service.run_job_message(job_id, receipt=receipt, receive_count=receives)
            except _REJECT as exc:
                if not _park(service, service.settings.jobs_queue, body, f"{type(exc).__name__}: {exc}"):
                    failures.append({"itemIdentifier": message_id})
                continue
            except Exception as exc:
                logs.error("job_message_failed", error=f"{type(exc).__name__}: {exc}", receives=receives)
                _try_hide(hide, receipt, error_backoff(service, receives))
                failures.append({"itemIdentifier": message_id})
                continue
            if result.disposition is Disposition.KEEP:
                _try_hide(hide, receipt, result.seconds)
                failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def error_backoff(service: Service, receives: int) -> int:
    """Seconds a job's message stays hidden after an unexpected (usually transient) error.

    Doubles with the receive count, but never beyond the sweeper's grace: the count includes every
    poll and retry of the job, and while its message is hidden the job's whole table waits (a
    single throttled call late in a job's life used to block the table for 15 minutes)."""
    return max(1, min(15 * 2 ** min(receives, 6), service.settings.sweep_grace_seconds))


def _non_empty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _job_id(body: Any) -> str:
    parsed = decode_body(body)
    if not isinstance(parsed, dict) or not _non_empty_str(parsed.get("job_id")):
        raise EventError("job message must be a JSON object with a non-empty string 'job_id'")
    return parsed["job_id"]


def statement_changed(service: Service, event: dict[str, Any]) -> None:
    """EventBridge: Redshift Data Statement Status Change."""
    try:
        parsed = parse_statement_event(event)
    except EventError as exc:
        logs.warning("statement_event_rejected", error=str(exc))
        return
    service.statement_finished(parsed)


def dms_task_changed(followups: Followups, event: dict[str, Any]) -> None:
    """EventBridge: DMS Replication Task State Change."""
    try:
        parsed = parse_dms_event(event)
    except EventError as exc:
        logs.warning("dms_event_rejected", error=str(exc))
        return
    followups.task_state_changed(parsed)


def _park(service: Service, queue: str, body: str, reason: str) -> bool:
    logs.warning("message_rejected", queue=queue, reason=reason)
    try:
        service.queue.dead_letter(queue, body, reason)
        return True
    except Exception as exc:
        logs.error("dead_letter_failed", queue=queue, error=str(exc))
        return False


def _try_hide(hide: Callable[[str, int], None], receipt: str, seconds: int) -> None:
    try:
        hide(receipt, seconds)
    except Exception as exc:  # the message then reappears after the queue's own visibility timeout
        logs.warning("visibility_change_failed", error=str(exc))
