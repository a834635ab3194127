"""SQL rendering: exact statements per mode, quoting of hostile values, limits."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chalicelib import sql
from chalicelib.pipelines import BatchLimits, LoadPipeline, TableName, parse_catalog
from chalicelib.sql import CopyOption

ROLE = "arn:aws:iam::123456789012:role/RedshiftS3"
T = '"sales"."orders"'
S = '"stage_1"'


def pipeline(**changes: object) -> LoadPipeline:
    base = LoadPipeline(name="orders", warehouse="main", bucket="landing", prefix="orders/", suffix=None,
                        table=TableName("sales", "orders"), format="csv",
                        options=(CopyOption("IGNOREHEADER", "1"), CopyOption("GZIP")), mode="append", keys=(),
                        order_by=None, columns=None, post_load=(), batch=BatchLimits())
    return replace(base, **changes)


def plan(p: LoadPipeline, files: list[str], manifest: str | None = None, columns: list[str] | None = None,
         **kw: object) -> list[str]:
    return sql.render_load_plan(p, iam_role=ROLE, files=files, manifest_url=manifest, staging_name=S,
                                target_columns=columns, **kw)


# ----------------------------------------------------------------- quoting
@pytest.mark.parametrize("value, quoted", [("orders", '"orders"'), ("Orders", '"orders"'), ("_x9", '"_x9"'),
                                           ("a" * 127, '"' + "a" * 127 + '"')])
def test_quote_ident(value: str, quoted: str) -> None:
    assert sql.quote_ident(value) == quoted


@pytest.mark.parametrize("value", ['x"; drop table t; --', "o'brien", "a b", "1abc", "", "a" * 128, "a.b",
                                   "naïve", 'a"b'])
def test_quote_ident_rejects_anything_but_plain_identifiers(value: str) -> None:
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        sql.quote_ident(value)


def test_qualified() -> None:
    assert sql.qualified(TableName("sales", "orders")) == T


@pytest.mark.parametrize("value, quoted", [
    ("plain", "'plain'"), ("o'brien", "'o''brien'"), ("a\\b", "'a\\\\b'"), ("\\'", "'\\\\'''"),
    ('x"; drop table t; --', "'x\"; drop table t; --'"), ("", "''"), ("ünï", "'ünï'"),
])
def test_quote_literal(value: str, quoted: str) -> None:
    assert sql.quote_literal(value) == quoted


def test_quote_literal_rejects_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        sql.quote_literal("a\x00b")


# -------------------------------------------------------------- options
@pytest.mark.parametrize("text, keyword, argument, canonical", [
    ("ignoreheader 1", "IGNOREHEADER", "1", "IGNOREHEADER 1"),
    ("IGNOREHEADER AS 01", "IGNOREHEADER", "1", "IGNOREHEADER 1"),
    ("gzip", "GZIP", None, "GZIP"),
    ("DELIMITER AS '|'", "DELIMITER", "|", "DELIMITER '|'"),
    ("QUOTE ''''", "QUOTE", "'", "QUOTE ''''"),
    ("NULL AS ''", "NULL", "", "NULL AS ''"),
    ("NULL AS '\\N'", "NULL", "\\N", "NULL AS '\\\\N'"),
    ("ACCEPTINVCHARS", "ACCEPTINVCHARS", None, "ACCEPTINVCHARS"),
    ("acceptinvchars as '^'", "ACCEPTINVCHARS", "^", "ACCEPTINVCHARS AS '^'"),
    ("TIMEFORMAT 'epochmillisecs'", "TIMEFORMAT", "epochmillisecs", "TIMEFORMAT 'epochmillisecs'"),
    ("DATEFORMAT 'YYYY-MM-DD'", "DATEFORMAT", "YYYY-MM-DD", "DATEFORMAT 'YYYY-MM-DD'"),
    ("REGION 'eu-west-1'", "REGION", "eu-west-1", "REGION 'eu-west-1'"),
    ("compupdate off", "COMPUPDATE", "OFF", "COMPUPDATE OFF"),
    ("MAXERROR 10", "MAXERROR", "10", "MAXERROR 10"),
])
def test_parse_copy_option(text: str, keyword: str, argument: str | None, canonical: str) -> None:
    option = sql.parse_copy_option(text)
    assert (option.keyword, option.argument, option.text) == (keyword, argument, canonical)


@pytest.mark.parametrize("text", ["GZIP;", "DELIMITER '|'; DROP TABLE t", "IGNOREHEADER 1; --", "MANIFEST",
                                  "SESSION_TOKEN 'x'", "DELIMITER '|' GZIP", "DELIMITER |", "NULL AS 'a\x00'",
                                  "ACCEPTINVCHARS AS", "TIMEFORMAT ''"])
def test_parse_copy_option_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="COPY option"):
        sql.parse_copy_option(text)


# ------------------------------------------------------------------- COPY
def test_render_copy_exact() -> None:
    assert sql.render_copy(TableName("sales", "orders"), "s3://b/k.manifest", iam_role=ROLE, fmt="csv",
                           options=[CopyOption("IGNOREHEADER", "1"), CopyOption("GZIP")], manifest=True,
                           columns=["a", "B"]) == (
        f"COPY {T} (\"a\", \"b\") FROM 's3://b/k.manifest' IAM_ROLE '{ROLE}' FORMAT AS CSV MANIFEST IGNOREHEADER 1 GZIP")


@pytest.mark.parametrize("fmt, clause", [("csv", "FORMAT AS CSV"), ("json", "FORMAT AS JSON 'auto'"),
                                         ("parquet", "FORMAT AS PARQUET")])
def test_render_copy_formats(fmt: str, clause: str) -> None:
    text = sql.render_copy(S, "s3://b/k", iam_role=ROLE, fmt=fmt, options=[], manifest=False)
    assert text == f"COPY {S} FROM 's3://b/k' IAM_ROLE '{ROLE}' {clause}"


def test_render_copy_escapes_hostile_urls_and_roles() -> None:
    text = sql.render_copy(S, "s3://b/o'brien\\x.csv", iam_role="arn:aws:iam::1:role/a'b", fmt="csv", options=[],
                           manifest=False)
    assert "FROM 's3://b/o''brien\\\\x.csv' IAM_ROLE 'arn:aws:iam::1:role/a''b'" in text


@pytest.mark.parametrize("kwargs, message", [
    (dict(fmt="xml"), "unknown COPY format"), (dict(iam_role=""), "needs an IAM role"),
    (dict(source_url="/etc/passwd"), "s3://"), (dict(options=[CopyOption("GZIP")], fmt="parquet"), "not valid"),
    (dict(columns=['x"; drop']), "not a plain SQL identifier"),
])
def test_render_copy_rejects(kwargs: dict, message: str) -> None:
    args: dict = dict(source_url="s3://b/k", iam_role=ROLE, fmt="csv", options=[], manifest=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        sql.render_copy(S, args.pop("source_url"), **args)


def test_render_manifest() -> None:
    text = sql.render_manifest([("s3://b/a.csv", 10), ("s3://b/b c.csv", 20)])
    assert json.loads(text) == {"entries": [
        {"url": "s3://b/a.csv", "mandatory": True, "meta": {"content_length": 10}},
        {"url": "s3://b/b c.csv", "mandatory": True, "meta": {"content_length": 20}}]}
    with pytest.raises(ValueError):
        sql.render_manifest([])


# -------------------------------------------------------------- load plans
COPY_TAIL = f"IAM_ROLE '{ROLE}' FORMAT AS CSV"


def test_append_plan_from_a_manifest() -> None:
    assert plan(pipeline(post_load=("CALL sales.refresh()",)), ["s3://l/a", "s3://l/b"], "s3://m/j.manifest") == [
        f"LOCK {T}",
        f"COPY {T} FROM 's3://m/j.manifest' {COPY_TAIL} MANIFEST IGNOREHEADER 1 GZIP",
        "CALL sales.refresh()",
    ]


def test_append_plan_from_one_file_with_explicit_columns() -> None:
    assert plan(pipeline(columns=("a", "b"), options=()), ["s3://l/a.csv"]) == [
        f"LOCK {T}", f"COPY {T} (\"a\", \"b\") FROM 's3://l/a.csv' {COPY_TAIL}"]
    with pytest.raises(ValueError, match="manifest_url"):
        plan(pipeline(), ["s3://l/a", "s3://l/b"])


def test_replace_plan_deletes_then_copies_never_truncates() -> None:
    sqls = plan(pipeline(mode="replace", options=()), ["s3://l/a"], "s3://m/j.manifest")
    assert sqls == [f"LOCK {T}", f"DELETE FROM {T}", f"COPY {T} FROM 's3://m/j.manifest' {COPY_TAIL} MANIFEST"]
    assert not any("TRUNCATE" in s for s in sqls)


def test_upsert_plan_exact() -> None:
    p = pipeline(mode="upsert", keys=("order_id",), options=(), post_load=("CALL sales.refresh()",))
    sqls = plan(p, ["s3://m/1.manifest", "s3://m/2.manifest"], columns=["order_id", "status"])
    cols = '"order_id", "status"'
    assert sqls == [
        f"LOCK {T}",
        f"CREATE TEMP TABLE {S} (LIKE {T} INCLUDING DEFAULTS)",
        f'ALTER TABLE {S} ADD COLUMN "_rl_seq" INTEGER',
        f"COPY {S} ({cols}) FROM 's3://m/1.manifest' {COPY_TAIL} MANIFEST",
        f'UPDATE {S} SET "_rl_seq" = 1 WHERE "_rl_seq" IS NULL',
        f"COPY {S} ({cols}) FROM 's3://m/2.manifest' {COPY_TAIL} MANIFEST",
        f'UPDATE {S} SET "_rl_seq" = 2 WHERE "_rl_seq" IS NULL',
        f'DELETE FROM {T} USING {S} WHERE {T}."order_id" = {S}."order_id"',
        f"INSERT INTO {T} ({cols}) SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY \"order_id\" "
        f'ORDER BY "_rl_seq" DESC) AS "_rl_rank" FROM {S}) AS "_rl_latest" WHERE "_rl_rank" = 1',
        f"DROP TABLE {S}",
        "CALL sales.refresh()",
    ]


def test_upsert_with_order_by_and_compound_key() -> None:
    p = pipeline(mode="upsert", keys=("a", "b"), order_by="ts", options=())
    sqls = plan(p, ["s3://l/x.csv"], columns=["a", "b", "ts"])
    assert sqls[3] == f"COPY {S} (\"a\", \"b\", \"ts\") FROM 's3://l/x.csv' {COPY_TAIL}"  # a bare file: no MANIFEST
    # A stored row newer by order_by survives a later job carrying an older version of it (out-of-order files).
    assert sqls[5] == (f'DELETE FROM {T} USING {S} WHERE {T}."a" = {S}."a" AND {T}."b" = {S}."b" '
                       f'AND ({T}."ts" IS NULL OR {T}."ts" <= {S}."ts")')
    latest = '"_rl_latest"'
    assert sqls[6] == (
        f'INSERT INTO {T} ("a", "b", "ts") SELECT {latest}."a", {latest}."b", {latest}."ts" FROM '
        f'(SELECT "a", "b", "ts", ROW_NUMBER() OVER (PARTITION BY "a", "b" ORDER BY "ts" DESC NULLS LAST, '
        f'"_rl_seq" DESC) AS "_rl_rank" FROM {S}) AS {latest} '
        f'LEFT JOIN {T} ON {T}."a" = {latest}."a" AND {T}."b" = {latest}."b" '
        f'WHERE {latest}."_rl_rank" = 1 AND {T}."a" IS NULL')


def test_upsert_manifest_detection_can_be_overridden() -> None:
    p = pipeline(mode="upsert", keys=("a",), options=())
    assert "MANIFEST" in plan(p, ["s3://l/x"], columns=["a"], per_file_manifests=True)[3]
    assert "MANIFEST" not in plan(p, ["s3://l/x.manifest"], columns=["a"], per_file_manifests=False)[3]


def test_upsert_needs_columns_containing_the_keys() -> None:
    p = pipeline(mode="upsert", keys=("id",), order_by="ts")
    with pytest.raises(ValueError, match="target table's columns"):
        plan(p, ["s3://l/a"])
    with pytest.raises(ValueError, match="'ts' is not among the target columns"):
        plan(p, ["s3://l/a"], columns=["id"])
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        plan(replace(p, order_by=None), ["s3://l/a"], columns=["id", 'x"; drop table t; --'])


def test_statement_limit_and_files_per_job() -> None:
    p = pipeline(mode="upsert", keys=("id",), post_load=("CALL a()",) * 4)
    assert sql.max_files_per_job(p) == 15  # (40 - 6 - 4) // 2
    assert len(plan(p, [f"s3://l/{i}" for i in range(15)], columns=["id"])) == 40
    with pytest.raises(ValueError, match="42 statements"):
        plan(p, [f"s3://l/{i}" for i in range(16)], columns=["id"])
    assert sql.max_files_per_job(replace(p, batch=BatchLimits(max_files=3))) == 3
    assert sql.max_files_per_job(pipeline(batch=BatchLimits(max_files=700))) == 700


def test_demo_catalog_plans_render() -> None:
    from pathlib import Path

    text = (Path(__file__).parent / "fixtures" / "valid.toml").read_text()
    c = parse_catalog(text, "valid.toml")
    for p in c.loads:
        files = ["s3://landing/x"]
        sqls = plan(p, files, None if p.mode == "upsert" else "s3://m/j.manifest",
                    columns=list(p.columns or ("order_id",)))
        assert sqls[0] == f"LOCK {sql.qualified(p.table)}" and len(sqls) <= sql.MAX_BATCH_STATEMENTS


# ------------------------------------------------------------- diagnostics
def test_load_errors_queries() -> None:
    assert sql.render_load_errors_query([101, "102"]) == (
        "SELECT query_id, TRIM(file_name) AS file_name, line_number, TRIM(column_name) AS column_name, error_code, "
        "TRIM(error_message) AS error_message FROM sys_load_error_detail WHERE query_id IN (101, 102) "
        "ORDER BY query_id, line_number LIMIT 100")
    stl = sql.render_stl_load_errors_query(7)
    assert stl.endswith("FROM stl_load_errors WHERE query = 7 ORDER BY line_number LIMIT 100")
    assert "raw_field_value" in stl and "err_reason" in stl and "colname" in stl


@pytest.mark.parametrize("ids", [[], ["1; drop table t"], [True], ["x"]])
def test_load_errors_query_rejects_non_integers(ids: list) -> None:
    with pytest.raises(ValueError):
        sql.render_load_errors_query(ids)


@pytest.mark.parametrize("step, rendered", [("CALL a();", "CALL a()"), ("  CALL a() ; ", "CALL a()"),
                                            ("CALL a('x;')", "CALL a('x;')")])
def test_render_call(step: str, rendered: str) -> None:
    assert sql.render_call(step) == rendered
