"""Hypothesis strategies for hostile inbound events: valid AWS shapes, then mutated.

The base shapes are copied verbatim from the AWS examples in
shared/reference/aws-facts.md (S3 event notification, EventBridge "Object Created",
DMS "Replication Task State Change", Redshift Data "Statement Status Change",
the S3 test message). `retargeted_*` variants point them at the unit-test
catalog so that a valid event reaches the ledger; `mutated()` then drops keys,
changes types, swaps in garbage (None, huge and unicode strings, NaN/Infinity,
nested containers), and `sqs_body()` serialises, truncates or mangles the JSON.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

# ------------------------------------------------------------------ verbatim shapes (aws-facts.md)
S3_NOTIFICATION: dict[str, Any] = {
    "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-west-2",
        "eventTime": "1970-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810",
                             "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "testConfigRule",
               "bucket": {"name": "mybucket", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": "arn:aws:s3:::mybucket"},
               "object": {"key": "HappyFace.jpg", "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                          "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko", "sequencer": "0055AED6DCD90281E5"}}}]}

S3_TEST_EVENT: dict[str, Any] = {
    "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2014-10-13T15:57:02.089Z", "Bucket": "bucketname",
    "RequestId": "5582815E1AEA5ADF", "HostId": "..."}

OBJECT_CREATED: dict[str, Any] = {
    "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
    "source": "aws.s3", "account": "111122223333", "time": "2021-11-12T00:00:00Z", "region": "ca-central-1",
    "resources": ["arn:aws:s3:::DOC-EXAMPLE-BUCKET1"],
    "detail": {"version": "0", "bucket": {"name": "DOC-EXAMPLE-BUCKET1"},
               "object": {"key": "example-key", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                          "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
               "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": "1.2.3.4",
               "reason": "PutObject"}}

STATEMENT_CHANGE: dict[str, Any] = {
    "version": "0", "id": "18e7079c-dd4b-dd64-caf9-e2a31640dab0",
    "detail-type": "Redshift Data Statement Status Change", "source": "aws.redshift-data",
    "account": "123456789012", "time": "2020-10-01T21:14:26Z", "region": "us-east-1",
    "resources": ["arn:aws:redshift:us-east-1:123456789012:cluster:redshift-cluster-1"],
    "detail": {"principal": "arn:aws:iam::123456789012:user/myuser", "statementName": "test.testtable",
               "statementId": "dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a", "redshiftQueryId": -1, "state": "FINISHED",
               "rows": 1, "expireAt": 1601673265}}

DMS_STATE_CHANGE: dict[str, Any] = {
    "version": "0", "id": "11a11b11-222b-333a-44d4-01234a5b67890", "detail-type": "DMS Replication Task State Change",
    "source": "aws.dms", "account": "0123456789012", "time": "1970-01-01T00:00:00Z", "region": "us-east-1",
    "resources": ["arn:aws:dms:us-east-1:012345678901:task:AAAABBBB0CCCCDDDDEEEEE1FFFF2GGG3FFFFFF3"],
    "detail": {"type": "REPLICATION_TASK", "category": "StateChange", "eventType": "REPLICATION_TASK_STARTED",
               "eventId": "DMS-EVENT-0069",
               "resourceLink": "https://console.aws.amazon.com/dms/v2/home?region=us-east-1#taskDetails/taskName",
               "detailMessage": "Replication task started, with flag = fresh start"}}

# The unit-test catalog (tests/unit/test_service.py): bucket "landing", pipelines "orders/" and "events/".
LOAD_TARGETS = (("landing", "orders/2026/11/a.csv"), ("landing", "events/e 1+2.json"), ("landing", "orders/b.csv"),
                ("landing", "events/x.json"))


def s3_notification(bucket: str, key: str, etag: str = "d41d8cd98f00b204e9800998ecf8427e") -> dict[str, Any]:
    out = copy.deepcopy(S3_NOTIFICATION)
    record = out["Records"][0]
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    record["s3"]["object"].update(key=key.replace(" ", "+"), eTag=etag)
    del record["s3"]["object"]["versionId"]  # unversioned bucket: the ETag is the version
    return out


def object_created(bucket: str, key: str, etag: str = "b1946ac92492d2347c6235b4d2611184") -> dict[str, Any]:
    out = copy.deepcopy(OBJECT_CREATED)
    out["resources"] = [f"arn:aws:s3:::{bucket}"]
    out["detail"]["bucket"]["name"] = bucket
    out["detail"]["object"].update(key=key, etag=etag)
    del out["detail"]["object"]["version-id"]
    return out


def dms_full_load_finished() -> dict[str, Any]:
    out = copy.deepcopy(DMS_STATE_CHANGE)
    out["time"] = "2026-11-22T10:45:00Z"
    out["detail"].update(eventType="REPLICATION_TASK_STOPPED", eventId="DMS-EVENT-0079",
                         detailMessage="Stop Reason FULL_LOAD_ONLY_FINISHED")
    return out


# ------------------------------------------------------------------ garbage
HUGE = "x" * 300_000
NASTY_STRINGS = (
    "", " ", "null", "None", "0", "-1", "1e400", "NaN", "Infinity", "true", "[]", "{}", "\x00", "\ud800", "\udfff",
    "\u202e\u0645\u0631\u062d\u0628\u0627", "ﬁ\u0130ß", "👩‍👩‍👧‍👦" * 50, "%ZZ%2B+%", "../../etc/passwd", "'; DROP TABLE x; --",
    "redshift-loader:", "redshift-loader::", "redshift-loader:a:b:c", "s3:TestEvent", "aws.s3", "ObjectCreated:",
    "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+01:00", "2026-13-45T99:99:99Z", "\n\r\t", "\\", '"', HUGE,
)

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.sampled_from([0, -1, 2 ** 63, -(2 ** 64), 10 ** 40]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.sampled_from(NASTY_STRINGS),
)
garbage = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys/indexes) into a JSON-like value, the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _at(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


def _set(root: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    _at(root, path[:-1])[path[-1]] = new
    return root


def _change_type(value: Any) -> st.SearchStrategy[Any]:
    """The same information in the wrong type, or the right type with wrong contents."""
    options: list[Any] = [None, [value], {"value": value}]
    if isinstance(value, str):
        options += [value[: len(value) // 2], value.upper(), value + "\ud800", " " + value, value * 3, value.encode("utf-8", "surrogatepass").hex()]
        try:
            options.append(int(value))
        except ValueError:
            options.append(len(value))
    elif isinstance(value, bool):
        options += [str(value).lower(), int(value)]
    elif isinstance(value, (int, float)):
        options += [str(value), float(value), -value, value * 10 ** 30, float("inf"), float("nan"), True]
    elif isinstance(value, (list, dict)):
        options += [json.dumps(value), [], {}, list(value)]
    return st.sampled_from(options)


@st.composite
def mutated(draw: st.DrawFn, base: Any, *, min_mutations: int = 1, max_mutations: int = 4) -> Any:
    """`base` with 1–4 of: a key dropped, a value retyped or replaced with garbage, a key added, a list grown."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_mutations, max_mutations))):
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        target = _at(value, path)
        kind = draw(st.sampled_from(["drop", "retype", "garbage", "add", "grow"]))
        if kind == "drop" and path:
            parent = _at(value, path[:-1])
            parent.pop(path[-1])
        elif kind == "retype":
            value = _set(value, path, draw(_change_type(target)))
        elif kind == "add" and isinstance(target, dict):
            target[draw(st.text(max_size=10) | st.sampled_from(list(target) or ["k"]))] = draw(garbage)
        elif kind == "grow" and isinstance(target, list):
            target.append(draw(garbage | st.just(copy.deepcopy(target[0]) if target else None)))
        else:
            value = _set(value, path, draw(garbage))
    return value


