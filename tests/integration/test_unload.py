"""UNLOAD on devstack's Redshift: naming, formats, options, and the round trip UNLOAD → COPY."""

from __future__ import annotations

import gzip
import io
import json

import pytest

pytest.importorskip("devstack.redshift.unload")

ROWS = [
    "(1, 10, 100, 1.250, 1.5, 2.25, true, '2026-01-02', '2026-01-02 03:04:05', '2026-01-02 03:04:05+00', 'plain', 'ab')",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(3, -1, 0, 0.000, 0, -0.5, false, '1999-12-31', '1999-12-31 23:59:59.123456', '1999-12-31 23:59:59+00', '', '')",
    "(4, 2, 3, 9.999, 3, 4, true, '2026-06-30', '2026-06-30 00:00:00', '2026-06-30 00:00:00+00', "
    "'quote \" comma , pipe | tab \t backslash \\\\ newline \n end', 'x')",
    "(5, 5, 5, 5, 5, 5, false, '2026-01-01', '2026-01-01 00:00:00', '2026-01-01 00:00:00+00', 'ünïcødé 日本 🚀', 'u')",
    "(6, 6, 6, 6, 6, 6, true, '2026-01-01', '2026-01-01 00:00:00', '2026-01-01 00:00:00+00', '\\\\N', 'n')",
]
DDL = ("(id INT, s SMALLINT, b BIGINT, d DECIMAL(12,3), r REAL, f DOUBLE PRECISION, ok BOOLEAN, day DATE, "
       "at TIMESTAMP, atz TIMESTAMPTZ, v VARCHAR(100), c CHAR(5))")


@pytest.fixture()
def run(run):
    return lambda sql, **kwargs: run(sql, expect=None, **kwargs)


@pytest.fixture()
def keys(s3, bucket):
    def list_keys(prefix: str) -> list[str]:
        return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
    return list_keys


def body(s3, bucket, key) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def ok(desc):
    assert desc["Status"] == "FINISHED", desc.get("Error")
    return desc


@pytest.fixture()
def source(run):
    ok(run(f"CREATE TABLE src {DDL}"))
    ok(run("INSERT INTO src VALUES " + ", ".join(ROWS)))
    return "src"


@pytest.mark.parametrize("unload_opts,copy_opts", [
    # CSV can't tell a NULL from a value equal to the NULL AS string: pick one the data lacks.
    ("FORMAT CSV NULL AS '<null>'", "CSV NULL AS '<null>'"),
    ("DELIMITER '|' NULL AS '\\\\N' ESCAPE", "DELIMITER '|' ESCAPE"),
    ("FORMAT CSV HEADER GZIP NULL AS '<null>'", "CSV IGNOREHEADER 1 GZIP NULL AS '<null>'"),
    ("FORMAT JSON", "JSON 'auto'"),
    ("FORMAT PARQUET", "FORMAT AS PARQUET"),
    ("FORMAT CSV ZSTD NULL AS '<null>' PARALLEL OFF", "CSV ZSTD NULL AS '<null>'"),
])
def test_round_trip_of_every_type_compares_row_by_row(run, rsdata, bucket, source, unload_opts, copy_opts):
    prefix = f"s3://{bucket}/rt/{abs(hash(unload_opts))}/"
    desc = ok(run(f"UNLOAD ('SELECT * FROM src') TO '{prefix}' IAM_ROLE default {unload_opts} MANIFEST"))
    assert desc["ResultRows"] == len(ROWS)
    ok(run(f"CREATE TABLE dst {DDL}"))
    desc = run(f"COPY dst FROM '{prefix}manifest' IAM_ROLE default {copy_opts} MANIFEST")
    if desc["Status"] != "FINISHED":
        errors = ok(run("SELECT line_number, colname, raw_field_value, err_reason FROM stl_load_errors"))
        raise AssertionError(f"{desc.get('Error')}: {rsdata.get_statement_result(Id=errors['Id'])['Records']}")
    for a, b in (("src", "dst"), ("dst", "src")):
        desc = ok(run(f"SELECT * FROM {a} EXCEPT SELECT * FROM {b}"))
        assert rsdata.get_statement_result(Id=desc["Id"])["Records"] == [], f"rows of {a} missing from {b}"


def test_names_parts_and_manifest_verbose(run, s3, bucket, keys, source):
    ok(run(f"UNLOAD ('SELECT id, v FROM src') TO 's3://{bucket}/n/p_' IAM_ROLE default MANIFEST VERBOSE"))
    assert keys("n/") == ["n/p_0000_part_00", "n/p_manifest"]
    manifest = json.loads(body(s3, bucket, "n/p_manifest"))
    assert manifest["entries"][0]["url"] == f"s3://{bucket}/n/p_0000_part_00"
    assert manifest["entries"][0]["meta"]["record_count"] == len(ROWS)
    assert manifest["meta"]["record_count"] == len(ROWS) and manifest["author"]["name"] == "Amazon Redshift"
    assert [e["name"] for e in manifest["schema"]["elements"]] == ["id", "v"]
    ok(run(f"UNLOAD ('SELECT id FROM src') TO 's3://{bucket}/s/x_' IAM_ROLE default PARALLEL OFF GZIP"))
    assert keys("s/") == ["s/x_000.gz"]
    assert gzip.decompress(body(s3, bucket, "s/x_000.gz")).decode().split() == [str(i) for i in range(1, 7)]


