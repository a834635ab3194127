"""The second half of `make demo`: data leaving the warehouse and moving to another one.

A two-schema migration from the `main` warehouse to the `archive` cluster in which one table
fails (an older, different table is in its way), is reported with its reason, and is retried
alone once the cause is gone; then a configured unload and an archive run.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

TARGET = {"ClusterIdentifier": "archive-cluster", "Database": "archive", "DbUser": "loader"}
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


class DataOut:
    def __init__(self, stack: Any, demo: Any) -> None:
        self.stack = stack
        self.demo = demo
        self.api = stack.api_url

    def run(self) -> bool:
        ok = self.migration()
        ok = self.unload() and ok
        return self.archive() and ok

    def migration(self) -> bool:
        print("\n▶ copy 'sales-to-archive': schemas sales and dbo from warehouse 'main' to the 'archive' cluster")
        self._sql(["CREATE SCHEMA dbo", "CREATE TABLE dbo.stg_sales (sale_id BIGINT, legacy_code VARCHAR(5))"])
        print("  (the archive cluster already holds an older dbo.stg_sales with other columns: that table must fail)")
        run = self._post("/copies", {"copy": "sales-to-archive"})
        run = self._wait(run["id"], lambda j: j["status"] in TERMINAL)
        self._print_report(run)
        print("\n▶ dropping the old dbo.stg_sales on the archive cluster, then POST /jobs/{id}/retry (failed tables only)")
        self._sql(["DROP TABLE dbo.stg_sales"])
        attempt = run["attempt"]
        self._post(f"/jobs/{run['id']}/retry", None)
        run = self._wait(run["id"], lambda j: j["status"] in TERMINAL and j["attempt"] > attempt)
        self._print_report(run)
        for title, sql in (("sales.orders on the archive cluster", "SELECT COUNT(*) AS n FROM sales.orders"),
                           ("dbo.dim_customer on the archive cluster", "SELECT COUNT(*) AS n FROM dbo.dim_customer")):
            print(f"  {title}: {self._scalar(sql)} rows")
        return run["status"] == "SUCCEEDED"

    def unload(self) -> bool:
        print("\n▶ POST /unloads {\"unload\": \"shipped-orders-export\"}: shipped orders as Parquet to s3://exports/")
        job = self._wait(self._post("/unloads", {"unload": "shipped-orders-export"})["id"],
                         lambda j: j["status"] in TERMINAL)
        files = self.stack.client("s3").list_objects_v2(Bucket="exports", Prefix=f"orders/{job['id']}/")
        keys = [o["Key"] for o in files.get("Contents", [])]
        print(f"  {job['status']}: {job['rows']} rows in {len(keys)} objects under "
              f"s3://exports/orders/{job['id']}/ ({', '.join(k.rsplit('/', 1)[1] for k in keys)})")
        return job["status"] == "SUCCEEDED"

    def archive(self) -> bool:
        print("\n▶ POST /archives {\"archive\": \"old-events\"}: events older than 90 days, unloaded then deleted")
        job = self._wait(self._post("/archives", {"archive": "old-events"})["id"], lambda j: j["status"] in TERMINAL)
        if job["status"] != "SUCCEEDED":
            print(f"  {job['status']}: {job['error']}")
        else:
            print(f"  {job['status']}: {job['rows']} rows archived (cutoff {job['params']['cutoff']}; the demo's "
                  "events are all recent, so nothing is older and nothing is deleted)")
        return job["status"] == "SUCCEEDED"

    # ---------------------------------------------------------------- helpers
    def _print_report(self, run: dict[str, Any]) -> None:
        report = requests.get(f"{self.api}/jobs/{run['id']}/report", timeout=10).json()
        print(f"  run {run['id']}: {run['status']} — {report['succeeded']} of {report['tables_total']} tables "
              f"copied, {report['rows']} rows (report: {report['report_url']})")
        for t in report["tables"]:
            line = f"    {t['table']:<22} {t['status']:<9} round {t['round']}  rows={t['rows']}"
            print(line + (f"\n      reason: {t['error']}" if t["error"] else ""))

    def _post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        reply = requests.post(f"{self.api}{path}", json=body, timeout=10)
        if reply.status_code != 202:
            raise RuntimeError(f"POST {path}: {reply.status_code} {reply.text}")
        return reply.json()

    def _wait(self, job_id: str, done: Any, timeout: float = 120.0) -> dict[str, Any]:
        def look() -> dict[str, Any] | None:
            job = requests.get(f"{self.api}/jobs/{job_id}", timeout=10).json()
            return job if done(job) else None

        started = time.monotonic()
        job = self.stack.wait_for(look, timeout=timeout, interval=0.3, what=f"job {job_id}")
        print(f"  {job['kind']} {job_id} ended {job['status']} in {time.monotonic() - started:.1f}s")
        return job

    def _sql(self, sqls: list[str]) -> None:
        rsdata = self.stack.client("redshift-data")
        self.demo._wait_statement(rsdata.batch_execute_statement(Sqls=sqls, **TARGET)["Id"])

    def _scalar(self, sql: str) -> Any:
        rsdata = self.stack.client("redshift-data")
        sid = rsdata.execute_statement(Sql=sql, **TARGET)["Id"]
        self.demo._wait_statement(sid)
        return json.loads(json.dumps(rsdata.get_statement_result(Id=sid)["Records"][0][0]))["longValue"]
