"""Direct connections, locally: redshift_connector against devstack's Redshift-protocol endpoint,
the direct warehouse adapter over it, and a load through the loader with `connection = "direct"`."""

from __future__ import annotations

import gzip
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

redshift_connector = pytest.importorskip("redshift_connector")

from chalicelib.adapters.redshift_direct import DirectWarehouse, statement_id_for  # noqa: E402
from chalicelib.adapters.redshift_signin import Credentials, RedshiftSignIn  # noqa: E402
from chalicelib.adapters.statement_store import DynamoStatementStore  # noqa: E402
from chalicelib.jobs import JobStatus  # noqa: E402
from chalicelib.pipelines import TableName, Warehouse  # noqa: E402
from devstack.redshift.wire import RedshiftWire  # noqa: E402

PASSWORD = "it-secret"


@pytest.fixture(scope="module")
def wire(emulator) -> Iterator[RedshiftWire]:
    with RedshiftWire(emulator, authenticate=lambda user, password: password == PASSWORD) as running:
        yield running


@pytest.fixture()
def connect(wire, database):
    """connect() → a redshift_connector connection to a fresh database (closed after the test)."""
    opened: list[Any] = []

    def _connect(**kwargs: Any) -> Any:
        args = dict(host="127.0.0.1", port=wire.port, database=database, user="awsuser", password=PASSWORD,
                    ssl=False)
        conn = redshift_connector.connect(**{**args, **kwargs})
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        try:
            conn.close()
        except Exception:
            pass


# ------------------------------------------------------------- the endpoint
def test_redshift_connector_runs_redshift_sql(connect) -> None:
    conn = connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE sales (id BIGINT IDENTITY(1,1), region VARCHAR(MAX) ENCODE zstd, amount DECIMAL(10,2),"
                " sold_at TIMESTAMP, day DATE, paid BOOLEAN, ratio FLOAT8) DISTSTYLE KEY DISTKEY(region)"
                " COMPOUND SORTKEY(sold_at)")
    cur.execute("INSERT INTO sales (region, amount, sold_at, day, paid, ratio) VALUES (%s, %s, %s, %s, %s, %s)",
                ("eu'west", 12.5, "2024-02-29 10:11:12.5", "2024-02-29", True, 0.25))
    assert cur.rowcount == 1
    cur.execute("INSERT INTO sales (region, amount, sold_at, day, paid, ratio) VALUES ('us', NULL, GETDATE(),"
                " '2024-03-01', false, NULL)")
    conn.commit()
    cur.execute("SELECT TOP 1 id, region, amount, sold_at, day, paid, ratio, NVL(amount, 0) AS amount0,"
                " DATEADD(month, 1, day) AS next_month, DATEDIFF(day, day, '2024-03-31') AS days_left"
                " FROM sales WHERE region = %s", ("eu'west",))
    row = cur.fetchone()
    names = [d[0] for d in cur.description]
    assert dict(zip(names, row)) == {
        "id": 1, "region": "eu'west", "amount": pytest.approx(12.5), "sold_at": __import__("datetime").datetime(
            2024, 2, 29, 10, 11, 12, 500000),
        "day": __import__("datetime").date(2024, 2, 29), "paid": True, "ratio": 0.25, "amount0": pytest.approx(12.5),
        "next_month": __import__("datetime").datetime(2024, 3, 29), "days_left": 31}
    cur.execute("SELECT LISTAGG(region, ',') WITHIN GROUP (ORDER BY region) FROM sales")
    assert cur.fetchone()[0] == "eu'west,us"


def test_values_of_every_common_type_arrive_as_python_values(connect) -> None:
    import datetime as dt
    from decimal import Decimal

    cur = connect().cursor()
    cur.execute("SELECT 1::SMALLINT, 2::INT, 3::BIGINT, 1.5::REAL, 'x'::CHAR(2), 'y'::TEXT, 12.345::DECIMAL(8,3),"
                " TIMESTAMPTZ '2024-05-06 07:08:09.123456+02', TIME '10:11:12.5', TIMETZ '10:11:12+05:30',"
                " DATE '1999-12-31', TIMESTAMP '1970-01-01 00:00:00', INTERVAL '1 day 2 hours',"
                " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, NULL::INT, true, 'NaN'::FLOAT8 = 'NaN'::FLOAT8")
    row = cur.fetchone()
    assert row[:7] == [1, 2, 3, 1.5, "x ", "y", Decimal("12.345")]
    assert row[7] == dt.datetime(2024, 5, 6, 5, 8, 9, 123456, tzinfo=dt.timezone.utc)
    assert row[8] == dt.time(10, 11, 12, 500000)
    assert row[9] == dt.time(4, 41, 12, tzinfo=dt.timezone.utc)  # the driver turns TIMETZ into UTC
    assert row[10:12] == [dt.date(1999, 12, 31), dt.datetime(1970, 1, 1)]
    # Types the endpoint cannot send in binary arrive as their text (reported as VARCHAR), not as an error.
    assert row[12] == "1 day 02:00:00"
    assert row[13:] == ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None, True, True]


