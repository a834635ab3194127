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
    for n, fmt in enumerate(("", "CSV", "JSON", "PARQUET", "PARTITION BY (id)")):
        ok(run(f"UNLOAD ('SELECT id, ''50% {{x}}'' || v AS t FROM src WHERE v LIKE ''pl%'' -- trailing comment\n"
               f"-- another;') TO 's3://{bucket}/qc{n}/' IAM_ROLE default {fmt}"))
    assert body(s3, bucket, "qc1/0000_part_00") == b"1,50% {x}plain\n"
    sid = rsdata.execute_statement(WorkgroupName="wg-test", Database=database,
                                   Sql="UNLOAD ('SELECT 1') TO :dest IAM_ROLE default",
                                   Parameters=[{"name": "dest", "value": f"s3://{bucket}/param/"}])["Id"]
    assert wait(rsdata, sid)["Status"] == "FINISHED"
    desc = run(f"UNLOAD ('SELECT nope FROM src') TO 's3://{bucket}/e/' IAM_ROLE default")
    assert desc["Status"] == "FAILED" and "nope" in desc["Error"]
    desc = run(f"UNLOAD ('SELECT 1') TO 's3://{bucket}/e/' IAM_ROLE default PARQUET DELIMITER ','")
    assert desc["Status"] == "FAILED" and "DELIMITER" in desc["Error"]
    desc = run(f"UNLOAD ('SELECT 1') TO 's3://{bucket}/e/' IAM_ROLE default FIXEDWIDTH 'a:1' HEADER")
    assert desc["Status"] == "FAILED" and "FIXEDWIDTH" in desc["Error"] and "HEADER" in desc["Error"]


def test_json_one_object_per_line_with_redshift_booleans(run, s3, bucket, source):
    ok(run(f"UNLOAD ('SELECT id, d, ok, day, at, v FROM src WHERE id IN (1, 2, 5) ORDER BY id') "
           f"TO 's3://{bucket}/j/' IAM_ROLE default FORMAT AS JSON"))
    lines = body(s3, bucket, "j/0000_part_00").decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": 1, "d": 1.25, "ok": "t", "day": "2026-01-02", "at": "2026-01-02 03:04:05", "v": "plain"},
        {"id": 2, "d": None, "ok": None, "day": None, "at": None, "v": None},
        {"id": 5, "d": 5, "ok": "f", "day": "2026-01-01", "at": "2026-01-01 00:00:00", "v": "ünïcødé 日本 🚀"},
    ]
    assert '"d":1.250' in lines[0]  # numerics exactly as stored, not through a float


@pytest.mark.parametrize("option,decompress", [
    ("GZIP", gzip.decompress),
    ("BZIP2", __import__("bz2").decompress),
    ("ZSTD", lambda data: __import__("zstandard").ZstdDecompressor().decompressobj().decompress(data)),
])
@pytest.mark.parametrize("fmt", ["", "CSV", "FORMAT JSON"])
def test_compressed_parts_decompress_to_the_plain_output(run, s3, bucket, keys, source, option, decompress, fmt):
    query = "SELECT * FROM src ORDER BY id"
    ok(run(f"UNLOAD ('{query}') TO 's3://{bucket}/plain/' IAM_ROLE default {fmt}"))
    ok(run(f"UNLOAD ('{query}') TO 's3://{bucket}/z/' IAM_ROLE default {fmt} {option}"))
    suffix = {"GZIP": ".gz", "BZIP2": ".bz2", "ZSTD": ".zst"}[option]
    assert keys("z/") == [f"z/0000_part_00{suffix}"]
    assert decompress(body(s3, bucket, f"z/0000_part_00{suffix}")) == body(s3, bucket, "plain/0000_part_00")


def test_csv_quoting_null_versus_empty_and_addquotes(run, s3, bucket, source):
    query = "SELECT id, v FROM src WHERE id IN (2, 3, 4, 5) ORDER BY id"
    ok(run(f"UNLOAD ('{query}') TO 's3://{bucket}/q1/' IAM_ROLE default CSV"))
    assert body(s3, bucket, "q1/0000_part_00").decode() == (
        '2,\n3,""\n4,"quote "" comma , pipe | tab \t backslash \\ newline \n end"\n5,ünïcødé 日本 🚀\n')
    ok(run(f"UNLOAD ('{query}') TO 's3://{bucket}/q2/' IAM_ROLE default CSV DELIMITER '|' NULL AS 'NIL' ADDQUOTES"))
    assert body(s3, bucket, "q2/0000_part_00").decode().splitlines()[:2] == ['"2"|NIL', '"3"|""']


