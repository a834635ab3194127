"""The direct (redshift-connector) warehouse adapter against a fake connection, and its sign-in and routing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.redshift_direct import (
    DirectConnectError,
    DirectStatementNotFound,
    DirectWarehouse,
    error_text,
    is_direct_statement,
    statement_id_for,
)
from chalicelib.adapters.redshift_signin import RedshiftSignIn, SignInError
from chalicelib.adapters.statement_store import MemoryStatementStore, StatementRecord, SubOutcome
from chalicelib.adapters.warehouse_router import WarehouseRouter
from chalicelib.jobs import JobStatus, is_retryable_error
from chalicelib.outcomes import first_error, is_transient
from chalicelib.pipelines import TableName, Warehouse, parse_catalog
from chalicelib.service import Disposition, Service
from chalicelib.settings import Settings
from tests.unit.fakes import FakeLedger, FakeNotifier, FakeQueue, FakeStorage, FakeWarehouse, SteppingClock

WH = Warehouse(name="dw", database="dev", workgroup=None, cluster="c1", secret_arn=None, db_user="loader",
               iam_role="arn:aws:iam::123456789012:role/R", connection="direct", host="c1.example.com", port=5439)
COPY = "COPY sales.orders FROM 's3://m/x.manifest' IAM_ROLE 'arn:aws:iam::123456789012:role/R' MANIFEST CSV"


class ServerError(Exception):
    """What redshift_connector raises for an ErrorResponse: the fields dict as its argument."""


class InterfaceError(Exception):
    """Named like the driver's socket-level error."""


class FakeConnection:
    def __init__(self, server: "FakeServer") -> None:
        self.server = server
        self.autocommit = False
        self.committed = self.rolled_back = self.closed = False

    def cursor(self) -> "FakeCursor":
        return FakeCursor(self)

    def commit(self) -> None:
        if self.server.fail_commit:
            raise ServerError({"S": "ERROR", "C": "XX000", "M": "1023",
                               "D": "Serializable isolation violation on table - 100, transactions forming the cycle"})
        self.committed = True

    def rollback(self) -> None:
        self.rolled_back = True

    def close(self) -> None:
        self.closed = True


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.rowcount = -1
        self.description: list[tuple[str, ...]] | None = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        server = self.conn.server
        server.log.append((sql, params))
        self.rowcount, self.description, self._rows = -1, None, []
        if sql in server.hooks:
            server.hooks[sql]()
        if sql in server.failures:
            raise server.failures[sql]
        if sql == "SELECT pg_backend_pid()":
            self._rows = [(4242,)]
        elif sql == "SELECT pg_last_copy_count(), pg_last_copy_id()":
            self._rows = [(server.copy_rows, 9001)]
        elif sql == "SELECT pg_last_copy_id()":
            self._rows = [(9002,)]
        elif server.answer(sql, params) or sql in server.results:
            names, rows = server.answer(sql, params) or server.results[sql]
            self.description = [(n, 1043) for n in names]
            self._rows = rows
        else:
            self.rowcount = server.rowcounts.get(sql, -1)

    def fetchone(self) -> tuple[Any, ...]:
        return self._rows[0]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)


class FakeServer:
    """Stands in for redshift_connector.connect and remembers every statement."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.connections: list[FakeConnection] = []
        self.connect_args: list[dict[str, Any]] = []
        self.failures: dict[str, Exception] = {}
        self.hooks: dict[str, Callable[[], None]] = {}
        self.results: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        self.rowcounts: dict[str, int] = {}
        self.answer: Callable[[str, Any], tuple[list[str], list[tuple[Any, ...]]] | None] = lambda sql, params: None
        self.copy_rows = 3
        self.fail_commit = False
        self.refuse: Exception | None = None

    def connect(self, **kwargs: Any) -> FakeConnection:
        self.connect_args.append(kwargs)
        if self.refuse is not None:
            raise self.refuse
        conn = FakeConnection(self)
        self.connections.append(conn)
        return conn

    def statements(self) -> list[str]:
        """What ran, without the adapter's own bookkeeping queries."""
        own = ("SET statement_timeout", "SELECT pg_backend_pid", "SELECT pg_last_copy")
        return [sql for sql, _ in self.log if not sql.startswith(own)]


