"""Inbound AWS events → typed values; anything else is rejected with the field that is wrong.

Shapes (verbatim examples in tests/unit/fixtures): S3 event notifications (Lambda
payload or SQS body), EventBridge "Object Created", DMS "Replication Task State
Change", and Redshift Data API "Statement Status Change".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


class EventError(ValueError):
    """An event that is not what we handle; the message names the offending field."""


@dataclass(frozen=True)
class FileEvent:
    bucket: str
    key: str
    etag: str | None
    version_id: str | None
    size: int
    sequencer: str | None
    event_name: str
    event_time: str

    @property
    def version(self) -> str:
        """The object version: its version id in a versioned bucket, else its ETag."""
        if self.version_id and self.version_id != "null":
            return self.version_id
        if self.etag:
            return self.etag.strip('"')
        raise EventError(f"s3://{self.bucket}/{self.key}: event carries neither an eTag nor a versionId")


@dataclass(frozen=True)
class DmsTaskEvent:
    id: str
    task_arn: str
    event_id: str
    event_type: str
    detail_message: str
    stop_reason: str | None
    time: str
    task_name: str | None = None  # from resourceLink (…#taskDetails/<identifier>); ARNs end in a random id

    @property
    def is_failure(self) -> bool:
        return self.event_id == "DMS-EVENT-0078" or self.event_type == "REPLICATION_TASK_FAILED"


@dataclass(frozen=True)
class StatementEvent:
    statement_id: str
    statement_name: str | None
    state: str
    rows: int | None
    redshift_query_id: int | None
    time: str | None


def _get(obj: Any, path: str) -> Any:
    """Follow a dotted path (`Records[0].s3.object.key`), naming the first missing part."""
    current = obj
    walked = ""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(current, list) or index >= len(current):
                raise EventError(f"{walked or 'event'}{part} missing")
            current = current[index]
            walked += part
            continue
        walked = f"{walked}.{part}" if walked else part
        if not isinstance(current, dict) or part not in current:
            raise EventError(f"{walked} missing")
        current = current[part]
    return current


def _dict(obj: Any, path: str) -> dict[str, Any]:
    value = _get(obj, path)
    if not isinstance(value, dict):
        raise EventError(f"{path} must be an object, got {type(value).__name__}")
    return value


def _str(obj: Any, path: str) -> str:
    value = _get(obj, path)
    if not isinstance(value, str) or not value:
        raise EventError(f"{path} must be a non-empty string, got {type(value).__name__}")
    return value


def _opt_str(obj: dict[str, Any], name: str, path: str) -> str | None:
    """An optional string field: absent, null or empty is None; any other type is rejected."""
    value = obj.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EventError(f"{path}.{name} must be a string, got {type(value).__name__}")
    return value


def _size(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EventError(f"{path} must be a number")
    try:
        size = int(value)
    except (ValueError, OverflowError):  # "abc", NaN, Infinity (Python's json accepts the last two)
        raise EventError(f"{path} must be a number, got {value!r}") from None
    if size < 0:
        raise EventError(f"{path} must not be negative")
    return size


def is_s3_test_event(body: Any) -> bool:
    return isinstance(body, dict) and body.get("Event") == "s3:TestEvent" and "Records" not in body


def parse_s3_notification(body: Any) -> list[FileEvent]:
    """`{"Records": [...]}`: ObjectCreated records become FileEvents; other event names are skipped."""
    if is_s3_test_event(body):
        return []
    records = _get(body, "Records")
    if not isinstance(records, list):
        raise EventError("Records must be a list")
    events = []
    for i, record in enumerate(records):
        where = f"Records[{i}]"
        source = record.get("eventSource") if isinstance(record, dict) else None
        if source != "aws:s3":
            raise EventError(f"{where}.eventSource must be 'aws:s3', got {source!r}")
        name = _str(body, f"{where}.eventName")
        if not name.startswith("ObjectCreated"):
            continue
        obj = _dict(body, f"{where}.s3.object")
        raw_key = _str(body, f"{where}.s3.object.key")
        path = f"{where}.s3.object"
        events.append(FileEvent(
            bucket=_str(body, f"{where}.s3.bucket.name"),
            key=unquote_plus(raw_key),  # form-encoded: '+' is a space, '%2B' a plus
            etag=_opt_str(obj, "eTag", path) or _opt_str(obj, "etag", path),
            version_id=_opt_str(obj, "versionId", path),
            size=_size(obj.get("size", 0), f"{path}.size"),
            sequencer=_opt_str(obj, "sequencer", path),
            event_name=name,
            event_time=str(record.get("eventTime", "")),
        ))
        events[-1].version  # noqa: B018 — reject a record without eTag/versionId now, naming it
    return events


def parse_eventbridge_object_created(event: Any) -> FileEvent:
    if _get(event, "source") != "aws.s3" or _get(event, "detail-type") != "Object Created":
        raise EventError(f"expected source aws.s3 / detail-type 'Object Created', got "
                         f"{event.get('source')!r} / {event.get('detail-type')!r}")
    obj = _dict(event, "detail.object")
    found = FileEvent(
        bucket=_str(event, "detail.bucket.name"),
        key=_str(event, "detail.object.key"),  # EventBridge keys arrive decoded
        etag=_opt_str(obj, "etag", "detail.object") or _opt_str(obj, "eTag", "detail.object"),
        version_id=_opt_str(obj, "version-id", "detail.object"),
        size=_size(obj.get("size", 0), "detail.object.size"),
        sequencer=_opt_str(obj, "sequencer", "detail.object"),
        event_name=f"ObjectCreated:{_dict(event, 'detail').get('reason', 'Unknown')}",
        event_time=str(event.get("time", "")),
    )
    found.version  # noqa: B018
    return found


def decode_body(body: Any) -> Any:
    """An SQS message body as JSON; EventError if it is not (including JSON nested too deeply to decode)."""
    if not isinstance(body, str):
        raise EventError(f"message body must be a string, got {type(body).__name__}")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise EventError(f"message body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise EventError("message body is not JSON we can read: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python's digit limit
        raise EventError(f"message body is not JSON we can read: {exc}") from None


def parse_sqs_body(body: str) -> list[FileEvent]:
    """An SQS message body from the landing queue: S3 notification, EventBridge event or S3 test event."""
    parsed = decode_body(body)
    if not isinstance(parsed, dict):
        raise EventError(f"message body must be a JSON object, got {type(parsed).__name__}")
    if is_s3_test_event(parsed):
        return []
    if "Records" in parsed:
        return parse_s3_notification(parsed)
    if "detail-type" in parsed:
        if parsed.get("detail-type") != "Object Created":
            return []  # e.g. moto's extra "Object Tags Added": nothing to load
        return [parse_eventbridge_object_created(parsed)]
    raise EventError("message body is neither an S3 notification (Records) nor an EventBridge event "
                     f"(detail-type); keys: {', '.join(sorted(parsed)) or 'none'}")


_STOP_REASON = re.compile(r"Stop Reason\s+([A-Z_]+)")


def parse_dms_event(event: Any) -> DmsTaskEvent:
    if _get(event, "source") != "aws.dms":
        raise EventError(f"source must be 'aws.dms', got {event.get('source')!r}")
    resources = _get(event, "resources")
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], str):
        raise EventError("resources[0] (the replication task ARN) missing")
    detail = _dict(event, "detail")
    message = str(detail.get("detailMessage") or "")
    match = _STOP_REASON.search(message)
    link = _TASK_LINK.search(str(detail.get("resourceLink") or ""))
    return DmsTaskEvent(id=str(event.get("id", "")), task_arn=resources[0], event_id=_str(event, "detail.eventId"),
                        event_type=_str(event, "detail.eventType"), detail_message=message,
                        stop_reason=match.group(1) if match else None, time=str(event.get("time", "")),
                        task_name=link.group(1) if link else None)


_TASK_LINK = re.compile(r"#taskDetails/([A-Za-z0-9-]+)")


def parse_statement_event(event: Any) -> StatementEvent:
    if _get(event, "source") != "aws.redshift-data":
        raise EventError(f"source must be 'aws.redshift-data', got {event.get('source')!r}")
    detail = _dict(event, "detail")
    state = _str(event, "detail.state")
    if state not in ("FINISHED", "FAILED", "ABORTED"):
        raise EventError(f"detail.state must be FINISHED, FAILED or ABORTED, got {state!r}")
    rows = detail.get("rows")
    query_id = detail.get("redshiftQueryId")
    name = detail.get("statementName")
    if name is not None and not isinstance(name, str):
        raise EventError(f"detail.statementName must be a string, got {type(name).__name__}")
    return StatementEvent(statement_id=_str(event, "detail.statementId"), statement_name=name,
                          state=state, rows=rows if isinstance(rows, int) else None,
                          redshift_query_id=query_id if isinstance(query_id, int) else None,
                          time=event.get("time"))
