"""Hostile S3 keys, HTTP fields and event fields never change the SQL that runs.

Keys reach the warehouse only inside manifests (JSON), identifiers only from the
validated catalog, and everything else only as escaped literals — so a key full of
quotes, semicolons and comment markers loads like any other file.
"""

from __future__ import annotations

import json

import pytest
import requests

HOSTILE_PARTS = [
    "o'brien", "two''quotes", "semi;colon", "drop table it.append_rows; --", "-- comment", "/* block */",
    "back\\slash", "trailing\\", "$$dollar$$", "$tag$body$tag$", 'double"quote', "percent%s%d", "colon:name",
    "tab\tin", "ünïcødé-ß", "日本語のキー", "emoji-🚀", "space and+plus", "%2Bencoded%20", "null\\0byte",
    "<xml>&amp;", "E'escape'", "'); DELETE FROM it.append_rows; --", "a" * 200,
]
# Also keys near S3's 1,024-byte limit (the prefix takes the rest).
LONG = ["k" * 990, "é" * 495]


def hostile_keys() -> list[str]:
    keys = [f"append/hostile/{i:02d}-{part}.csv" for i, part in enumerate(HOSTILE_PARTS + LONG)]
    return [k for k in keys if len(k.encode()) <= 1024]


def test_hostile_keys_load_like_any_other_file(env):
    keys = hostile_keys()
    assert len(keys) >= 25
    before = env.rows("SELECT COUNT(*) FROM it.append_rows")[0][0]
    for i, key in enumerate(keys):
        env.put(key, f"id,name,amount\n{70000 + i},{json.dumps(key[:30])[1:-1][:40].replace(',', ' ')},1.00\n")
    def hostile_jobs() -> list:
        return [j for j in env.jobs("append") if any("hostile" in f.key for f in j.files)]

    env.stack.wait_for(lambda: sum(len(j.files) for j in hostile_jobs() if j.status.value == "SUCCEEDED")
                       >= len(keys) or any(j.status.value == "FAILED" for j in hostile_jobs()),
                       timeout=60, what="hostile keys loaded")
    assert not [j for j in hostile_jobs() if j.status.value == "FAILED"]
    loaded = {f.key for j in env.jobs("append") for f in j.files if j.status.value == "SUCCEEDED"}
    assert set(keys) <= loaded
    assert env.rows("SELECT COUNT(*) FROM it.append_rows WHERE id >= 70000 AND id < 71000")[0][0] == len(keys)
    assert env.rows("SELECT COUNT(*) FROM it.append_rows")[0][0] == before + len(keys)  # nothing deleted


@pytest.mark.parametrize("field", [
    "x'; DROP TABLE it.append_rows; --", "append\"", "append;", "../append", "$$", "ünï", "a" * 2000,
])
def test_hostile_http_fields_are_refused_before_any_sql(env, field):
    api = env.stack.api_url
    assert requests.post(f"{api}/loads", json={"pipeline": field, "keys": ["append/x.csv"]}, timeout=10).status_code == 404
    reply = requests.post(f"{api}/loads", json={"pipeline": "append", "keys": [f"append/{field}.csv"]}, timeout=10)
    assert reply.status_code in (400, 404) and "error" in reply.json()
    assert requests.get(f"{api}/jobs", params={"status": field}, timeout=10).status_code == 400
    assert requests.get(f"{api}/jobs/{requests.utils.quote(field, safe='')}", timeout=10).status_code in (400, 403, 404)
    assert requests.post(f"{api}/followups/{requests.utils.quote(field, safe='')}", timeout=10).status_code in (403, 404)


def test_hostile_event_fields_are_ignored(env):
    events = env.stack.client("events")
    detail = {"principal": "x", "statementName": "redshift-loader:'; DROP TABLE x; --:1",
              "statementId": "'; DROP TABLE it.append_rows; --", "redshiftQueryId": -1, "state": "FINISHED",
              "rows": 1, "expireAt": 1}
    events.put_events(Entries=[{"Source": "aws.redshift-data", "DetailType": "Redshift Data Statement Status Change",
                                "Resources": [], "Detail": json.dumps(detail)}])
    events.put_events(Entries=[{"Source": "aws.dms", "DetailType": "DMS Replication Task State Change",
                                "Resources": ["arn:aws:dms:us-east-1:1:task:'; DROP TABLE x; --"],
                                "Detail": json.dumps({"eventType": "REPLICATION_TASK_STOPPED", "eventId": "DMS-EVENT-0079",
                                                      "detailMessage": "Stop Reason FULL_LOAD_ONLY_FINISHED"})}])
    env.stack.wait_for(lambda: env.stack.pump.stats.invocations.get("completion", 0) > 0, timeout=10,
                       what="the completion handler to see the event")
    assert env.rows("SELECT COUNT(*) FROM it.append_rows")[0][0] >= 0  # the table is still there
