"""Land 1,000 small files across 5 tables on devstack and measure the loader.

Prints: wall time from first put to last job SUCCEEDED, files/s, rows/s,
Data API calls per file (counted with botocore event hooks on the app's
clients), and the same rows loaded by one direct PostgreSQL COPY per table
(reading the same objects from S3) as the baseline ratio.

    .venv/bin/python bench/autoload.py [--files 1000] [--tables 5] [--rows 100]
"""

from __future__ import annotations

import argparse
import collections
import io
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from chalicelib.adapters import aws  # noqa: E402
from chalicelib.jobs import FileRef  # noqa: E402
from devstack.stack import Devstack, StackOptions  # noqa: E402

CALLS: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


def count_data_api_calls() -> None:
    """Wrap the app's client factory so every redshift-data call is counted."""
    original = aws.client

    def counting(service: str):
        client = original(service)
        if service == "redshift-data" and not getattr(client, "_bench_counted", False):
            def hook(model, **_):
                with _lock:
                    CALLS[model.name] += 1
            client.meta.events.register("before-call.redshift-data", hook)
            client._bench_counted = True
        return client

    counting.cache_clear = original.cache_clear  # type: ignore[attr-defined]
    aws.client = counting  # type: ignore[assignment]


def catalog(tables: int, files_per_table: int) -> str:
    parts = ["""[warehouses.main]
workgroup = "bench"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/RedshiftS3"
"""]
    for t in range(tables):
        parts.append(f"""
[[loads]]
name = "t{t}"
warehouse = "main"
bucket = "bench-landing"
prefix = "t{t}/"
table = "bench.t{t}"
format = "csv"
mode = "append"
batch = {{ max_files = {min(files_per_table, 1000)}, max_seconds = 5 }}
""")
    return "".join(parts)


def csv_rows(t: int, f: int, rows: int) -> bytes:
    out = io.StringIO()
    for r in range(rows):
        n = (f * rows + r)
        out.write(f"{n},{t},customer-{n % 977},{n * 1.25:.2f},2026-11-{1 + n % 28:02d} 12:{n % 60:02d}:00\n")
    return out.getvalue().encode()


