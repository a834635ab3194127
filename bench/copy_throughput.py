"""COPY throughput of devstack's Redshift against a plain PostgreSQL COPY of the same rows.

Generates N rows of mixed types (bigint, varchar with quoted commas, decimal, date, timestamp,
boolean, an integer that is empty one time in ten) as gzipped CSV in the local S3, then, --reps
times, interleaved:
  (a) COPY through the Data API emulator (list, GET, decompress, checks, PostgreSQL's CSV parser);
  (b) the baseline: psycopg `COPY ... FROM STDIN (FORMAT csv)` of the same rows, already
      decompressed in memory, straight into PostgreSQL (no S3, no gzip, no checks);
and prints the median rows/s of each, the ratio (a)/(b), and the emulator's peak RSS growth during
(a) for every size: COPY streams, so it should not grow with N. The emulator and moto each run in
their own process (bench/dataapi_process.py).
--careful also times the careful path once (MAXERROR: every value checked in Python; slow).

    .venv/bin/python bench/copy_throughput.py [--sizes 250000,1000000] [--reps 5] [--files 1] [--careful]
"""

from __future__ import annotations

import argparse
import gzip
import io
import logging
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
for _key, _value in (("AWS_ACCESS_KEY_ID", "devstack"), ("AWS_SECRET_ACCESS_KEY", "devstack"),
                     ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ.setdefault(_key, _value)  # moto accepts any credentials

import boto3  # noqa: E402
import psycopg  # noqa: E402

from bench.dataapi_process import EmulatorProcess, RssPeak, Runner  # noqa: E402
from devstack.redshift.postgres import PostgresServer  # noqa: E402

COLUMNS = "(id BIGINT, name VARCHAR(40), amount DECIMAL(12,2), day DATE, ts TIMESTAMP, flag BOOLEAN, qty INTEGER)"


def generate(rows: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    out = io.StringIO()
    for i in range(rows):
        qty = "" if i % 10 == 0 else str(rnd.randrange(-500, 500))
        out.write(f'{i},"name {rnd.randrange(10**6)}, x",{rnd.randrange(10**7) / 100:.2f},'
                  f"2026-{1 + i % 12:02d}-{1 + i % 28:02d},2026-01-01 {i % 24:02d}:{i % 60:02d}:{i % 60:02d},"
                  f"{'tf'[i % 2]},{qty}\n")
    return out.getvalue().encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250000,1000000", help="row counts, comma-separated")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--files", type=int, default=1, help="split the rows over this many objects")
    parser.add_argument("--careful", action="store_true", help="also time the careful path")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from devstack.motoserver import MotoProcess

    moto = MotoProcess()
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    with PostgresServer() as pg:
        emulator = EmulatorProcess(pg.dsn, moto.url)
        run = Runner(emulator.url)
        run("SELECT 1")  # creates the database
        # Warm up: the emulator imports COPY's modules on first use; that is not the COPY's memory.
        s3.put_object(Bucket="bench", Key="warm/part-0.csv.gz", Body=gzip.compress(generate(10)))
        run(f"CREATE TABLE warm {COLUMNS}")
        run("COPY warm FROM 's3://bench/warm/part-' IAM_ROLE default CSV GZIP")
        with psycopg.connect(emulator.dsn("bench", "dev"), autocommit=True) as conn:
            for rows in [int(s) for s in args.sizes.split(",")]:
                raw = generate(rows)
                lines = raw.splitlines(keepends=True)
                per = -(-len(lines) // args.files)
                gz_bytes = 0
                for f in range(args.files):
                    body = gzip.compress(b"".join(lines[f * per:(f + 1) * per]), compresslevel=6)
                    gz_bytes += len(body)
                    s3.put_object(Bucket="bench", Key=f"rows{rows}/part-{f:04d}.csv.gz", Body=body)
                del lines
                print(f"\n{rows:,} rows: {len(raw) / 2**20:.1f} MiB raw, {gz_bytes / 2**20:.1f} MiB gzipped in "
                      f"{args.files} object(s); {args.reps} runs each (medians) ...", flush=True)
                source = f"'s3://bench/rows{rows}/part-' IAM_ROLE default CSV GZIP"
                emulated: list[float] = []
                direct: list[float] = []
                peak = 0
                for _ in range(args.reps):
                    run("DROP TABLE IF EXISTS bench_rows")
                    run(f"CREATE TABLE bench_rows {COLUMNS}")
                    with RssPeak(emulator.pid) as rss:
                        t0 = time.perf_counter()
                        desc = run(f"COPY bench_rows FROM {source}")
                        emulated.append(time.perf_counter() - t0)
                    peak = max(peak, rss.peak)
                    assert desc["ResultRows"] == rows, desc["ResultRows"]
                    conn.execute("DROP TABLE IF EXISTS baseline")
                    conn.execute(f"CREATE TABLE baseline {COLUMNS}")
                    t0 = time.perf_counter()
                    with conn.cursor() as cur, cur.copy("COPY baseline FROM STDIN (FORMAT csv)") as copy:
                        for start in range(0, len(raw), 1 << 20):
                            copy.write(raw[start:start + (1 << 20)])
                    direct.append(time.perf_counter() - t0)
                    loaded = conn.execute("SELECT count(*) FROM baseline").fetchone()[0]  # type: ignore[index]
                    assert loaded == rows, loaded
                careful = 0.0
                if args.careful:  # MAXERROR forces the careful path (every value checked in Python)
                    run("DROP TABLE IF EXISTS careful_rows")
                    run(f"CREATE TABLE careful_rows {COLUMNS}")
                    t0 = time.perf_counter()
                    desc = run(f"COPY careful_rows FROM {source} MAXERROR 10")
                    careful = time.perf_counter() - t0
                    assert desc["ResultRows"] == rows, desc["ResultRows"]
                a, b = statistics.median(emulated), statistics.median(direct)
                print(f"(a) devstack COPY, fast path:     {a:6.2f} s  {rows / a:>11,.0f} rows/s   "
                      f"(runs: {', '.join(f'{t:.2f}' for t in emulated)})")
                print(f"(b) PostgreSQL COPY FROM STDIN:   {b:6.2f} s  {rows / b:>11,.0f} rows/s   "
                      f"(runs: {', '.join(f'{t:.2f}' for t in direct)})")
                print(f"ratio (a)/(b):                    {b / a:6.2f}   (target >= 0.8; per run: "
                      f"{', '.join(f'{y / x:.2f}' for x, y in zip(emulated, direct))})")
                if careful:
                    print(f"    devstack COPY, careful path:  {careful:6.2f} s  {rows / careful:>11,.0f} rows/s   "
                          f"(ratio {b / careful:.2f})")
                print(f"peak RSS growth during (a):       {peak / 2**20:6.1f} MiB  (input {len(raw) / 2**20:.0f} MiB raw)")
                del raw
        emulator.stop()
    moto.stop()


if __name__ == "__main__":
    main()
