"""COPY on devstack's Redshift: formats, compression, options and load errors, end to end
through the Data API (boto3 `redshift-data` → emulator → PostgreSQL, files in moto S3)."""

from __future__ import annotations

import bz2
import gzip
import io
import json

import pytest

pytest.importorskip("devstack.redshift.copy")


@pytest.fixture()
def run(run):
    """The conftest `run`, without asserting success: these tests check failures too."""
    return lambda sql, **kwargs: run(sql, expect=None, **kwargs)


@pytest.fixture()
def q(rsdata, run):
    """q(sql) → result rows as plain Python values (None for NULL)."""
    def query(sql: str) -> list[list[object]]:
        desc = run(sql)
        assert desc["Status"] == "FINISHED", desc.get("Error")
        out = []
        for rec in rsdata.get_statement_result(Id=desc["Id"])["Records"]:
            out.append([None if f.get("isNull") else next(iter(f.values())) for f in rec])
        return out
    return query


@pytest.fixture()
def put(s3, bucket):
    def put_object(key: str, body: bytes | str) -> str:
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)
        return f"s3://{bucket}/{key}"
    return put_object


def test_csv_with_header_quotes_newlines_and_null_handling(run, q, put):
    run("CREATE TABLE t (id INT, name VARCHAR(30), note VARCHAR(30), amount DECIMAL(8,2))")
    url = put("csv/a.csv", 'id,name,note,amount\n1,"Smith, J","line1\nline2",1.50\n2,,"",\n3,"say ""hi""",ü,2.999\n')
    desc = run(f"COPY t FROM '{url}' IAM_ROLE default CSV IGNOREHEADER 1")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert desc["ResultRows"] == 3
    rows = q("SELECT id, name, note, amount FROM t ORDER BY id")
    # empty varchar loads as '' (not NULL) without EMPTYASNULL; extra scale is truncated, not rounded
    assert rows == [[1, "Smith, J", "line1\nline2", "1.50"], [2, "", "", None], [3, 'say "hi"', "ü", "2.99"]]


def test_emptyasnull_blanksasnull_and_null_as(run, q, put):
    run("CREATE TABLE t (a VARCHAR(10), b VARCHAR(10), c VARCHAR(10))")
    url = put("n/a.txt", "|  |NULL\nx|y|z\n")
    desc = run(f"COPY t FROM '{url}' IAM_ROLE default DELIMITER '|' EMPTYASNULL BLANKSASNULL NULL AS 'NULL'")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT a, b, c FROM t ORDER BY a NULLS FIRST") == [[None, None, None], ["x", "y", "z"]]


@pytest.mark.parametrize("codec,compress", [("GZIP", gzip.compress), ("BZIP2", bz2.compress), ("ZSTD", None)])
def test_compressed_files_from_a_prefix(run, q, put, bucket, codec, compress):
    if compress is None:
        zstandard = pytest.importorskip("zstandard")
        compress = zstandard.ZstdCompressor().compress
    run("CREATE TABLE t (id INT)")
    put("z/part-1", compress(b"1\n2\n"))
    put("z/part-2", compress(b"3\n"))
    put("z/other", b"not compressed, not under the prefix")
    desc = run(f"COPY t FROM 's3://{bucket}/z/part' IAM_ROLE default {codec}")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT count(*), sum(id) FROM t") == [[3, 6]]