class StaticSignIn(RedshiftSignIn):
    def __init__(self) -> None:
        super().__init__(clients=lambda service: None)
        self.forgotten: list[str] = []

    def _fetch(self, w: Warehouse) -> Any:
        from chalicelib.adapters.redshift_signin import Credentials

        return Credentials("IAM:loader", "pw", 4e9)

    def forget(self, warehouse: Warehouse) -> None:
        self.forgotten.append(warehouse.name)
        super().forget(warehouse)


@pytest.fixture()
def server() -> FakeServer:
    return FakeServer()


def adapter(server: FakeServer, *, budget: float = 45, now: Callable[[], float] | None = None,
            store: MemoryStatementStore | None = None) -> DirectWarehouse:
    kwargs: dict[str, Any] = {"now": now} if now else {}
    return DirectWarehouse(store=store or MemoryStatementStore(), warehouses={"dw": WH}, sign_in=StaticSignIn(),
                           connect=server.connect, budget_seconds=budget, **kwargs)


# ------------------------------------------------------------------ submit
def test_submit_runs_the_batch_as_one_transaction_and_records_rows(server: FakeServer) -> None:
    server.rowcounts["INSERT INTO t SELECT * FROM s"] = 7
    wh = adapter(server)
    sid = wh.submit(WH, ["CREATE TEMP TABLE s (LIKE t)", COPY, "INSERT INTO t SELECT * FROM s"], name="rl:j1:1",
                    token="j1-1")
    assert is_direct_statement(sid) and sid == statement_id_for("dw", "j1-1")
    assert server.statements() == ["CREATE TEMP TABLE s (LIKE t)", COPY, "INSERT INTO t SELECT * FROM s"]
    conn = server.connections[0]
    assert conn.committed and conn.closed and not conn.rolled_back
    info = wh.describe(sid)
    assert info.status == "FINISHED" and info.finished and info.error is None
    assert [s.status for s in info.sub_statements] == ["FINISHED"] * 3
    assert [s.rows for s in info.sub_statements] == [None, 3, 7]
    assert info.sub_statements[1].query_id == 9001 and info.copy_rows() == 3
    assert info.sub_statements[2].id == f"{sid}:3" and info.duration_ms is not None


def test_each_statement_is_bounded_by_what_is_left_of_the_budget(server: FakeServer) -> None:
    adapter(server, budget=30).submit(WH, ["SELECT 1", "SELECT 2"], name="n", token="t")
    timeouts = [int(sql.rsplit(" ", 1)[1]) for sql, _ in server.log if sql.startswith("SET statement_timeout")]
    assert len(timeouts) == 2 and all(0 < ms <= 30_000 for ms in timeouts)
    assert server.connect_args[0]["timeout"] == 35  # the socket gives up a little after the budget


def test_a_resubmission_with_the_same_token_returns_the_recorded_id_without_running(server: FakeServer) -> None:
    wh = adapter(server)
    first = wh.submit(WH, ["SELECT 1"], name="n", token="job-1")
    again = wh.submit(WH, ["SELECT 1"], name="n", token="job-1")
    assert again == first and server.statements() == ["SELECT 1"] and len(server.connections) == 1
    other = wh.submit(WH, ["SELECT 1"], name="n", token="job-2")
    assert other != first and server.statements() == ["SELECT 1", "SELECT 1"]


def test_a_worker_that_loses_the_claim_does_not_run_the_batch(server: FakeServer) -> None:
    store = MemoryStatementStore()
    wh = adapter(server, store=store)
    sid = statement_id_for("dw", "t")
    # Another worker claims the id between this one's look-up and its claim.
    original_claim = store.claim

    def claim_after_rival(record: StatementRecord) -> StatementRecord | None:
        original_claim(StatementRecord(id=sid, token="t", warehouse="dw", name="n", status="STARTED",
                                       started_at=0, deadline=4e9))
        return original_claim(record)

    store.claim = claim_after_rival  # type: ignore[method-assign]
    assert wh.submit(WH, ["SELECT 1"], name="n", token="t") == sid
    assert server.statements() == [] and server.connections[0].closed


