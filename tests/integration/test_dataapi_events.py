"""WithEvent=true: the completion event reaches (moto) EventBridge and in-process listeners."""

from __future__ import annotations

import json
import queue
import time
import uuid

import boto3
import pytest


@pytest.fixture()
def event_queue(moto_endpoint):
    """An SQS queue receiving every Redshift Data status-change event via an EventBridge rule."""
    events = boto3.client("events", endpoint_url=moto_endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = f"rsd-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps({
        "source": ["aws.redshift-data"], "detail-type": ["Redshift Data Statement Status Change"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    yield sqs, url
    events.remove_targets(Rule=name, Ids=["q"])
    events.delete_rule(Name=name)


def _receive(sqs, url, statement_id: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for msg in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            event = json.loads(msg["Body"])
            if event["detail"]["statementId"] == statement_id:
                return event
    raise TimeoutError(f"no event for {statement_id}")


def test_with_event_puts_a_status_change_event(emulator, rsdata, wait, event_queue, database):
    sqs, url = event_queue
    out = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT 1 UNION ALL SELECT 2",
                                   WithEvent=True, StatementName="evt.test", DbUser="loader")
    desc = wait(rsdata, out["Id"])
    event = _receive(sqs, url, out["Id"])
    assert event["source"] == "aws.redshift-data"
    assert event["detail-type"] == "Redshift Data Statement Status Change"
    assert event["resources"] == ["arn:aws:redshift-serverless:us-east-1:123456789012:workgroup/wg-test"]
    detail = event["detail"]
    assert set(detail) == {"principal", "statementName", "statementId", "redshiftQueryId", "state", "rows",
                           "expireAt"}
    assert detail["state"] == "FINISHED" and detail["rows"] == 2 and detail["statementName"] == "evt.test"
    assert detail["redshiftQueryId"] == desc["RedshiftQueryId"]
    assert detail["expireAt"] == int(desc["CreatedAt"].timestamp()) + 24 * 3600


def test_failed_cluster_batch_event_and_listeners(emulator, rsdata, wait, event_queue, database):
    sqs, url = event_queue
    seen: queue.Queue = queue.Queue()
    emulator.add_listener(seen.put)
    try:
        bid = rsdata.batch_execute_statement(ClusterIdentifier="c1", Database=database, WithEvent=True,
                                             Sqls=["SELECT 1", "SELECT * FROM nope"])["Id"]
        assert wait(rsdata, bid)["Status"] == "FAILED"
        event = _receive(sqs, url, bid)
        assert event["resources"] == ["arn:aws:redshift:us-east-1:123456789012:cluster:c1"]
        assert event["detail"]["state"] == "FAILED"
        detail = seen.get(timeout=5)
        assert detail["statementId"] == bid and detail["state"] == "FAILED"
    finally:
        emulator.remove_listener(seen.put)


def test_no_event_without_with_event_and_filter_can_drop(emulator, rsdata, wait, database):
    seen: queue.Queue = queue.Queue()
    emulator.add_listener(seen.put)
    emulator.event_filter = lambda event: event["detail"]["statementName"] != "drop-me"
    try:
        plain = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT 1")["Id"]
        dropped = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT 1",
                                           WithEvent=True, StatementName="drop-me")["Id"]
        kept = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT 1",
                                        WithEvent=True, StatementName="keep-me")["Id"]
        for sid in (plain, dropped, kept):
            wait(rsdata, sid)
        assert seen.get(timeout=5)["statementId"] == kept
        time.sleep(0.2)
        assert seen.empty()
    finally:
        emulator.event_filter = None
        emulator.remove_listener(seen.put)


def test_cancelled_statement_event(emulator, rsdata, wait, database):
    seen: queue.Queue = queue.Queue()
    emulator.add_listener(seen.put)
    try:
        sid = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT pg_sleep(30)",
                                       WithEvent=True)["Id"]
        time.sleep(0.2)
        rsdata.cancel_statement(Id=sid)
        assert wait(rsdata, sid)["Status"] == "ABORTED"
        detail = seen.get(timeout=5)
        assert (detail["statementId"], detail["state"]) == (sid, "ABORTED")
    finally:
        emulator.remove_listener(seen.put)
