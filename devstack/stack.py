"""The whole system on one machine: PostgreSQL, moto, the Redshift emulator, the app's handlers.

Production code runs unchanged; only AWS_ENDPOINT_URL_* differ. Used by
`python -m devstack up|demo`, the integration tests and the benchmarks.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from devstack.faults import FaultPlan
from devstack.redshift.awsclients import LOCAL_CREDENTIALS

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


@dataclass
class StackOptions:
    pipelines: Path = REPO_ROOT / "chalicelib" / "pipelines.toml"
    dsn: str | None = None              # use an existing PostgreSQL instead of a throwaway one
    api_port: int = 0                   # 0 = any free port
    serve_http: bool = True
    schedule_seconds: float = 2.0       # sweeper period (1 minute when deployed)
    poll_seconds: int = 5               # how long a running job's message stays hidden between checks
    visibility_seconds: int = 30        # queues' default visibility (shortened from the deployed 6x timeout)
    sweep_grace_seconds: int = 10
    state_dir: Path | None = REPO_ROOT / ".devstack"
    concurrency: dict[str, int] = field(default_factory=lambda: {"router": 2, "worker": 4, "completion": 2})
    extra_env: dict[str, str] = field(default_factory=dict)
    log_file: Path | None = None        # the app's JSON log lines go here instead of stdout
    moto_process: bool = False          # run moto in its own process (its own core; for benchmarks)
    emulator_process: bool = False      # the Data API emulator in its own process (no faults, no wire endpoint)
    redshift_wire: bool = True          # a Redshift-protocol endpoint for direct warehouses (devstack/direct.py)
    faults: FaultPlan | None = None     # injected faults (devstack/faults.py); None: $DEVSTACK_FAULTS or none


class Devstack:
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.pg: Any = None
        self.moto: Any = None
        self.moto_dynamodb: Any = None
        self.moto_url = self.dynamodb_url = ""
        self.emulator: Any = None
        self.pump: Any = None
        self.app: Any = None
        self.api_url: str | None = None
        self._http: Any = None
        self.direct: Any = None
        self._stopped = False
        self.faults = self.options.faults or FaultPlan.from_env()  # one plan for the run; switch it with .enabled

    # ------------------------------------------------------------------ start
    def start(self) -> "Devstack":
        from devstack.redshift import RedshiftEmulator
        from devstack.redshift.postgres import PostgresServer

        if self.options.emulator_process and (self.options.redshift_wire or self.faults.active):
            # Checked before anything starts: both need the emulator's objects in this process.
            raise ValueError("emulator_process excludes the Redshift-protocol endpoint and fault injection")
        started = time.monotonic()
        dsn = self.options.dsn
        if dsn is None:
            self.pg = PostgresServer().start()
            dsn = self.pg.dsn
        if self.options.moto_process:
            from devstack.motoserver import MotoProcess

            self.moto = MotoProcess()
            self.moto_url = self.moto.url
            # The ledger's DynamoDB in a process of its own: moto serves each process's requests under one
            # interpreter lock, and a burst of files keeps S3, SQS and the ledger busy at once.
            self.moto_dynamodb = MotoProcess()
            self.dynamodb_url = self.moto_dynamodb.url
        else:
            from devstack.motoserver import KeepAliveMotoServer, patch_moto

            patch_moto()
            self.moto = KeepAliveMotoServer()
            self.moto.start()
            host, port = self.moto.get_host_and_port()
            self.moto_url = f"http://{host}:{port}"
            self.dynamodb_url = self.moto_url
        if self.options.emulator_process:
            from devstack.redshift.process import EmulatorProcess

            self.emulator = EmulatorProcess(dsn, s3_endpoint=self.moto_url, events_endpoint=self.moto_url,
                                            region=REGION, env=LOCAL_CREDENTIALS)
        else:
            self.emulator = RedshiftEmulator(dsn, s3_endpoint=self.moto_url, events_endpoint=self.moto_url,
                                             region=REGION).start()
        self.emulator.use_fault_plan(self.faults)
        os.environ.update(self.environment())
        if self.options.redshift_wire:
            self._start_direct_endpoint()  # after the environment: it signs in to moto
        if self.options.log_file:
            self._redirect_logs(self.options.log_file)
        self._load_app()
        if self.options.serve_http:
            self._serve_http()
        self.startup_seconds = time.monotonic() - started
        if self.options.state_dir:
            self._write_env_file(self.options.state_dir)
        return self

    def environment(self) -> dict[str, str]:
        """What a shell (or the app) needs to talk to this stack; written to .devstack/env."""
        env = {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ENDPOINT_URL_REDSHIFT_DATA": self.emulator.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            **LOCAL_CREDENTIALS,
            "AWS_XRAY_SDK_ENABLED": "false",
            "STAGE": "local",
            "PIPELINES_FILE": str(self.options.pipelines),
            "POLL_SECONDS": str(self.options.poll_seconds),
            "SWEEP_GRACE_SECONDS": str(self.options.sweep_grace_seconds),
            "API_AUTH": "none",  # served on loopback only
            **self.options.extra_env,
        }
        if self.dynamodb_url != self.moto_url:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_url
        if self.api_url:
            env["LOADER_API_URL"] = self.api_url
        if self.direct:
            env.update(self.direct.environment())
        return env

    def _start_direct_endpoint(self) -> None:
        from chalicelib.pipelines import load_catalog
        from devstack.direct import DirectEndpoint

        catalog = load_catalog(self.options.pipelines)
        self.direct = DirectEndpoint(self.emulator, catalog, self.client).start()
        os.environ.update(self.direct.environment())

    def _load_app(self) -> None:
        from chalicelib import bootstrap
        from devstack.aws import provision
        from devstack.pump import Pump

        bootstrap.reset()
        settings = bootstrap.settings()
        catalog = bootstrap.catalog()
        self.provisioned = provision(self.moto_url, settings, catalog, visibility=self.options.visibility_seconds,
                                     dynamodb_endpoint=self.dynamodb_url)
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        module = sys.modules.get("app")
        self.app = (importlib.reload(module) if module else importlib.import_module("app")).app
        self.pump = Pump(self.app, endpoint=self.moto_url, region=REGION,
                         schedule_seconds=self.options.schedule_seconds, concurrency=self.options.concurrency,
                         faults=self.faults).start()

    def _redirect_logs(self, path: Path) -> None:
        from chalicelib import logs  # noqa: F401  (configures the logger)

        path.parent.mkdir(parents=True, exist_ok=True)
        logger = logging.getLogger("redshift_loader")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        handler = logging.FileHandler(path, mode="w", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)

    def _serve_http(self) -> None:
        from chalice.config import Config
        from chalice.local import ChaliceRequestHandler, LocalDevServer

        ChaliceRequestHandler.log_message = lambda *args, **kwargs: None  # no access log on the console

        port = self.options.api_port or _free_port()
        config = Config.create(chalice_stage="local", chalice_app=self.app, app_name="redshift-loader")
        # Loopback only: devstack's API has no auth.
        server = LocalDevServer(self.app, config, "127.0.0.1", port)
        self._http = server
        threading.Thread(target=server.server.serve_forever, name="http-api", daemon=True).start()
        self.api_url = f"http://127.0.0.1:{port}"
        os.environ["LOADER_API_URL"] = self.api_url

    def _write_env_file(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"{k}={v}" for k, v in self.environment().items() if not k.startswith("AWS_XRAY")]
        (state_dir / "env").write_text("\n".join(lines) + "\n")

    # ---------------------------------------------------------------- helpers
    def client(self, service: str) -> Any:
        endpoints = {"redshift-data": self.emulator.url, "dynamodb": self.dynamodb_url}
        endpoint = endpoints.get(service, self.moto_url)
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION)

    def warehouse_dsn(self, warehouse_name: str) -> str:
        """psycopg DSN of the PostgreSQL database behind one catalog warehouse."""
        from chalicelib import bootstrap

        wh = bootstrap.catalog().warehouses[warehouse_name]
        target = f"workgroup:{wh.workgroup}" if wh.workgroup else f"cluster:{wh.cluster}"
        return self.emulator.database_dsn(target, wh.database)

    def service(self) -> Any:
        from chalicelib import bootstrap

        return bootstrap.service()

    def wait_for(self, condition: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.2,
                 what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}")

    # ------------------------------------------------------------------- stop
    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for step in (lambda: self.pump and self.pump.stop(),
                     lambda: self._http and self._http.server.shutdown(),
                     lambda: self.direct and self.direct.stop(),
                     lambda: self.emulator and self.emulator.stop(),
                     lambda: self.moto and self.moto.stop(),
                     lambda: self.moto_dynamodb and self.moto_dynamodb.stop(),
                     lambda: self.pg and self.pg.stop()):
            try:
                step()
            except Exception as exc:  # keep tearing down the rest
                print(f"devstack: cleanup step failed: {exc}", file=sys.stderr)
        if self.options.state_dir and (self.options.state_dir / "env").exists():
            (self.options.state_dir / "env").unlink()

    def __enter__(self) -> "Devstack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
