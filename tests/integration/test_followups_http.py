"""DMS events and HTTP requests driven end to end on devstack.

A DMS "full load finished" event put on the local EventBridge runs the follow-up's
procedures (their effects checked in PostgreSQL); an HTTP request loads files and the
job is followed over the API to SUCCEEDED.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

FIXTURES = Path(__file__).parents[1] / "unit" / "fixtures"


def put_dms_event(env, *, task_arn: str, task_name: str | None, message: str, time_: str) -> None:
    event = json.loads((FIXTURES / "dms_full_load_finished.json").read_text())  # the AWS documentation's shape
    detail = event["detail"]
    detail["detailMessage"] = message
    if task_name:
        detail["resourceLink"] = f"https://console.aws.amazon.com/dms/v2/home?region=us-east-1#taskDetails/{task_name}"
    env.stack.client("events").put_events(Entries=[{
        "Source": event["source"], "DetailType": event["detail-type"], "Resources": [task_arn],
        "Time": time_, "Detail": json.dumps(detail)}])


def test_dms_full_load_finished_runs_dimension_then_fact(env):
    env.rows("INSERT INTO it.stg_customer VALUES (1, 'ann'), (2, NULL), (3, 'cy') RETURNING id")
    env.rows("INSERT INTO it.stg_sale VALUES (10, 1, 5.00), (11, 2, 7.50), (12, 3, 1.25), (13, 1, 2.00) RETURNING id")
    arn = "arn:aws:dms:us-east-1:123456789012:task:AAAABBBB0CCCCDDDDEEEEE1FFFF2GGG3FFFFFF3"
    for _ in range(2):  # delivered twice: runs once
        put_dms_event(env, task_arn=arn, task_name="it-full-load-task",
                      message="Stop Reason FULL_LOAD_ONLY_FINISHED", time_="2026-11-22T10:45:00Z")
    (job,) = env.wait_jobs("dim-then-fact", 1)
    assert job.status.value == "SUCCEEDED", job.error
    assert env.rows("SELECT name FROM it.dim_customer ORDER BY id") == [("ann",), ("n/a",), ("cy",)]
    assert float(env.rows("SELECT SUM(amount) FROM it.fact_sale")[0][0]) == 15.75
    time.sleep(2)
    assert len(env.jobs("dim-then-fact")) == 1


def test_dms_other_stop_reasons_and_failures_run_nothing(env):
    arn = "arn:aws:dms:us-east-1:123456789012:task:AAAABBBB0CCCCDDDDEEEEE1FFFF2GGG3FFFFFF3"
    before = len(env.jobs("dim-then-fact"))
    put_dms_event(env, task_arn=arn, task_name="it-full-load-task", message="Stop Reason NORMAL",
                  time_="2026-11-22T11:00:00Z")
    failed = json.loads((FIXTURES / "dms_task_failed.json").read_text())
    failed["detail"]["resourceLink"] = "https://console.aws.amazon.com/dms/v2/home#taskDetails/it-full-load-task"
    env.stack.client("events").put_events(Entries=[{
        "Source": "aws.dms", "DetailType": failed["detail-type"], "Resources": [arn],
        "Detail": json.dumps(failed["detail"])}])
    time.sleep(3)
    assert len(env.jobs("dim-then-fact")) == before


def test_chained_follow_up_runs_each_step_in_its_own_transaction_in_order(env):
    put_dms_event(env, task_arn="arn:aws:dms:us-east-1:123456789012:task:CHAINTASK", task_name=None,
                  message="Stop Reason FULL_LOAD_ONLY_FINISHED", time_="2026-11-22T12:00:00Z")
    (job,) = env.wait_jobs("chain", 1)
    assert job.status.value == "SUCCEEDED", job.error
    steps = env.rows("SELECT name, xid FROM it.steps ORDER BY at, xid")
    assert [s[0] for s in steps] == ["one", "two", "three"]
    assert len({s[1] for s in steps}) == 3  # three transactions


def test_http_followup_and_load_then_job_status_over_the_api(env):
    api = env.stack.api_url
    reply = requests.post(f"{api}/followups/dim-then-fact", timeout=10)
    assert reply.status_code == 202 and reply.json()["kind"] == "FOLLOWUP"
    env.put("append/http/one.csv", "id,name,amount\n900,http,9.99\n901,http,1.01\n")
    time.sleep(0.2)
    reply = requests.post(f"{api}/loads", json={"pipeline": "append", "keys": ["append/http/one.csv"], "force": True},
                          timeout=10)
    assert reply.status_code == 202, reply.text
    job_ids = reply.json()["jobs"]
    assert job_ids
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        jobs = [requests.get(f"{api}/jobs/{j}", timeout=10).json() for j in job_ids]
        if all(j["status"] in ("SUCCEEDED", "FAILED") for j in jobs):
            break
        time.sleep(0.3)
    assert all(j["status"] == "SUCCEEDED" for j in jobs), jobs
    assert env.rows("SELECT COUNT(*) FROM it.append_rows WHERE name = 'http'")[0][0] >= 2
    listed = requests.get(f"{api}/jobs", params={"pipeline": "append", "status": "SUCCEEDED"}, timeout=10).json()
    assert set(job_ids) <= {j["id"] for j in listed["jobs"]}
    bad = requests.post(f"{api}/loads", json={"pipeline": "append", "keys": ["nope/x.csv"]}, timeout=10)
    assert bad.status_code == 400 and bad.json()["field"] == "keys[0]"
    assert requests.get(f"{api}/health", timeout=10).json()["status"] == "ok"
    assert requests.get(f"{api}/openapi.json", timeout=10).json()["openapi"].startswith("3.")


def test_a_dms_event_the_lambda_keeps_failing_on_is_kept_on_the_failed_events_queue(env, monkeypatch):
    """Lambda tries an EventBridge event three times; then it goes to the on-failure destination, not away."""
    from chalicelib import resources
    from chalicelib.followups import Followups

    def broken(self, event):
        raise RuntimeError("AccessDeniedException: not allowed to write the ledger")

    monkeypatch.setattr(Followups, "task_state_changed", broken)
    sqs = env.stack.client("sqs")
    url = sqs.get_queue_url(QueueName=resources.FAILED_EVENTS_QUEUE)["QueueUrl"]
    arn = "arn:aws:dms:us-east-1:123456789012:task:AAAABBBB0CCCCDDDDEEEEE1FFFF2GGG3FFFFFF3"
    put_dms_event(env, task_arn=arn, task_name="it-full-load-task", message="Stop Reason FULL_LOAD_ONLY_FINISHED",
                  time_="2026-11-22T12:00:00Z")
    messages = env.stack.wait_for(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"),
                                  timeout=30, what="the event on the failed-events queue")
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["resources"] == [arn] and record["requestPayload"]["time"] == "2026-11-22T12:00:00Z"
    assert "AccessDenied" in record["responsePayload"]["errorMessage"]
