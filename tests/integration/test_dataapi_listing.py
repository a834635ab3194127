"""ListStatements, the metadata operations, request validation and fault hooks."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid

import pytest
import requests
from botocore.config import Config


def test_list_statements_filters_and_pages(rsdata, wait, database):
    prefix = f"job-{uuid.uuid4().hex[:6]}"
    ids = []
    for i in range(5):
        ids.append(rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql=f"SELECT {i}",
                                            StatementName=f"{prefix}-{i}")["Id"])
    batch = rsdata.batch_execute_statement(WorkgroupName="wg-test", Database=database,
                                           Sqls=["SELECT 1", "SELECT 2"], StatementName=f"{prefix}-batch")["Id"]
    failed = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT 1/0",
                                      StatementName=f"{prefix}-bad")["Id"]
    for sid in ids + [batch, failed]:
        wait(rsdata, sid)

    listed = rsdata.list_statements(StatementName=prefix, Status="ALL")["Statements"]
    assert [s["Id"] for s in listed] == [failed, batch] + ids[::-1]  # newest first
    by_id = {s["Id"]: s for s in listed}
    assert by_id[batch]["IsBatchStatement"] is True and by_id[batch]["QueryStrings"] == ["SELECT 1", "SELECT 2"]
    assert by_id[ids[0]]["QueryString"] == "SELECT 0" and by_id[ids[0]]["StatementName"] == f"{prefix}-0"

    default = rsdata.list_statements(StatementName=prefix)["Statements"]
    assert failed not in {s["Id"] for s in default}  # finished only by default
    assert [s["Id"] for s in rsdata.list_statements(StatementName=prefix, Status="FAILED")["Statements"]] == [failed]
    assert rsdata.list_statements(StatementName=prefix.upper(), Status="ALL")["Statements"] == []  # case-sensitive
    assert rsdata.list_statements(StatementName=prefix, Status="ALL", WorkgroupName="other")["Statements"] == []
    assert len(rsdata.list_statements(StatementName=prefix, Status="ALL", WorkgroupName="wg-test",
                                      Database=database)["Statements"]) == 7

    pages = list(rsdata.get_paginator("list_statements").paginate(
        StatementName=prefix, Status="ALL", PaginationConfig={"PageSize": 2}))
    assert [len(pg["Statements"]) for pg in pages] == [2, 2, 2, 1]
    assert [s["Id"] for pg in pages for s in pg["Statements"]] == [s["Id"] for s in listed]


def test_metadata_operations(rsdata, run, database):
    run("CREATE SCHEMA sales")
    run("CREATE TABLE sales.orders (id BIGINT NOT NULL, note VARCHAR(40) DEFAULT 'none', amount NUMERIC(12,2))")
    run("CREATE VIEW sales.big AS SELECT * FROM sales.orders WHERE amount > 100")
    target = {"WorkgroupName": "wg-test", "Database": database}

    assert database in rsdata.list_databases(**target)["Databases"]
    schemas = rsdata.list_schemas(**target)["Schemas"]
    assert {"public", "sales"} <= set(schemas)
    assert rsdata.list_schemas(**target, SchemaPattern="sal%")["Schemas"] == ["sales"]
    tables = rsdata.list_tables(**target, SchemaPattern="sales")["Tables"]
    assert tables == [{"name": "big", "schema": "sales", "type": "VIEW"},
                      {"name": "orders", "schema": "sales", "type": "TABLE"}]

    desc = rsdata.describe_table(**target, Schema="sales", Table="orders")
    assert desc["TableName"] == "orders"
    cols = desc["ColumnList"]
    assert [(c["name"], c["typeName"], c["nullable"]) for c in cols] == [
        ("id", "int8", 0), ("note", "varchar", 1), ("amount", "numeric", 1)]
    assert cols[1]["length"] == 40 and cols[1]["columnDefault"].startswith("'none'")
    assert (cols[2]["precision"], cols[2]["scale"]) == (12, 2)
    paged = list(rsdata.get_paginator("describe_table").paginate(
        **target, Schema="sales", Table="orders", PaginationConfig={"PageSize": 2}))
    assert [c["name"] for pg in paged for c in pg["ColumnList"]] == ["id", "note", "amount"]


@pytest.mark.parametrize("kwargs, message", [
    ({"Sql": "SELECT 1; SELECT 2"}, "Multiple SQL statements"),
    ({"Sql": "SELECT 1", "ClusterIdentifier": "c1"}, "Exactly one of ClusterIdentifier, WorkgroupName or SessionId"),
    ({"Sql": "SELECT '" + "x" * 103_000 + "'"}, "Cannot process query string larger than 100kB"),
])
def test_validation_errors(rsdata, database, kwargs, message):
    with pytest.raises(rsdata.exceptions.ValidationException, match=message):
        rsdata.execute_statement(**{"WorkgroupName": "wg-test", "Database": database, **kwargs})


def test_more_validation_errors(rsdata, database):
    with pytest.raises(rsdata.exceptions.ValidationException, match="Exactly one"):
        rsdata.execute_statement(Database=database, Sql="SELECT 1")
    with pytest.raises(rsdata.exceptions.ValidationException, match="Database is required"):
        rsdata.execute_statement(WorkgroupName="wg-test", Sql="SELECT 1")
    with pytest.raises(rsdata.exceptions.ValidationException, match="Sqls"):
        # 41 statements: botocore does not check the list's max length
        rsdata.batch_execute_statement(WorkgroupName="wg-test", Database=database, Sqls=["SELECT 1"] * 41)
    missing = str(uuid.uuid4())
    for call in (rsdata.describe_statement, rsdata.get_statement_result, rsdata.cancel_statement):
        with pytest.raises(rsdata.exceptions.ResourceNotFoundException, match="Query does not exist"):
            call(Id=missing)


def test_raw_protocol_error_shape(emulator):
    body = json.dumps({"WorkgroupName": "wg-test", "Database": "dev", "Sql": "SELECT 1",
                       "SessionKeepAliveSeconds": 86401})
    resp = requests.post(emulator.url, data=body, headers={
        "X-Amz-Target": "RedshiftData.ExecuteStatement", "Content-Type": "application/x-amz-json-1.1"})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert resp.json()["__type"] == "ValidationException" and "SessionKeepAliveSeconds" in resp.json()["message"]


def test_active_statements_quota(emulator, rsdata, wait, database):
    emulator.engine.max_active_statements = 1
    try:
        slow = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT pg_sleep(0.5)")
        with pytest.raises(rsdata.exceptions.ActiveStatementsExceededException):
            rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT 1")
        # the quota is per cluster / workgroup
        other = rsdata.execute_statement(WorkgroupName="wg-other", Database=database, Sql="SELECT 1")
    finally:
        emulator.engine.max_active_statements = 200
    wait(rsdata, slow["Id"])
    wait(rsdata, other["Id"])


def test_fault_injection(emulator, rsdata, database):
    client = rsdata
    no_retry = __import__("boto3").client("redshift-data", endpoint_url=emulator.url, region_name="us-east-1",
                                          config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    emulator.faults.throttle_rate = 1.0
    try:
        with pytest.raises(client.exceptions.ClientError) as err:
            no_retry.list_statements()
        assert err.value.response["Error"]["Code"] == "ThrottlingException"
        emulator.faults.throttle_rate, emulator.faults.server_error_rate = 0.0, 1.0
        with pytest.raises(client.exceptions.InternalServerException):
            no_retry.list_statements()
    finally:
        emulator.faults.throttle_rate = emulator.faults.server_error_rate = 0.0
    assert "Statements" in client.list_statements()


def test_aws_cli_talks_to_the_emulator(emulator, database, tmp_path):
    aws = shutil.which("aws")
    if not aws or subprocess.run([aws, "--version"], capture_output=True).returncode != 0:
        pytest.skip("AWS CLI not installed")
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1",
           "PATH": __import__("os").environ["PATH"], "HOME": str(tmp_path)}
    base = [aws, "redshift-data", "--endpoint-url", emulator.url, "--output", "json"]
    out = subprocess.run(base + ["execute-statement", "--workgroup-name", "wg-test", "--database", database,
                                 "--sql", "SELECT 41 + 1 AS answer"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["Id"]
    deadline = time.monotonic() + 10
    while True:
        desc = json.loads(subprocess.run(base + ["describe-statement", "--id", sid], capture_output=True,
                                         text=True, env=env, timeout=60).stdout)
        if desc["Status"] == "FINISHED" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    result = json.loads(subprocess.run(base + ["get-statement-result", "--id", sid], capture_output=True,
                                       text=True, env=env, timeout=60).stdout)
    assert result["Records"] == [[{"longValue": 42}]]
