"""The UNLOAD statement parser: grammar, defaults, noise words and refused combinations."""

from __future__ import annotations

import pytest

from devstack.redshift.contracts import RedshiftError, UnsupportedSql
from devstack.redshift.unloadopts import MB, FixedWidthColumn, check_query, parse_fixed_width, parse_unload

HEAD = "UNLOAD ('select * from t') TO 's3://b/p/' IAM_ROLE default"


def parse(options: str = ""):
    return parse_unload(f"{HEAD} {options}")


def test_defaults():
    spec = parse()
    assert (spec.query, spec.destination) == ("select * from t", "s3://b/p/")
    assert spec.fmt == "TEXT" and spec.effective_delimiter == "|" and spec.null_as is None
    assert spec.parallel and not spec.manifest and spec.compression is None and spec.partition_by == []
    assert spec.max_file_size == int(6.2 * 1024 * MB)


def test_query_quotes_and_escapes_are_unquoted():
    spec = parse_unload("unload ('select * from t where a = ''x'' and b = \\'y\\'') to 's3://b/p' iam_role default;")
    assert spec.query == "select * from t where a = 'x' and b = 'y'"


@pytest.mark.parametrize("options,fmt,delimiter", [
    ("CSV", "CSV", ","), ("FORMAT CSV", "CSV", ","), ("FORMAT AS CSV DELIMITER AS ';'", "CSV", ";"),
    ("FORMAT AS PARQUET", "PARQUET", "|"), ("json", "JSON", "|"), ("DELIMITER '\\t'", "TEXT", "\t"),
    ("DELIMITER '\\174'", "TEXT", "|"),
])
def test_formats_and_delimiters(options, fmt, delimiter):
    spec = parse(options)
    assert (spec.fmt, spec.effective_delimiter) == (fmt, delimiter)


def test_every_option_at_once():
    spec = parse("HEADER NULL AS 'NIL' ADDQUOTES ESCAPE BZIP2 PARALLEL FALSE MAXFILESIZE AS 1.5 GB "
                 "MANIFEST VERBOSE ALLOWOVERWRITE ENCRYPTED AUTO KMS_KEY_ID 'alias/x' REGION AS 'eu-west-1' "
                 "EXTENSION '.txt'")
    assert spec.header and spec.null_as == "NIL" and spec.add_quotes and spec.escape
    assert spec.compression == "BZIP2" and not spec.parallel and spec.max_file_size == int(1.5 * 1024 * MB)
    assert spec.manifest and spec.verbose and spec.allow_overwrite and spec.encrypted
    assert (spec.kms_key_id, spec.region, spec.row_group_size, spec.extension) == ("alias/x", "eu-west-1", None, "txt")


def test_rowgroupsize_is_parquet_only_and_between_32_and_128_mb():
    assert parse("FORMAT PARQUET ROWGROUPSIZE 64 MB").row_group_size == 64 * MB
    assert parse("ROWGROUPSIZE AS 128 PARQUET").row_group_size == 128 * MB
    for options, match in (("ROWGROUPSIZE 64 MB", "ROWGROUPSIZE can only be used with FORMAT PARQUET"),
                           ("CSV ROWGROUPSIZE 64 MB", "ROWGROUPSIZE can only be used with FORMAT PARQUET"),
                           ("PARQUET ROWGROUPSIZE 16 MB", "ROWGROUPSIZE must be between 32 MB and 128 MB"),
                           ("PARQUET ROWGROUPSIZE 1 GB", "ROWGROUPSIZE must be between 32 MB and 128 MB")):
        with pytest.raises(RedshiftError, match=match):
            parse(options)


@pytest.mark.parametrize("options,parallel", [("PARALLEL", True), ("PARALLEL ON", True), ("PARALLEL TRUE", True),
                                              ("PARALLEL OFF", False), ("parallel false", False)])
def test_parallel(options, parallel):
    assert parse(options).parallel is parallel


def test_maxfilesize_units():
    assert parse("MAXFILESIZE 5").max_file_size == 5 * MB
    assert parse("MAXFILESIZE 100 MB").max_file_size == 100 * MB
    assert parse("MAXFILESIZE 6.2 GB").max_file_size == int(6.2 * 1024 * MB)


def test_manifest_without_verbose_and_partition_by():
    spec = parse('MANIFEST PARTITION BY (Day, "Kind") INCLUDE')
    assert spec.manifest and not spec.verbose
    assert spec.partition_by == ["day", "Kind"] and spec.partition_include
    assert parse("PARTITION BY (a)").partition_include is False


@pytest.mark.parametrize("auth", [
    "IAM_ROLE 'arn:aws:iam::1:role/r'", "iam_role default",
    "ACCESS_KEY_ID 'a' SECRET_ACCESS_KEY 'b'", "ACCESS_KEY_ID 'a' SECRET_ACCESS_KEY 'b' SESSION_TOKEN 'c'",
    "CREDENTIALS 'aws_iam_role=arn:aws:iam::1:role/r'", "WITH CREDENTIALS AS 'aws_access_key_id=a;aws_secret_access_key=b'",
])
def test_authorization_forms(auth):
    assert parse_unload(f"UNLOAD ('select 1') TO 's3://b/p' {auth} CSV").fmt == "CSV"


def test_authorization_is_required():
    with pytest.raises(RedshiftError, match="authorization"):
        parse_unload("UNLOAD ('select 1') TO 's3://b/p' CSV")