def test_a_failing_statement_rolls_back_and_fails_like_the_data_api(server: FakeServer) -> None:
    server.failures[COPY] = ServerError({"S": "ERROR", "C": "XX000", "M": "Load into table 'orders' failed. "
                                                                       "Check 'stl_load_errors' system table for details."})
    wh = adapter(server)
    sid = wh.submit(WH, ["CREATE TEMP TABLE s (LIKE t)", COPY, "CALL p()"], name="n", token="t")
    conn = server.connections[0]
    assert conn.rolled_back and not conn.committed
    info = wh.describe(sid)
    assert info.status == "FAILED"
    assert [s.status for s in info.sub_statements] == ["FINISHED", "FAILED", "ABORTED"]
    assert first_error(info) == ("ERROR: Load into table 'orders' failed. Check 'stl_load_errors' system table "
                                 "for details.")
    # pg_last_copy_id() names the failed COPY: the service looks its bad rows up by that query id.
    assert info.failed_query_ids() == [9002]
    assert not is_retryable_error(first_error(info))


def test_a_serialization_conflict_at_commit_is_retryable(server: FakeServer) -> None:
    server.fail_commit = True
    wh = adapter(server)
    info = wh.describe(wh.submit(WH, ["INSERT INTO t VALUES (1)"], name="n", token="t"))
    assert info.status == "FAILED" and [s.status for s in info.sub_statements] == ["FINISHED"]
    assert first_error(info).startswith("ERROR: 1023\n  Detail: Serializable isolation violation")
    assert is_retryable_error(first_error(info))


def test_a_dropped_connection_mid_batch_is_retryable(server: FakeServer) -> None:
    server.failures["CALL p()"] = InterfaceError("communication error")
    wh = adapter(server)
    info = wh.describe(wh.submit(WH, ["CALL p()"], name="n", token="t"))
    assert info.status == "FAILED" and is_retryable_error(first_error(info))


def test_running_out_of_budget_fails_without_retry(server: FakeServer) -> None:
    wh = adapter(server, budget=0)
    info = wh.describe(wh.submit(WH, ["SELECT 1", "SELECT 2"], name="n", token="t"))
    assert info.status == "FAILED" and "budget of 0s" in (info.error or "")
    assert [s.status for s in info.sub_statements] == ["ABORTED", "ABORTED"]
    assert server.statements() == [] and not is_retryable_error(first_error(info))


def test_an_unreachable_endpoint_is_transient_and_claims_nothing(server: FakeServer) -> None:
    server.refuse = InterfaceError("communication error", ConnectionRefusedError(111, "Connection refused"))
    wh = adapter(server)
    with pytest.raises(DirectConnectError) as caught:
        wh.submit(WH, ["SELECT 1"], name="n", token="t")
    assert "could not connect to warehouse 'dw' at c1.example.com:5439" in str(caught.value)
    assert is_transient(caught.value)
    assert wh.store.get(statement_id_for("dw", "t")) is None  # the redelivery runs the batch


def test_refused_credentials_are_not_transient_and_are_fetched_again(server: FakeServer) -> None:
    server.refuse = InterfaceError({"S": "FATAL", "C": "28000", "M": 'password authentication failed for user "x"'})
    wh = adapter(server)
    with pytest.raises(SignInError) as caught:
        wh.submit(WH, ["SELECT 1"], name="n", token="t")
    assert "refused user IAM:loader" in str(caught.value) and not is_transient(caught.value)
    assert wh.sign_in.forgotten == ["dw"]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- describe
def test_describe_of_an_unknown_statement_says_resource_not_found(server: FakeServer) -> None:
    with pytest.raises(DirectStatementNotFound, match="ResourceNotFound"):
        adapter(server).describe("direct-nope")


