"""COPY and UNLOAD through the Data API: dispatch, transactions, ResultRows, query ids."""

from __future__ import annotations

import pytest

pytest.importorskip("devstack.redshift.copy")


def test_copy_loads_rows_and_reports_them(rsdata, run, s3, bucket):
    run("CREATE TABLE sales (id INT, item VARCHAR(20))")
    s3.put_object(Bucket=bucket, Key="in/sales.csv", Body=b"1,apple\n2,pear\n3,plum\n")
    desc = run(f"COPY sales FROM 's3://{bucket}/in/sales.csv' IAM_ROLE default CSV")
    assert desc["ResultRows"] == 3
    count = run("SELECT count(*) FROM sales")
    assert rsdata.get_statement_result(Id=count["Id"])["Records"] == [[{"longValue": 3}]]


def test_failed_copy_in_a_batch_rolls_back_and_records_load_errors(rsdata, run, wait, s3, bucket, database):
    run("CREATE TABLE orders (id INT, qty INT)")
    s3.put_object(Bucket=bucket, Key="bad/x.csv", Body=b"1,2\nsix,3\n")
    bid = rsdata.batch_execute_statement(WorkgroupName="wg-test", Database=database, Sqls=[
        "INSERT INTO orders VALUES (0, 0)",
        f"COPY orders FROM 's3://{bucket}/bad/x.csv' IAM_ROLE default CSV",
    ])["Id"]
    desc = wait(rsdata, bid)
    assert desc["Status"] == "FAILED"
    assert "stl_load_errors" in desc["Error"]
    copy_query_id = desc["SubStatements"][1]["RedshiftQueryId"]
    assert copy_query_id > 0
    count = run("SELECT count(*) FROM orders")
    assert rsdata.get_statement_result(Id=count["Id"])["Records"] == [[{"longValue": 0}]]
    errors = run(f"SELECT count(*) FROM stl_load_errors WHERE query = {copy_query_id}")
    assert rsdata.get_statement_result(Id=errors["Id"])["Records"] == [[{"longValue": 1}]]


def test_copy_with_parameters_inlines_literals(rsdata, run, s3, bucket):
    run("CREATE TABLE p (id INT)")
    s3.put_object(Bucket=bucket, Key="p/1.csv", Body=b"1\n2\n")
    desc = run("COPY p FROM :src IAM_ROLE default CSV",
               Parameters=[{"name": "src", "value": f"s3://{bucket}/p/1.csv"}])
    assert desc["ResultRows"] == 2


def test_unload_writes_objects(rsdata, run, s3, bucket):
    pytest.importorskip("devstack.redshift.unload")
    run("CREATE TABLE u AS SELECT g AS id FROM generate_series(1, 10) g")
    run(f"UNLOAD ('SELECT id FROM u') TO 's3://{bucket}/out/u_' IAM_ROLE default CSV PARALLEL OFF")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="out/").get("Contents", [])]
    assert keys