def test_fixedwidth_spec():
    assert parse("FIXEDWIDTH AS 'id:3, name:10'").fixed_width == [FixedWidthColumn("id", 3), FixedWidthColumn("name", 10)]
    assert parse_fixed_width("0:1") == [FixedWidthColumn("0", 1)]
    for bad in ("id", "id:x", "id:0", "id:3,"):
        with pytest.raises(RedshiftError, match="FIXEDWIDTH"):
            parse_fixed_width(bad)


@pytest.mark.parametrize("options,first,second", [
    ("CLEANPATH ALLOWOVERWRITE", "CLEANPATH", "ALLOWOVERWRITE"),
    ("PARQUET DELIMITER ','", "PARQUET", "DELIMITER"),
    ("PARQUET ADDQUOTES", "PARQUET", "ADDQUOTES"),
    ("PARQUET ESCAPE", "PARQUET", "ESCAPE"),
    ("NULL AS 'x' PARQUET", "PARQUET", "NULL AS"),
    ("PARQUET HEADER", "PARQUET", "HEADER"),
    ("PARQUET GZIP", "PARQUET", "GZIP"),
    ("ZSTD FORMAT PARQUET", "PARQUET", "ZSTD"),
    ("PARQUET FIXEDWIDTH 'a:1'", "PARQUET", "FIXEDWIDTH"),
    ("JSON HEADER", "JSON", "HEADER"),
    ("JSON DELIMITER ','", "JSON", "DELIMITER"),
    ("CSV ESCAPE", "CSV", "ESCAPE"),
    ("CSV FIXEDWIDTH 'a:1'", "CSV", "FIXEDWIDTH"),
    ("HEADER FIXEDWIDTH 'a:1'", "FIXEDWIDTH", "HEADER"),
    ("FIXEDWIDTH 'a:1' DELIMITER ','", "FIXEDWIDTH", "DELIMITER"),
    ("CSV PARQUET", "CSV", "PARQUET"),
    ("GZIP BZIP2", "GZIP", "BZIP2"),
])
def test_conflicting_options_name_both(options, first, second):
    with pytest.raises(RedshiftError, match=f"{first} cannot be used with {second}"):
        parse(options)


@pytest.mark.parametrize("options,match", [
    ("HEADER HEADER", "HEADER given twice"),
    ("MAXFILESIZE 4 MB", "MAXFILESIZE"),
    ("MAXFILESIZE 7 GB", "MAXFILESIZE"),
    ("DELIMITER '||'", "single character"),
    ("DELIMITER ',' NULL AS 'a,b'", "NULL AS"),
    ("PARTITION BY (a, a)", "twice"),
    ("PARTITION BY a", "PARTITION BY"),
    ("PARTITION BY (a b)", "\"b\""),
    ("GZIPP", 'near "GZIPP"'),
    ("NULL 5", 'near "5"'),
    ("FORMAT AVRO", 'near "AVRO"'),
    ("IAM_ROLE x", 'near "x"'),
    ("MAXFILESIZE big", 'near "big"'),
    ("= 1", 'near "="'),
    ("DELIMITER", "end of input: UNLOAD expected"),
])
def test_errors_name_the_option_or_token(options, match):
    with pytest.raises(RedshiftError, match=match):
        parse(options)


def test_client_side_encryption_is_refused():
    with pytest.raises(UnsupportedSql, match="devstack does not support UNLOAD option MASTER_SYMMETRIC_KEY"):
        parse("MASTER_SYMMETRIC_KEY 'k' ENCRYPTED")
    with pytest.raises(UnsupportedSql, match="MASTER_SYMMETRIC_KEY"):
        parse_unload("UNLOAD ('select 1') TO 's3://b/p' CREDENTIALS 'aws_iam_role=r;master_symmetric_key=k'")


@pytest.mark.parametrize("sql,match", [
    ("UNLOAD 'select 1' TO 's3://b/p' IAM_ROLE default", "\\('select"),
    ("UNLOAD (select 1) TO 's3://b/p' IAM_ROLE default", "quoted string"),
    ("UNLOAD ('select 1' TO 's3://b/p' IAM_ROLE default", 'near "TO"'),
    ("UNLOAD ('select 1') 's3://b/p' IAM_ROLE default", "TO"),
    ("UNLOAD ('select 1') TO 'https://b/p' IAM_ROLE default", "s3://"),
    ("UNLOAD ('select 1') TO", "end of input"),
    ("SELECT 1", "not an UNLOAD"),
])
def test_statement_shape_errors(sql, match):
    with pytest.raises(RedshiftError, match=match):
        parse_unload(sql)


@pytest.mark.parametrize("query", [
    "select * from t limit 10", "SELECT TOP 5 * FROM t", "select distinct top 5 a from t",
    "select a from t union select b from u limit 1",
])
def test_outer_limit_and_top_are_refused(query):
    with pytest.raises(RedshiftError, match="not supported in UNLOAD"):
        check_query(query)


@pytest.mark.parametrize("query", [
    "select * from (select * from t limit 10) as x", "with c as (select * from t limit 3) select * from c",
    "select 'limit 5' as note, top from t", "select a from t where b in (select top 3 b from u)",
])
def test_inner_limit_and_lookalikes_pass(query):
    check_query(query)