def test_errors_come_back_as_redshift_errors_and_the_session_recovers(connect) -> None:
    conn = connect()
    cur = conn.cursor()
    with pytest.raises(redshift_connector.ProgrammingError) as caught:
        cur.execute("SELECT * FROM no_such_table")
    assert caught.value.args[0]["C"] == "42P01" and "no_such_table" in caught.value.args[0]["M"]
    conn.rollback()
    cur.execute("SELECT 1")
    assert cur.fetchone() == [1]


def test_a_wrong_password_is_refused(connect) -> None:
    with pytest.raises(redshift_connector.Error) as caught:
        connect(password="wrong")
    assert "password authentication failed" in str(caught.value)


def test_a_session_keeps_temp_tables_and_a_new_connection_does_not(connect) -> None:
    conn = connect()
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE #stage (id INT)")
    cur.execute("INSERT INTO #stage VALUES (1), (2)")
    cur.execute("SELECT count(*) FROM #stage")
    assert cur.fetchone() == [2]
    other = connect()
    with pytest.raises(redshift_connector.ProgrammingError):
        other.cursor().execute('SELECT count(*) FROM "#stage"')


def test_truncate_commits_the_open_transaction_as_on_redshift(connect) -> None:
    conn = connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE a (id INT)")
    cur.execute("CREATE TABLE b (id INT)")
    conn.commit()
    cur.execute("INSERT INTO a VALUES (1)")
    cur.execute("TRUNCATE b")
    conn.rollback()  # only work after the TRUNCATE is rolled back
    cur.execute("SELECT count(*) FROM a")
    assert cur.fetchone() == [1]


def test_copy_from_local_s3_loads_rows_and_reports_the_count(connect, s3, bucket) -> None:
    s3.put_object(Bucket=bucket, Key="in/a.csv.gz", Body=gzip.compress(b"id,name\n1,ann\n2,bob\n3,cy\n"))
    conn = connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE people (id INT, name VARCHAR(20))")
    cur.execute(f"COPY people FROM 's3://{bucket}/in/' IAM_ROLE default CSV GZIP IGNOREHEADER 1")
    # server_version 8.0.2 (Redshift's) makes redshift_connector count rows of INSERT/UPDATE/DELETE only,
    # so a COPY's rows come from pg_last_copy_count(), as the direct adapter reads them.
    cur.execute("SELECT pg_last_copy_count()")
    assert cur.fetchone() == [3]
    conn.commit()
    cur.execute("SELECT name FROM people ORDER BY id")
    assert cur.fetchall() == (["ann"], ["bob"], ["cy"])


def test_a_failed_copy_leaves_its_query_id_and_the_bad_row_in_stl_load_errors(connect, s3, bucket) -> None:
    s3.put_object(Bucket=bucket, Key="bad/x.csv", Body=b"1,ok\ntwo,bad\n")
    conn = connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE nums (id INT, note VARCHAR(10))")
    conn.commit()
    with pytest.raises(redshift_connector.ProgrammingError) as caught:
        cur.execute(f"COPY nums FROM 's3://{bucket}/bad/x.csv' IAM_ROLE default CSV")
    assert caught.value.args[0]["M"] == "Load into table 'nums' failed. Check 'stl_load_errors' system table for details."
    conn.rollback()
    cur.execute("SELECT pg_last_copy_id()")
    (query_id,) = cur.fetchone()
    assert query_id > 0
    cur.execute("SELECT TRIM(filename), line_number, TRIM(colname), TRIM(raw_field_value), err_code"
                " FROM stl_load_errors WHERE query = %s", (query_id,))
    assert cur.fetchall() == ([f"s3://{bucket}/bad/x.csv", 2, "id", "two", 1207],)
    cur.execute("SELECT count(*) FROM nums")
    assert cur.fetchone() == [0]


