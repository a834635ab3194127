"""The Data API emulator in a child process (`python -m devstack.redshift`), for benchmarks.

In the devstack's own process the emulator's COPYs (an S3 read and a CSV check per file) share
one interpreter lock with every Lambda invocation; a separate process is also closer to the real
thing, where the warehouse is another machine. What needs the emulator's objects in-process (a
fault plan, the Redshift-protocol endpoint) is not available this way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from devstack.redshift.sessions import Databases, Target, mapped_name


class EmulatorProcess:
    """`url`, `database_dsn` and `stop` of a RedshiftEmulator running in a child process."""

    def __init__(self, dsn: str, *, s3_endpoint: str, events_endpoint: str, region: str,
                 namespace: str = "rs", env: dict[str, str] | None = None) -> None:
        self._databases = Databases(dsn, namespace)  # only to name databases: never started here
        self._namespace = namespace
        self._proc: subprocess.Popen[str] = subprocess.Popen(
            [sys.executable, "-m", "devstack.redshift", "--dsn", dsn, "--s3-endpoint", s3_endpoint,
             "--events-endpoint", events_endpoint, "--region", region, "--namespace", namespace,
             "--until-stdin-closes"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline().strip()
        self.url = first.rsplit(" ", 1)[-1]
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the Redshift emulator process did not start: {first!r}")

    def database_dsn(self, target: str, database: str) -> str:
        """DSN of the PostgreSQL database behind a target; the emulator creates it on first use."""
        return self._databases.dsn(mapped_name(self._namespace, Target.parse(target), database))

    def use_fault_plan(self, plan: Any) -> None:
        if plan is not None and getattr(plan, "active", False):
            raise ValueError("fault injection needs the emulator in the devstack's process")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()  # its signal handler stops the emulator; stdin closing covers a dead parent
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