# ------------------------------------------------------------------ SQS bodies
DEEP_NESTING = ("[" * 100_000, '{"a":' * 50_000, "[" * 50_000 + "]" * 50_000,
                '{"Records": ' + "[" * 5_000 + "]" * 5_000 + "}", '{"job_id": ' + "[" * 30_000 + "]" * 30_000 + "}")
RAW_BODIES = (
    "", " ", "null", "0", "[]", "{}", '""', '"{}"', "not json", "{'Records': []}", '{"Records": null}',
    '{"Records": [null]}', '{"Records": [1, "a", []]}', '{"Records": {}}', '{"detail-type": null}',
    '{"flush": null}', '{"flush": "x"}', '{"flush": {}}', '{"flush": {"pipeline": "nope", "batch_id": 1}}',
    '{"flush": {"pipeline": ["orders"], "batch_id": "b"}}', '{"job_id": null}', '{"job_id": ""}', '{"job_id": {}}',
    "\ufeff{}", '{"a": NaN}', '{"size": Infinity}', '{"x": 1' + "0" * 5000 + "}", "\x00", "\ud800", HUGE,
) + DEEP_NESTING


@st.composite
def sqs_body(draw: st.DrawFn, value: Any) -> str:
    """`value` as an SQS body: plain JSON most often, else truncated, double-encoded or wrapped in noise."""
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    how = draw(st.sampled_from(["plain"] * 5 + ["truncate", "double", "prefix", "suffix"]))
    if how == "truncate" and text:
        return text[: draw(st.integers(0, len(text) - 1))]
    if how == "double":
        return json.dumps(text)
    if how == "prefix":
        return draw(st.sampled_from(["\ufeff", " ", "x", "[", "\x00"])) + text
    if how == "suffix":
        return text + draw(st.sampled_from(["}", "]", ",", "\x00", " garbage"]))
    return text


