"""Inbound events: the AWS documentation examples, moto's variants, odd keys, malformed input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.events import (
    EventError,
    FileEvent,
    is_s3_test_event,
    parse_dms_event,
    parse_eventbridge_object_created,
    parse_s3_notification,
    parse_sqs_body,
    parse_statement_event,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


# ---------------------------------------------------------- S3 notification
def test_aws_notification_example() -> None:
    (event,) = parse_s3_notification(fixture("s3_notification_aws.json"))
    assert event == FileEvent(bucket="mybucket", key="HappyFace.jpg", etag="d41d8cd98f00b204e9800998ecf8427e",
                              version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko", size=1024, sequencer="0055AED6DCD90281E5",
                              event_name="ObjectCreated:Put", event_time="1970-01-01T00:00:00.000Z")
    assert event.version == "096fKKXTRTtl3on89fVO.nfljtsv6qko"


def test_moto_notification_key_is_form_decoded() -> None:
    (event,) = parse_s3_notification(fixture("s3_notification_moto.json"))
    assert event.key == "incoming/orders 2024.csv" and event.bucket == "landing"
    assert event.version == "e5ebd4c02cefbe7955977c67ada242b7" and event.sequencer is None


def test_keys_with_spaces_plus_non_ascii_folders_and_versions() -> None:
    events = parse_s3_notification(fixture("s3_notification_keys.json"))
    keys = [e.key for e in events]
    # The ObjectRemoved record is skipped; the folder marker is passed on (the service skips it).
    assert keys == ["orders/my file.csv", "orders/a+b.csv", "orders/café über.csv", "orders/2026/", "orders/v.csv",
                    "orders/w.csv"]
    by_key = {e.key: e for e in events}
    assert by_key["orders/my file.csv"].version == "0123abcd"  # quotes stripped from the ETag
    assert by_key["orders/v.csv"].version == "0123abcd"  # versionId "null" = unversioned bucket
    assert by_key["orders/w.csv"].version == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"


def test_s3_test_event() -> None:
    body = fixture("s3_test_event.json")
    assert is_s3_test_event(body)
    assert parse_s3_notification(body) == []
    assert parse_sqs_body(json.dumps(body)) == []
    assert not is_s3_test_event(fixture("s3_notification_aws.json"))


def _broken(path: list[Any], value: Any = None, delete: bool = False) -> dict[str, Any]:
    body = copy.deepcopy(fixture("s3_notification_aws.json"))
    target = body
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


@pytest.mark.parametrize("body, message", [
    (_broken(["Records", 0, "s3", "object", "key"], delete=True), "Records[0].s3.object.key missing"),
    (_broken(["Records", 0, "s3", "bucket", "name"], delete=True), "Records[0].s3.bucket.name missing"),
    (_broken(["Records", 0, "s3", "object", "key"], ""), "Records[0].s3.object.key must be a non-empty string"),
    (_broken(["Records", 0, "s3", "object", "size"], "big"), "Records[0].s3.object.size must be a number"),
    (_broken(["Records", 0, "s3", "object", "size"], -1), "Records[0].s3.object.size must not be negative"),
    (_broken(["Records", 0, "s3", "object"], "x"), "Records[0].s3.object must be an object"),
    (_broken(["Records", 0, "eventSource"], "aws:sqs"), "Records[0].eventSource must be 'aws:s3'"),
    (_broken(["Records", 0, "eventName"], delete=True), "Records[0].eventName missing"),
    (_broken(["Records"], {}), "Records must be a list"),
    ({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                   "s3": {"bucket": {"name": "b"}, "object": {"key": "k", "size": 1}}}]}, "neither an eTag"),
    ({}, "Records missing"),
    ([], "Records missing"),
])
def test_malformed_notifications_name_the_field(body: Any, message: str) -> None:
    with pytest.raises(EventError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_s3_notification(body)


# ------------------------------------------------------------- EventBridge
def test_eventbridge_aws_example() -> None:
    event = parse_eventbridge_object_created(fixture("eventbridge_object_created_aws.json"))
    assert (event.bucket, event.key, event.size) == ("DOC-EXAMPLE-BUCKET1", "example-key", 5)
    assert event.version == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e" and event.etag == "b1946ac92492d2347c6235b4d2611184"
    assert event.event_name == "ObjectCreated:PutObject" and event.event_time == "2021-11-12T00:00:00Z"


def test_eventbridge_moto_variant_uses_etag_when_version_is_null() -> None:
    event = parse_eventbridge_object_created(fixture("eventbridge_object_created_moto.json"))
    assert event.key == "incoming/t1/part-0001.csv" and event.version == "3ecfad1e2a8d4a0c7b3f1f9e6a2c5d70"


def test_eventbridge_keys_are_taken_as_is() -> None:
    body = fixture("eventbridge_object_created_aws.json")
    body["detail"]["object"]["key"] = "orders/a+b%2B c.csv"
    assert parse_eventbridge_object_created(body).key == "orders/a+b%2B c.csv"


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e.update(source="aws.dms"), "expected source aws.s3"),
    (lambda e: e["detail"]["object"].pop("key"), "detail.object.key missing"),
    (lambda e: e["detail"].pop("bucket"), "detail.bucket missing"),
    (lambda e: e.pop("detail"), "detail"),
    (lambda e: e["detail"].update(object=[]), "detail.object must be an object"),
])
def test_malformed_eventbridge_events(mutate: Any, message: str) -> None:
    body = fixture("eventbridge_object_created_aws.json")
    mutate(body)
    with pytest.raises(EventError, match=message):
        parse_eventbridge_object_created(body)


# ------------------------------------------------------------ SQS bodies
def test_sqs_body_dispatches_by_shape() -> None:
    assert [e.key for e in parse_sqs_body(json.dumps(fixture("s3_notification_moto.json")))] == [
        "incoming/orders 2024.csv"]
    assert [e.bucket for e in parse_sqs_body(json.dumps(fixture("eventbridge_object_created_aws.json")))] == [
        "DOC-EXAMPLE-BUCKET1"]
    tags = fixture("eventbridge_object_created_moto.json")
    tags["detail-type"] = "Object Tags Added"
    assert parse_sqs_body(json.dumps(tags)) == []


@pytest.mark.parametrize("body, message", [("{not json", "not JSON"), ("[1]", "must be a JSON object"),
                                           ('{"hello": 1}', "neither an S3 notification")])
def test_sqs_body_rejections(body: str, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_sqs_body(body)


# --------------------------------------------------------------------- DMS
def test_dms_started_example() -> None:
    event = parse_dms_event(fixture("dms_task_started_aws.json"))
    assert event.task_arn == "arn:aws:dms:us-east-1:012345678901:task:AAAABBBB0CCCCDDDDEEEEE1FFFF2GGG3FFFFFF3"
    assert (event.event_id, event.event_type, event.stop_reason, event.is_failure) == (
        "DMS-EVENT-0069", "REPLICATION_TASK_STARTED", None, False)


def test_dms_full_load_finished() -> None:
    event = parse_dms_event(fixture("dms_full_load_finished.json"))
    assert event.stop_reason == "FULL_LOAD_ONLY_FINISHED" and not event.is_failure
    assert event.time == "2026-11-22T10:45:00Z" and event.id == "11a11b11-222b-333a-44d4-01234a5b67890"


def test_dms_failure_with_error_level() -> None:
    event = parse_dms_event(fixture("dms_task_failed.json"))
    assert event.stop_reason == "FATAL_ERROR" and event.is_failure


def test_dms_moto_body_without_account() -> None:
    event = parse_dms_event(fixture("dms_moto_no_account.json"))
    assert event.task_arn.endswith(":task:dms-full-dump-task") and event.stop_reason == "FULL_LOAD_ONLY_FINISHED"


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e.update(source="aws.s3"), "source must be 'aws.dms'"),
    (lambda e: e.update(resources=[]), "resources"),
    (lambda e: e["detail"].pop("eventId"), "detail.eventId missing"),
    (lambda e: e.update(detail="x"), "detail must be an object"),
])
def test_malformed_dms_events(mutate: Any, message: str) -> None:
    body = fixture("dms_full_load_finished.json")
    mutate(body)
    with pytest.raises(EventError, match=message):
        parse_dms_event(body)


# -------------------------------------------------------- Data API status
def test_statement_status_change_example() -> None:
    event = parse_statement_event(fixture("statement_status_change_aws.json"))
    assert (event.statement_id, event.statement_name, event.state, event.rows, event.redshift_query_id, event.time) == (
        "dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a", "test.testtable", "FINISHED", 1, -1, "2020-10-01T21:14:26Z")


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e["detail"].pop("statementId"), "detail.statementId missing"),
    (lambda e: e["detail"].update(state="RUNNING"), "detail.state must be FINISHED, FAILED or ABORTED"),
    (lambda e: e.update(source="aws.s3"), "source must be 'aws.redshift-data'"),
    (lambda e: e.pop("detail"), "detail missing"),
])
def test_malformed_statement_events(mutate: Any, message: str) -> None:
    body = fixture("statement_status_change_aws.json")
    mutate(body)
    with pytest.raises(EventError, match=message):
        parse_statement_event(body)
