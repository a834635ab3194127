"""Land 1,000 small files across 5 tables on devstack and measure the loader.

Prints: wall time from first put to last job SUCCEEDED, files/s, rows/s,
Data API calls per file (counted with botocore event hooks on the app's
clients), and the same rows loaded by one direct PostgreSQL COPY per table
(reading the same objects from S3) as the baseline ratio.

The producers run in processes of their own and, by default, put with plain HTTP (--client boto3
for put_object): in production the files come from other machines, and on this 2-core one
boto3's client work per put cost about as much as moto's handling of it. The warehouse emulator
runs in its own process too (a real warehouse is another machine). The wall ends at the last
job's own SUCCEEDED time in the ledger.

    .venv/bin/python bench/autoload.py [--files 1000] [--tables 5] [--rows 100] [--log app.log]
"""

from __future__ import annotations

import argparse
import collections
import io
import multiprocessing
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from chalicelib.adapters import aws  # noqa: E402
from chalicelib.jobs import FileRef  # noqa: E402
from devstack.stack import Devstack, StackOptions  # noqa: E402

CALLS: collections.Counter[str] = collections.Counter()
PUT_THREADS = 4
BUCKET = "bench-landing"
_lock = threading.Lock()


def count_data_api_calls() -> None:
    """Register a counting hook on every redshift-data client the app creates."""
    original = aws._new_client

    def counting(service: str):
        client = original(service)
        if service == "redshift-data":
            def hook(model, **_):
                with _lock:
                    CALLS[model.name] += 1
            client.meta.events.register("before-call.redshift-data", hook)
        return client

    aws._new_client = counting  # type: ignore[assignment]


def key_of(t: int, f: int) -> str:
    """Where file f of table t lands."""
    return f"t{t}/f{f:05d}.csv"


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
bucket = "{BUCKET}"
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
    parser.add_argument("--log", type=Path, help="keep the app's JSON log lines in this file")
    parser.add_argument("--client", choices=("http", "boto3"), default="http",
                        help="how producers put files: plain HTTP PUTs (default) or boto3's put_object")
    parser.add_argument("--producers", type=int, default=2, help=f"processes putting the files ({PUT_THREADS} threads each)")
    args = parser.parse_args()
    per_table = args.files // args.tables
    count_data_api_calls()
    # A timeout's SIGTERM unwinds through the stack's `with`: PostgreSQL and moto stop with the bench.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory() as tmp:
        pipelines = Path(tmp) / "pipelines.toml"
        pipelines.write_text(catalog(args.tables, per_table))
        options = StackOptions(pipelines=pipelines, state_dir=None, serve_http=False, schedule_seconds=60.0,
                               log_file=args.log or Path(tmp) / "app.log", moto_process=True,
                               emulator_process=True, redshift_wire=False,
                               poll_seconds=30, concurrency={"router": 4, "worker": 5, "completion": 2})
        with Devstack(options) as stack:
            rsdata = stack.client("redshift-data")
            sqls = ["CREATE SCHEMA IF NOT EXISTS bench"] + [DDL.format(t=t) for t in range(args.tables)]
            sid = rsdata.batch_execute_statement(WorkgroupName="bench", Database="dev", Sqls=sqls)["Id"]
            while rsdata.describe_statement(Id=sid)["Status"] not in ("FINISHED", "FAILED"):
                time.sleep(0.05)
            CALLS.clear()
            s3 = stack.client("s3")
            landed = [(t, f) for t in range(args.tables) for f in range(per_table)]
            started, put_seconds = land(stack.moto_url, landed, args.rows, args.producers, args.client)
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
                    raise SystemExit(f"autoload: rows missing after 300 s; {unrecorded(stack, s3, landed)}") from None
            jobs = stack.wait_for(all_loaded, timeout=120, interval=0.5, what="all jobs SUCCEEDED")
            # The last job's own SUCCEEDED time (the completion handler's clock), not when this poll saw it.
            wall = max(j.finished_at for j in jobs) - started
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
    print(f"  puts ({args.producers} producer processes x {PUT_THREADS} threads, {args.client}) {put_seconds:8.2f} s")
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


def land(endpoint: str, landed: list[tuple[int, int]], rows: int, producers: int, client: str) -> tuple[float, float]:
    """Put the files from `producers` processes of PUT_THREADS threads each, a burst as many producers
    would make it; returns (start as epoch seconds, seconds). The producers are other systems, in processes
    of their own: in the loader's process their boto3 work took the interpreter lock the router,
    worker and warehouse emulator need."""
    spawn = multiprocessing.get_context("spawn")
    go = spawn.Event()
    ready = [spawn.Event() for _ in range(producers)]
    processes = [spawn.Process(target=_produce, args=(endpoint, landed[i::producers], rows, ready[i], go, client), daemon=True)
                 for i in range(producers)]
    for process in processes:
        process.start()
    for event, process in zip(ready, processes):
        while not event.wait(0.5):
            if not process.is_alive():
                raise SystemExit(f"autoload: a producer process failed to start (exit code {process.exitcode})")
    started, clock = time.time(), time.monotonic()
    go.set()
    for process in processes:
        process.join()
    if any(process.exitcode for process in processes):
        raise SystemExit(f"autoload: a producer failed (exit codes {[p.exitcode for p in processes]})")
    return started, time.monotonic() - clock


def _produce(endpoint: str, landed: list[tuple[int, int]], rows: int, ready: Any, go: Any, client: str) -> None:
    """One producer process: its files' bodies made and a client ready before the clock starts."""
    files = [(key_of(t, f), csv_rows(t, f, rows)) for t, f in landed]
    put = _boto3_put(endpoint) if client == "boto3" else _http_put(endpoint)
    ready.set()
    go.wait()
    with ThreadPoolExecutor(PUT_THREADS) as pool:
        list(pool.map(lambda file: put(*file), files))


def _boto3_put(endpoint: str) -> Any:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _http_put(endpoint: str) -> Any:
    """A plain HTTP PUT, as S3 receives from any uploader: moto handles it (and notifies) exactly as
    a boto3 put_object, without boto3's ~3 ms of client CPU per request on the machine under test."""
    import http.client
    from urllib.parse import urlsplit

    from devstack.redshift.awsclients import LOCAL_CREDENTIALS, unsigned_s3_authorization

    host = urlsplit(endpoint).netloc
    auth = unsigned_s3_authorization(LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"], "us-east-1")

    local = threading.local()  # one kept-alive connection per thread, as an SDK's connection pool keeps

    def put(key: str, body: bytes) -> None:
        conn = getattr(local, "conn", None) or http.client.HTTPConnection(host, timeout=60)
        local.conn = conn
        conn.request("PUT", f"/{BUCKET}/{key}", body=body, headers={
            "Authorization": auth, "Content-Type": "text/csv", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"PUT {key}: HTTP {response.status}")
    return put


def unrecorded(stack: Devstack, s3, landed: list[tuple[int, int]]) -> str:
    """Which landed files the ledger never recorded (their S3 event never reached the router)."""
    ledger = stack.service().ledger
    missing = []
    for t, f in landed:
        key = key_of(t, f)
        etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
        if ledger.file_status(FileRef(bucket=BUCKET, key=key, version=etag, size=0)) is None:
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
                    copy.write(s3.get_object(Bucket=BUCKET, Key=key_of(t, f))["Body"].read())
        return time.monotonic() - started


if __name__ == "__main__":
    sys.exit(main())