def test_text_defaults_and_csv_quoting(run, s3, bucket, source):
    ok(run(f"UNLOAD ('SELECT id, v FROM src WHERE id IN (2, 4) ORDER BY id') TO 's3://{bucket}/t/' IAM_ROLE default"))
    text = body(s3, bucket, "t/0000_part_00").decode()
    assert text.startswith("2|\n4|quote \" comma , pipe | tab \t backslash \\ newline \n end\n")
    ok(run(f"UNLOAD ('SELECT id, v FROM src WHERE id = 4') TO 's3://{bucket}/c/' IAM_ROLE default CSV HEADER"))
    assert body(s3, bucket, "c/0000_part_00").decode() == (
        'id,v\n4,"quote "" comma , pipe | tab \t backslash \\ newline \n end"\n')


def test_non_empty_destination_allowoverwrite_and_cleanpath(run, s3, bucket, keys, source):
    target = f"s3://{bucket}/o/"
    ok(run(f"UNLOAD ('SELECT id FROM src') TO '{target}' IAM_ROLE default"))
    desc = run(f"UNLOAD ('SELECT id FROM src') TO '{target}' IAM_ROLE default")
    assert desc["Status"] == "FAILED" and "ALLOWOVERWRITE" in desc["Error"]
    ok(run(f"UNLOAD ('SELECT id FROM src WHERE id < 3') TO '{target}' IAM_ROLE default ALLOWOVERWRITE"))
    s3.put_object(Bucket=bucket, Key="o/stray.txt", Body=b"x")
    ok(run(f"UNLOAD ('SELECT id FROM src') TO '{target}' IAM_ROLE default CLEANPATH"))
    assert keys("o/") == ["o/0000_part_00"]
    desc = run(f"UNLOAD ('SELECT 1') TO '{target}' IAM_ROLE default CLEANPATH ALLOWOVERWRITE")
    assert desc["Status"] == "FAILED" and "CLEANPATH" in desc["Error"]


def test_partition_by_with_null_partition_and_include(run, s3, bucket, keys, source):
    ok(run(f"UNLOAD ('SELECT id, ok FROM src') TO 's3://{bucket}/p/' IAM_ROLE default CSV PARTITION BY (ok)"))
    assert keys("p/") == ["p/ok=__HIVE_DEFAULT_PARTITION__/0000_part_00", "p/ok=f/0000_part_00", "p/ok=t/0000_part_00"]
    assert sorted(body(s3, bucket, "p/ok=t/0000_part_00").decode().split()) == ["1", "4", "6"]
    ok(run(f"UNLOAD ('SELECT id, ok FROM src') TO 's3://{bucket}/pi/' IAM_ROLE default CSV PARTITION BY (ok) INCLUDE"))
    assert sorted(body(s3, bucket, "pi/ok=f/0000_part_00").decode().split()) == ["3,f", "5,f"]


def test_maxfilesize_splits_into_parts(run, s3, bucket, keys):
    ok(run("CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 60000) g"))
    ok(run(f"UNLOAD ('SELECT * FROM big') TO 's3://{bucket}/m/' IAM_ROLE default MAXFILESIZE 5 MB"))
    parts = keys("m/")
    assert parts == ["m/0000_part_00", "m/0000_part_01", "m/0000_part_02"]
    lines = sum(body(s3, bucket, k).count(b"\n") for k in parts)
    assert lines == 60000


def test_parquet_types_and_kms_encryption(run, s3, bucket, source):
    pq = pytest.importorskip("pyarrow.parquet")
    ok(run(f"UNLOAD ('SELECT id, ok, day, at, v FROM src ORDER BY id') TO 's3://{bucket}/q/' IAM_ROLE default "
           "FORMAT PARQUET KMS_KEY_ID 'alias/loader' ENCRYPTED"))
    head = s3.head_object(Bucket=bucket, Key="q/0000_part_00.parquet")
    assert head.get("ServerSideEncryption") == "aws:kms"
    table = pq.read_table(io.BytesIO(body(s3, bucket, "q/0000_part_00.parquet")))
    assert table.column_names == ["id", "ok", "day", "at", "v"]
    assert table.column("id").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert str(table.schema.field("at").type) == "timestamp[us]"


def test_query_with_quotes_parameters_and_errors(run, rsdata, wait, s3, bucket, database, source):
    ok(run(f"UNLOAD ('SELECT id FROM src WHERE v = ''plain''') TO 's3://{bucket}/qq/' IAM_ROLE default"))
    assert body(s3, bucket, "qq/0000_part_00") == b"1\n"
    sid = rsdata.execute_statement(WorkgroupName="wg-test", Database=database,
                                   Sql="UNLOAD ('SELECT 1') TO :dest IAM_ROLE default",
                                   Parameters=[{"name": "dest", "value": f"s3://{bucket}/param/"}])["Id"]
    assert wait(rsdata, sid)["Status"] == "FINISHED"
    desc = run(f"UNLOAD ('SELECT nope FROM src') TO 's3://{bucket}/e/' IAM_ROLE default")
    assert desc["Status"] == "FAILED" and "nope" in desc["Error"]
    desc = run(f"UNLOAD ('SELECT 1') TO 's3://{bucket}/e/' IAM_ROLE default PARQUET DELIMITER ','")
    assert desc["Status"] == "FAILED" and "DELIMITER" in desc["Error"]
    desc = run(f"UNLOAD ('SELECT 1') TO 's3://{bucket}/e/' IAM_ROLE default FIXEDWIDTH 'a:1'")
    assert desc["Status"] == "FAILED" and "FIXEDWIDTH" in desc["Error"]