DDL = "CREATE TABLE IF NOT EXISTS bench.t{t} (id BIGINT, tbl INT, name VARCHAR(40), amount DECIMAL(12,2), at TIMESTAMP)"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--tables", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100, help="rows per file")
    args = parser.parse_args()
    per_table = args.files // args.tables
    count_data_api_calls()
    # A timeout's SIGTERM unwinds through the stack's `with`: PostgreSQL and moto stop with the bench.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory() as tmp:
        pipelines = Path(tmp) / "pipelines.toml"
        pipelines.write_text(catalog(args.tables, per_table))
        options = StackOptions(pipelines=pipelines, state_dir=None, serve_http=False, schedule_seconds=60.0,
                               log_file=Path(tmp) / "app.log", moto_process=True,
                               poll_seconds=30, concurrency={"router": 4, "worker": 5, "completion": 2})
        with Devstack(options) as stack:
            rsdata = stack.client("redshift-data")
            sqls = ["CREATE SCHEMA IF NOT EXISTS bench"] + [DDL.format(t=t) for t in range(args.tables)]
            sid = rsdata.batch_execute_statement(WorkgroupName="bench", Database="dev", Sqls=sqls)["Id"]
            while rsdata.describe_statement(Id=sid)["Status"] not in ("FINISHED", "FAILED"):
                time.sleep(0.05)
            CALLS.clear()
            s3 = stack.client("s3")
            bodies = {(t, f): csv_rows(t, f, args.rows) for t in range(args.tables) for f in range(per_table)}
            started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:  # a burst, as many producers would make it
                list(pool.map(lambda item: s3.put_object(Bucket="bench-landing", Key=f"t{item[0][0]}/f{item[0][1]:05d}.csv",
                                                         Body=item[1]), bodies.items()))
            put_seconds = time.monotonic() - started
            ledger = stack.service().ledger

            def all_loaded():
                jobs = ledger.list_jobs(pipeline=None, status=None, since=None, limit=1000, next_token=None).jobs
                loaded = sum(len(j.files) for j in jobs if j.status.value == "SUCCEEDED")
                failed = [j for j in jobs if j.status.value == "FAILED"]
                if failed:
                    raise RuntimeError(f"job failed: {failed[0].error}")
                return jobs if loaded >= per_table * args.tables else None

            # Watch the rows in PostgreSQL first: listing every job (with its files) each second made
            # moto serialise thousands of file references per poll, slowing the loader it measured.
            with psycopg.connect(stack.warehouse_dsn("main"), autocommit=True) as watch:
                count_sql = " + ".join(f"(SELECT COUNT(*) FROM bench.t{t})" for t in range(args.tables))
                try:
                    stack.wait_for(lambda: watch.execute(f"SELECT {count_sql}").fetchone()[0] >= per_table
                                   * args.tables * args.rows, timeout=300, interval=0.2, what="all rows committed")
                except TimeoutError:
                    raise SystemExit(f"autoload: rows missing after 300 s; {unrecorded(stack, s3, bodies)}") from None
            jobs = stack.wait_for(all_loaded, timeout=120, interval=0.2, what="all jobs SUCCEEDED")
            wall = time.monotonic() - started
            total_rows = per_table * args.tables * args.rows
            with psycopg.connect(stack.warehouse_dsn("main")) as conn:
                loaded_rows = sum(conn.execute(f"SELECT COUNT(*) FROM bench.t{t}").fetchone()[0] for t in range(args.tables))
            calls = sum(CALLS.values())
            # How long the warehouse itself worked on each job (DescribeStatement Duration, ns).
            described = [rsdata.describe_statement(Id=j.statement_id) for j in jobs]
            statement_s = sorted(d["Duration"] / 1e9 for d in described)
            slowest = max(described, key=lambda d: d["Duration"])
            slowest_parts = [(round(x["Duration"] / 1e9, 2), x["QueryString"][:50]) for x in slowest["SubStatements"]]
            load_phase = max(j.finished_at for j in jobs) - min(j.submitted_at for j in jobs)
            direct = direct_copy(stack, s3, args.tables, per_table)

    files = per_table * args.tables
    print(f"\nautoload: {files} files x {args.rows} rows across {args.tables} tables on devstack")
    print(f"  puts (8 threads)                       {put_seconds:8.2f} s")
    print(f"  wall, first put → last job SUCCEEDED   {wall:8.2f} s   ({files / wall:,.0f} files/s, {total_rows / wall:,.0f} rows/s)")
    print(f"  jobs                                   {len(jobs):8d}     (files per job: {files / len(jobs):.0f})")
    print(f"  warehouse phase (first submit → last finish) {load_phase:6.2f} s")
    print(f"  statement time per job (median / max)  {statement_s[len(statement_s) // 2]:8.2f} s / {statement_s[-1]:.2f} s")
    print(f"  slowest job's statements (s, SQL)      {slowest_parts}")
    print(f"  rows loaded / expected                 {loaded_rows:,} / {total_rows:,}")
    print(f"  Data API calls                         {calls:8d}     ({calls / files:.3f} per file; target ≤ 0.05)  {dict(CALLS)}")
    print(f"  direct COPY baseline (S3 GET + COPY FROM STDIN, one COPY per table) {direct:6.2f} s ({total_rows / direct:,.0f} rows/s)")
    print(f"  loader throughput / direct           {direct / wall:8.3f}      (wall incl. S3 events and batch windows)")
    print(f"  warehouse phase / direct             {direct / load_phase:8.3f}")
    return 0 if loaded_rows == total_rows else 1


def unrecorded(stack: Devstack, s3, bodies: dict) -> str:
    """Which landed files the ledger never recorded (their S3 event never reached the router)."""
    ledger = stack.service().ledger
    missing = []
    for t, f in bodies:
        key = f"t{t}/f{f:05d}.csv"
        etag = s3.head_object(Bucket="bench-landing", Key=key)["ETag"].strip('"')
        if ledger.file_status(FileRef(bucket="bench-landing", key=key, version=etag, size=0)) is None:
            missing.append(key)
    return f"{len(missing)} file(s) never recorded by the router: {missing[:10]}"


def direct_copy(stack: Devstack, s3, tables: int, per_table: int) -> float:
    """The same objects, read from S3 and streamed by one COPY per table into fresh tables."""
    with psycopg.connect(stack.warehouse_dsn("main"), autocommit=True) as conn:
        for t in range(tables):
            conn.execute(f"CREATE TABLE bench.direct_t{t} (LIKE bench.t{t})")
        started = time.monotonic()
        for t in range(tables):
            with conn.cursor().copy(f"COPY bench.direct_t{t} FROM STDIN (FORMAT csv)") as copy:
                for f in range(per_table):
                    copy.write(s3.get_object(Bucket="bench-landing", Key=f"t{t}/f{f:05d}.csv")["Body"].read())
        return time.monotonic() - started


if __name__ == "__main__":
    sys.exit(main())
