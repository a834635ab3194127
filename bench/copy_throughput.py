"""COPY throughput of devstack's Redshift against a plain PostgreSQL COPY of the same rows.

Generates N rows (id, name, amount, day, ts) as one gzipped CSV in the local S3, then:
  1. COPY through the Data API emulator (list, stream, decompress, check every value, load);
  2. the baseline: psycopg `COPY ... FROM STDIN (FORMAT csv)` of the same decompressed bytes
     straight into PostgreSQL (no S3, no checks);
and prints wall time, rows/s, the ratio, and the process's peak RSS growth during the COPY
(the emulator streams, so it should stay flat whatever N is).

    .venv/bin/python bench/copy_throughput.py [--rows 1000000] [--files 1]
"""

from __future__ import annotations

import argparse
import gzip
import io
import logging
import os
import random
import resource
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

from devstack.redshift import RedshiftEmulator  # noqa: E402
from devstack.redshift.postgres import PostgresServer  # noqa: E402

DDL = "CREATE TABLE bench_rows (id BIGINT, name VARCHAR(40), amount DECIMAL(12,2), day DATE, ts TIMESTAMP)"


def generate(rows: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    out = io.StringIO()
    for i in range(rows):
        out.write(f'{i},"name {rnd.randrange(10**6)}, x",{rnd.randrange(10**7) / 100:.2f},'
                  f"2026-{1 + i % 12:02d}-{1 + i % 28:02d},2026-01-01 {i % 24:02d}:{i % 60:02d}:{i % 60:02d}\n")
    return out.getvalue().encode()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=1, help="split the rows over this many objects")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    print(f"generating {args.rows:,} rows in {args.files} gzipped CSV object(s) ...", flush=True)
    raw = generate(args.rows)
    lines = raw.splitlines(keepends=True)
    per = -(-len(lines) // args.files)
    gz_bytes = 0
    for f in range(args.files):
        body = gzip.compress(b"".join(lines[f * per:(f + 1) * per]), compresslevel=6)
        gz_bytes += len(body)
        s3.put_object(Bucket="bench", Key=f"rows/part-{f:04d}.csv.gz", Body=body)
    del lines
    print(f"  {len(raw) / 2**20:.1f} MiB raw, {gz_bytes / 2**20:.1f} MiB gzipped")

    with PostgresServer() as pg, RedshiftEmulator(pg.dsn, s3_endpoint=endpoint, events_endpoint=endpoint,
                                                  namespace="bench") as rs:
        client = boto3.client("redshift-data", endpoint_url=rs.url, region_name="us-east-1")

        def run(sql: str, timeout: float = 3600) -> dict:
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
                time.sleep(0.02)

        run(DDL)
        rss_before = peak_rss_mb()
        t0 = time.perf_counter()
        desc = run("COPY bench_rows FROM 's3://bench/rows/part-' IAM_ROLE default CSV GZIP")
        emulated = time.perf_counter() - t0
        rss_growth = peak_rss_mb() - rss_before
        assert desc["ResultRows"] == args.rows, desc["ResultRows"]
        # MAXERROR forces the careful path (every value checked in Python, Redshift's error rows).
        run("CREATE TABLE careful_rows (LIKE bench_rows)")
        t0 = time.perf_counter()
        desc = run("COPY careful_rows FROM 's3://bench/rows/part-' IAM_ROLE default CSV GZIP MAXERROR 10")
        careful = time.perf_counter() - t0
        assert desc["ResultRows"] == args.rows, desc["ResultRows"]

        t0 = time.perf_counter()
        run("UNLOAD ('SELECT * FROM bench_rows') TO 's3://bench/out/csv_' IAM_ROLE default CSV")
        unload_csv = time.perf_counter() - t0
        t0 = time.perf_counter()
        run("UNLOAD ('SELECT * FROM bench_rows') TO 's3://bench/out/json_' IAM_ROLE default JSON")
        unload_json = time.perf_counter() - t0

        with psycopg.connect(rs.database_dsn("workgroup:bench", "dev"), autocommit=True) as conn:
            t0 = time.perf_counter()
            out_bytes = 0
            with conn.cursor() as cur, cur.copy("COPY bench_rows TO STDOUT (FORMAT csv)") as copy_out:
                for data in copy_out:
                    out_bytes += len(data)
            unload_direct = time.perf_counter() - t0
            conn.execute("CREATE TABLE baseline (LIKE bench_rows)")
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy("COPY baseline FROM STDIN (FORMAT csv)") as copy:
                for start in range(0, len(raw), 1 << 20):
                    copy.write(raw[start:start + (1 << 20)])
            direct = time.perf_counter() - t0
            loaded = conn.execute("SELECT count(*) FROM baseline").fetchone()[0]  # type: ignore[index]
            assert loaded == args.rows, loaded
    moto.stop()

    print(f"(a) devstack COPY, fast path:       {emulated:6.2f} s  {args.rows / emulated:>12,.0f} rows/s")
    print(f"    devstack COPY, careful path:    {careful:6.2f} s  {args.rows / careful:>12,.0f} rows/s")
    print(f"(b) PostgreSQL COPY FROM STDIN:     {direct:6.2f} s  {args.rows / direct:>12,.0f} rows/s")
    print(f"rows/s ratio (a)/(b):               {direct / emulated:6.2f}   (target >= 0.8; careful: "
          f"{direct / careful:.2f})")
    print(f"(a) devstack UNLOAD CSV to S3:      {unload_csv:6.2f} s  {args.rows / unload_csv:>12,.0f} rows/s")
    print(f"    devstack UNLOAD JSON to S3:     {unload_json:6.2f} s  {args.rows / unload_json:>12,.0f} rows/s")
    print(f"(b) PostgreSQL COPY TO STDOUT:      {unload_direct:6.2f} s  {args.rows / unload_direct:>12,.0f} rows/s")
    print(f"rows/s ratio UNLOAD (a)/(b):        {unload_direct / unload_csv:6.2f}   (JSON: {unload_direct / unload_json:.2f})")
    print(f"peak RSS growth during the COPY:    {max(0.0, rss_growth):6.1f} MiB "
          f"(input {len(raw) / 2**20:.0f} MiB raw)")


if __name__ == "__main__":
    main()
