"""The cloud misbehaving: throttled and failing Data API calls, lost completion events.

Every file must still load exactly once, without anyone acting (the worker's retries, its
held message and the sweeper recover). A first slice of issue #7's fault injection, using the
emulator's own fault hooks.
"""

from __future__ import annotations

import random

from chalicelib.jobs import JobStatus
from tests.integration.test_autoload import csv_text


def test_throttling_server_errors_and_lost_events_still_load_each_file_once(env, monkeypatch):
    emulator = env.stack.emulator
    injected: list[str] = []
    pick = emulator.faults.pick

    def counted(operation: str):
        fault = pick(operation)
        if fault is not None:
            injected.append(f"{operation}:{fault[1]}")
        return fault

    monkeypatch.setattr(emulator.faults, "pick", counted)
    rng = random.Random(7)
    dropped: list[str] = []

    def lose_some(event):
        if rng.random() < 0.4:
            dropped.append(event["detail"]["statementId"])
            return False
        return None

    ids = list(range(90001, 90031))
    before = {j.id for j in env.jobs("append")}
    emulator.faults.seed(7)
    emulator.faults.throttle_rate, emulator.faults.server_error_rate = 0.15, 0.1
    emulator.event_filter = lose_some
    try:
        for i in ids:
            env.put(f"append/faults/{i}.csv", csv_text(["id", "name", "amount"], [[i, "f", "1.00"]]))

        def all_loaded():
            jobs = [j for j in env.jobs("append") if j.id not in before]
            keys = {f.key for j in jobs if j.status is JobStatus.SUCCEEDED for f in j.files}
            return jobs if all(f"append/faults/{i}.csv" in keys for i in ids) else None

        jobs = env.stack.wait_for(all_loaded, timeout=150, what="every file loaded despite the faults")
    finally:
        emulator.faults.throttle_rate = emulator.faults.server_error_rate = 0.0
        emulator.event_filter = None
    assert injected and dropped, "the faults must actually have happened"
    assert not [j for j in jobs if j.status is JobStatus.FAILED]
    rows = env.rows(f"SELECT id, COUNT(*) FROM it.append_rows WHERE id BETWEEN {ids[0]} AND {ids[-1]} GROUP BY id")
    assert sorted(rows) == [(i, 1) for i in ids]  # each file once


def test_reordered_upsert_jobs_keep_the_newest_row_by_order_by(pg_database):
    """Found by the soak's reorder fault: a file delivered late loads in a later job, and the upsert
    replaced every stored row with the batch's rows, newer or not. The plan's merge statements, run
    on PostgreSQL with the staging rows put in by hand (no S3 here)."""
    import psycopg

    from chalicelib.pipelines import parse_catalog
    from chalicelib.sql import render_load_plan

    catalog = parse_catalog("""
[warehouses.main]
workgroup = "w"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/R"
[[loads]]
name = "accounts"
warehouse = "main"
bucket = "soak-bucket"
prefix = "a/"
table = "s.accounts"
format = "csv"
mode = "upsert"
keys = ["k"]
order_by = "ver"
""", "pipelines.toml")
    pipeline = catalog.load("accounts")
    columns = ["k", "ver", "val"]

    def load(conn, rows: list[tuple[int, int | None, str]]) -> None:
        sqls = render_load_plan(pipeline, iam_role="arn:aws:iam::123456789012:role/R", files=["s3://soak-bucket/a/1.manifest"],
                                manifest_url=None, staging_name='"stage_x"', target_columns=columns)
        with conn.transaction():
            for text in sqls:
                if text.startswith("COPY "):  # what the COPY would have put in the staging table
                    for row in rows:
                        conn.execute('INSERT INTO "stage_x" (k, ver, val) VALUES (%s, %s, %s)', row)
                else:
                    conn.execute(text)

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA s")
        conn.execute("CREATE TABLE s.accounts (k INTEGER NOT NULL, ver INTEGER, val VARCHAR(20))")
        load(conn, [(1, 2, "new"), (2, 5, "old"), (4, None, "null-first"), (5, 3, "tie-first")])
        load(conn, [(1, 1, "late"), (2, 7, "newer"), (3, 1, "fresh"), (4, 1, "dated"), (5, 3, "tie-later"),
                    (6, None, "a"), (6, 2, "b")])
        rows = conn.execute("SELECT k, ver, val FROM s.accounts ORDER BY k").fetchall()
    assert rows == [(1, 2, "new"), (2, 7, "newer"), (3, 1, "fresh"), (4, 1, "dated"), (5, 3, "tie-later"),
                    (6, 2, "b")]
