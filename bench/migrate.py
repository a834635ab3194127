"""Copy a generated schema between two devstack warehouses and compare with `pg_dump | psql`.

Generates in the source warehouse (`main`, a workgroup) a schema of --tables tables with mixed
types (integers, decimals, reals, varchar and char, dates, timestamps with and without time zone,
booleans, some NULLs) holding --rows rows in all, by INSERT ... SELECT FROM generate_series through
the Data API. Then starts a copy run over HTTP (`POST /copies`, ad hoc: the whole schema from
`main` to `other`, a cluster) and polls `GET /jobs/{id}` until it ends; checks it SUCCEEDED and that
every target table holds as many rows as its source. The baseline drops the target schema and times
`pg_dump --schema=<schema> <source> | psql <target>` of the same tables between the same two
PostgreSQL databases, with the client binaries of the server's own major version.

Prints: tables, rows, the loader's wall time (POST -> run seen ended) and rows/s, per-table job
time (created -> finished) min / median / max, the pg_dump | psql wall time and rows/s, and the
ratio of the two rows/s. The machine may be shared: one run is a sample, not a measurement.

    .venv/bin/python bench/migrate.py [--rows 2000000] [--tables 10] [--parallel 4]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
import requests  # noqa: E402

from devstack.stack import Devstack, StackOptions  # noqa: E402

CATALOG = REPO / "bench" / "migrate_pipelines.toml"
SCHEMA = "bench_src"
SOURCE = {"WorkgroupName": "bench-source", "Database": "dev"}  # warehouse `main` of the catalog
STAGING_BUCKET = "bench-staging"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


@dataclass(frozen=True)
class TableShape:
    """One kind of table: its columns (Redshift DDL) and the SELECT over generate_series `g` filling it."""

    name: str
    columns: str
    select: str


SHAPES = [
    TableShape("orders",
               "id BIGINT, customer_id INTEGER, amount DECIMAL(12,2), status VARCHAR(16), created_at TIMESTAMP, "
               "shipped BOOLEAN, note VARCHAR(200)",
               "g, (g * 7919 % 50000)::int, ((g * 104729) % 10000000 / 100.0)::decimal(12,2), "
               "CASE g % 4 WHEN 0 THEN 'new' WHEN 1 THEN 'paid' WHEN 2 THEN 'shipped' ELSE 'returned' END, "
               "TIMESTAMP '2026-01-01' + g * INTERVAL '7 seconds', g % 3 = 0, "
               "CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g || ', with \"quotes\" | and a pipe' END"),
    TableShape("customers",
               "id INTEGER, name VARCHAR(80), email VARCHAR(120), signup DATE, tier SMALLINT, active BOOLEAN, "
               "credit DECIMAL(10,2), region CHAR(2)",
               "g::int, 'Customer ' || g, CASE WHEN g % 11 = 0 THEN NULL ELSE 'c' || g || '@example.com' END, "
               "DATE '2020-01-01' + (g % 2000)::int, (g % 5)::smallint, g % 7 <> 0, "
               "CASE WHEN g % 13 = 0 THEN NULL ELSE ((g * 31) % 1000000 / 100.0)::decimal(10,2) END, "
               "CASE g % 3 WHEN 0 THEN 'EU' WHEN 1 THEN 'US' ELSE 'AP' END"),
    TableShape("events",
               "id BIGINT, user_id BIGINT, kind VARCHAR(30), at TIMESTAMPTZ, value DOUBLE PRECISION, "
               "payload VARCHAR(400)",
               "g, g * 48271 % 2147483647, 'event.kind.' || (g % 17), "
               "TIMESTAMPTZ '2026-01-01 00:00:00+00' + g * INTERVAL '250 milliseconds', "
               "CASE WHEN g % 9 = 0 THEN NULL ELSE g / 3.0 END, "
               "'{\"seq\": ' || g || ', \"tag\": \"' || md5(g::varchar) || '\"}'"),
    TableShape("line_items",
               "order_id BIGINT, line SMALLINT, sku VARCHAR(32), qty INTEGER, unit_price DECIMAL(10,4), "
               "discount REAL, taxable BOOLEAN",
               "g / 4, (g % 4)::smallint, 'SKU-' || substring(md5(g::varchar), 1, 12), (g % 20)::int + 1, "
               "((g * 7) % 100000 / 10000.0)::decimal(10,4), CASE WHEN g % 6 = 0 THEN NULL ELSE (g % 30) / 100.0 END, "
               "CASE WHEN g % 10 = 0 THEN NULL ELSE g % 2 = 0 END"),
    TableShape("payments",
               "id BIGINT, order_id BIGINT, method VARCHAR(12), amount DECIMAL(14,2), currency CHAR(3), "
               "paid_at TIMESTAMP, refunded BOOLEAN, ref VARCHAR(64)",
               "g, g * 3, CASE g % 3 WHEN 0 THEN 'card' WHEN 1 THEN 'transfer' ELSE 'wallet' END, "
               "((g * 9973) % 100000000 / 100.0)::decimal(14,2), CASE WHEN g % 2 = 0 THEN 'EUR' ELSE 'USD' END, "
               "TIMESTAMP '2025-06-01' + g * INTERVAL '13 seconds', g % 50 = 0, "
               "CASE WHEN g % 4 = 0 THEN NULL ELSE md5('ref' || g) END"),
    TableShape("sessions",
               "id BIGINT, started TIMESTAMP, ended TIMESTAMP, pages INTEGER, device VARCHAR(20), bounced BOOLEAN, "
               "duration_ms BIGINT",
               "g, TIMESTAMP '2026-02-01' + g * INTERVAL '3 seconds', "
               "CASE WHEN g % 8 = 0 THEN NULL ELSE TIMESTAMP '2026-02-01' + g * INTERVAL '3 seconds' "
               "+ (g % 900) * INTERVAL '1 second' END, (g % 40)::int, "
               "CASE g % 4 WHEN 0 THEN 'desktop' WHEN 1 THEN 'phone' WHEN 2 THEN 'tablet' ELSE 'tv' END, "
               "g % 40 = 0, (g % 900) * 1000"),
]


@dataclass(frozen=True)
class Table:
    name: str
    shape: TableShape
    rows: int


def plan_tables(tables: int, rows: int) -> list[Table]:
    """`tables` tables cycling through the shapes, `rows` split evenly (the first ones take the remainder)."""
    each, extra = divmod(rows, tables)
    return [Table(f"t{i:02d}_{SHAPES[i % len(SHAPES)].name}", SHAPES[i % len(SHAPES)], each + (i < extra))
            for i in range(tables)]


def wait_statement(rsdata: Any, statement_id: str, what: str) -> None:
    while True:
        described = rsdata.describe_statement(Id=statement_id)
        if described["Status"] == "FINISHED":
            return
        if described["Status"] in ("FAILED", "ABORTED"):
            raise RuntimeError(f"{what}: {described.get('Error')}")
        time.sleep(0.1)


def generate(stack: Devstack, tables: list[Table]) -> float:
    """Create and fill the source schema through the Data API, two tables at a time; seconds taken."""
    rsdata = stack.client("redshift-data")
    started = time.monotonic()
    wait_statement(rsdata, rsdata.execute_statement(Sql=f"CREATE SCHEMA {SCHEMA}", **SOURCE)["Id"], "schema")

    def fill(table: Table) -> None:
        sqls = [f"CREATE TABLE {SCHEMA}.{table.name} ({table.shape.columns})",
                f"INSERT INTO {SCHEMA}.{table.name} SELECT {table.shape.select} "
                f"FROM generate_series(1::bigint, {table.rows}) AS g"]
        wait_statement(rsdata, rsdata.batch_execute_statement(Sqls=sqls, **SOURCE)["Id"], table.name)

    with ThreadPoolExecutor(2) as pool:  # two cores
        list(pool.map(fill, tables))
    with psycopg.connect(stack.warehouse_dsn("main"), autocommit=True) as conn:
        conn.execute("ANALYZE")  # as a freshly loaded warehouse would be; neither side pays for it below
    return time.monotonic() - started


def row_counts(dsn: str, tables: list[Table]) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {t.name: conn.execute(f"SELECT COUNT(*) FROM {SCHEMA}.{t.name}").fetchone()[0] for t in tables}


@dataclass(frozen=True)
class LoaderRun:
    wall: float
    run: dict[str, Any]
    table_seconds: list[float]            # each table job, created -> finished
    unload_seconds: list[float]           # its UNLOAD statement on the source (step 0)
    copy_seconds: list[float]             # its CREATE / DELETE / COPY / count batch on the target (step 1)


def statement_seconds(stack: Devstack, job_id: str) -> dict[str, float]:
    """Warehouse time of each step of one job ("0", "1"), from the emulator's statements (named by job)."""
    rsdata = stack.client("redshift-data")
    prefix = f"{stack.service().settings.statement_prefix}:{job_id}:"
    listed: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        page = rsdata.list_statements(StatementName=prefix, Status="ALL", MaxResults=100, **token)
        listed += page["Statements"]
        if "NextToken" not in page:
            break
        token = {"NextToken": page["NextToken"]}
    seconds: dict[str, float] = {}
    for entry in listed:
        if entry["Status"] != "FINISHED":
            continue
        step = entry["StatementName"].rsplit(".", 1)[-1]  # <prefix>:<job>:<attempt>.<step>
        seconds[step] = seconds.get(step, 0.0) + rsdata.describe_statement(Id=entry["Id"])["Duration"] / 1e9
    return seconds


