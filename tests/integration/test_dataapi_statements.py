"""ExecuteStatement / DescribeStatement / GetStatementResult / CancelStatement through boto3."""

from __future__ import annotations

import time

import pytest


def test_execute_describe_and_typed_result(rsdata, run, database):
    run("CREATE TABLE t (id INT PRIMARY KEY, big BIGINT, small SMALLINT, s VARCHAR(20), c CHAR(3), "
        "n NUMERIC(10,2), f FLOAT8, r REAL, b BOOLEAN, d DATE, ts TIMESTAMP, tz TIMESTAMPTZ)")
    ins = run("INSERT INTO t VALUES "
              "(1, 9007199254740993, 7, 'héllo ☃', 'ab', 12.5, 2.25, 1.5, true, '2024-01-02', "
              "'2024-01-02 03:04:05', '2024-01-02 03:04:05+00'),"
              "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-02 03:04:05.120', NULL)")
    assert ins["ResultRows"] == 2 and ins["HasResultSet"] is False

    desc = run("SELECT *, 42 AS answer FROM t ORDER BY id", StatementName="typed")
    assert desc["HasResultSet"] is True
    assert desc["ResultRows"] == 2
    assert desc["Duration"] > 0 and desc["RedshiftQueryId"] > 0 and desc["RedshiftPid"] > 0
    assert desc["QueryString"].startswith("SELECT *")
    assert desc["WorkgroupName"] == "wg-test" and desc["Database"] == database
    assert "ClusterIdentifier" not in desc

    result = rsdata.get_statement_result(Id=desc["Id"])
    assert result["TotalNumRows"] == 2
    first, second = result["Records"]
    assert first == [
        {"longValue": 1}, {"longValue": 9007199254740993}, {"longValue": 7}, {"stringValue": "héllo ☃"},
        {"stringValue": "ab "}, {"stringValue": "12.50"}, {"doubleValue": 2.25}, {"doubleValue": 1.5},
        {"booleanValue": True}, {"stringValue": "2024-01-02"}, {"stringValue": "2024-01-02 03:04:05"},
        {"stringValue": "2024-01-02 03:04:05+00"}, {"longValue": 42},
    ]
    assert second[1:10] == [{"isNull": True}] * 9
    assert second[10] == {"stringValue": "2024-01-02 03:04:05.12"}

    meta = {m["name"]: m for m in result["ColumnMetadata"]}
    assert [m["typeName"] for m in result["ColumnMetadata"]] == [
        "int4", "int8", "int2", "varchar", "bpchar", "numeric", "float8", "float4", "bool", "date",
        "timestamp", "timestamptz", "int4"]
    assert meta["id"]["nullable"] == 0 and meta["s"]["nullable"] == 1
    assert meta["id"]["tableName"] == "t" and meta["id"]["schemaName"] == "public"
    assert meta["answer"]["tableName"] == ""
    assert (meta["n"]["precision"], meta["n"]["scale"]) == (10, 2)
    assert meta["s"]["precision"] == 20 and meta["s"]["isCaseSensitive"] is True
    assert meta["id"]["isSigned"] is True and meta["id"]["label"] == "id"


def test_failed_statement_reports_redshift_style_error(rsdata, run):
    desc = run("SELECT * FROM no_such_table", expect="FAILED")
    assert desc["Error"] == 'ERROR: relation "no_such_table" does not exist'
    assert desc["Duration"] >= 0
    with pytest.raises(rsdata.exceptions.ValidationException, match="Query does not have result"):
        rsdata.get_statement_result(Id=desc["Id"])


def test_statement_without_result_set_has_no_result(rsdata, run):
    desc = run("CREATE TABLE nores (x INT)")
    assert desc["HasResultSet"] is False
    with pytest.raises(rsdata.exceptions.ValidationException, match="Query does not have result"):
        rsdata.get_statement_result(Id=desc["Id"])


