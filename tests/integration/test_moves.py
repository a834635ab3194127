"""Unloads, archives and a two-schema migration between two warehouses, end to end on devstack.

The source is the `main` warehouse (a workgroup), the target the `other` one (a cluster): two
PostgreSQL databases behind the emulator, with the real handlers, queues and ledger in between.
"""

from __future__ import annotations

import json

import requests

from chalicelib.jobs import JobStatus
from tests.integration.loader_env import TERMINAL, _wait_statement

SOURCE = {"WorkgroupName": "it-analytics", "Database": "dev"}
TARGET = {"ClusterIdentifier": "it-cluster", "Database": "other", "DbUser": "loader"}

# Every column type with NULLs, empty strings, quotes, delimiters, newlines, backslashes, non-ASCII.
TYPES_DDL = ("CREATE TABLE mig_a.types (id INTEGER IDENTITY(1,1), i2 SMALLINT, i8 BIGINT, d DECIMAL(12,3), "
             "r REAL, f DOUBLE PRECISION, b BOOLEAN, dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ, "
             "v VARCHAR(100) ENCODE lzo, c CHAR(5), note VARCHAR(200) DEFAULT 'none') DISTKEY(i8) SORTKEY(ts)")
TYPES_ROWS = [
    "(1, 10000000000, 123.456, 1.5, 2.25, true, '2026-01-31', '2026-01-31 23:59:59', "
    "'2026-01-31 23:59:59+00', 'plain', 'abc', 'n1')",
    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(-2, -1, -0.001, -1.25, 1e100, false, '1999-12-31', '2000-01-01 00:00:00', "
    "'2000-01-01 00:00:00+00', '', '', '')",
    "(3, 3, 0, 0, 0, true, '2026-11-30', '2026-11-30 12:00:00', '2026-11-30 12:00:00+00', "
    "'quote '' double \" comma , pipe | tab \t', 'x', 'back\\\\slash')",
    "(4, 4, 4, 4, 4, false, '2026-11-30', '2026-11-30 12:00:00', '2026-11-30 12:00:00+00', "
    "'line one\nline two\r\nend', 'ab c', 'non-ASCII: grüße, 日本語, emoji 🚀')",
]


def run_sql(env, sqls: list[str], target: dict[str, str]) -> None:
    rsdata = env.stack.client("redshift-data")
    _wait_statement(rsdata, rsdata.batch_execute_statement(Sqls=sqls, **target)["Id"])


def wait_job(env, job_id: str, timeout: float = 90.0):
    service = env.stack.service()

    def done():
        job = service.ledger.get_job(job_id)
        return job if job is not None and job.status in TERMINAL else None

    return env.stack.wait_for(done, timeout=timeout, what=f"job {job_id} to end")


def keys_under(env, bucket: str, prefix: str) -> list[str]:
    listed = env.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_unload_by_name_and_ad_hoc_over_http(env):
    run_sql(env, ["CREATE SCHEMA IF NOT EXISTS mv_it",
                  "CREATE TABLE IF NOT EXISTS mv_it.notes (id INTEGER, note VARCHAR(40))",
                  "DELETE FROM mv_it.notes",
                  "INSERT INTO mv_it.notes VALUES (1, 'a'), (2, 'b, with comma'), (3, NULL), (4, 'not exported')"],
            SOURCE)
    api = env.stack.api_url
    reply = requests.post(f"{api}/unloads", json={"unload": "it-export"}, timeout=10)
    assert reply.status_code == 202, reply.text
    job = wait_job(env, reply.json()["id"])
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.rows == 3
    prefix = f"notes/{job.id}/"
    keys = keys_under(env, "it-exports", prefix)
    assert f"{prefix}manifest" in keys
    body = b"".join(env.s3.get_object(Bucket="it-exports", Key=k)["Body"].read() for k in keys if "part" in k)
    import gzip

    text = body.decode()
    assert text.startswith("id,note") and '2,"b, with comma"' in text and "not exported" not in text

    again = requests.post(f"{api}/unloads", json={"unload": "it-export"}, timeout=10).json()
    assert again["params"]["url"] != job.params["url"]  # runs never overwrite each other

    ad_hoc = requests.post(f"{api}/unloads", json={"warehouse": "main", "table": "mv_it.notes", "bucket": "it-exports",
                                                   "prefix": "adhoc/", "format": "json", "compression": "gzip"},
                           timeout=10)
    assert ad_hoc.status_code == 202, ad_hoc.text
    done = wait_job(env, ad_hoc.json()["id"])
    assert done.status is JobStatus.SUCCEEDED and done.rows == 4
    parts = [k for k in keys_under(env, "it-exports", f"adhoc/{done.id}/") if k.endswith(".gz")]
    lines = gzip.decompress(env.s3.get_object(Bucket="it-exports", Key=parts[0])["Body"].read()).decode().splitlines()
    assert {json.loads(line)["id"] for line in lines} == {1, 2, 3, 4}

    for body, field in (({"unload": "nope"}, "unload"), ({"warehouse": "main", "query": "SELECT 1", "bucket": "b-b"},
                                                         "query"),
                        ({"warehouse": "main", "table": "mv_it.missing", "bucket": "it-exports"}, "table"),
                        ({"warehouse": "main", "table": "x; DROP TABLE y", "bucket": "it-exports"}, "table")):
        bad = requests.post(f"{api}/unloads", json=body, timeout=10)
        assert bad.status_code in (400, 404) and bad.json()["field"] == field, bad.text


def test_archive_unloads_then_deletes_exactly_the_old_rows_and_a_second_run_has_nothing(env):
    run_sql(env, ["CREATE SCHEMA IF NOT EXISTS mv_it",
                  "CREATE TABLE mv_it.history (id INTEGER, at TIMESTAMP, what VARCHAR(20))",
                  "INSERT INTO mv_it.history SELECT g, DATEADD(day, -40 - g, GETDATE()), 'old' "
                  "FROM generate_series(1, 5) g",
                  "INSERT INTO mv_it.history SELECT 100 + g, DATEADD(day, -g, GETDATE()), 'new' "
                  "FROM generate_series(1, 3) g"], SOURCE)
    api = env.stack.api_url
    first = wait_job(env, requests.post(f"{api}/archives", json={"archive": "it-archive"}, timeout=10).json()["id"])
    assert first.status is JobStatus.SUCCEEDED, first.error
    assert first.rows == 5 and first.results["unloaded_rows"] == 5 and first.results["deleted_rows"] == 5
    assert env.rows("SELECT what, COUNT(*) FROM mv_it.history GROUP BY what") == [("new", 3)]
    manifest = json.loads(env.s3.get_object(Bucket="it-archive",
                                            Key=f"history/{first.id}/manifest")["Body"].read())
    assert manifest["meta"]["record_count"] == 5
    second = wait_job(env, requests.post(f"{api}/archives", json={"archive": "it-archive"}, timeout=10).json()["id"])
    assert second.status is JobStatus.SUCCEEDED and second.rows == 0
    assert env.rows("SELECT COUNT(*) FROM mv_it.history") == [(3,)]


def test_two_schema_migration_with_a_failing_table_then_a_retry_of_only_that_table(env):
    run_sql(env, ["CREATE SCHEMA mig_a", "CREATE SCHEMA mig_b", TYPES_DDL,
                  *[f"INSERT INTO mig_a.types (i2, i8, d, r, f, b, dt, ts, tz, v, c, note) VALUES {r}"
                    for r in TYPES_ROWS],
                  "CREATE TABLE mig_a.orders (id INTEGER, amount DECIMAL(10,2))",
                  "INSERT INTO mig_a.orders VALUES (1, 5.00), (2, 50.00), (3, 500.00)",
                  "CREATE VIEW mig_a.big_orders AS SELECT id, amount FROM mig_a.orders WHERE amount > 10",
                  "CREATE VIEW mig_a.big_order_count AS SELECT COUNT(*) AS n FROM mig_a.big_orders",
                  "CREATE VIEW mig_a.order_ids AS SELECT id FROM mig_a.orders WITH NO SCHEMA BINDING",
                  "CREATE MATERIALIZED VIEW mig_a.order_total AS SELECT SUM(amount) AS total FROM mig_a.orders",
                  "CREATE TABLE mig_b.accounts (id INTEGER, name VARCHAR(20))",
                  "INSERT INTO mig_b.accounts VALUES (1, 'ann'), (2, 'bob')"], SOURCE)
    run_sql(env, ["CREATE PROCEDURE mig_a.add_order(i INTEGER, a DECIMAL(10,2)) AS $$\nBEGIN\n"
                  "  INSERT INTO mig_a.orders VALUES (i, a);\nEND;\n$$ LANGUAGE plpgsql"], SOURCE)
    # On the target, an older accounts table with other columns: that table must fail, naming them.
    run_sql(env, ["CREATE SCHEMA mig_b", "CREATE TABLE mig_b.accounts (id INTEGER, legacy VARCHAR(5))"], TARGET)
    api = env.stack.api_url
    reply = requests.post(f"{api}/copies", json={"copy": "it-migrate"}, timeout=10)
    assert reply.status_code == 202, reply.text
    run = wait_job(env, reply.json()["id"])
    assert run.status is JobStatus.FAILED
    assert run.error.startswith("1 of 3 tables failed (mig_b.accounts: columns differ")
    report = requests.get(f"{api}/jobs/{run.id}/report", timeout=10).json()
    assert [(t["table"], t["status"]) for t in report["tables"]] == [
        ("mig_a.orders", "SUCCEEDED"), ("mig_a.types", "SUCCEEDED"), ("mig_b.accounts", "FAILED")]
    assert "only in source: name; only in target: legacy" in report["tables"][2]["error"]
    stored = json.loads(env.s3.get_object(Bucket="it-staging", Key=f"copies/{run.id}/report.json")["Body"].read())
    assert stored["failed"] == 1

    # Every type, NULL, empty string, quote, delimiter, newline and non-ASCII text arrives intact.
    columns = "id, i2, i8, d, r, f, b, dt, ts, tz, v, c, note"
    source_rows = env.rows(f"SELECT {columns} FROM mig_a.types ORDER BY id")
    assert env.rows(f"SELECT {columns} FROM mig_a.types ORDER BY id", warehouse="other") == source_rows
    assert len(source_rows) == len(TYPES_ROWS)
    assert not keys_under(env, "it-staging", f"copies/{run.id}/mig_a.types/")  # staging cleaned

    run_sql(env, ["DROP TABLE mig_b.accounts"], TARGET)  # the cause is gone
    retried = requests.post(f"{api}/jobs/{run.id}/retry", timeout=10)
    assert retried.status_code == 202, retried.text
    run = env.stack.wait_for(lambda: (lambda j: j if j.status in TERMINAL and j.attempt > run.attempt else None)(
        env.stack.service().ledger.get_job(run.id)), timeout=120, what="the retried run to end")
    assert run.status is JobStatus.SUCCEEDED, run.error
    report = requests.get(f"{api}/jobs/{run.id}/report", timeout=10).json()
    assert [(t["table"], t["status"], t["round"]) for t in report["tables"]] == [
        ("mig_a.orders", "SUCCEEDED", 1), ("mig_a.types", "SUCCEEDED", 1), ("mig_b.accounts", "SUCCEEDED", 2)]
    assert env.rows("SELECT id, name FROM mig_b.accounts ORDER BY id", warehouse="other") == [(1, "ann"), (2, "bob")]
    # Views in dependency order, the late-binding view, the procedure; the materialized view refreshed.
    assert env.rows("SELECT n FROM mig_a.big_order_count", warehouse="other") == [(2,)]
    assert env.rows("SELECT COUNT(*) FROM mig_a.order_ids", warehouse="other") == [(3,)]
    assert [float(t) for (t,) in env.rows("SELECT total FROM mig_a.order_total", warehouse="other")] == [555.0]
    run_sql(env, ["CALL mig_a.add_order(4, 1.00)"], TARGET)
    assert env.rows("SELECT COUNT(*) FROM mig_a.orders", warehouse="other") == [(4,)]


def test_load_schema_drift_by_header_reorder_new_column_and_a_mismatch(env):
    run_sql(env, ["CREATE TABLE it.drift_rows (id INTEGER, name VARCHAR(20))"], SOURCE)

    def load(key: str, body: str):
        before = {j.id for j in env.jobs("drift")}
        env.put(key, body)

        def ended():
            jobs = [j for j in env.jobs("drift") if j.id not in before and any(f.key == key for f in j.files)]
            return jobs[0] if jobs and jobs[0].status in TERMINAL else None

        return env.stack.wait_for(ended, timeout=60, what=f"the job loading {key}")

    job = load("drift/1-reordered.csv", "name,id\nann,1\n")
    assert job.status is JobStatus.SUCCEEDED, job.error  # same columns, other order: loaded by name
    job = load("drift/2-new-column.csv", "id,name,email\n2,bob,bob@example.com\n")
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert env.rows("SELECT id, name, email FROM it.drift_rows ORDER BY id") == [
        (1, "ann", None), (2, "bob", "bob@example.com")]
    job = load("drift/3-renamed.csv", "id,full_name\n3,cy\n")
    assert job.status is JobStatus.FAILED
    assert job.error == ("the header of s3://it-landing/drift/3-renamed.csv does not match it.drift_rows: "
                         "only in the file: full_name; only in the table: name, email")
    assert env.rows("SELECT COUNT(*) FROM it.drift_rows") == [(2,)]