def run_copy(stack: Devstack, parallel: int, timeout: float) -> LoaderRun:
    """POST /copies (ad hoc: the schema from main to other) and poll GET /jobs/{id} until it ends."""
    api = stack.api_url
    body = {"source": "main", "target": "other", "schemas": [SCHEMA], "staging_bucket": STAGING_BUCKET,
            "staging_prefix": "copies/", "max_parallel": parallel}
    started = time.monotonic()
    reply = requests.post(f"{api}/copies", json=body, timeout=30)
    if reply.status_code != 202:
        raise RuntimeError(f"POST /copies: {reply.status_code} {reply.text}")
    run_id = reply.json()["id"]
    deadline = started + timeout
    while True:
        run = requests.get(f"{api}/jobs/{run_id}", timeout=30).json()
        if run["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"copy run {run_id} still {run['status']} after {timeout:.0f} s")
        time.sleep(0.25)
    wall = time.monotonic() - started
    report = requests.get(f"{api}/jobs/{run_id}/report", timeout=30).json()
    seconds, unloads, copies = [], [], []
    for entry in report["tables"]:
        child = requests.get(f"{api}/jobs/{entry['job_id']}", timeout=30).json()
        seconds.append(float(child["duration_seconds"]))
        steps = statement_seconds(stack, entry["job_id"])
        unloads.append(steps.get("0", 0.0))
        copies.append(steps.get("1", 0.0))
    run["report"] = report
    return LoaderRun(wall, run, sorted(seconds), sorted(unloads), sorted(copies))


def pg_client(stack: Devstack, tool: str) -> str:
    """The client binary of the same major version as devstack's server (pg_dump refuses a newer server)."""
    from devstack.redshift.postgres import find_binaries

    binaries = stack.pg.binaries if stack.pg is not None else find_binaries()
    return binaries.tool(tool)


def dump_restore(stack: Devstack) -> float:
    """Drop the target schema, then time `pg_dump --schema | psql` of it from source to target."""
    source, target = stack.warehouse_dsn("main"), stack.warehouse_dsn("other")
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    started = time.monotonic()
    dump = subprocess.Popen([pg_client(stack, "pg_dump"), "--schema", SCHEMA, "--no-owner", "--no-privileges",
                             "--dbname", source], stdout=subprocess.PIPE)
    restore = subprocess.run([pg_client(stack, "psql"), "--quiet", "--no-psqlrc", "--set", "ON_ERROR_STOP=1",
                              "--dbname", target], stdin=dump.stdout, stdout=subprocess.DEVNULL)
    assert dump.stdout is not None
    dump.stdout.close()
    if dump.wait() != 0 or restore.returncode != 0:
        raise RuntimeError(f"pg_dump exited {dump.returncode}, psql {restore.returncode}")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in all tables together")
    parser.add_argument("--tables", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=4, help="the copy run's max_parallel")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the copy run")
    args = parser.parse_args()
    if args.tables < 1 or args.rows < args.tables:
        parser.error("need at least one table and one row per table")
    tables = plan_tables(args.tables, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        options = StackOptions(pipelines=CATALOG, state_dir=None, schedule_seconds=2.0, poll_seconds=1,
                               log_file=Path(tmp) / "app.log", moto_process=True, redshift_wire=False,
                               concurrency={"router": 1, "worker": max(4, args.parallel), "completion": 2})
        with Devstack(options) as stack:
            generate_seconds = generate(stack, tables)
            source_counts = row_counts(stack.warehouse_dsn("main"), tables)
            loader = run_copy(stack, args.parallel, args.timeout)
            if loader.run["status"] != "SUCCEEDED":
                print(f"copy run {loader.run['id']} {loader.run['status']}: {loader.run.get('error')}")
                return 1
            copied_counts = row_counts(stack.warehouse_dsn("other"), tables)
            if copied_counts != source_counts:
                differ = {t: (source_counts[t], copied_counts[t]) for t in source_counts
                          if copied_counts[t] != source_counts[t]}
                print(f"row counts differ (source, target): {differ}")
                return 1
            baseline = dump_restore(stack)
            restored_counts = row_counts(stack.warehouse_dsn("other"), tables)
            if restored_counts != source_counts:
                print("pg_dump | psql did not restore every row")
                return 1

    rows = sum(source_counts.values())
    loader_rate, baseline_rate = rows / loader.wall, rows / baseline
    seconds = loader.table_seconds

    def spread(values: list[float]) -> str:
        return f"{values[0]:8.2f} / {statistics.median(values):.2f} / {values[-1]:.2f} s"

    print(f"\nmigrate: schema {SCHEMA}, {len(tables)} tables, {rows:,} rows, main (workgroup) -> other (cluster)")
    print(f"  generated in the source (Data API, generate_series)   {generate_seconds:8.2f} s")
    print(f"  copy run (max_parallel {args.parallel}), POST -> SUCCEEDED       {loader.wall:8.2f} s   "
          f"({loader_rate:,.0f} rows/s)")
    print(f"  per-table job time (created -> finished) min/med/max  {spread(seconds)}")
    print(f"    of which UNLOAD Parquet statement (source)          {spread(loader.unload_seconds)}")
    print(f"    of which COPY batch statement (target)              {spread(loader.copy_seconds)}")
    print(f"  sum of statement time / run wall (parallelism used)   "
          f"{(sum(loader.unload_seconds) + sum(loader.copy_seconds)) / loader.wall:8.2f}")
    print(f"  row counts target = source                            {len(copied_counts)} of {len(tables)} tables")
    print(f"  pg_dump | psql (same tables, same two databases)      {baseline:8.2f} s   ({baseline_rate:,.0f} rows/s)")
    print(f"  loader rows/s / pg_dump|psql rows/s                   {loader_rate / baseline_rate:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