raw_bodies = st.sampled_from(RAW_BODIES) | st.text(max_size=200)


def valid_landing_value() -> st.SearchStrategy[dict[str, Any]]:
    """An S3 notification or EventBridge event for a file of the unit-test catalog (distinct ETags per draw)."""
    target = st.sampled_from(LOAD_TARGETS)
    etag = st.text("0123456789abcdef", min_size=8, max_size=32)
    return st.one_of(
        st.builds(lambda t, e: s3_notification(t[0], t[1], e), target, etag),
        st.builds(lambda t, e: object_created(t[0], t[1].replace("+", " "), e), target, etag),
    )


def landing_value() -> st.SearchStrategy[Any]:
    """Anything a landing-queue message might decode to: verbatim AWS shapes, retargeted ones, mutants."""
    bases = st.sampled_from([S3_NOTIFICATION, OBJECT_CREATED, S3_TEST_EVENT]) | valid_landing_value()
    return bases.flatmap(lambda b: st.just(b) | mutated(b))


def landing_body() -> st.SearchStrategy[str]:
    return st.one_of(landing_value().flatmap(sqs_body), raw_bodies)


def job_body(job_ids: list[str]) -> st.SearchStrategy[str]:
    """A jobs-queue body: a valid `{"job_id": ...}` for a known job, a mutant of one, or raw garbage."""
    valid = st.sampled_from(job_ids or ["nope"]).map(lambda j: {"job_id": j})
    return st.one_of(valid.map(json.dumps), valid.flatmap(mutated).flatmap(sqs_body), raw_bodies)


def sqs_record(message_id: str, body: str, receive_count: int = 1) -> dict[str, Any]:
    """One record of a Lambda SQS event (the envelope is AWS's, always well formed)."""
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}-{receive_count}", "body": body,
            "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1790000000000",
                           "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1790000000001"},
            "messageAttributes": {}, "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}


# ------------------------------------------------------------------ HTTP
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(NASTY_STRINGS[:-1]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)
VALID_LOADS = ({"pipeline": "events", "keys": ["events/a.json"]}, {"pipeline": "events", "prefix": "events/"},
               {"pipeline": "orders", "keys": ["orders/x.csv"], "force": True})


_KEYS = st.sampled_from(["events/a.json", "events/b.json", "orders/x.csv", "events/missing.json"])
near_valid_load = st.fixed_dictionaries(
    {"pipeline": st.sampled_from(["events", "orders", "nope", ""])},
    optional={"keys": st.lists(_KEYS, min_size=1, max_size=3)
              | st.lists(_KEYS | st.sampled_from(NASTY_STRINGS[:-1]) | st.text(max_size=20), max_size=4),
              "prefix": st.sampled_from(["events/", "orders/", "", "events/a", "other/"]) | st.text(max_size=10),
              "force": st.booleans()})


def load_body() -> st.SearchStrategy[Any]:
    """POST /loads bodies: valid, near-valid (right fields, wrong values), mutated, or any JSON at all."""
    base = st.sampled_from(VALID_LOADS)
    return st.one_of(base, near_valid_load, base.flatmap(lambda b: mutated(b, max_mutations=2)), json_values)


QUERY_KEYS = ("pipeline", "status", "since", "limit", "next_token")
query_values = st.sampled_from(["", "50", "0", "201", "-1", "1.5", "queued", "FAILED", "nope", "1e400", "nan", "inf",
                                "2026-11-22T10:00:00Z", "2026-11-22", "0001-01-01", "9999-12-31T23:59:59-12:00",
                                "٣", "1_0", "\ud800", "x" * 5000]) | st.text(max_size=20)
query_params = (st.dictionaries(st.sampled_from(QUERY_KEYS), query_values, max_size=5)
                | st.dictionaries(st.sampled_from(QUERY_KEYS) | st.text(max_size=10), query_values, max_size=5))