def test_manifest_with_mandatory_and_optional_entries(run, q, put, bucket):
    run("CREATE TABLE t (id INT)")
    a = put("m/a.csv", "1\n")
    b = put("m/b.csv", "2\n")
    manifest = {"entries": [{"url": a, "mandatory": True}, {"url": b}, {"url": f"s3://{bucket}/m/gone.csv"}]}
    url = put("m/load.manifest", json.dumps(manifest))
    desc = run(f"COPY t FROM '{url}' IAM_ROLE default CSV MANIFEST")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT count(*) FROM t") == [[2]]
    manifest["entries"][2]["mandatory"] = True
    url = put("m/strict.manifest", json.dumps(manifest))
    desc = run(f"COPY t FROM '{url}' IAM_ROLE default CSV MANIFEST")
    assert desc["Status"] == "FAILED" and "gone.csv" in desc["Error"]
    url = put("m/none.manifest", json.dumps({"entries": [{"url": f"s3://{bucket}/m/gone.csv"}]}))
    desc = run(f"COPY t FROM '{url}' IAM_ROLE default CSV MANIFEST")
    assert desc["Status"] == "FAILED" and "no file that exists" in desc["Error"]
    assert q("SELECT count(*) FROM t") == [[2]]


def test_missing_prefix_fails_clearly(run):
    run("CREATE TABLE t (id INT)")
    desc = run("COPY t FROM 's3://it-nowhere-bucket/none/' IAM_ROLE default CSV")
    assert desc["Status"] == "FAILED" and "does not exist" in desc["Error"]


def test_json_auto_jsonpaths_and_defaults(run, q, put):
    run("CREATE TABLE ev (id INT, kind VARCHAR(10), payload VARCHAR(100), ok BOOLEAN, src VARCHAR(10) DEFAULT 'web')")
    url = put("j/a.json", '{"id": 1, "kind": "click", "payload": {"x": [1, 2]}, "ok": true}\n'
                          '{"id": 2,\n "kind": null, "ok": false, "src": "app"}  {"id": 3}')
    desc = run(f"COPY ev FROM '{url}' IAM_ROLE default FORMAT AS JSON 'auto'")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT id, kind, payload, ok, src FROM ev ORDER BY id") == [
        [1, "click", '{"x":[1,2]}', True, "web"], [2, None, None, False, "app"], [3, None, None, None, "web"]]
    paths = put("j/paths.json", json.dumps({"jsonpaths": ["$.a.id", "$['b'][0]"]}))
    run("CREATE TABLE p (id INT, kind VARCHAR(10))")
    url = put("j2/b.json", '{"a": {"id": 7}, "b": ["deep"]}')
    desc = run(f"COPY p FROM '{url}' IAM_ROLE default JSON '{paths}'")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT id, kind FROM p") == [[7, "deep"]]