def test_text_escape_and_addquotes(run, s3, bucket, source):
    query = "SELECT id, v FROM src WHERE id IN (2, 4) ORDER BY id"
    ok(run(f"UNLOAD ('{query}') TO 's3://{bucket}/e1/' IAM_ROLE default ESCAPE"))
    assert body(s3, bucket, "e1/0000_part_00").decode() == (
        "2|\n4|quote \" comma , pipe \\| tab \t backslash \\\\ newline \\\n end\n")
    ok(run(f"UNLOAD ('{query}') TO 's3://{bucket}/e2/' IAM_ROLE default ADDQUOTES ESCAPE DELIMITER ',' NULL AS 'null'"))
    assert body(s3, bucket, "e2/0000_part_00").decode() == (
        '"2",null\n"4","quote \\" comma \\, pipe | tab \t backslash \\\\ newline \\\n end"\n')
    ok(run(f"UNLOAD ('SELECT id, c FROM src WHERE id < 4 ORDER BY id') TO 's3://{bucket}/e3/' IAM_ROLE default "
           "DELIMITER AS '\\t' HEADER NULL AS '\\\\N'"))
    assert body(s3, bucket, "e3/0000_part_00").decode() == "id\tc\n1\tab   \n2\t\\N\n3\t     \n"


def test_fixedwidth_pads_and_refuses_to_truncate(run, s3, bucket, source):
    ok(run(f"UNLOAD ('SELECT id, v FROM src WHERE id < 4 ORDER BY id') TO 's3://{bucket}/fw/' IAM_ROLE default "
           "FIXEDWIDTH 'id:3,v:6'"))
    assert body(s3, bucket, "fw/0000_part_00").decode() == "1  plain \n2        \n3        \n"
    desc = run(f"UNLOAD ('SELECT id, v FROM src') TO 's3://{bucket}/fw2/' IAM_ROLE default FIXEDWIDTH 'id:3,v:6'")
    assert desc["Status"] == "FAILED" and "FIXEDWIDTH column 'v'" in desc["Error"]
    desc = run(f"UNLOAD ('SELECT id, v FROM src') TO 's3://{bucket}/fw3/' IAM_ROLE default FIXEDWIDTH 'id:3'")
    assert desc["Status"] == "FAILED" and "FIXEDWIDTH specifies 1 columns" in desc["Error"]


def test_parquet_fast_path_types_nulls_and_text(run, s3, bucket, source):
    pq = pytest.importorskip("pyarrow.parquet")
    ok(run(f"UNLOAD ('SELECT * FROM src ORDER BY id') TO 's3://{bucket}/pq/' IAM_ROLE default PARQUET"))
    table = pq.read_table(io.BytesIO(body(s3, bucket, "pq/0000_part_00.parquet")))
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {"id": "int32", "s": "int16", "b": "int64", "d": "decimal128(12, 3)", "r": "float", "f": "double",
                     "ok": "bool", "day": "date32[day]", "at": "timestamp[us]", "atz": "timestamp[us, tz=UTC]",
                     "v": "string", "c": "string"}
    rows = table.to_pylist()
    assert [r["v"] for r in rows] == ["plain", None, "", "quote \" comma , pipe | tab \t backslash \\ newline \n end",
                                      "ünïcødé 日本 🚀", "\\N"]
    assert str(rows[2]["d"]) == "0.000" and rows[2]["at"].microsecond == 123456 and rows[0]["ok"] is True


def test_parquet_partitioned_uses_the_row_path(run, s3, bucket, keys, source):
    pq = pytest.importorskip("pyarrow.parquet")
    ok(run(f"UNLOAD ('SELECT id, ok, d FROM src') TO 's3://{bucket}/pp/' IAM_ROLE default PARQUET "
           "PARTITION BY (ok) INCLUDE MANIFEST"))
    assert keys("pp/") == ["pp/manifest", f"pp/ok={'__HIVE_DEFAULT_PARTITION__'}/0000_part_00.parquet",
                           "pp/ok=f/0000_part_00.parquet", "pp/ok=t/0000_part_00.parquet"]
    table = pq.read_table(io.BytesIO(body(s3, bucket, "pp/ok=t/0000_part_00.parquet")))
    assert table.column_names == ["id", "ok", "d"] and sorted(table.column("id").to_pylist()) == [1, 4, 6]
    assert str(table.schema.field("d").type) == "decimal128(12, 3)"
    assert len(json.loads(body(s3, bucket, "pp/manifest"))["entries"]) == 3