def test_large_result_pages_through_the_botocore_paginator(rsdata, run):
    desc = run("SELECT g AS n, md5(g::text) AS h FROM generate_series(1, 5000) g ORDER BY g")
    assert desc["ResultRows"] == 5000
    pages = list(rsdata.get_paginator("get_statement_result").paginate(Id=desc["Id"]))
    assert len(pages) > 1
    rows = [r for p in pages for r in p["Records"]]
    assert [r[0]["longValue"] for r in rows] == list(range(1, 5001))
    assert all(p["TotalNumRows"] == 5000 for p in pages)
    with pytest.raises(rsdata.exceptions.ValidationException):
        rsdata.get_statement_result(Id=desc["Id"], NextToken="bm90LWEtdG9rZW4=")


def test_csv_result_format_via_v2(rsdata, run):
    desc = run("SELECT 1 AS a, 'x,y' AS b, NULL::int AS c", ResultFormat="CSV")
    result = rsdata.get_statement_result_v2(Id=desc["Id"])
    assert result["Records"] == [{"CSVRecords": '1,"x,y",\n'}]
    assert [m["name"] for m in result["ColumnMetadata"]] == ["a", "b", "c"]


def test_wait_time_seconds_returns_the_finished_status(rsdata, database):
    out = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT 1", WaitTimeSeconds=5)
    assert out["Status"] == "FINISHED" and out["HasResultSet"] is True
    assert rsdata.get_statement_result(Id=out["Id"], WaitTimeSeconds=1)["Records"] == [[{"longValue": 1}]]


def test_long_statement_is_started_then_cancelled(rsdata, database, wait):
    sid = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT pg_sleep(30)")["Id"]
    deadline = time.monotonic() + 10
    while rsdata.describe_statement(Id=sid)["Status"] != "STARTED":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.1)
    assert rsdata.describe_statement(Id=sid)["Status"] == "STARTED"
    started = time.monotonic()
    assert rsdata.cancel_statement(Id=sid)["Status"] is True
    desc = wait(rsdata, sid, timeout=5)
    assert desc["Status"] == "ABORTED"
    assert time.monotonic() - started < 3
    with pytest.raises(rsdata.exceptions.ValidationException, match="already in ABORTED state"):
        rsdata.cancel_statement(Id=sid)


def test_cancel_finished_statement_is_rejected(rsdata, run):
    desc = run("SELECT 1")
    with pytest.raises(rsdata.exceptions.ValidationException,
                       match="Could not cancel a query that is already in FINISHED state"):
        rsdata.cancel_statement(Id=desc["Id"])


def test_each_workgroup_and_database_is_its_own_postgres_database(emulator, rsdata, wait, database):
    import psycopg

    def run_on(target: dict, sql: str) -> dict:
        return wait(rsdata, rsdata.execute_statement(Sql=sql, **target)["Id"])

    a = {"WorkgroupName": "wg-iso-a", "Database": database}
    assert run_on(a, "CREATE TABLE only_here (x INT)")["Status"] == "FINISHED"
    assert run_on(a, "INSERT INTO only_here VALUES (7)")["Status"] == "FINISHED"
    for other in ({"WorkgroupName": "wg-iso-b", "Database": database},
                  {"WorkgroupName": "wg-iso-a", "Database": database + "x"},
                  {"ClusterIdentifier": "wg-iso-a", "Database": database}):
        desc = run_on(other, "SELECT * FROM only_here")
        assert desc["Status"] == "FAILED", other
    with psycopg.connect(emulator.database_dsn("workgroup:wg-iso-a", database)) as conn:
        assert conn.execute("SELECT x FROM only_here").fetchall() == [(7,)]
    assert emulator.database_dsn("workgroup:wg-iso-a", database.upper()) == \
        emulator.database_dsn("workgroup:wg-iso-a", database)


def test_database_name_mapping_is_safe_and_short():
    from devstack.redshift.sessions import Target, mapped_name

    long_name = mapped_name("rs", Target("workgroup", "w" * 120), "Dev-Δ; DROP DATABASE x" * 5)
    assert len(long_name.encode()) <= 63
    assert long_name == mapped_name("rs", Target("workgroup", "w" * 120), "dev-δ; drop database x" * 5)
    assert all(ch.isalnum() or ch == "_" for ch in long_name)
    assert mapped_name("rs", Target("cluster", "a"), "b") != mapped_name("rs", Target("workgroup", "a"), "b")


