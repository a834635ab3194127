"""The catalog: parsing, every validation rule (with where it points), routing, public view, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.pipelines import (
    BatchLimits,
    Catalog,
    CatalogError,
    TableName,
    load_catalog,
    parse_catalog,
)
from chalicelib.catalogcheck import statement_problem
from chalicelib.sql import CopyOption

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]

WAREHOUSE = """
[warehouses.main]
workgroup = "analytics"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/RedshiftS3"
"""


def load(**fields: object) -> str:
    """One [[loads]] table: a valid csv append load, with `fields` replacing or adding (None drops)."""
    base: dict[str, object] = {"name": "orders", "warehouse": "main", "bucket": "landing", "prefix": "orders/",
                               "table": "sales.orders", "format": "csv"}
    base.update(fields)
    lines = ["[[loads]]"]
    for k, v in base.items():
        if v is not None:
            lines.append(f"{k} = {_toml(v)}")
    return "\n".join(lines) + "\n"


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def problems(text: str) -> list[str]:
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, "pipelines.toml")
    lines = str(err.value).splitlines()
    assert len(lines) == len(err.value.problems)
    return lines


def one_problem(text: str, *needles: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    for needle in needles:
        assert needle in found[0], (needle, found[0])
    return found[0]


def catalog(text: str) -> Catalog:
    return parse_catalog(text, "pipelines.toml")


# ------------------------------------------------------------------ parsing
def test_demo_catalog_is_valid_and_typed() -> None:
    c = load_catalog(REPO / "chalicelib" / "pipelines.toml")
    orders = c.load("orders")
    assert orders.table == TableName("sales", "orders") and orders.table.qualified == "sales.orders"
    assert orders.mode == "upsert" and orders.keys == ("order_id",)
    assert orders.options == (CopyOption("IGNOREHEADER", "1"), CopyOption("GZIP"))
    assert orders.batch == BatchLimits(max_files=100, max_bytes=1073741824, max_seconds=2)
    assert orders.post_load == ("CALL sales.refresh_order_stats()",)
    assert c.load("customers").mode == "replace" and c.load("events").format == "json"
    assert c.warehouses["main"].target == "workgroup:analytics"
    archive = c.warehouses["archive"]
    assert archive.target == "cluster:archive-cluster" and archive.db_user == "loader"
    f = c.followup("customer-sales")
    assert f.steps == ("CALL dbo.sp_load_cust_dim()", "CALL dbo.sp_load_fact_sales()")
    assert f.stop_reasons == ("FULL_LOAD_ONLY_FINISHED",) and f.atomic and f.wait_for == ()


def test_defaults() -> None:
    c = catalog(WAREHOUSE + load(table="orders"))
    p = c.load("orders")
    assert p.table == TableName("public", "orders")
    assert (p.mode, p.keys, p.order_by, p.columns, p.suffix, p.enabled) == ("append", (), None, None, None, True)
    assert p.batch == BatchLimits(100, 1024 ** 3, 60)
    w = c.warehouses["main"]
    assert (w.connection, w.region, w.secret_arn, w.db_user) == ("data-api", None, None, None)


def test_identifiers_are_folded_to_lower_case() -> None:
    p = catalog(WAREHOUSE + load(table="Sales.Orders", mode="upsert", keys=["Order_ID"], order_by="Updated_At",
                                 columns=["Order_ID", "Updated_At"])).load("orders")
    assert p.table == TableName("sales", "orders")
    assert p.keys == ("order_id",) and p.order_by == "updated_at" and p.columns == ("order_id", "updated_at")


def test_options_are_parsed_into_canonical_form() -> None:
    p = catalog(WAREHOUSE + load(options=["ignoreheader as 2", "delimiter '|'", "null as '\\N'",
                                          "ACCEPTINVCHARS AS '?'", "dateformat 'auto'", "encoding utf8"])
                ).load("orders")
    assert [o.text for o in p.options] == ["IGNOREHEADER 2", "DELIMITER '|'", "NULL AS '\\\\N'",
                                           "ACCEPTINVCHARS AS '?'", "DATEFORMAT 'auto'", "ENCODING UTF8"]


def test_toml_syntax_error_names_line_and_column() -> None:
    line = one_problem(WAREHOUSE + "[[loads]]\nname = \n", "pipelines.toml", "invalid TOML", "line 7")
    assert "column" in line


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(CatalogError) as err:
        load_catalog(FIXTURES / "broken.toml")
    text = str(err.value)
    assert len(err.value.problems) >= 6
    for needle in ("warehouses 'main' field 'workgroup'", "loads 'orders' field 'keys'", "CREDENTIALS",
                   "loads 'orders_all' field 'warehouse'", "loads 'orders_all' field 'format'", "'xml'",
                   "field 'iam_role'", "overlaps pipeline 'orders'"):
        assert needle in text
    assert all(line.startswith(str(FIXTURES / "broken.toml") + ": ") for line in text.splitlines())


def test_unreadable_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.toml")


# ------------------------------------------------------- validation rules
@pytest.mark.parametrize("text, needles", [
    (WAREHOUSE + "[extras]\nx = 1\n", ["unknown section 'extras'", "warehouses, loads, dms_followups"]),
    (WAREHOUSE + load(colour="red"), ["loads 'orders' field 'colour'", "unknown field", "allowed:"]),
    (WAREHOUSE + load(table=None), ["loads 'orders' field 'table'", "missing"]),
    (WAREHOUSE + load(name=None), ["loads #1 field 'name'", "missing"]),
    (WAREHOUSE + load(bucket=3), ["loads 'orders' field 'bucket'", "must be a non-empty string", "int"]),
    (WAREHOUSE + load(prefix=""), ["loads 'orders' field 'prefix'", "non-empty"]),
    (WAREHOUSE + load(enabled="yes"), ["loads 'orders' field 'enabled'", "true or false"]),
    (WAREHOUSE + load(options="GZIP"), ["loads 'orders' field 'options'", "list of strings"]),
    (WAREHOUSE + load(warehouse="other"), ["loads 'orders' field 'warehouse'", "unknown warehouse 'other'"]),
    (WAREHOUSE + load(name="Orders!"), ["loads 'Orders!' field 'name'", "a-z, 0-9"]),
    (WAREHOUSE + load() + load(prefix="o2/"), ["loads 'orders' field 'name'", "duplicate"]),
    (WAREHOUSE + load(format="xml"), ["loads 'orders' field 'format'", "'xml'", "csv, json, parquet"]),
    (WAREHOUSE + load(mode="merge"), ["loads 'orders' field 'mode'", "'merge'", "append, replace, upsert"]),
    (WAREHOUSE + load(mode="upsert"), ["loads 'orders' field 'keys'", "upsert needs at least one key"]),
    (WAREHOUSE + load(mode="upsert", keys=[]), ["loads 'orders' field 'keys'", "upsert needs at least one key"]),
    (WAREHOUSE + load(keys=["id"]), ["loads 'orders' field 'keys'", "only for mode 'upsert'"]),
    (WAREHOUSE + load(mode="replace", order_by="ts"), ["loads 'orders' field 'order_by'", "only for mode 'upsert'"]),
    (WAREHOUSE + load(table="a.b.c"), ["loads 'orders' field 'table'", "'a.b.c'"]),
    (WAREHOUSE + load(table="sales.order items"), ["loads 'orders' field 'table'", "plain identifiers"]),
    (WAREHOUSE + load(table='x"; drop table t; --'), ["loads 'orders' field 'table'"]),
    (WAREHOUSE + load(mode="upsert", keys=["order id"]), ["loads 'orders' field 'keys'", "'order id'"]),
    (WAREHOUSE + load(mode="upsert", keys=["id", "ID"]), ["loads 'orders' field 'keys'", "repeated: id"]),
    (WAREHOUSE + load(mode="upsert", keys=["id"], order_by="1st"), ["loads 'orders' field 'order_by'", "'1st'"]),
    (WAREHOUSE + load(columns=["a", "b-c"]), ["loads 'orders' field 'columns'", "'b-c'"]),
    (WAREHOUSE + load(columns=[]), ["loads 'orders' field 'columns'", "empty"]),
    (WAREHOUSE + load(mode="upsert", keys=["id"], columns=["a"]), ["loads 'orders' field 'keys'", "'id'", "columns"]),
    (WAREHOUSE + load(post_load=["CALL a(); CALL b()"]), ["loads 'orders' field 'post_load'", "single statement"]),
    (WAREHOUSE + load(post_load=[" ; "]), ["loads 'orders' field 'post_load'", "empty statement"]),
    (WAREHOUSE + load(post_load=["CALL a('x)"]), ["loads 'orders' field 'post_load'", "unterminated"]),
    (WAREHOUSE + load(mode="upsert", keys=["id"], post_load=["CALL a()"] * 33),
     ["loads 'orders' field 'post_load'", "no room", "32"]),
    (WAREHOUSE + load(batch={"max_files": 0}), ["loads 'orders' field 'batch.max_files'", "out of range"]),
    (WAREHOUSE + load(batch={"max_files": 1001}), ["loads 'orders' field 'batch.max_files'", "1..1000"]),
    (WAREHOUSE + load(batch={"max_seconds": 901}), ["loads 'orders' field 'batch.max_seconds'", "0..900"]),
    (WAREHOUSE + load(batch={"max_bytes": -1}), ["loads 'orders' field 'batch.max_bytes'", "out of range"]),
    (WAREHOUSE + load(batch={"max_files": "10"}), ["loads 'orders' field 'batch.max_files'", "whole number"]),
    (WAREHOUSE + load(batch={"max_age": 1}), ["loads 'orders' field 'batch.max_age'", "unknown field"]),
    (WAREHOUSE + load(bucket="Landing_Bucket"), ["loads 'orders' field 'bucket'", "not a valid S3 bucket"]),
    (WAREHOUSE + load(prefix="/orders/"), ["loads 'orders' field 'prefix'", "leading slash"]),
])
def test_load_rules(text: str, needles: list[str]) -> None:
    one_problem(text, "pipelines.toml: ", *needles)


@pytest.mark.parametrize("option, needles", [
    ("CREDENTIALS 'aws_access_key_id=x;aws_secret_access_key=y'", ["CREDENTIALS", "not allowed"]),
    ("IAM_ROLE 'arn:aws:iam::1:role/x'", ["IAM_ROLE", "not allowed"]),
    ("MANIFEST", ["MANIFEST", "not allowed"]),
    ("FORMAT AS JSON 'auto'", ["FORMAT", "not allowed"]),
    ("GZIP; DROP TABLE sales.orders", ["GZIP; DROP TABLE sales.orders", "no argument"]),
    ("IGNOREHEADER 1 -- comment", ["IGNOREHEADER 1 -- comment", "whole number"]),
    ("DELIMITER '|' /* x */", ["DELIMITER", "nothing after it"]),
    ("DELIMITER '||'", ["exactly one character"]),
    ("IGNOREHEADER x", ["whole number"]),
    ("ENCODING LATIN1", ["UTF8"]),
    ("COMPUPDATE ON", ["OFF"]),
    ("REGION 'mars'", ["Region"]),
    ("NULL 'x'", ["NULL AS"]),
    ("", ["empty"]),
])
def test_copy_option_allow_list(option: str, needles: list[str]) -> None:
    one_problem(WAREHOUSE + load(options=[option]), "loads 'orders' field 'options'", *needles)


def test_option_semicolon_inside_the_quoted_argument_is_fine() -> None:
    p = catalog(WAREHOUSE + load(options=["DELIMITER ';'"])).load("orders")
    assert p.options[0].text == "DELIMITER ';'"


@pytest.mark.parametrize("fmt, option", [("parquet", "IGNOREHEADER 1"), ("parquet", "GZIP"),
                                         ("parquet", "DELIMITER ','"), ("json", "QUOTE '\"'"),
                                         ("json", "IGNOREHEADER 1")])
def test_options_must_suit_the_format(fmt: str, option: str) -> None:
    one_problem(WAREHOUSE + load(format=fmt, options=[option]), "loads 'orders' field 'options'", fmt)


def test_duplicate_and_conflicting_options() -> None:
    one_problem(WAREHOUSE + load(options=["GZIP", "gzip"]), "field 'options'", "twice")
    one_problem(WAREHOUSE + load(options=["GZIP", "ZSTD"]), "field 'options'", "only one compression")


@pytest.mark.parametrize("a, b", [
    (dict(prefix="orders/"), dict(name="o2", prefix="orders/2026/")),
    (dict(prefix="orders/", suffix=".csv"), dict(name="o2", prefix="orders/x/", suffix=".csv")),
    (dict(prefix="orders/", suffix=".csv.gz"), dict(name="o2", prefix="orders/", suffix=".gz")),
    (dict(prefix="orders/", suffix=".csv"), dict(name="o2", prefix="ord")),
])
def test_overlapping_prefixes_name_both_pipelines(a: dict, b: dict) -> None:
    line = one_problem(WAREHOUSE + load(**a) + load(**b), "loads 'o2' field 'prefix'", "overlaps pipeline 'orders'",
                       "landing")
    assert "'orders/'" in line


@pytest.mark.parametrize("b", [dict(name="o2", prefix="orders/2026/", suffix=".json"),
                               dict(name="o2", prefix="orders/2026/", enabled=False),
                               dict(name="o2", prefix="orders/", bucket="other"),
                               dict(name="o2", prefix="orders2/")])
def test_non_overlapping_neighbours_are_fine(b: dict) -> None:
    catalog(WAREHOUSE + load(suffix=".csv") + load(**b))


@pytest.mark.parametrize("body, needles", [
    ('database = "dev"\niam_role = "arn:aws:iam::123456789012:role/R"', ["field 'workgroup'", "exactly one"]),
    ('workgroup = "w"\ncluster = "c"\ndatabase = "dev"', ["field 'workgroup'", "exactly one"]),
    ('workgroup = "w"', ["field 'database'", "missing"]),
    ('workgroup = "w"\ndatabase = "dev"\nsecret_arn = "arn:aws:secretsmanager:us-east-1:1:secret:x"\ndb_user = "u"',
     ["field 'secret_arn'", "not both"]),
    ('workgroup = "w"\ndatabase = "dev"\nsecret_arn = "not-an-arn"', ["field 'secret_arn'", "Secrets Manager ARN"]),
    ('workgroup = "w"\ndatabase = "dev"\niam_role = "RedshiftS3"', ["field 'iam_role'", "IAM role ARN"]),
    ('workgroup = "w"\ndatabase = "dev"\nconnection = "jdbc"', ["field 'connection'", "data-api, direct"]),
    ('workgroup = "w"\ndatabase = "dev"\nregion = "Europe"', ["field 'region'", "us-east-1"]),
    ('workgroup = "w"\ndatabase = "dev"\nendpoint = "h:5439"', ["field 'endpoint'", "unknown field"]),
    ('workgroup = "w"\ndatabase = "dev"\nport = 5439', ["field 'port'", "only for connection 'direct'"]),
    ('workgroup = "w"\ndatabase = "dev"\nconnection = "direct"', ["field 'host'", "required"]),
    ('cluster = "c"\ndatabase = "dev"\nconnection = "direct"\nhost = "c.example.com"\nport = 70000',
     ["field 'port'", "70000 is not a TCP port"]),
    ('cluster = "c"\ndatabase = "dev"\nconnection = "direct"\nhost = "c.example.com:5439"',
     ["field 'host'", "the port goes in 'port'"]),
    ('cluster = "c"\ndatabase = "dev"\nconnection = "direct"\nhost = "c.example.com"\nport = "5439"',
     ["field 'port'", "a whole number"]),
])
def test_warehouse_rules(body: str, needles: list[str]) -> None:
    one_problem(f"[warehouses.wh]\n{body}\n", "pipelines.toml: warehouses 'wh'", *needles)


def test_iam_role_is_required_only_when_a_load_uses_the_warehouse() -> None:
    catalog('[warehouses.wh]\nworkgroup = "w"\ndatabase = "dev"\n')
    one_problem('[warehouses.main]\nworkgroup = "w"\ndatabase = "dev"\n' + load(),
                "warehouses 'main' field 'iam_role'", "required", "orders")


FOLLOWUP = '[[dms_followups]]\nname = "cs"\nwarehouse = "main"\ntask = "dms-task"\nsteps = ["CALL a()"]\n'


@pytest.mark.parametrize("extra, needles", [
    ('stop_reasons = ["FULL_LOAD_DONE"]', ["field 'stop_reasons'", "'FULL_LOAD_DONE'"]),
    ("stop_reasons = []", ["field 'stop_reasons'", "at least one"]),
    ('wait_for = ["nope"]', ["field 'wait_for'", "unknown load 'nope'"]),
    ('atomic = "yes"', ["field 'atomic'", "true or false"]),
    ("retries = 3", ["field 'retries'", "unknown field"]),
])
def test_followup_rules(extra: str, needles: list[str]) -> None:
    one_problem(WAREHOUSE + FOLLOWUP + extra + "\n", "dms_followups 'cs'", *needles)


def test_followup_steps_are_single_non_empty_statements() -> None:
    text = WAREHOUSE + FOLLOWUP.replace('["CALL a()"]', '["CALL a(); CALL b()", ""]')
    found = problems(text)
    assert len(found) == 2 and all("dms_followups 'cs' field 'steps'" in f for f in found)
    one_problem(WAREHOUSE + FOLLOWUP.replace('["CALL a()"]', "[]"), "field 'steps'", "at least one step")
    one_problem(WAREHOUSE + FOLLOWUP.replace('steps = ["CALL a()"]\n', ""), "field 'steps'", "missing")


def test_followup_and_load_names_share_one_namespace() -> None:
    one_problem(WAREHOUSE + load(name="cs") + FOLLOWUP, "dms_followups 'cs' field 'name'", "duplicate")


@pytest.mark.parametrize("text, problem", [
    ("CALL a();", None), ("CALL a('x;y')", None), ('SELECT "a;b" FROM t', None), ("CALL a('it''s; ok');", None),
    ("CALL a();;", "single statement"), ("", "empty"), (";", "empty"), ("CALL a('x", "unterminated"),
])
def test_statement_check(text: str, problem: str | None) -> None:
    found = statement_problem(text)
    assert (found is None) if problem is None else (problem in (found or ""))


# ----------------------------------------------------------------- routing
@pytest.fixture()
def routed() -> Catalog:
    return catalog(WAREHOUSE + load(suffix=".csv.gz") + load(name="customers", prefix="customers/")
                   + load(name="old", prefix="old/", enabled=False) + load(name="deep", prefix="orders/archive/",
                                                                            suffix=".json"))


@pytest.mark.parametrize("bucket, key, name, reason", [
    ("landing", "orders/2026/a.csv.gz", "orders", None),
    ("landing", "orders/archive/x.json", "deep", None),
    ("landing", "customers/my file+1.csv", "customers", None),
    ("landing", "orders/a.csv", None, "suffix '.csv.gz' required by pipeline 'orders'"),
    ("landing", "orders/2026/", None, "folder marker"),
    ("landing", "old/a.csv", None, "pipeline 'old' is disabled"),
    ("landing", "misc/a.csv", None, "key 'misc/a.csv' matches no prefix in bucket 'landing' (prefixes: orders/, "
                                    "customers/, old/, orders/archive/)"),
    ("elsewhere", "orders/a.csv.gz", None, "no pipeline for bucket 'elsewhere'"),
])
def test_match(routed: Catalog, bucket: str, key: str, name: str | None, reason: str | None) -> None:
    m = routed.match(bucket, key)
    assert (m.pipeline.name if m.pipeline else None) == name
    if reason:
        assert reason in m.reason


def test_lookups(routed: Catalog) -> None:
    assert routed.load("customers").prefix == "customers/"
    with pytest.raises(KeyError, match="no load pipeline named 'nope'.*orders"):
        routed.load("nope")
    with pytest.raises(KeyError, match="no dms_followup named 'x'"):
        routed.followup("x")
    assert routed.warehouse_for(routed.load("orders")).name == "main"


@pytest.mark.parametrize("configured, incoming, found", [
    ("dms-full-dump-task", "dms-full-dump-task", True),
    ("dms-full-dump-task", "arn:aws:dms:us-east-1:123456789012:task:dms-full-dump-task", True),
    ("arn:aws:dms:us-east-1:123456789012:task:ABCD", "arn:aws:dms:us-east-1:123456789012:task:ABCD", True),
    ("arn:aws:dms:us-east-1:123456789012:task:ABCD", "ABCD", True),
    ("dms-full-dump-task", "arn:aws:dms:us-east-1:123456789012:task:OTHER", False),
    ("dms-full-dump-task", "dms-full-dump", False),
])
def test_followup_for_task(configured: str, incoming: str, found: bool) -> None:
    c = catalog(WAREHOUSE + FOLLOWUP.replace('"dms-task"', json.dumps(configured)))
    assert (c.followup_for_task(incoming) is not None) is found


def test_public_dict_hides_the_secret_and_local_paths() -> None:
    text = WAREHOUSE.replace('database = "dev"', 'database = "dev"\nsecret_arn = '
                             '"arn:aws:secretsmanager:us-east-1:123456789012:secret:rs-AbCdEf"') + load(
        options=["GZIP"]) + FOLLOWUP
    public = parse_catalog(text, "/some/dir/pipelines.toml").to_public_dict()
    dumped = json.dumps(public)
    assert "rs-AbCdEf" not in dumped and "/some/dir" not in dumped
    assert public["warehouses"]["main"]["secret_arn"] == "***" and public["warehouses"]["main"]["auth"] == "secret"
    assert public["loads"][0]["options"] == ["GZIP"] and public["loads"][0]["table"] == "sales.orders"
    assert public["dms_followups"][0]["steps"] == ["CALL a()"] and public["source"] == "pipelines.toml"


# --------------------------------------------------------------------- CLI
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chalicelib.pipelines", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_cli_check_ok() -> None:
    done = run_cli("check", str(FIXTURES / "valid.toml"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "ok" and any(line.startswith("load orders:") for line in lines)
    assert any(line.startswith("followup customer-sales:") for line in lines)


def test_cli_check_reports_problems_on_stderr() -> None:
    done = run_cli("check", str(FIXTURES / "broken.toml"))
    assert done.returncode == 1 and done.stdout == ""
    assert "loads 'orders' field 'keys': upsert needs at least one key" in done.stderr


def test_cli_show_prints_the_public_catalog() -> None:
    done = run_cli("show", str(FIXTURES / "valid.toml"))
    assert done.returncode == 0
    assert [p["name"] for p in json.loads(done.stdout)["loads"]] == ["orders", "customers", "events"]


def test_cli_missing_file_and_bad_usage() -> None:
    assert run_cli("check", "no-such-file.toml").returncode == 1
    assert run_cli("frobnicate", "x").returncode == 2
