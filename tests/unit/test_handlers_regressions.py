"""One focused test per bug the handler fuzzing (test_fuzz_handlers.py) found.

Each was an input that escaped a handler as an unexpected exception (a 500, an
EventBridge retry, or a poison message retried until maxReceiveCount), or a
rejection that was not logged or did not name its field.
"""

from __future__ import annotations

import io
import json
import logging

import pytest

from chalicelib import api, handlers
from chalicelib.events import EventError, parse_statement_event
from chalicelib.followups import Followups
from tests.unit import strategies as s
from tests.unit.test_followups import FakeDms
from tests.unit.test_fuzz_handlers import http_client  # noqa: F401 (the "http" fixture)
from tests.unit.test_fuzz_handlers import (QUEUED, api_service, captured_logs, jobs_event, landing_event, make_service,
                                           state, worker_service)


def _landing_rejects(body: str) -> str:
    """Route one landing message; it must be parked and acknowledged. Returns the logged reason."""
    service = make_service()
    with captured_logs() as log:
        assert handlers.route_landing(service, landing_event([body])) == {"batchItemFailures": []}
    (line,) = log.events("message_rejected")
    assert service.queue.dead == [(service.settings.landing_queue, body, line["reason"])]
    assert state(service) == state(make_service())
    return line["reason"]


# Bug: a non-string eTag raised AttributeError ('int' object has no attribute 'strip') inside the
# parser; not a rejection, so the message was reported as a batch failure and retried 5 times.
@pytest.mark.parametrize("etag", [7, ["d41d8cd9"], {"v": "x"}])
def test_non_string_etag_is_rejected_naming_it(etag):
    for value, field in ((s.s3_notification("landing", "events/a.json"), "eTag"),
                         (s.object_created("landing", "events/a.json"), "etag")):
        obj = value["Records"][0]["s3"]["object"] if "Records" in value else value["detail"]["object"]
        obj[field] = etag
        assert field in _landing_rejects(json.dumps(value))


# Bug: a versionId or sequencer of any JSON type was taken as is, so a list became the file's
# "version" (an unhashable ledger key; a DynamoDB type error in the real ledger).
@pytest.mark.parametrize("field", ["versionId", "sequencer"])
def test_non_string_version_id_or_sequencer_is_rejected_naming_it(field):
    value = s.s3_notification("landing", "events/a.json")
    value["Records"][0]["s3"]["object"][field] = ["096fKKXTRTtl3on89fVO"]
    assert f"s3.object.{field} must be a string" in _landing_rejects(json.dumps(value))


# Bug: "size": Infinity (Python's json accepts it) raised OverflowError from int(): batch failure, retried.
def test_infinite_size_is_rejected_naming_it():
    value = s.s3_notification("landing", "events/a.json")
    value["Records"][0]["s3"]["object"]["size"] = float("inf")
    assert "size must be a number" in _landing_rejects(json.dumps(value))


# Bug: JSON nested deeper than Python's decoder recursion limit raised RecursionError, which the
# handlers took for a transient failure: retried until maxReceiveCount (5 on landing, 50 on jobs).
def test_deeply_nested_json_is_parked_at_once_on_both_queues():
    body = "[" * 100_000
    assert "nested too deeply" in _landing_rejects(body)
    service = worker_service()
    with captured_logs() as log:
        assert handlers.run_jobs(service, jobs_event([body]), lambda r, sec: None) == {"batchItemFailures": []}
    (line,) = log.events("message_rejected")
    assert "nested too deeply" in line["reason"]
    assert service.queue.dead == [(service.settings.jobs_queue, body, line["reason"])]


# Bug: a flush or job message of the wrong shape was rejected with an accidental reason
# ("TypeError: string indices must be integers") that did not say which field was wrong.
@pytest.mark.parametrize("body", ['{"flush": "x"}', '{"flush": {"pipeline": ["events"], "batch_id": "b"}}',
                                  '{"flush": {"pipeline": "events"}}'])
def test_malformed_flush_message_is_rejected_naming_the_fields(body):
    assert "'flush.pipeline' and 'flush.batch_id'" in _landing_rejects(body)


@pytest.mark.parametrize("body", ["[1]", '"job"', '{"job_id": null}', '{"job_id": 5}', '{"job": "x"}'])
def test_malformed_job_message_is_rejected_naming_job_id(body):
    service = worker_service()
    with captured_logs() as log:
        assert handlers.run_jobs(service, jobs_event([body]), lambda r, sec: None) == {"batchItemFailures": []}
    (line,) = log.events("message_rejected")
    assert line["reason"].startswith("EventError: ") and "'job_id'" in line["reason"]