def test_big_results_spill_to_disk_and_the_size_quota_fails_the_statement(emulator, rsdata, run):
    options = emulator.engine.result_options
    saved = (options.memory_bytes, options.max_bytes)
    options.memory_bytes = 64 * 1024  # pages past 64 KB go to the temp file
    try:
        desc = run("SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 3000) g")
        st, _ = emulator.engine.lookup(desc["Id"])
        assert st.subs[0].result.spilled
        rows = [r for pg in rsdata.get_paginator("get_statement_result").paginate(Id=desc["Id"])
                for r in pg["Records"]]
        assert len(rows) == 3000 and rows[-1][0] == {"longValue": 3000}
        options.max_bytes = 100 * 1024
        failed = run("SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 3000) g", expect="FAILED")
        assert "result size exceeded" in failed["Error"]
    finally:
        options.memory_bytes, options.max_bytes = saved
    run("SELECT 1")  # the connection is usable again


def test_cancel_a_running_batch(rsdata, run, wait, database):
    run("CREATE TABLE cb (x INT)")
    bid = rsdata.batch_execute_statement(WorkgroupName="wg-test", Database=database,
                                         Sqls=["INSERT INTO cb VALUES (1)", "SELECT pg_sleep(30)", "SELECT 2"])["Id"]
    deadline = time.monotonic() + 10
    while rsdata.describe_statement(Id=f"{bid}:2")["Status"] != "STARTED":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    rsdata.cancel_statement(Id=bid)
    desc = wait(rsdata, bid, timeout=5)
    assert desc["Status"] == "ABORTED"
    assert [s["Status"] for s in desc["SubStatements"]] == ["FINISHED", "ABORTED", "ABORTED"]
    count = run("SELECT count(*) FROM cb")
    assert rsdata.get_statement_result(Id=count["Id"])["Records"] == [[{"longValue": 0}]]


def test_many_concurrent_statements(rsdata, wait, database):
    ids = [rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql=f"SELECT {i}, pg_sleep(0.05)")["Id"]
           for i in range(40)]
    for i, sid in enumerate(ids):
        assert wait(rsdata, sid)["Status"] == "FINISHED"
        assert rsdata.get_statement_result(Id=sid)["Records"][0][0] == {"longValue": i}


def test_redshift_dialect_runs_through_rewriter_and_compat(rsdata, run, wait, database):
    pytest.importorskip("devstack.redshift.rewrite")
    run("CREATE TABLE facts (id BIGINT IDENTITY(1,1), k VARCHAR(MAX) ENCODE zstd, v INT) "
        "DISTSTYLE KEY DISTKEY(k) COMPOUND SORTKEY(k, v)")
    bid = rsdata.batch_execute_statement(WorkgroupName="wg-test", Database=database, Sqls=[
        "CREATE TEMP TABLE #stage (LIKE facts INCLUDING DEFAULTS)",
        "INSERT INTO #stage (k, v) VALUES ('a', 1), ('b', NULL)",
        "INSERT INTO facts (k, v) SELECT k, NVL(v, 0) FROM #stage",
        "SELECT TOP 1 getdate() IS NOT NULL AS now_ok, DATEDIFF(month, '2024-01-31', '2024-02-01') AS months",
    ])["Id"]
    desc = wait(rsdata, bid)
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert rsdata.get_statement_result(Id=f"{bid}:4")["Records"] == [[{"booleanValue": True}, {"longValue": 1}]]
    rows = rsdata.get_statement_result(Id=run("SELECT id, k, v FROM facts ORDER BY id")["Id"])["Records"]
    assert [[f.get("longValue", f.get("stringValue")) for f in r] for r in rows] == [[1, "a", 1], [2, "b", 0]]



def test_pooled_connections_survive_many_sessions(emulator):
    """Regression: psycopg prepares a query after 5 runs and DISCARD ALL (run between Data
    API sessions) dropped it server-side, so the 6th BEGIN on a pooled connection failed
    with 'prepared statement "_pg3_0" does not exist'."""
    pool = emulator.databases.pool("postgres")
    first = pool.acquire()
    pool.release(first)
    for _ in range(8):
        conn = pool.acquire()
        assert conn is first  # reused, not silently replaced after an error
        conn.execute("BEGIN")
        conn.execute("SELECT 1")
        conn.execute("COMMIT")
        pool.release(conn)