def test_a_started_record_whose_worker_vanished_is_failed_after_its_deadline(server: FakeServer) -> None:
    clock = [1000.0]
    store = MemoryStatementStore()
    store.claim(StatementRecord(id="direct-x", token="t", warehouse="dw", name="n", status="STARTED",
                                started_at=1000.0, deadline=1045.0, subs=(SubOutcome(sql="CALL p()"),)))
    wh = adapter(server, store=store, now=lambda: clock[0])
    running = wh.describe("direct-x")
    assert running.status == "STARTED" and not running.finished
    clock[0] = 1045.0 + 61
    lost = wh.describe("direct-x")
    assert lost.status == "FAILED" and "stopped before recording its outcome" in (lost.error or "")
    assert store.get("direct-x").status == "FAILED"  # final: a late worker cannot overwrite it
    assert not is_retryable_error(first_error(lost))


# ------------------------------------------------------------------ cancel
def test_cancel_flags_the_statement_and_cancels_its_backend(server: FakeServer) -> None:
    wh = adapter(server)
    sid = statement_id_for("dw", "t")
    # While statement 1 runs, another Lambda cancels: pg_cancel_backend on the recorded pid, and the
    # worker stops before statement 2.
    server.hooks["SELECT 1"] = lambda: wh.cancel(sid)
    wh.submit(WH, ["SELECT 1", "SELECT 2"], name="n", token="t")
    assert ("SELECT pg_cancel_backend(%s)", (4242,)) in server.log
    assert "SELECT 2" not in server.statements()
    info = wh.describe(sid)
    assert info.status == "ABORTED" and [s.status for s in info.sub_statements] == ["FINISHED", "ABORTED"]
    assert server.connections[0].rolled_back and not server.connections[0].committed


def test_cancel_of_a_finished_statement_does_nothing(server: FakeServer) -> None:
    wh = adapter(server)
    sid = wh.submit(WH, ["SELECT 1"], name="n", token="t")
    wh.cancel(sid)
    assert wh.describe(sid).status == "FINISHED" and len(server.connections) == 1


# ------------------------------------------------------- short queries
def test_query_returns_rows_as_dicts(server: FakeServer) -> None:
    sql = "SELECT filename, line_number FROM stl_load_errors WHERE query = 9002"
    server.results[sql] = (["filename", "line_number"], [("s3://b/k.csv", 3)])
    assert adapter(server).query(WH, sql) == [{"filename": "s3://b/k.csv", "line_number": 3}]
    assert server.connections[0].autocommit and server.connections[0].closed


def test_table_columns_binds_the_names_as_parameters(server: FakeServer) -> None:
    server.answer = lambda sql, params: (["column_name"], [("id",), ("name",)]) if params else None
    assert adapter(server).table_columns(WH, TableName("sales", "orders")) == ["id", "name"]
    sql, params = server.log[-1]
    assert params == ("sales", "orders") and "information_schema.columns" in sql and "sales" not in sql


def test_ping_connects_and_selects(server: FakeServer) -> None:
    adapter(server).ping(WH)
    assert server.statements() == ["SELECT 1"]


def test_devstack_endpoint_replaces_the_catalog_host_and_turns_ssl_off(server: FakeServer) -> None:
    wh = DirectWarehouse(store=MemoryStatementStore(), warehouses={"dw": WH}, sign_in=StaticSignIn(),
                         connect=server.connect, endpoint_override="127.0.0.1:55439")
    assert wh.endpoint(WH) == ("127.0.0.1", 55439, False)
    assert adapter(server).endpoint(WH) == ("c1.example.com", 5439, True)


# ------------------------------------------------------------ error text
@pytest.mark.parametrize("exc, text, retryable", [
    (ServerError({"S": "ERROR", "C": "42P01", "M": 'relation "x" does not exist'}),
     'ERROR: relation "x" does not exist', False),
    (InterfaceError("BrokenPipe: server socket closed"), "server closed the connection unexpectedly", True),
    (ConnectionResetError(104, "Connection reset by peer"), "server closed the connection unexpectedly", True),
    (ValueError("odd"), "ERROR: ValueError: odd", False),
])
def test_errors_read_like_the_data_api(exc: Exception, text: str, retryable: bool) -> None:
    assert error_text(exc).startswith(text)
    assert is_retryable_error(error_text(exc)) is retryable