def test_unload_writes_to_local_s3(connect, s3, bucket) -> None:
    conn = connect()
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE TABLE u AS SELECT 1 AS id, 'x' AS v UNION ALL SELECT 2, 'y'")
    cur.execute(f"UNLOAD ('SELECT id, v FROM u ORDER BY id') TO 's3://{bucket}/out/u_' IAM_ROLE default CSV"
                " PARALLEL OFF")
    body = s3.get_object(Bucket=bucket, Key="out/u_000")["Body"].read().decode()
    assert body == "1,x\n2,y\n"


def test_pg_cancel_backend_from_another_session_cancels_a_running_query(connect) -> None:
    conn = connect()
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    (pid,) = cur.fetchone()
    failure: list[BaseException] = []

    def sleep() -> None:
        try:
            cur.execute("SELECT pg_sleep(30)")
        except BaseException as exc:  # noqa: BLE001 - the cancel's error is what the test looks at
            failure.append(exc)

    runner = threading.Thread(target=sleep)
    runner.start()
    other = connect()
    other.autocommit = True
    for _ in range(200):  # until the sleep is running
        ocur = other.cursor()
        ocur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND query LIKE %s", (pid, "%pg_sleep%"))
        if ocur.fetchone()[0]:
            break
        time.sleep(0.05)
    other.cursor().execute("SELECT pg_cancel_backend(%s)", (pid,))
    runner.join(20)
    assert failure and "canceling statement due to user request" in str(failure[0])


def test_psql_style_simple_queries_work_too(wire, database) -> None:
    import psycopg

    # psycopg sends statements without parameters as simple Query messages (what psql does).
    with psycopg.connect(host="127.0.0.1", port=wire.port, dbname=database, user="awsuser", password=PASSWORD,
                         sslmode="disable", autocommit=True) as conn:
        conn.execute("CREATE TABLE s (id INT) DISTSTYLE ALL; INSERT INTO s VALUES (7), (8)")
        assert conn.execute("SELECT id, GETDATE() IS NOT NULL FROM s ORDER BY id").fetchall() == [(7, True), (8, True)]
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT 1; SELECT * FROM missing")


# ---------------------------------------------------- the adapter over it
class MasterSignIn(RedshiftSignIn):
    def _fetch(self, w: Warehouse) -> Credentials:
        return Credentials("awsuser", PASSWORD, 4e9)


@pytest.fixture()
def direct(wire, moto_endpoint, database) -> tuple[DirectWarehouse, Warehouse]:
    from chalicelib import resources
    from devstack.aws import create_table

    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    table = f"ledger-{uuid.uuid4().hex[:8]}"
    create_table(ddb, resources.LEDGER_TABLE, table)
    wh = Warehouse(name="dw", database=database, workgroup=None, cluster="c1", secret_arn=None, db_user="loader",
                   iam_role="arn:aws:iam::123456789012:role/R", connection="direct", host="c1.example.com")
    adapter = DirectWarehouse(store=DynamoStatementStore(table, api=ddb), warehouses={"dw": wh},
                              sign_in=MasterSignIn(), endpoint_override=wire.endpoint)
    return adapter, wh


def test_the_adapter_runs_a_batch_records_it_and_does_not_run_it_twice(direct, s3, bucket) -> None:
    adapter, wh = direct
    s3.put_object(Bucket=bucket, Key="d/a.csv", Body=b"1,a\n2,b\n")
    adapter.query(wh, "CREATE TABLE t (id INT, v VARCHAR(5))")
    copy = f"COPY t FROM 's3://{bucket}/d/a.csv' IAM_ROLE default CSV"
    sqls = ["CREATE TEMP TABLE stage (LIKE t)", copy.replace("COPY t", "COPY stage"), "INSERT INTO t SELECT * FROM stage"]
    sid = adapter.submit(wh, sqls, name="rl:j:1", token="j-1")
    assert sid == statement_id_for("dw", "j-1")
    info = adapter.describe(sid)
    assert info.status == "FINISHED", info.error
    assert [s.rows for s in info.sub_statements] == [None, 2, 2] and info.copy_rows() == 2
    assert adapter.submit(wh, sqls, name="rl:j:1", token="j-1") == sid  # the same token: not run again
    assert adapter.query(wh, "SELECT count(*) AS n FROM t") == [{"n": 2}]
    assert adapter.table_columns(wh, TableName("public", "t")) == ["id", "v"]
    adapter.ping(wh)


