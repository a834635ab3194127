"""The devstack COPY parser and value conversions (pure parts, no PostgreSQL)."""

from __future__ import annotations

import pytest

from devstack.redshift.contracts import RedshiftError, UnsupportedSql
from devstack.redshift.copyconvert import Column, make_converter, redshift_format
from devstack.redshift.copyformats import FaultError
from devstack.redshift.copyopts import parse_copy, unquote_string


def test_full_statement_with_every_kind_of_option():
    spec = parse_copy("COPY sales.\"Orders\" (id, \"Name\") FROM 's3://b/in/x' IAM_ROLE 'arn:aws:iam::1:role/r' "
                      "FORMAT AS CSV QUOTE AS '''' DELIMITER ';' IGNOREHEADER 1 GZIP MAXERROR AS 5 "
                      "NULL AS 'NA' DATEFORMAT 'auto' TIMEFORMAT 'epochsecs' ACCEPTINVCHARS AS '^' "
                      "EMPTYASNULL BLANKSASNULL TRUNCATECOLUMNS COMPUPDATE OFF STATUPDATE ON REGION 'us-east-1';")
    assert spec.table == 'sales."Orders"' and spec.columns == ["id", "Name"]
    assert (spec.fmt, spec.quote, spec.delimiter, spec.ignore_header) == ("CSV", "'", ";", 1)
    assert (spec.compression, spec.max_error, spec.null_as) == ("GZIP", 5, "NA")
    assert (spec.date_format, spec.time_format, spec.accept_inv_chars) == ("auto", "epochsecs", "^")
    assert {"EMPTYASNULL", "BLANKSASNULL", "TRUNCATECOLUMNS"} <= spec.flags


def test_defaults_and_credentials_forms():
    spec = parse_copy("copy t from 's3://b/k' credentials 'aws_iam_role=arn:aws:iam::1:role/r' manifest")
    assert spec.fmt == "TEXT" and spec.effective_delimiter == "|" and spec.has("MANIFEST")
    spec = parse_copy("COPY t FROM 's3://b/k' ACCESS_KEY_ID 'a' SECRET_ACCESS_KEY 's' SESSION_TOKEN 't' JSON 'auto ignorecase'")
    assert spec.fmt == "JSON" and spec.json_paths == "auto ignorecase"


@pytest.mark.parametrize("text,value", [(r"'\t'", "\t"), (r"'\011'", "\t"), ("'it''s'", "it's"), (r"'a\\b'", "a\\b")])
def test_string_escapes(text, value):
    assert unquote_string(text) == value


@pytest.mark.parametrize("sql,needle", [
    ("COPY t FROM 's3://b/k' CSV", "authorization"),
    ("COPY t FROM 's3://b/k' IAM_ROLE default CSV ESCAPE", "ESCAPE"),
    ("COPY t FROM 's3://b/k' IAM_ROLE default PARQUET GZIP", "GZIP"),
    ("COPY t FROM 's3://b/k' IAM_ROLE default DELIMITER 'ab'", "single character"),
    ("COPY t FROM 's3://b/k' IAM_ROLE default IGNOREHEADER x", "whole number"),
    ("COPY t FROM 's3://b/k' IAM_ROLE default JSON", "quoted value"),
    ("COPY t FROM 's3://b/k' IAM_ROLE default IGNOREALLERRORS MAXERROR 3", "IGNOREALLERRORS"),
])
def test_bad_statements_name_the_problem(sql, needle):
    with pytest.raises(RedshiftError) as info:
        parse_copy(sql)
    assert needle in info.value.message


@pytest.mark.parametrize("sql,construct", [
    ("COPY t FROM 's3://b/k' IAM_ROLE default FORMAT AS ORC", "ORC"),
    ("COPY t FROM 's3://b/k' IAM_ROLE default LZOP", "LZOP"),
    ("COPY t FROM 'dynamodb://tbl' IAM_ROLE default", "dynamodb"),
    ("COPY t FROM 's3://b/k' IAM_ROLE default FIXEDWIDTH 'a:1'", "FIXEDWIDTH"),
    ("COPY t FROM 's3://b/k' IAM_ROLE default WHATEVER", "WHATEVER"),
])
def test_unsupported_constructs_are_named(sql, construct):
    with pytest.raises(UnsupportedSql) as info:
        parse_copy(sql)
    assert construct in info.value.message


def _conv(typname: str, typmod: int = -1, options: str = "", not_null: bool = False):
    spec = parse_copy(f"COPY t FROM 's3://b/k' IAM_ROLE default {options}")
    return make_converter(Column("c", typname, typname, typmod, not_null, None), spec)


def test_integer_checks_and_codes():
    conv = _conv("int4")
    assert conv(" 42 ") == "42" and conv("") == "\\N" and conv("\\N") == "\\N"
    for bad, code in (("4x", 1207), ("99999999999", 1216)):
        with pytest.raises(FaultError) as info:
            conv(bad)
        assert info.value.fault.code == code and info.value.fault.column == "c" and info.value.fault.value == bad


def test_numeric_truncates_unless_roundec_and_checks_precision():
    typmod = ((6 << 16) | 2) + 4  # DECIMAL(6,2)
    assert _conv("numeric", typmod)("12.349") == "12.34"
    assert _conv("numeric", typmod, "ROUNDEC")("12.345") == "12.35"
    with pytest.raises(FaultError):
        _conv("numeric", typmod)("12345.6")


def test_varchar_counts_bytes_and_escapes_for_postgres_copy():
    conv = _conv("varchar", 4 + 4)
    assert conv("a\tb\\") == "a\\tb\\\\"
    with pytest.raises(FaultError) as info:
        conv("ééé")
    assert info.value.fault.code == 1204
    assert _conv("varchar", 8, "TRUNCATECOLUMNS")("ééé") == "éé"


def test_null_rules_for_character_columns():
    assert _conv("varchar", 14)("") == ""
    assert _conv("varchar", 14, "EMPTYASNULL")("") == "\\N"
    assert _conv("varchar", 14, "BLANKSASNULL")("  ") == "\\N"
    with pytest.raises(FaultError) as info:
        _conv("varchar", 14, "NULL AS 'x'", not_null=True)("x")
    assert info.value.fault.code == 1213


def test_dates_and_timestamps():
    assert _conv("date")("2026-3-5") == "2026-03-05"
    assert _conv("date", options="DATEFORMAT 'DD/MM/YYYY'")("05/03/2026") == "2026-03-05"
    assert _conv("date", options="DATEFORMAT 'auto'")("Mar 5, 2026") == "2026-03-05"
    assert _conv("date", options="ACCEPTANYDATE")("garbage") == "\\N"
    assert _conv("timestamp")("2026-01-02T03:04:05+02:00") == "2026-01-02 01:04:05"
    assert _conv("timestamp", options="TIMEFORMAT 'epochmillisecs'")("1000") == "1970-01-01 00:00:01"
    with pytest.raises(FaultError) as info:
        _conv("date")("2026-02-30")
    assert info.value.fault.code == 1205


def test_redshift_format_translation():
    assert redshift_format("YYYY-MM-DD HH24:MI:SS") == "%Y-%m-%d %H:%M:%S"
    assert redshift_format("DD-MON-YY") == "%d-%b-%y"