def test_partition_values_are_hive_folders_and_cleanpath_only_clears_them(run, s3, bucket, keys):
    ok(run("CREATE TABLE ev (id INT, day DATE, kind VARCHAR(20))"))
    ok(run("INSERT INTO ev VALUES (1, '2026-01-01', 'a b/c'), (2, '2026-01-01', 'x'), (3, '2026-01-02', 'x'), "
           "(4, NULL, 'x')"))
    s3.put_object(Bucket=bucket, Key="hv/day=2026-01-01/kind=x/old", Body=b"old")
    s3.put_object(Bucket=bucket, Key="hv/day=1999-01-01/keep", Body=b"keep")
    ok(run(f"UNLOAD ('SELECT id, day, kind FROM ev ORDER BY id') TO 's3://{bucket}/hv/' IAM_ROLE default "
           "PARTITION BY (day, kind) CLEANPATH"))
    assert keys("hv/") == ["hv/day=1999-01-01/keep", "hv/day=2026-01-01/kind=a b%2Fc/0000_part_00",
                           "hv/day=2026-01-01/kind=x/0000_part_00", "hv/day=2026-01-02/kind=x/0000_part_00",
                           "hv/day=__HIVE_DEFAULT_PARTITION__/kind=x/0000_part_00"]
    assert body(s3, bucket, "hv/day=2026-01-01/kind=x/0000_part_00") == b"2\n"


def test_parallel_off_maxfilesize_and_verbose_manifest_count_every_part(run, s3, bucket, keys):
    # ~12.4 MB of text in 5 MB parts.
    ok(run("CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 60000) g"))
    desc = ok(run(f"UNLOAD ('SELECT * FROM big ORDER BY id') TO 's3://{bucket}/po/big_' IAM_ROLE default "
                  "PARALLEL OFF MAXFILESIZE AS 5 MB GZIP MANIFEST VERBOSE"))
    assert desc["ResultRows"] == 60000
    assert keys("po/") == ["po/big_000.gz", "po/big_001.gz", "po/big_002.gz", "po/big_manifest"]
    manifest = json.loads(body(s3, bucket, "po/big_manifest"))
    counts = [e["meta"]["record_count"] for e in manifest["entries"]]
    assert sum(counts) == 60000 and manifest["meta"]["record_count"] == 60000
    for entry, key in zip(manifest["entries"], keys("po/")[:3]):
        data = body(s3, bucket, key)
        assert entry["meta"]["content_length"] == len(data)
        assert gzip.decompress(data).count(b"\n") == entry["meta"]["record_count"]
    first = gzip.decompress(body(s3, bucket, "po/big_000.gz")).split(b"\n", 1)[0]
    assert first == b"1|" + b"x" * 200
    assert manifest["schema"]["elements"] == [{"name": "id", "type": {"base": "integer"}},
                                              {"name": "pad", "type": {"base": "character varying"}}]


def test_empty_result_header_extension_and_kms_on_every_object(run, s3, bucket, keys, source):
    ok(run(f"UNLOAD ('SELECT id, v FROM src WHERE false') TO 's3://{bucket}/x/' IAM_ROLE default CSV HEADER "
           "EXTENSION 'csv' KMS_KEY_ID 'alias/k' ENCRYPTED AUTO MANIFEST REGION AS 'us-east-1'"))
    assert keys("x/") == ["x/0000_part_00.csv", "x/manifest"]
    assert body(s3, bucket, "x/0000_part_00.csv") == b"id,v\n"
    for key in keys("x/"):
        assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "aws:kms"


def test_limit_only_inside_a_subquery(run, s3, bucket, source):
    desc = run(f"UNLOAD ('SELECT id FROM src ORDER BY id LIMIT 2') TO 's3://{bucket}/l1/' IAM_ROLE default")
    assert desc["Status"] == "FAILED" and "Limit" in desc["Error"]
    ok(run(f"UNLOAD ('SELECT * FROM (SELECT id FROM src ORDER BY id LIMIT 2) AS firsts') TO 's3://{bucket}/l2/' "
           "IAM_ROLE default"))
    assert body(s3, bucket, "l2/0000_part_00") == b"1\n2\n"


