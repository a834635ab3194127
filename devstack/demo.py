"""`make demo`: land realistic files on devstack and tell what happened, step by step."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devstack.demo_moves import DataOut
from devstack.stack import Devstack, StackOptions

SCHEMA_SQL = Path(__file__).with_name("sample") / "schema.sql"
STATUSES = ("placed", "paid", "shipped", "delivered", "returned")


def _finished(job: dict[str, Any]) -> dict[str, Any] | None:
    return job if job.get("status") in ("SUCCEEDED", "FAILED", "CANCELLED") else None


def run_demo(options: StackOptions) -> int:
    print("▶ starting devstack (PostgreSQL, moto, Redshift Data API emulator, the app's Lambdas)…", flush=True)
    with Devstack(options) as stack:
        print(f"  up in {stack.startup_seconds:.1f}s — HTTP API at {stack.api_url}\n")
        demo = Demo(stack)
        demo.create_schema()
        demo.land_first_wave()
        demo.wait_and_report("first wave")
        demo.land_second_wave()
        demo.wait_and_report("second wave: a late re-upload and a bad file")
        demo.http_load()
        demo.dms_full_load_finished()
        demo.show_tables()
        failed = [j for j in demo.jobs() if j.status.value == "FAILED" and j.kind.value == "LOAD"]
        print("\n✔ loads finished: every file is either loaded or reported with its reason"
              f" ({len(failed)} failed job{'s' if len(failed) != 1 else ''}, expected 1).")
        moved = DataOut(stack, demo).run()
        return 0 if len(failed) == 1 and moved else 1


class Demo:
    def __init__(self, stack: Devstack) -> None:
        self.stack = stack
        self.s3 = stack.client("s3")
        self.rsdata = stack.client("redshift-data")
        self.rng = random.Random(7)
        self.reported: set[str] = set()

    # --------------------------------------------------------------- setup
    def create_schema(self) -> None:
        from devstack.redshift.rewrite import split_statements

        statements = split_statements(SCHEMA_SQL.read_text())
        sid = self.rsdata.batch_execute_statement(WorkgroupName="analytics", Database="dev", Sqls=statements)["Id"]
        status = self._wait_statement(sid)
        print(f"▶ created tables and procedures in workgroup 'analytics' ({len(statements)} statements: {status})")

    # --------------------------------------------------------------- files
    def land_first_wave(self) -> None:
        print("▶ landing files in s3://landing/ …")
        self._put("orders/2026/11/22/orders-0001.csv.gz", self._orders(range(1, 501), "placed"), gz=True)
        self._put("orders/2026/11/22/orders-0002.csv.gz", self._orders(range(401, 901), "paid"), gz=True)
        self._put("customers/customers.csv", self._customers(200))
        for i in range(3):
            self._put(f"events/2026/11/22/events-{i:04d}.json", self._events(300, seed=i))
        self._put("orders/2026/11/22/", b"")  # a folder marker: ignored
        self._put("unknown/readme.txt", b"no pipeline for this key\n")  # matches nothing: logged once

    def land_second_wave(self) -> None:
        print("▶ re-uploading orders-0001 with new content (orders 1–100 now 'shipped'), and one bad file …")
        self._put("orders/2026/11/22/orders-0001.csv.gz", self._orders(range(1, 101), "shipped"), gz=True)
        bad = self._orders(range(2001, 2011), "placed").replace(b"2005,", b"2005x,", 1)
        self._put("orders/2026/11/22/orders-bad.csv.gz", bad, gz=True)
        # Duplicate delivery of an S3 event: the ledger loads the file once.
        self._put("customers/customers.csv", self._customers(200))

    def _put(self, key: str, body: bytes, gz: bool = False) -> None:
        data = gzip.compress(body) if gz else body
        self.s3.put_object(Bucket="landing", Key=key, Body=data)
        print(f"  put s3://landing/{key} ({len(data):,} bytes)")

    def _orders(self, ids: range, status: str) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["order_id", "customer_id", "amount", "status", "ordered_at"])
        start = datetime(2026, 11, 1)
        for i in ids:
            writer.writerow([i, self.rng.randint(1, 200), f"{self.rng.uniform(5, 500):.2f}", status,
                             (start + timedelta(minutes=37 * i)).strftime("%Y-%m-%d %H:%M:%S")])
        return out.getvalue().encode()

    def _customers(self, n: int) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["customer_id", "name", "country", "segment"])
        names = ["Ana Müller", "Bo O'Neil", "Chen, Wei", "Dara \"DJ\" Ito", "Élodie Roux"]
        for i in range(1, n + 1):
            writer.writerow([i, f"{names[i % len(names)]} #{i}", ["DE", "US", "CN", "JP", "FR"][i % 5],
                             ["smb", "enterprise", ""][i % 3]])
        return out.getvalue().encode()

    def _events(self, n: int, seed: int) -> bytes:
        rng = random.Random(seed)
        lines = [json.dumps({"event_id": f"{seed:02d}-{i:06d}", "user_id": rng.randint(1, 999),
                             "event_type": rng.choice(["view", "click", "purchase"]),
                             "occurred_at": f"2026-11-22 {i % 24:02d}:{i % 60:02d}:00",
                             "properties": json.dumps({"page": f"/p/{i}"})}) for i in range(n)]
        return ("\n".join(lines) + "\n").encode()

    # ------------------------------------------------------ HTTP and DMS
    def http_load(self) -> None:
        import requests

        print("\n▶ POST /loads — reload the customer snapshot on purpose (force), over HTTP")
        body = {"pipeline": "customers", "keys": ["customers/customers.csv"], "force": True}
        reply = requests.post(f"{self.stack.api_url}/loads", json=body, timeout=10)
        print(f"  {reply.status_code} {reply.json()}")
        job_id = reply.json()["jobs"][0]
        job = self.stack.wait_for(lambda: _finished(requests.get(f"{self.stack.api_url}/jobs/{job_id}", timeout=10).json()),
                                  timeout=60, what="the HTTP-triggered job")
        self.reported.add(job_id)
        print(f"  GET /jobs/{job_id} → status={job['status']} rows={job['rows']} files={job['files']}")
        bad = requests.post(f"{self.stack.api_url}/loads", json={"pipeline": "customers", "keys": "x"}, timeout=10)
        print(f"  a bad request is refused, naming the field: {bad.status_code} {bad.json()}")

    def dms_full_load_finished(self) -> None:
        print("\n▶ DMS: the full load of 'dms-full-dump-task' lands staging rows, then its 'stopped' event arrives")
        rows_c = ", ".join(f"({i}, 'Customer {i}', '{['emea', 'amer', 'apac'][i % 3]}')" for i in range(1, 51))
        rows_s = ", ".join(f"({i}, {1 + i % 50}, DATE '2026-11-01' + {i % 20}, {1 + i % 5}, {9.5 + i % 7})"
                           for i in range(1, 501))
        for sql in (f"INSERT INTO dbo.stg_customers VALUES {rows_c}", f"INSERT INTO dbo.stg_sales VALUES {rows_s}"):
            self._wait_statement(self.rsdata.execute_statement(WorkgroupName="analytics", Database="dev", Sql=sql)["Id"])
        event = {  # the shape of the AWS documentation's example, full-load-finished variant
            "Source": "aws.dms", "DetailType": "DMS Replication Task State Change",
            "Resources": ["arn:aws:dms:us-east-1:123456789012:task:AAAABBBB0CCCCDDDDEEEEE1FFFF2GGG3FFFFFF3"],
            "Detail": json.dumps({
                "type": "REPLICATION_TASK", "category": "StateChange", "eventType": "REPLICATION_TASK_STOPPED",
                "eventId": "DMS-EVENT-0079",
                "resourceLink": "https://console.aws.amazon.com/dms/v2/home?region=us-east-1#taskDetails/dms-full-dump-task",
                "detailMessage": "Stop Reason FULL_LOAD_ONLY_FINISHED"}),
        }
        events = self.stack.client("events")
        events.put_events(Entries=[event])
        events.put_events(Entries=[event])  # delivered twice: the follow-up still runs once
        print("  put the DMS-EVENT-0079 (REPLICATION_TASK_STOPPED, FULL_LOAD_ONLY_FINISHED) event twice")
        self.wait_and_report("DMS follow-up 'customer-sales'")

    # --------------------------------------------------------------- report
    def jobs(self) -> list[Any]:
        return self.stack.service().ledger.list_jobs(pipeline=None, status=None, since=None, limit=200,
                                                     next_token=None).jobs

    def wait_and_report(self, title: str, timeout: float = 90.0) -> None:
        started = time.monotonic()
        time.sleep(1.0)  # let S3 events reach the router and the batches open

        def settled() -> bool:
            service = self.stack.service()
            jobs = self.jobs()
            return (not service.ledger.open_batches() and bool(jobs)
                    and all(j.status.value in ("SUCCEEDED", "FAILED", "CANCELLED") for j in jobs))

        self.stack.wait_for(settled, timeout=timeout, interval=0.3, what=f"jobs of the {title}")
        print(f"\n▶ {title}: all jobs finished in {time.monotonic() - started:.1f}s")
        print(f"  {'job':<27} {'pipeline':<10} {'files':>5} {'rows':>6}  {'status':<9} {'took':>6}")
        for job in sorted(self.jobs(), key=lambda j: j.id):
            if job.id in self.reported:
                continue
            self.reported.add(job.id)
            took = f"{job.finished_at - job.created_at:.1f}s" if job.finished_at else "-"
            print(f"  {job.id:<27} {job.pipeline:<10} {len(job.files):>5} {job.rows if job.rows is not None else '-':>6}"
                  f"  {job.status.value:<9} {took:>6}")
            if job.status.value == "FAILED":
                print(f"      error: {job.error}")
                for e in job.load_errors:
                    print(f"      bad row: {e.file} line {e.line}, column {e.column!r}, value {e.value!r}: {e.reason}")

    def show_tables(self) -> None:
        print("\n▶ what is in the warehouse now")
        queries = [
            ("sales.orders rows by status", "SELECT status, COUNT(*) AS n FROM sales.orders GROUP BY status ORDER BY status"),
            ("sales.orders duplicates by key (must be 0)",
             "SELECT COUNT(*) - COUNT(DISTINCT order_id) AS n FROM sales.orders"),
            ("sales.customers rows", "SELECT COUNT(*) AS n FROM sales.customers"),
            ("analytics.events rows", "SELECT COUNT(*) AS n FROM analytics.events"),
            ("dbo.dim_customer rows (step 1 of the DMS follow-up)", "SELECT COUNT(*) AS n FROM dbo.dim_customer"),
            ("dbo.fact_sales by region (step 2 joins the dimension)",
             "SELECT d.region, COUNT(*) AS sales, SUM(f.revenue) AS revenue FROM dbo.fact_sales f "
             "JOIN dbo.dim_customer d ON d.customer_key = f.customer_key GROUP BY d.region ORDER BY d.region"),
            ("sales.order_stats (written by CALL sales.refresh_order_stats() after each orders load)",
             "SELECT status, orders, revenue FROM sales.order_stats ORDER BY status"),
        ]
        for title, sql in queries:
            sid = self.rsdata.execute_statement(WorkgroupName="analytics", Database="dev", Sql=sql)["Id"]
            self._wait_statement(sid)
            result = self.rsdata.get_statement_result(Id=sid)
            names = [c["name"] for c in result["ColumnMetadata"]]
            rows = [[next(iter(v.values())) for v in r] for r in result["Records"]]
            print(f"  {title}:")
            for row in rows:
                print("    " + ", ".join(f"{n}={v}" for n, v in zip(names, row)))

    def _wait_statement(self, sid: str) -> str:
        while True:
            d = self.rsdata.describe_statement(Id=sid)
            if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                if d["Status"] != "FINISHED":
                    raise RuntimeError(f"statement failed: {d.get('Error')}")
                return d["Status"]
            time.sleep(0.05)
