"""Helpers of the COPY/UNLOAD throughput benches: the Data API emulator in its own process,
statements run as a client runs them, and the emulator's peak resident memory.

The emulator runs as `python -m devstack.redshift` on the bench's PostgreSQL and moto: a
client polling DescribeStatement every 10 ms from the same interpreter would compete with the
statement for the GIL, which no real client does, and the child's RSS is the emulator's alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

from psycopg.conninfo import make_conninfo

from devstack.redshift.sessions import Target, mapped_name


class EmulatorProcess:
    """`python -m devstack.redshift` on an existing PostgreSQL; `url`, `pid`, `dsn(workgroup, db)`."""

    def __init__(self, admin_dsn: str, s3_endpoint: str) -> None:
        self.admin_dsn = admin_dsn
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.redshift", "--dsn", admin_dsn, "--s3-endpoint", s3_endpoint,
             "--events-endpoint", s3_endpoint], stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if " on http" not in line:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[-1].strip()
        self.pid = self._proc.pid

    def dsn(self, workgroup: str, database: str) -> str:
        """The PostgreSQL database behind a workgroup's database (the emulator's naming)."""
        return make_conninfo(self.admin_dsn, dbname=mapped_name("rs", Target.parse(f"workgroup:{workgroup}"), database))

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()


class Runner:
    """execute_statement + DescribeStatement every 10 ms until it ends, as a client does."""

    def __init__(self, url: str, workgroup: str = "bench", database: str = "dev") -> None:
        import boto3

        self.client = boto3.client("redshift-data", endpoint_url=url, region_name="us-east-1")
        self.workgroup, self.database = workgroup, database

    def __call__(self, sql: str, timeout: float = 3600) -> dict[str, Any]:
        sid = self.client.execute_statement(WorkgroupName=self.workgroup, Database=self.database, Sql=sql)["Id"]
        deadline = time.monotonic() + timeout
        while True:
            desc = self.client.describe_statement(Id=sid)
            if desc["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                if desc["Status"] != "FINISHED":
                    raise SystemExit(f"{sql[:60]}: {desc['Status']}: {desc.get('Error')}")
                return desc
            if time.monotonic() > deadline:
                raise SystemExit("timed out")
            time.sleep(0.01)


class RssPeak:
    """A process's resident set, sampled every 5 ms: its peak growth over a block of code."""

    def __init__(self, pid: int | None = None) -> None:
        self._statm = f"/proc/{pid or os.getpid()}/statm"
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0

    def rss(self) -> int:
        with open(self._statm) as f:
            return int(f.read().split()[1]) * self._page

    def __enter__(self) -> RssPeak:
        self._start, self.peak, self._stop = self.rss(), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.rss() - self._start)

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss() - self._start)