# Bug: a statementName that is not a string (e.g. a list) got past the parser and raised
# AttributeError ('list' object has no attribute 'split') out of the completion handler.
@pytest.mark.parametrize("name", [["redshift-loader", QUEUED, "1"], 5, {"n": 1}])
def test_non_string_statement_name_is_rejected_naming_it(name):
    event = json.loads(json.dumps(s.STATEMENT_CHANGE))
    event["detail"]["statementName"] = name
    with pytest.raises(EventError, match="detail.statementName must be a string"):
        parse_statement_event(event)
    with captured_logs() as log:
        handlers.statement_changed(worker_service(), event)
    (line,) = log.events("statement_event_rejected")
    assert "statementName" in line["error"]


# Bug: a DMS event whose time is valid ISO-8601 but outside years 1-9999 once converted to UTC made the
# follow-up's job id ("year 10000 is out of range") raise ValueError out of the DMS handler.
@pytest.mark.parametrize("time", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+01:00"])
def test_dms_event_time_outside_utc_years_falls_back_to_now(time):
    service = make_service()
    event = s.dms_full_load_finished()
    event["time"] = time
    with captured_logs() as log:
        handlers.dms_task_changed(Followups(service, FakeDms()), event)
    (line,) = log.events("followup_queued")
    (job_id, _, _), = service.queue.enqueued
    assert line["job_id"] == job_id and job_id.startswith("2026")  # stamped with the clock's now


# Bug (found by FUZZ_PROFILE=deep): a DMS event time with a lone surrogate (a JSON "\ud800" escape) made
# hashing the follow-up's run key raise UnicodeEncodeError out of the DMS handler.
def test_dms_event_time_with_a_lone_surrogate_still_runs_the_follow_up_once():
    service = make_service()
    followups = Followups(service, FakeDms())
    event = json.loads(json.dumps(s.dms_full_load_finished()).replace('00Z"', '00Z\\ud800"'))
    assert event["time"].endswith("\ud800")
    handlers.dms_task_changed(followups, event)
    handlers.dms_task_changed(followups, event)  # a duplicate delivery maps to the same job
    assert len(service.queue.enqueued) == 1


# Bug: HTTP requests rejected with 4xx were not logged at all; and an unknown field named ''
# lost its "field" in the 400 body.
def test_rejected_http_request_is_logged_with_status_field_and_reason():
    with captured_logs() as log, pytest.raises(api.ApiError):
        api.list_jobs(api_service(), {"limit": "x"})
    (line,) = log.events("request_rejected")
    assert (line["status"], line["field"], line["error"]) == (400, "limit", "'limit' must be an integer")


def test_unknown_empty_field_is_named_and_logged():
    with captured_logs() as log, pytest.raises(api.ApiError) as raised:
        api.request_load(api_service(), {"pipeline": "events", "keys": ["events/a.json"], "": None})
    reply = raised.value.reply()
    assert reply.status == 400 and reply.body["field"] == ""
    (line,) = log.events("request_rejected")
    assert line["status"] == 400 and line["field"] == "" and line["error"] == reply.body["error"]


# Chalice's json_body lets the RecursionError of a too-deeply nested body escape: app.py turns it into a 400.
def test_deeply_nested_http_body_is_a_400_not_a_500(http):
    response = http.http.post("/loads", body=b"[" * 100_000, headers={"Content-Type": "application/json"})
    assert response.status_code == 400


# A lone surrogate from a JSON "\ud800" escape (an unknown HTTP field name, an S3 key) made the log line
# unencodable on a strict UTF-8 stdout (logs.py now escapes such lines), so the line explaining the
# rejection is lost (logging prints a traceback to stderr instead).
def test_rejection_naming_a_lone_surrogate_still_reaches_a_utf8_log_stream():
    buffer = io.BytesIO()
    handler = logging.StreamHandler(io.TextIOWrapper(buffer, encoding="utf-8", errors="strict", write_through=True))
    logger = logging.getLogger("redshift_loader")
    logger.addHandler(handler)
    raise_exceptions, logging.raiseExceptions = logging.raiseExceptions, False
    try:
        with pytest.raises(api.ApiError):
            api.request_load(api_service(), {"pipeline": "events", "\ud800": 1})
    finally:
        logging.raiseExceptions = raise_exceptions
        logger.removeHandler(handler)
    assert b"request_rejected" in buffer.getvalue()