def test_parquet_by_position(run, q, put):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    run("CREATE TABLE pq_t (id BIGINT, name VARCHAR(10), at TIMESTAMP, flag BOOLEAN)")
    import datetime as dt
    table = pa.table({"id": [1, 2], "name": ["a", None], "at": [dt.datetime(2026, 1, 2, 3, 4, 5), None],
                      "flag": [True, False]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    url = put("pq/a.parquet", buf.getvalue())
    desc = run(f"COPY pq_t FROM '{url}' IAM_ROLE default FORMAT AS PARQUET")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT id, name, at::text, flag FROM pq_t ORDER BY id") == [[1, "a", "2026-01-02 03:04:05", True],
                                                                        [2, None, None, False]]


def test_date_and_time_formats(run, q, put):
    run("CREATE TABLE d2 (day DATE, at TIMESTAMP)")
    url = put("d2/a.txt", "03/15/2026|15.03.2026 10:11:12\n")
    desc = run(f"COPY d2 FROM '{url}' IAM_ROLE default DATEFORMAT 'MM/DD/YYYY' TIMEFORMAT 'DD.MM.YYYY HH24:MI:SS'")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT day::text, at::text FROM d2") == [["2026-03-15", "2026-03-15 10:11:12"]]
    run("CREATE TABLE d3 (at TIMESTAMP)")
    url = put("d3/a.txt", "1767225600\n")
    desc = run(f"COPY d3 FROM '{url}' IAM_ROLE default TIMEFORMAT 'epochsecs'")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT at::text FROM d3") == [["2026-01-01 00:00:00"]]


def test_varchar_length_is_in_bytes_and_truncatecolumns(run, q, put):
    run("CREATE TABLE s (v VARCHAR(4))")
    url = put("s/a.txt", "ééé\n")  # 3 characters, 6 bytes
    desc = run(f"COPY s FROM '{url}' IAM_ROLE default")
    assert desc["Status"] == "FAILED"
    errors = q("SELECT err_code, TRIM(colname), TRIM(err_reason) FROM stl_load_errors WHERE query = "
               f"{desc['RedshiftQueryId']}")
    assert errors[0][0] == 1204 and errors[0][1] == "v" and "exceeds DDL length" in errors[0][2]
    desc = run(f"COPY s FROM '{url}' IAM_ROLE default TRUNCATECOLUMNS")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT v FROM s") == [["éé"]]


def test_maxerror_skips_bad_rows_and_records_them(rsdata, run, q, put):
    run("CREATE TABLE m (id INT, day DATE)")
    url = put("me/a.csv", "1,2026-01-01\nx,2026-01-02\n3,2026-13-40\n4,2026-01-04\n")
    desc = run(f"COPY m FROM '{url}' IAM_ROLE default CSV MAXERROR 1")
    assert desc["Status"] == "FAILED"  # two bad rows > MAXERROR 1
    assert q("SELECT count(*) FROM m") == [[0]]
    desc = run(f"COPY m FROM '{url}' IAM_ROLE default CSV MAXERROR 2", SessionKeepAliveSeconds=60)
    assert desc["Status"] == "FINISHED", desc.get("Error")
    same_session = run("SELECT pg_last_copy_count()", SessionId=desc["SessionId"])
    assert rsdata.get_statement_result(Id=same_session["Id"])["Records"] == [[{"longValue": 2}]]
    assert desc["ResultRows"] == 2
    errors = q("SELECT line_number, TRIM(column_name), error_code, TRIM(file_name) FROM sys_load_error_detail "
               f"WHERE query_id = {desc['RedshiftQueryId']} ORDER BY line_number")
    assert errors == [[2, "id", 1207, url], [3, "day", 1205, url]]
    assert q("SELECT pg_last_copy_count()") == [[0]]  # a new Data API session knows of no COPY


def test_column_count_and_not_null_errors(run, q, put):
    run("CREATE TABLE c (a INT NOT NULL, b INT)")
    for body, code in (("1|2|3\n", 1202), ("1\n", 1214), ("|2\n", 1213)):
        url = put("cc/a.txt", body)
        desc = run(f"COPY c FROM '{url}' IAM_ROLE default")
        assert desc["Status"] == "FAILED", body
        assert q(f"SELECT err_code FROM stl_load_errors WHERE query = {desc['RedshiftQueryId']}") == [[code]]
    url = put("cc/b.txt", "1\n")
    desc = run(f"COPY c FROM '{url}' IAM_ROLE default FILLRECORD")
    assert desc["Status"] == "FINISHED", desc.get("Error")


def test_column_list_identity_and_explicit_ids(run, q, put):
    run("CREATE TABLE ident (id BIGINT IDENTITY(1,1), name VARCHAR(10), at TIMESTAMP DEFAULT GETDATE())")
    url = put("i/a.txt", "alpha\nbeta\n")
    desc = run(f"COPY ident (name) FROM '{url}' IAM_ROLE default")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT id, name, at IS NOT NULL FROM ident ORDER BY id") == [[1, "alpha", True], [2, "beta", True]]
    url = put("i2/a.txt", "10|gamma|2026-01-01 00:00:00\n")
    desc = run(f"COPY ident FROM '{url}' IAM_ROLE default EXPLICIT_IDS")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT id FROM ident WHERE name = 'gamma'") == [[10]]


def test_invalid_utf8_fails_or_is_replaced(run, q, put):
    run("CREATE TABLE u (v VARCHAR(10))")
    url = put("u/a.txt", b"ok\nbad\xff\n")
    desc = run(f"COPY u FROM '{url}' IAM_ROLE default")
    assert desc["Status"] == "FAILED"
    assert q(f"SELECT err_code, line_number FROM stl_load_errors WHERE query = {desc['RedshiftQueryId']}") == [[1220, 2]]
    desc = run(f"COPY u FROM '{url}' IAM_ROLE default ACCEPTINVCHARS AS '^'")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT v FROM u ORDER BY v") == [["bad^"], ["ok"]]


def test_escape_and_removequotes_in_text_format(run, q, put):
    run("CREATE TABLE e (a VARCHAR(20), b VARCHAR(20))")
    url = put("e/a.txt", "pipe\\|inside|multi\\\nline\n")
    desc = run(f"COPY e FROM '{url}' IAM_ROLE default ESCAPE")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT a, b FROM e") == [["pipe|inside", "multi\nline"]]
    run("CREATE TABLE r (a VARCHAR(20), b VARCHAR(20))")
    url = put("r/a.txt", '"a|b"|"c"\n')
    desc = run(f"COPY r FROM '{url}' IAM_ROLE default REMOVEQUOTES")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT a, b FROM r") == [["a|b", "c"]]


def test_wrong_compression_and_unsupported_options_fail_clearly(run, put):
    run("CREATE TABLE w (id INT)")
    url = put("w/a.csv", "1\n")
    desc = run(f"COPY w FROM '{url}' IAM_ROLE default GZIP")
    assert desc["Status"] == "FAILED" and "GZIP" in desc["Error"] and "w/a.csv" in desc["Error"]
    desc = run(f"COPY w FROM '{url}' IAM_ROLE default FORMAT AS ORC")
    assert desc["Status"] == "FAILED" and "ORC" in desc["Error"]
    desc = run(f"COPY w FROM '{url}' CSV")
    assert desc["Status"] == "FAILED" and "authorization" in desc["Error"]
    desc = run(f"COPY nope FROM '{url}' IAM_ROLE default CSV")
    assert desc["Status"] == "FAILED" and '"nope" does not exist' in desc["Error"]


def test_a_damaged_gzip_file_fails_the_copy_naming_the_file(run, q, put):
    # ISA-L's gunzip raises its own error type for a bad deflate block: still a clear COPY error.
    import gzip

    run("CREATE TABLE dz (id INT)")
    data = gzip.compress(b"".join(b"%d\n" % i for i in range(50000)))
    damaged = {"dz/corrupt.csv.gz": data[:20] + b"\x00" * 64 + data[84:], "dz/truncated.csv.gz": data[: len(data) // 2]}
    for key, body in damaged.items():
        url = put(key, body)
        desc = run(f"COPY dz FROM '{url}' IAM_ROLE default GZIP")
        assert desc["Status"] == "FAILED" and "GZIP" in desc["Error"] and key in desc["Error"], desc.get("Error")
    assert q("SELECT count(*) FROM dz") == [[0]]


def test_noload_checks_without_loading(run, q, put):
    run("CREATE TABLE nl (id INT)")
    url = put("nl/a.txt", "1\n2\n")
    desc = run(f"COPY nl FROM '{url}' IAM_ROLE default NOLOAD")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT count(*) FROM nl") == [[0]]


def test_load_history_views(run, q, put):
    run("CREATE TABLE h (id INT)")
    url = put("h/a.txt", "1\n2\n")
    desc = run(f"COPY h FROM '{url}' IAM_ROLE default")
    qid = desc["RedshiftQueryId"]
    assert q(f"SELECT TRIM(filename), lines_scanned FROM stl_load_commits WHERE query = {qid}") == [[url, 2]]
    assert q(f"SELECT TRIM(status), loaded_rows FROM sys_load_history WHERE query_id = {qid}") == [["completed", 2]]


@pytest.fixture()
def fast_results(monkeypatch):
    """Records what each COPY's fast path returned (None = it handed over to the careful path)."""
    from devstack.redshift import copyfast

    seen: list[object] = []
    original = copyfast.load

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        seen.append(result)
        return result

    monkeypatch.setattr(copyfast, "load", spy)
    return seen


def test_fast_path_and_careful_path_load_the_same_rows(run, q, put, fast_results):
    run("CREATE TABLE f (id INT, name VARCHAR(20), amount DECIMAL(6,2), day DATE, ok BOOLEAN)")
    plain = "1,a b,1.50,2026-01-02,t\n2,,,,\n3,\"x,y\",2.00,2026-02-03,false\n"
    url = put("fast/a.csv", plain)
    assert run(f"COPY f FROM '{url}' IAM_ROLE default CSV")["Status"] == "FINISHED"
    assert fast_results[-1] == (3, [3])  # loaded by PostgreSQL's parser
    fast_rows = q("SELECT id, name, amount, day::text, ok FROM f ORDER BY id")
    run("TRUNCATE f")
    assert run(f"COPY f FROM '{url}' IAM_ROLE default CSV MAXERROR 1")["Status"] == "FINISHED"  # careful only
    assert q("SELECT id, name, amount, day::text, ok FROM f ORDER BY id") == fast_rows
    assert fast_rows[1] == [2, "", None, None, None]


@pytest.mark.parametrize("body,expected", [
    ("1,\\N\n", [[1, None]]),              # Redshift's NULL marker
    ("1,ééééééé\n", None),                 # 14 bytes > VARCHAR(10): must fail, as in Redshift
])
def test_data_the_fast_path_cannot_judge_goes_the_careful_way(run, q, put, fast_results, body, expected):
    run("CREATE TABLE g (id INT, v VARCHAR(10))")
    url = put("fast/g.csv", body)
    desc = run(f"COPY g FROM '{url}' IAM_ROLE default CSV")
    if expected is None and "é" in body:
        assert desc["Status"] == "FAILED" and fast_results[-1] is None
    elif expected is not None:
        assert fast_results[-1] is None and q("SELECT id, v FROM g") == expected


def test_extra_decimal_scale_is_truncated_on_either_path(run, q, put, fast_results):
    run("CREATE TABLE h2 (amount DECIMAL(6,2))")
    url = put("fast/h.csv", "1.239\n")
    assert run(f"COPY h2 FROM '{url}' IAM_ROLE default CSV")["Status"] == "FINISHED"
    assert fast_results[-1] is None and q("SELECT amount FROM h2") == [["1.23"]]


@pytest.mark.parametrize("options,expected", [
    # Without EMPTYASNULL an empty character field is '' in Redshift, quoted or not.
    ("CSV", [[1, "", None], [2, "", None], [3, "x", 3]]),
    ("CSV MAXERROR 1", [[1, "", None], [2, "", None], [3, "x", 3]]),
    # EMPTYASNULL (and NULL AS '') turn an *empty field* into NULL: two delimiters with nothing
    # between them. A quoted "" has its quotes between them: it is an empty string.
    ("CSV EMPTYASNULL", [[1, None, None], [2, "", None], [3, "x", 3]]),
    ("CSV NULL AS ''", [[1, None, None], [2, "", None], [3, "x", 3]]),
    # A quoted field never matches NULL AS (UNLOAD ... CSV quotes a value equal to it).
    ("CSV NULL AS 'nil'", [[1, "", None], [2, "nil", None], [3, "x", 3]]),
])
def test_csv_quoted_empty_string_is_not_an_empty_field(run, q, put, options, expected):
    run("CREATE TABLE e (id INT, v VARCHAR(10), n INT)")
    body = '1,,\n2,"",\n3,x,3\n' if "nil" not in options else '1,,\n2,"nil",nil\n3,x,3\n'
    url = put("empty/e.csv", body)
    desc = run(f"COPY e FROM '{url}' IAM_ROLE default {options}")
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert q("SELECT id, v, n FROM e ORDER BY id") == expected