def test_a_query_failing_midway_fails_the_unload(run, bucket, source):
    for fmt in ("", "CSV", "PARQUET", "JSON"):
        desc = run(f"UNLOAD ('SELECT 10 / (id - 3) FROM src') TO 's3://{bucket}/dz{fmt}/' IAM_ROLE default {fmt}")
        assert desc["Status"] == "FAILED" and desc["Error"] == "ERROR: division by zero", fmt


@pytest.mark.parametrize("options,named", [
    ("CLEANPATH ALLOWOVERWRITE", "ALLOWOVERWRITE"),
    ("PARQUET GZIP", "GZIP"),
    ("PARQUET HEADER", "HEADER"),
    ("PARQUET NULL AS 'x'", "NULL AS"),
    ("PARQUET ADDQUOTES", "ADDQUOTES"),
    ("PARQUET ESCAPE", "ESCAPE"),
    ("CSV ESCAPE", "ESCAPE"),
    ("CSV JSON", "JSON"),
    ("GZIP ZSTD", "ZSTD"),
    ("HEADER FIXEDWIDTH 'a:1'", "FIXEDWIDTH"),
    ("MAXFILESIZE 1 MB", "MAXFILESIZE"),
    ("GZIPP", "GZIPP"),
    ("MASTER_SYMMETRIC_KEY 'k'", "MASTER_SYMMETRIC_KEY"),
])
def test_invalid_options_fail_naming_the_option(run, bucket, options, named):
    desc = run(f"UNLOAD ('SELECT 1') TO 's3://{bucket}/bad/' IAM_ROLE default {options}")
    assert desc["Status"] == "FAILED" and named in desc["Error"], desc.get("Error")


def test_missing_bucket_and_credentials_forms(run, s3, bucket, keys):
    desc = run("UNLOAD ('SELECT 1') TO 's3://no-such-bucket-here/x/' IAM_ROLE default")
    assert desc["Status"] == "FAILED" and "bucket does not exist" in desc["Error"]
    ok(run(f"UNLOAD ('SELECT 1') TO 's3://{bucket}/k1/' ACCESS_KEY_ID 'AKIA' SECRET_ACCESS_KEY 's' SESSION_TOKEN 't'"))
    ok(run(f"UNLOAD ('SELECT 1') TO 's3://{bucket}/k2/' CREDENTIALS 'aws_iam_role=arn:aws:iam::1:role/r'"))
    ok(run(f"UNLOAD ('SELECT 1') TO 's3://{bucket}/k3/' IAM_ROLE 'arn:aws:iam::1:role/r';"))
    assert keys("k") == ["k1/0000_part_00", "k2/0000_part_00", "k3/0000_part_00"]


@pytest.mark.parametrize("fmt", ["CSV", "CSV NULL AS 'NIL' ADDQUOTES", "FORMAT JSON", "PARQUET"])
def test_partitioned_output_is_the_plain_output_in_folders(run, s3, bucket, source, fmt):
    # A constant partition column gives one folder to compare with the unpartitioned file.
    query = "SELECT *, 1 AS one FROM src ORDER BY id"
    ok(run(f"UNLOAD ('{query}') TO 's3://{bucket}/plain/' IAM_ROLE default {fmt}"))
    ok(run(f"UNLOAD ('{query}') TO 's3://{bucket}/parts/' IAM_ROLE default {fmt} PARTITION BY (one) INCLUDE"))
    suffix = ".parquet" if fmt == "PARQUET" else ""
    plain, parts = body(s3, bucket, f"plain/0000_part_00{suffix}"), body(s3, bucket, f"parts/one=1/0000_part_00{suffix}")
    if fmt == "PARQUET":
        pq = pytest.importorskip("pyarrow.parquet")
        assert pq.read_table(io.BytesIO(plain)).equals(pq.read_table(io.BytesIO(parts)))
    else:
        assert plain == parts


# chr() keeps the SQL free of escapes: 92 is a backslash.
ODD_VALUES = ("'a' || chr(92) || 'b', 'two' || chr(92) || chr(92), 'new' || chr(10) || 'line', "
              "'car' || chr(13) || 'riage', 'tab' || chr(9) || 'bed', 'bell' || chr(7), 'bs' || chr(8), "
              "'ff' || chr(12), 'vt' || chr(11), 'del' || chr(127), 'NIL', chr(92) || 'N', '', NULL, "
              "'pipe|comma,quote\"~tilde', 'ünï 日本 🚀', '  padded  ', chr(92) || 't' || chr(92)")