# ----------------------------------------------------------------- sign-in
class FakeAws:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.secret = json.dumps({"username": "admin", "password": "s3cret", "host": "ignored"})

    def __call__(self, service: str) -> Any:
        aws = self

        class Client:
            def __getattr__(self, op: str) -> Callable[..., dict[str, Any]]:
                def call(**kwargs: Any) -> dict[str, Any]:
                    aws.calls.append((service, op, kwargs))
                    expires = datetime(2030, 1, 1, tzinfo=UTC)
                    return {"get_secret_value": {"SecretString": aws.secret},
                            "get_cluster_credentials": {"DbUser": "IAM:loader", "DbPassword": "p1", "Expiration": expires},
                            "get_cluster_credentials_with_iam": {"DbUser": "IAMR:role", "DbPassword": "p2",
                                                                 "Expiration": expires},
                            "get_credentials": {"dbUser": "IAMR:fn", "dbPassword": "p3", "expiration": expires}}[op]
                return call
        return Client()


def warehouse(**changes: Any) -> Warehouse:
    fields = dict(name="dw", database="dev", workgroup=None, cluster=None, secret_arn=None, db_user=None,
                  iam_role=None, connection="direct", host="h")
    fields.update(changes)
    return Warehouse(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("w, call, user", [
    (warehouse(cluster="c1", secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rs"),
     ("secretsmanager", "get_secret_value", {"SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rs"}),
     "admin"),
    (warehouse(cluster="c1", db_user="loader"),
     ("redshift", "get_cluster_credentials", {"DbUser": "loader", "DbName": "dev", "ClusterIdentifier": "c1",
                                              "DurationSeconds": 900, "AutoCreate": False}), "IAM:loader"),
    (warehouse(cluster="c1"),
     ("redshift", "get_cluster_credentials_with_iam", {"DbName": "dev", "ClusterIdentifier": "c1",
                                                       "DurationSeconds": 900}), "IAMR:role"),
    (warehouse(workgroup="wg"),
     ("redshift-serverless", "get_credentials", {"workgroupName": "wg", "dbName": "dev", "durationSeconds": 900}),
     "IAMR:fn"),
])
def test_each_way_of_signing_in(w: Warehouse, call: tuple[str, str, dict[str, Any]], user: str) -> None:
    aws = FakeAws()
    sign_in = RedshiftSignIn(clients=aws, now=lambda: 1e9)
    assert sign_in.credentials(w).user == user
    assert sign_in.credentials(w).user == user  # cached: one call
    assert aws.calls == [call]


def test_credentials_are_fetched_again_when_they_near_expiry() -> None:
    aws = FakeAws()
    clock = [datetime(2030, 1, 1, tzinfo=UTC).timestamp() - 3600]
    sign_in = RedshiftSignIn(clients=aws, now=lambda: clock[0])
    w = warehouse(cluster="c1", db_user="loader")
    sign_in.credentials(w)
    clock[0] += 3600 - 60  # inside the refresh margin
    sign_in.credentials(w)
    assert len(aws.calls) == 2


def test_a_malformed_secret_is_named_without_showing_it() -> None:
    aws = FakeAws()
    aws.secret = "hunter2"
    w = warehouse(cluster="c1", secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rs")
    with pytest.raises(SignInError) as caught:
        RedshiftSignIn(clients=aws).credentials(w)
    assert "secret:rs is not JSON with 'username' and 'password'" in str(caught.value)
    assert "hunter2" not in str(caught.value)


# ----------------------------------------------------------------- routing
def test_the_router_picks_the_adapter_by_connection_and_by_statement_id(server: FakeServer) -> None:
    data_api = FakeWarehouse()
    built: list[DirectWarehouse] = []

    def make_direct() -> DirectWarehouse:
        built.append(adapter(server))
        return built[-1]

    router = WarehouseRouter(data_api, make_direct)
    data_wh = warehouse(workgroup="wg", connection="data-api", host=None)
    sid = router.submit(data_wh, ["SELECT 1"], name="n", token="a")
    router.describe(sid)
    assert not built  # no direct warehouse used: redshift-connector is never touched
    direct_sid = router.submit(WH, ["SELECT 1"], name="n", token="b")
    assert built and router.describe(direct_sid).status == "FINISHED"
    assert len(data_api.submitted) == 1


# ------------------------------------------------------- through the service
DIRECT_CATALOG = """
[warehouses.dw]
cluster = "c1"
database = "dev"
db_user = "loader"
connection = "direct"
host = "c1.example.com"
iam_role = "arn:aws:iam::123456789012:role/R"

[[loads]]
name = "orders"
warehouse = "dw"
bucket = "landing"
prefix = "orders/"
table = "sales.orders"
format = "csv"
mode = "append"
batch = { max_files = 1, max_seconds = 10 }
"""


def test_the_worker_finishes_a_direct_job_in_the_delivery_that_submits_it(server: FakeServer) -> None:
    from chalicelib.events import FileEvent

    catalog = parse_catalog(DIRECT_CATALOG, "pipelines.toml")
    direct = DirectWarehouse(store=MemoryStatementStore(), warehouses=catalog.warehouses, sign_in=StaticSignIn(),
                             connect=server.connect)
    service = Service(catalog=catalog, settings=Settings.from_env({}), ledger=FakeLedger(), queue=FakeQueue(),
                      warehouse=WarehouseRouter(FakeWarehouse(), lambda: direct), storage=FakeStorage(),
                      notifier=FakeNotifier(), clock=SteppingClock())
    report = service.files_landed([FileEvent(bucket="landing", key="orders/a.csv", etag="e", version_id=None,
                                             size=10, sequencer=None, event_name="ObjectCreated:Put",
                                             event_time="2026-11-22T10:00:00.000Z")])
    job = report.jobs[0]
    result = service.run_job_message(job.id, receipt="r1", receive_count=1)
    assert result.disposition is Disposition.DONE
    done = service.ledger.get_job(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.rows == 3 and done.statement_id.startswith("direct-")
    assert [s.split(" FROM ")[0] for s in server.statements()] == ['LOCK "sales"."orders"', 'COPY "sales"."orders"']


# ------------------------------------------------- devstack endpoint codec
@pytest.mark.parametrize("oid, text, binary", [
    (23, b"-7", b"\xff\xff\xff\xf9"),
    (20, b"1", b"\x00" * 7 + b"\x01"),
    (16, b"t", b"\x01"),
    (1043, "ü".encode(), "ü".encode()),
    (1082, b"2000-01-02", b"\x00\x00\x00\x01"),
    (1082, b"infinity", b"\x7f\xff\xff\xff"),
    (1114, b"2000-01-01 00:00:01.5", (1_500_000).to_bytes(8, "big")),
    (1184, b"2000-01-01 02:00:00+02", b"\x00" * 8),  # UTC microseconds since 2000
    (1083, b"00:00:00.000001", (1).to_bytes(8, "big")),
    (1266, b"00:00:01+01", (1_000_000).to_bytes(8, "big") + (-3600).to_bytes(4, "big", signed=True)),
])
def test_the_endpoint_sends_postgresql_binary_layouts(oid: int, text: bytes, binary: bytes) -> None:
    from devstack.redshift.wirecodec import to_binary

    assert to_binary(oid, text) == binary


def test_types_without_a_binary_encoder_are_announced_as_varchar() -> None:
    from devstack.redshift.wirecodec import WireFormatError, reported_oid, to_binary

    assert reported_oid(1186) == 1043 and reported_oid(23) == 23 and reported_oid(2950) == 2950  # uuid: text
    with pytest.raises(WireFormatError, match="oid 1700"):
        to_binary(1700, b"1.5")
