"""UNLOAD throughput of devstack's Redshift: rows/s per format, against PostgreSQL's own COPY TO STDOUT.

Fills a table with N rows (id, name, amount, day, ts, flag) by generate_series, then times
UNLOAD through the Data API emulator (execute + poll, as a client sees it) into moto's S3, for
each format, against the baseline of a bare `COPY (SELECT * FROM bench_rows) TO STDOUT (FORMAT
csv)` read with psycopg's Copy iterator in the same run. Every case runs --reps times, interleaved
with the baseline (the machine may be shared: medians, not means). For each size it prints the
median wall time, rows/s, the ratio to the baseline, and the emulator's peak RSS growth during
the case (sampled). The emulator and moto each run in their own process (bench/dataapi_process.py):
UNLOAD streams, so the emulator's memory should not grow with N. The last line is moto alone
storing the CSV output in one PUT, for scale: part of every UNLOAD's time is spent in moto.

    .venv/bin/python bench/unload_throughput.py [--sizes 250000,1000000] [--reps 3] [--only CSV]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
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

from bench.dataapi_process import EmulatorProcess, RssPeak, Runner  # noqa: E402
from devstack.redshift.postgres import PostgresServer  # noqa: E402

FILL = """CREATE TABLE bench_rows AS
SELECT g::bigint AS id, 'name ' || (g * 7919 % 1000003) || ', x' AS name,
       ((g * 104729) % 10000000 / 100.0)::decimal(12, 2) AS amount,
       DATE '2026-01-01' + (g % 365)::int AS day,
       TIMESTAMP '2026-01-01' + g * INTERVAL '1 second' AS ts,
       g % 3 = 0 AS flag
FROM generate_series(1::bigint, {rows}) AS g"""
BASELINE = "COPY (SELECT * FROM bench_rows) TO STDOUT (FORMAT csv)"
CASES = {
    "CSV": "CSV",
    "CSV GZIP": "CSV GZIP",
    "PARQUET": "FORMAT AS PARQUET",
    "TEXT": "",
    "TEXT ESCAPE": "ESCAPE",
    "JSON": "FORMAT JSON",
    "CSV PARTITION BY (flag)": "CSV PARTITION BY (flag)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250000,1000000", help="row counts, comma-separated")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", action="append", choices=list(CASES), help="run only these cases")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cases = {k: v for k, v in CASES.items() if not args.only or k in args.only}
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from devstack.motoserver import MotoProcess

    moto = MotoProcess()
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    with PostgresServer() as pg:
        emulator = EmulatorProcess(pg.dsn, moto.url)
        run = Runner(emulator.url)

        def objects(prefix: str) -> list[dict[str, Any]]:
            return [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=prefix)
                    for o in page.get("Contents", [])]

        run("SELECT 1")  # creates the database
        with psycopg.connect(emulator.dsn("bench", "dev"), autocommit=True) as conn:
            for rows in sizes:
                print(f"\n{rows:,} rows, {args.reps} runs each (medians) ...", flush=True)
                run("DROP TABLE IF EXISTS bench_rows")
                run(FILL.format(rows=rows))
                for label, options in cases.items():  # warm up: imports (pyarrow) are not the UNLOAD's memory
                    run(f"UNLOAD ('SELECT * FROM bench_rows WHERE id <= 1000') TO 's3://bench/warm/' IAM_ROLE default "
                        f"{options} ALLOWOVERWRITE")
                s3.delete_objects(Bucket="bench", Delete={"Objects": [{"Key": o["Key"]} for o in objects("warm/")]})
                baseline: list[float] = []
                times: dict[str, list[float]] = {label: [] for label in cases}
                peaks: dict[str, int] = {label: 0 for label in cases}
                sizes_out: dict[str, tuple[int, int]] = {}
                for rep in range(args.reps):
                    t0 = time.perf_counter()
                    with conn.cursor() as cur, cur.copy(BASELINE) as out:
                        csv_bytes = sum(len(data) for data in out)
                    baseline.append(time.perf_counter() - t0)
                    for label, options in cases.items():
                        prefix = f"out/{rows}/{rep}/{label.replace(' ', '_')}/"
                        with RssPeak(emulator.pid) as rss:
                            t0 = time.perf_counter()
                            desc = run(f"UNLOAD ('SELECT * FROM bench_rows') TO 's3://bench/{prefix}' "
                                       f"IAM_ROLE default {options}")
                            times[label].append(time.perf_counter() - t0)
                        assert desc["ResultRows"] == rows, (label, desc["ResultRows"])
                        peaks[label] = max(peaks[label], rss.peak)
                        written = objects(prefix)
                        sizes_out[label] = (sum(o["Size"] for o in written), len(written))
                        s3.delete_objects(Bucket="bench", Delete={"Objects": [{"Key": o["Key"]} for o in written]})
                base = statistics.median(baseline)
                print(f"{'case':31} {'median s':>8} {'rows/s':>11} {'ratio':>6} {'MiB out':>8} {'objects':>7} "
                      f"{'peak RSS +MiB':>13}")
                for label in cases:
                    took = statistics.median(times[label])
                    size, count = sizes_out[label]
                    print(f"UNLOAD {label:24} {took:8.2f} {rows / took:11,.0f} {base / took:6.2f} "
                          f"{size / 2**20:8.1f} {count:7d} {peaks[label] / 2**20:13.1f}")
                print(f"{'PostgreSQL COPY TO STDOUT':31} {base:8.2f} {rows / base:11,.0f} {1:6.2f} "
                      f"{csv_bytes / 2**20:8.1f}       -             -   (psycopg, no S3)")
                body = b"x" * csv_bytes
                t0 = time.perf_counter()
                s3.put_object(Bucket="bench", Key="floor", Body=body)
                print(f"moto alone storing {csv_bytes / 2**20:.0f} MiB in one PUT: {time.perf_counter() - t0:.2f} s")
                s3.delete_object(Bucket="bench", Key="floor")
                del body
        emulator.stop()
    moto.stop()


if __name__ == "__main__":
    main()