@pytest.mark.parametrize("fmt", [
    "CSV", "CSV NULL AS 'NIL' ADDQUOTES", "CSV DELIMITER '|' HEADER GZIP", "CSV DELIMITER '\\t' NULL AS '\\\\N'",
    "", "ESCAPE", "DELIMITER ',' NULL AS 'NIL' ESCAPE", "DELIMITER '\\t' NULL AS '\\\\N' ESCAPE HEADER",
    "NULL AS '\\\\N'", "DELIMITER '~' HEADER ZSTD",
])
@pytest.mark.parametrize("partition", ["", "PARTITION BY (grp) INCLUDE", "PARTITION BY (v, c)"])
def test_postgres_formatting_writes_what_the_row_path_writes(run, s3, bucket, keys, monkeypatch, fmt, partition):
    from devstack.redshift import unload

    ok(run(f"CREATE TABLE odd AS SELECT n, n % 3 AS grp, v, c::char(4) AS c FROM unnest(ARRAY[{ODD_VALUES}]) "
           "WITH ORDINALITY AS t(v, n) CROSS JOIN (VALUES ('ab'), (NULL)) AS chars(c)"))
    ok(run(f"UNLOAD ('SELECT * FROM odd ORDER BY n, c') TO 's3://{bucket}/pg/' IAM_ROLE default {fmt} {partition}"))
    monkeypatch.setattr(unload, "by_postgres", lambda spec: False)  # format every row in Python
    ok(run(f"UNLOAD ('SELECT * FROM odd ORDER BY n, c') TO 's3://{bucket}/py/' IAM_ROLE default {fmt} {partition}"))
    pg_keys, py_keys = keys("pg/"), keys("py/")
    assert [k[3:] for k in pg_keys] == [k[3:] for k in py_keys]
    assert len(pg_keys) == {"": 1, "PARTITION BY (grp) INCLUDE": 3}.get(partition, 36)  # (v, c): 18 x 2 folders
    for pg_key, py_key in zip(pg_keys, py_keys):
        assert body(s3, bucket, pg_key) == body(s3, bucket, py_key), pg_key


def test_unnamed_subquery_in_from_as_redshift_allows(run, rsdata, s3, bucket, source):
    # PostgreSQL 15 wants an alias on a FROM subquery; Redshift does not, and its own UNLOAD
    # error message suggests exactly this form for a LIMIT.
    desc = ok(run("SELECT a, b FROM (SELECT 1 AS a) JOIN (SELECT 2 AS b) ON true"))
    assert rsdata.get_statement_result(Id=desc["Id"])["Records"] == [[{"longValue": 1}, {"longValue": 2}]]
    ok(run(f"UNLOAD ('SELECT * FROM (SELECT id FROM src ORDER BY id LIMIT 2)') TO 's3://{bucket}/sub/' "
           "IAM_ROLE default"))
    assert body(s3, bucket, "sub/0000_part_00") == b"1\n2\n"


def test_csv_null_and_empty_string_round_trip_through_copy_emptyasnull(run, rsdata, s3, bucket):
    ok(run("CREATE TABLE ne (id INT, v VARCHAR(10), n INT)"))
    ok(run("INSERT INTO ne VALUES (1, NULL, NULL), (2, '', 2), (3, 'x', NULL)"))
    ok(run(f"UNLOAD ('SELECT * FROM ne ORDER BY id') TO 's3://{bucket}/ne/' IAM_ROLE default CSV MANIFEST"))
    assert body(s3, bucket, "ne/0000_part_00") == b'1,,\n2,"",2\n3,x,\n'  # NULL: empty field; '': ""
    for n, copy_opts in enumerate(("CSV EMPTYASNULL", "CSV NULL AS ''", "CSV EMPTYASNULL MAXERROR 1")):
        ok(run(f"CREATE TABLE back{n} (id INT, v VARCHAR(10), n INT)"))
        ok(run(f"COPY back{n} FROM 's3://{bucket}/ne/manifest' IAM_ROLE default {copy_opts} MANIFEST"))
        desc = ok(run(f"SELECT id, v IS NULL, v, n IS NULL FROM back{n} ORDER BY id"))
        rows = [[next(iter(f.values())) for f in r] for r in rsdata.get_statement_result(Id=desc["Id"])["Records"]]
        assert rows == [[1, True, True, True], [2, False, "", False], [3, False, "x", True]], copy_opts


