"""UNLOAD throughput of devstack's Redshift: wall time and rows/s per format.

Fills a table with N rows (id, name, amount, day, ts, flag) by generate_series, then times
UNLOAD through the Data API emulator (execute + poll, as a client sees it) into moto's S3:
CSV GZIP and PARQUET (the headline pair), plus TEXT, JSON and a partitioned CSV, against the
baseline of a bare PostgreSQL `COPY (query) TO STDOUT (FORMAT csv)` read by psycopg.
Prints the bytes written and this process's peak RSS growth (the emulator's; moto runs in its
own process, as it keeps every object in memory). UNLOAD streams, so it should stay small.

    .venv/bin/python bench/unload_throughput.py [--rows 1000000] [--only "CSV GZIP"]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
for _key, _value in (("AWS_ACCESS_KEY_ID", "devstack"), ("AWS_SECRET_ACCESS_KEY", "devstack"),
                     ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ.setdefault(_key, _value)  # moto accepts any credentials

import boto3  # noqa: E402
import psycopg  # noqa: E402

from devstack.redshift import RedshiftEmulator  # noqa: E402
from devstack.redshift.postgres import PostgresServer  # noqa: E402

FILL = """CREATE TABLE bench_rows AS
SELECT g::bigint AS id, 'name ' || (g * 7919 % 1000003) || ', x' AS name,
       ((g * 104729) % 10000000 / 100.0)::decimal(12, 2) AS amount,
       DATE '2026-01-01' + (g % 365)::int AS day,
       TIMESTAMP '2026-01-01' + g * INTERVAL '1 second' AS ts,
       g % 3 = 0 AS flag
FROM generate_series(1::bigint, {rows}) AS g"""
CASES = {
    "CSV GZIP": "CSV GZIP",
    "PARQUET": "FORMAT AS PARQUET",
    "CSV": "CSV",
    "TEXT": "",
    "JSON": "FORMAT JSON",
    "CSV PARTITION BY (flag)": "CSV PARTITION BY (flag)",
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", action="append", choices=list(CASES), help="run only these cases")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from devstack.motoserver import MotoProcess

    # moto in its own process: it keeps every object in memory, which would hide the UNLOAD's own RSS.
    moto = MotoProcess()
    endpoint = moto.url
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    results: list[tuple[str, float, int, int]] = []
    with PostgresServer() as pg, RedshiftEmulator(pg.dsn, s3_endpoint=endpoint, events_endpoint=endpoint,
                                                  namespace="bench") as rs:
        client = boto3.client("redshift-data", endpoint_url=rs.url, region_name="us-east-1")

        def run(sql: str, timeout: float = 3600) -> dict[str, Any]:
            sid = client.execute_statement(WorkgroupName="bench", Database="dev", Sql=sql)["Id"]
            deadline = time.monotonic() + timeout
            while True:
                desc = client.describe_statement(Id=sid)
                if desc["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                    if desc["Status"] != "FINISHED":
                        raise SystemExit(f"{sql[:60]}: {desc['Status']}: {desc.get('Error')}")
                    return desc
                if time.monotonic() > deadline:
                    raise SystemExit("timed out")
                time.sleep(0.01)

        print(f"filling bench_rows with {args.rows:,} rows ...", flush=True)
        run(FILL.format(rows=args.rows))
        rss_before = peak_rss_mb()
        for n, (label, options) in enumerate(CASES.items()):
            if args.only and label not in args.only:
                continue
            prefix = f"out/{n}/"
            t0 = time.perf_counter()
            desc = run(f"UNLOAD ('SELECT * FROM bench_rows') TO 's3://bench/{prefix}' IAM_ROLE default {options}")
            took = time.perf_counter() - t0
            assert desc["ResultRows"] == args.rows, (label, desc["ResultRows"])
            objects = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=prefix)
                       for o in page.get("Contents", [])]
            results.append((label, took, sum(o["Size"] for o in objects), len(objects)))
        rss_growth = peak_rss_mb() - rss_before

        with psycopg.connect(rs.database_dsn("workgroup:bench", "dev"), autocommit=True) as conn:
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy("COPY (SELECT * FROM bench_rows) TO STDOUT (FORMAT csv)") as out:
                raw_bytes = sum(len(data) for data in out)
            baseline = time.perf_counter() - t0
    moto.stop()

    print(f"{'case':31} {'wall s':>7} {'rows/s':>12} {'MiB out':>8} {'objects':>7}")
    for label, took, size, count in results:
        print(f"UNLOAD {label:24} {took:7.2f} {args.rows / took:12,.0f} {size / 2**20:8.1f} {count:7d}")
    print(f"{'PostgreSQL COPY TO STDOUT':31} {baseline:7.2f} {args.rows / baseline:12,.0f} "
          f"{raw_bytes / 2**20:8.1f}       -   (no S3, no formatting)")
    print(f"peak RSS growth during the UNLOADs: {max(0.0, rss_growth):.1f} MiB")


if __name__ == "__main__":
    main()