def test_a_failed_copy_is_described_with_its_query_id_and_its_bad_rows_can_be_read(direct, s3, bucket) -> None:
    from chalicelib.outcomes import load_error_from_row
    from chalicelib.sql import render_stl_load_errors_query

    adapter, wh = direct
    s3.put_object(Bucket=bucket, Key="d/bad.csv", Body=b"1,a\nx,b\n")
    adapter.query(wh, "CREATE TABLE t (id INT, v VARCHAR(5))")
    sid = adapter.submit(wh, ["LOCK t", f"COPY t FROM 's3://{bucket}/d/bad.csv' IAM_ROLE default CSV",
                              "INSERT INTO t VALUES (9, 'z')"], name="rl:j:1", token="j-2")
    info = adapter.describe(sid)
    assert info.status == "FAILED" and "Load into table 't' failed" in (info.error or "")
    assert [s.status for s in info.sub_statements] == ["FINISHED", "FAILED", "ABORTED"]
    (query_id,) = info.failed_query_ids()
    errors = [load_error_from_row(r) for r in adapter.query(wh, render_stl_load_errors_query(query_id))]
    assert [(e.file, e.line, e.column, e.value) for e in errors] == [(f"s3://{bucket}/d/bad.csv", 2, "id", "x")]
    assert adapter.query(wh, "SELECT count(*) AS n FROM t") == [{"n": 0}]


def test_the_adapter_cancels_a_running_batch(direct) -> None:
    adapter, wh = direct
    sid = statement_id_for("dw", "j-3")
    done = threading.Thread(target=adapter.submit, args=(wh, ["SELECT pg_sleep(30)", "SELECT 1"]),
                            kwargs={"name": "n", "token": "j-3"})
    done.start()
    for _ in range(200):  # until the batch has a session to cancel
        record = adapter.store.get(sid)
        if record is not None and record.backend_pid:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # into pg_sleep; an earlier cancel is caught by the flag check instead
    adapter.cancel(sid)
    done.join(20)
    info = adapter.describe(sid)
    assert info.status == "ABORTED" and [s.status for s in info.sub_statements] == ["ABORTED", "ABORTED"]


# ------------------------------------------------------------- end to end
def test_a_direct_warehouse_loads_files_through_the_loader(env) -> None:
    import os

    conn = redshift_connector.connect(**_devstack_connection("direct"))
    conn.autocommit = True
    conn.cursor().execute("CREATE TABLE IF NOT EXISTS public.direct_rows (id INT, name VARCHAR(20))")
    conn.close()
    assert os.environ["REDSHIFT_DIRECT_ENDPOINT"]
    env.put("direct/a.csv", "id,name\n1,ann\n2,bob\n")
    env.put("direct/b.csv", "id,name\n3,cy\n")
    jobs = env.wait_jobs("direct", 1)
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED], [j.error for j in jobs]
    assert jobs[0].statement_id.startswith("direct-") and jobs[0].rows == 3
    assert env.rows("SELECT id, name FROM public.direct_rows ORDER BY id", warehouse="direct") == [
        (1, "ann"), (2, "bob"), (3, "cy")]

    env.put("direct/c.csv", "id,name\n4,dee\nfive,eve\n")
    jobs = env.wait_jobs("direct", 2)
    failed = jobs[-1]
    assert failed.status is JobStatus.FAILED and "Load into table 'direct_rows' failed" in (failed.error or "")
    (bad,) = failed.load_errors
    assert (bad.file, bad.line, bad.column, bad.value) == (f"s3://it-landing/direct/c.csv", 3, "id", "five")
    assert "invalid" in bad.reason.lower()
    assert env.rows("SELECT count(*) FROM public.direct_rows", warehouse="direct") == [(3,)]


def _devstack_connection(database: str) -> dict[str, Any]:
    import os

    host, _, port = os.environ["REDSHIFT_DIRECT_ENDPOINT"].rpartition(":")
    return dict(host=host, port=int(port), database=database, user=os.environ["DEVSTACK_REDSHIFT_USER"],
                password=os.environ["DEVSTACK_REDSHIFT_PASSWORD"], ssl=False)