@pytest.mark.parametrize("options", ["MAXFILESIZE 5 MB", "CSV MAXFILESIZE 5 MB PARALLEL OFF MANIFEST",
                                     "GZIP MAXFILESIZE 5 MB", "FORMAT JSON MAXFILESIZE 5 MB", "", "CSV BZIP2"])
def test_a_query_failing_after_parts_were_stored_leaves_no_files(run, s3, bucket, keys, options):
    # ~12.6 MB of text; the last row divides by zero, after earlier parts (and, without MAXFILESIZE,
    # parts of a multipart upload) have gone to S3.
    ok(run("CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 60000) g"))
    s3.put_object(Bucket=bucket, Key="fail/keep.txt", Body=b"not ours")
    desc = run(f"UNLOAD ('SELECT id, pad, 10 / (60000 - id) AS boom FROM big') TO 's3://{bucket}/fail/' "
               f"IAM_ROLE default ALLOWOVERWRITE {options}")
    assert desc["Status"] == "FAILED" and desc["Error"] == "ERROR: division by zero"
    assert keys("fail/") == ["fail/keep.txt"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_value_too_wide_for_fixedwidth_midway_leaves_no_files(run, bucket, keys):
    ok(run("CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 60000) g"))
    desc = run(f"UNLOAD ('SELECT id, CASE WHEN id = 60000 THEN pad || ''!'' ELSE pad END FROM big') "
               f"TO 's3://{bucket}/fw/' IAM_ROLE default FIXEDWIDTH 'id:5,pad:200' MAXFILESIZE 5 MB")
    assert desc["Status"] == "FAILED" and "FIXEDWIDTH column 'pad'" in desc["Error"]
    assert keys("fw/") == []


def test_parquet_rowgroupsize_sets_the_row_group_bytes(run, s3, bucket):
    pq = pytest.importorskip("pyarrow.parquet")
    # ~40 MB of (uncompressed) strings: two 32 MB row groups by default, one with ROWGROUPSIZE 128 MB.
    ok(run("CREATE TABLE wide AS SELECT g AS id, repeat('x', 1000) AS pad FROM generate_series(1, 40000) g"))
    for n, option in enumerate(("", "ROWGROUPSIZE 128 MB")):
        ok(run(f"UNLOAD ('SELECT * FROM wide') TO 's3://{bucket}/rg{n}/' IAM_ROLE default PARQUET {option}"))
    groups = [pq.ParquetFile(io.BytesIO(body(s3, bucket, f"rg{n}/0000_part_00.parquet"))).metadata for n in (0, 1)]
    assert [g.num_row_groups for g in groups] == [2, 1] and [g.num_rows for g in groups] == [40000, 40000]
    assert 30000 < groups[0].row_group(0).num_rows < 40000  # ~32 MB of ~1 KB rows
    desc = run(f"UNLOAD ('SELECT 1') TO 's3://{bucket}/rg2/' IAM_ROLE default CSV ROWGROUPSIZE 64 MB")
    assert desc["Status"] == "FAILED" and "ROWGROUPSIZE" in desc["Error"]


@pytest.mark.parametrize("option,decompress", [("", lambda data: data), ("ZSTD", lambda data: __import__(
    "zstandard").ZstdDecompressor().decompressobj().decompress(data))])
def test_a_large_file_goes_up_as_a_multipart_upload(run, s3, bucket, keys, option, decompress):
    # ~24 MB of hex text: more than one 8 MB part even compressed, so it streams as a multipart upload.
    ok(run("CREATE TABLE hex AS SELECT g AS id, md5(g::text) || md5((-g)::text) || md5((g * 7)::text) || "
           "md5((g * 11)::text) || md5((g * 13)::text) || md5((g * 17)::text) AS pad FROM generate_series(1, 120000) g"))
    ok(run(f"UNLOAD ('SELECT * FROM hex ORDER BY id') TO 's3://{bucket}/mp/' IAM_ROLE default {option} "
           "MANIFEST VERBOSE"))
    key = [k for k in keys("mp/") if "manifest" not in k][0]
    data, head = body(s3, bucket, key), s3.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').rsplit("-", 1)[-1].isdigit() and "-" in head["ETag"]  # a multipart ETag
    entry = json.loads(body(s3, bucket, "mp/manifest"))["entries"][0]
    assert entry["meta"] == {"content_length": len(data), "record_count": 120000}
    lines = decompress(data).split(b"\n")
    assert len(lines) == 120001 and lines[0].startswith(b"1|c4ca4238") and lines[-2].startswith(b"120000|")
