"""The Redshift Data API emulator: awsJson1.1 over HTTP, SQL on a real PostgreSQL.

    with RedshiftEmulator(pg.dsn, s3_endpoint=moto_url, events_endpoint=moto_url) as rs:
        client = boto3.client("redshift-data", endpoint_url=rs.url, region_name="us-east-1")

Any SigV4 signature is accepted (there is nothing to authenticate locally).

Modules: server (HTTP, this class) → api / catalog (operations, validation) →
engine (thread pool, transactions, cancel) → pgstream / results (rows, typing,
paging) and sessions (database per cluster|workgroup + database, pools, kept
sessions); params (`:name`), events (EventBridge, listeners, faults).

Supported: ExecuteStatement, BatchExecuteStatement (TRANSACTION / AUTO_COMMIT,
shared Parameters), DescribeStatement (incl. `<id>:<n>`), GetStatementResult,
GetStatementResultV2 (CSV), CancelStatement, ListStatements, ListSessions,
DescribeTable, ListDatabases, ListSchemas, ListTables; WaitTimeSeconds,
ClientToken, sessions (SessionKeepAliveSeconds / SessionId), WithEvent.

Deliberate differences from AWS: TRUNCATE inside a TRANSACTION batch commits
the work before it (as on Redshift) by COMMIT/BEGIN around it; statements run
as the admin DSN's user whatever DbUser/SecretArn say (they are only echoed);
result sizes are estimated from the text of the values; error messages for
validation are close to, not always identical with, the service's.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.redshift.api import DataApi
from devstack.redshift.catalog import CatalogApi
from devstack.redshift.engine import Engine
from devstack.redshift.events import EventFilter, EventSink, Faults, FaultSource, Listener, build_event
from devstack.redshift.models import ApiError, Statement
from devstack.redshift.results import ResultOptions
from devstack.redshift.sessions import Databases, Target

log = logging.getLogger(__name__)

OPERATIONS = frozenset({
    "ExecuteStatement", "BatchExecuteStatement", "DescribeStatement", "GetStatementResult",
    "GetStatementResultV2", "CancelStatement", "ListStatements", "ListSessions", "DescribeTable",
    "ListDatabases", "ListSchemas", "ListTables",
})
CONTENT_TYPE = "application/x-amz-json-1.1"
SWEEP_SECONDS = 1.0


class RedshiftEmulator:
    """A local Redshift Data API endpoint executing SQL on PostgreSQL.

    dsn             -- admin DSN of a PostgreSQL >= 15 server (ours or yours); each
                       (cluster/workgroup, database) gets its own database on it
    s3_endpoint     -- S3 used by COPY/UNLOAD (moto); None: boto3's own configuration
    events_endpoint -- EventBridge for WithEvent completion events; None: no EventBridge
    namespace       -- prefix of the PostgreSQL databases this emulator creates
    """

    def __init__(
        self,
        dsn: str,
        *,
        s3_endpoint: str | None = None,
        events_endpoint: str | None = None,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        port: int = 0,
        max_workers: int = 16,
        max_active_statements: int = 200,
        namespace: str = "rs",
        result_options: ResultOptions | None = None,
    ) -> None:
        self.dsn = dsn
        self.region = region
        self.host, self.port = host, port
        self.faults = Faults()
        self.databases = Databases(dsn, namespace)
        self._events = EventSink(events_endpoint, region)
        self.engine = Engine(
            self.databases, s3_endpoint=s3_endpoint, region=region, max_workers=max_workers,
            max_active_statements=max_active_statements, result_options=result_options,
            on_terminal=self._statement_ended,
        )
        self.api = DataApi(self.engine)
        self.catalog = CatalogApi(self.engine)
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> "RedshiftEmulator":
        self.databases.start()
        self.engine.warm()
        self._events.start()
        handler = type("Handler", (_Handler,), {"emulator": self})
        try:
            self._httpd = _HTTPServer((self.host, self.port), handler)
        except OSError:
            self.stop()
            raise
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        for target, name in ((self._httpd.serve_forever, "redshift-data-http"), (self._sweep, "redshift-data-sweep")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        self.engine.shutdown()
        self._events.stop()
        self.databases.stop()

    def __enter__(self) -> "RedshiftEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Cancel and forget all statements and sessions, and drop every emulated database."""
        self.engine.clear()
        self.databases.drop_all()

    # --- inspection and hooks ----------------------------------------------------

    def database_dsn(self, target: str, database: str) -> str:
        """DSN of the PostgreSQL database behind e.g. ("workgroup:analytics", "dev"); created if needed."""
        return self.databases.dsn(self.databases.ensure(Target.parse(target), database))

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(detail)` for every completion event of a WithEvent statement."""
        self._events.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._events.listeners.remove(listener)

    def use_fault_plan(self, plan: FaultSource | None) -> None:
        """Let a fault plan throttle and fail calls, lose and delay completion events, fail
        load transactions with 1023 and terminate COPY backends (see devstack/faults.py)."""
        self.faults.plan = self._events.plan = self.engine.faults = plan

    @property
    def event_filter(self) -> EventFilter | None:
        return self._events.event_filter

    @event_filter.setter
    def event_filter(self, hook: EventFilter | None) -> None:
        """hook(event) → None/True deliver, False drop, seconds > 0 delay (fault injection)."""
        self._events.event_filter = hook

    # --- internals ---------------------------------------------------------------

    def _statement_ended(self, st: Statement) -> None:
        if not st.request.with_event:
            return
        principal = f"arn:aws:iam::123456789012:user/{st.request.db_user or 'devstack'}"
        event = build_event(
            region=self.region, resource_arn=st.target.arn(self.region), principal=principal,
            statement_id=st.id, statement_name=st.request.statement_name, query_id=st.query_id,
            state=st.status, rows=st.result_rows, created_at=st.created_at,
        )
        self._events.publish(event)

    def _sweep(self) -> None:
        while not self._stopping.wait(SWEEP_SECONDS):
            try:
                self.engine.sweep()
            except Exception:
                log.exception("sweep failed")

    def handle(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Serve one call: (HTTP status, JSON body)."""
        fault = self.faults.pick(operation)
        if fault is not None:
            status, type_, message = fault
            return status, {"__type": type_, "message": message}
        if operation not in OPERATIONS:
            return 400, {"__type": "UnknownOperationException", "message": f"Unknown operation {operation}"}
        try:
            handler = getattr(self.catalog if hasattr(self.catalog, operation) else self.api, operation)
            return 200, handler(body)
        except ApiError as exc:
            return exc.status, {"__type": exc.type, "message": exc.message}
        except Exception as exc:
            log.exception("%s failed", operation)
            return 500, {"__type": "InternalServerException", "message": str(exc)}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of concurrent clients (benchmarks) must not be refused


class _Handler(BaseHTTPRequestHandler):
    emulator: RedshiftEmulator
    protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses connections
    # Headers and body are written separately; with Nagle + delayed ACKs that
    # costs ~40 ms per call on loopback.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target", "")
        service, _, operation = target.partition(".")
        if service != "RedshiftData":
            self._reply(400, {"__type": "UnknownOperationException", "message": f"Unknown target {target!r}"})
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            self._reply(400, {"__type": "SerializationException", "message": str(exc)})
            return
        started = time.perf_counter()
        status, payload = self.emulator.handle(operation, body)
        log.debug("%s %s in %.1f ms", operation, status, (time.perf_counter() - started) * 1000)
        self._reply(status, payload)

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200, {"service": "redshift-data", "status": "ok"})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if status >= 400:
            self.send_header("x-amzn-ErrorType", payload.get("__type", ""))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet; debug logging above
        pass
