"""Least privilege: each Lambda's committed IAM policy is exactly what its code path needs.

The expectations here are derived from the catalog on their own (which warehouses loads and
follow-ups use, how each signs in, which buckets loads read), not by calling the generator, and
compared with the committed .chalice files in both directions: a missing grant breaks the
function, an extra one is over-broad. A separate test catches stale files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib import policies
from chalicelib.pipelines import Catalog, Warehouse, load_catalog

REPO = Path(__file__).resolve().parents[2]
CONFIG = json.loads((REPO / ".chalice" / "config.json").read_text())
STAGES = sorted(CONFIG["stages"])
FUNCTIONS = ("router", "worker", "completion", "dms", "sweeper", "api_handler")
# AWS accepts only "*" for these: no statement / task / trace resource type exists.
STAR_ONLY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "dms:DescribeReplicationTasks",
             "redshift-data:DescribeStatement", "redshift-data:GetStatementResult", "redshift-data:CancelStatement"}
Grant = tuple[str, str]

LANDING, JOBS = "arn:aws:sqs:*:*:redshift-loader-landing", "arn:aws:sqs:*:*:redshift-loader-jobs.fifo"
LANDING_DLQ, JOBS_DLQ = "arn:aws:sqs:*:*:redshift-loader-landing-dlq", "arn:aws:sqs:*:*:redshift-loader-jobs-dlq.fifo"
FAILED_EVENTS = "arn:aws:sqs:*:*:redshift-loader-failed-events"  # Lambda's on-failure destination
TABLE = "arn:aws:dynamodb:*:*:table/redshift-loader-ledger"
# Per function, (action, resource) pairs that do not depend on the catalog, read off the code:
# handlers.py → service.py / followups.py / api.py → adapters/*.py.
FIXED: dict[str, set[Grant]] = {
    "router": {("sqs:ReceiveMessage", LANDING), ("sqs:DeleteMessage", LANDING), ("sqs:GetQueueAttributes", LANDING),
               *{(a, q) for a in ("sqs:SendMessage", "sqs:GetQueueUrl") for q in (LANDING, JOBS, LANDING_DLQ)},
               *{(f"dynamodb:{a}", TABLE) for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")}},
    "worker": {("sqs:ReceiveMessage", JOBS), ("sqs:DeleteMessage", JOBS), ("sqs:GetQueueAttributes", JOBS),
               ("sqs:ChangeMessageVisibility", JOBS),
               *{(a, q) for a in ("sqs:SendMessage", "sqs:GetQueueUrl") for q in (JOBS, JOBS_DLQ)},
               *{(f"dynamodb:{a}", TABLE) for a in ("GetItem", "PutItem", "UpdateItem")},
               ("dynamodb:Query", TABLE + "/index/active_jobs"),
               ("redshift-data:DescribeStatement", "*"), ("redshift-data:GetStatementResult", "*"),
               ("events:PutEvents", "arn:aws:events:*:*:event-bus/default"),
               ("s3:PutObject", "arn:aws:s3:::redshift-loader-manifests/*"),
               ("s3:PutObject", "arn:aws:s3:::redshift-loader-manifests-*/*")},
    "completion": {("sqs:ChangeMessageVisibility", JOBS), ("sqs:SendMessage", FAILED_EVENTS),
                   *{(a, q) for a in ("sqs:SendMessage", "sqs:GetQueueUrl") for q in (JOBS, JOBS_DLQ)},
                   *{(f"dynamodb:{a}", TABLE) for a in ("GetItem", "PutItem", "UpdateItem")},
                   ("redshift-data:DescribeStatement", "*"), ("redshift-data:GetStatementResult", "*"),
                   ("events:PutEvents", "arn:aws:events:*:*:event-bus/default")},
    "dms": {("dms:DescribeReplicationTasks", "*"), ("sqs:SendMessage", JOBS), ("sqs:GetQueueUrl", JOBS),
            ("sqs:SendMessage", FAILED_EVENTS),
            ("dynamodb:PutItem", TABLE)},
    "sweeper": {("sqs:ChangeMessageVisibility", JOBS),
                *{(a, q) for a in ("sqs:SendMessage", "sqs:GetQueueUrl") for q in (JOBS, JOBS_DLQ)},
                *{(f"dynamodb:{a}", TABLE) for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")},
                ("dynamodb:Query", TABLE + "/index/active_jobs"),
                ("redshift-data:DescribeStatement", "*"), ("redshift-data:GetStatementResult", "*"),
                ("events:PutEvents", "arn:aws:events:*:*:event-bus/default")},
    "api_handler": {*{(a, q) for a in ("sqs:SendMessage", "sqs:GetQueueUrl") for q in (LANDING, JOBS)},
                    *{(f"dynamodb:{a}", TABLE) for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")},
                    ("dynamodb:Query", TABLE + "/index/jobs_by_time"), ("redshift-data:CancelStatement", "*"),
                    ("events:PutEvents", "arn:aws:events:*:*:event-bus/default")},
}


def _target(w: Warehouse) -> str:
    if w.cluster:
        return f"arn:aws:redshift:{w.region or '*'}:*:cluster:{w.cluster}"
    return w.workgroup if (w.workgroup or "").startswith("arn:") else f"arn:aws:redshift-serverless:{w.region or '*'}:*:workgroup/*"


def _sign_in(w: Warehouse) -> set[Grant]:
    region = w.region or "*"
    if w.secret_arn:
        return {("secretsmanager:GetSecretValue", w.secret_arn), ("secretsmanager:GetSecretValue", w.secret_arn + "-??????")}
    if w.cluster and w.db_user:
        return {("redshift:GetClusterCredentials", f"arn:aws:redshift:{region}:*:dbuser:{w.cluster}/{w.db_user}"),
                ("redshift:GetClusterCredentials", f"arn:aws:redshift:{region}:*:dbname:{w.cluster}/{w.database}")}
    if w.cluster:
        return {("redshift:GetClusterCredentialsWithIAM", f"arn:aws:redshift:{region}:*:dbname:{w.cluster}/{w.database}")}
    return {("redshift-serverless:GetCredentials", _target(w))}


def expected(function: str, catalog: Catalog, stage: str, *, xray: bool, topic: str | None = None) -> set[Grant]:
    loads = {catalog.warehouses[p.warehouse] for p in catalog.loads}
    followups = {catalog.warehouses[f.warehouse] for f in catalog.dms_followups}
    moves = {catalog.warehouses[u.warehouse] for u in (*catalog.unloads, *catalog.archives)} | {
        catalog.warehouses[w] for c in catalog.copies for w in (c.source, c.target)}
    every = set(catalog.warehouses.values())
    sql: dict[str, set[Warehouse]] = {
        "worker": {"redshift-data:BatchExecuteStatement": loads | followups | moves,
                   "redshift-data:ExecuteStatement": loads | followups | moves,
                   "redshift-data:DescribeTable": loads | moves},
        "completion": {"redshift-data:ExecuteStatement": loads | moves},
        "sweeper": {"redshift-data:ExecuteStatement": loads | moves},
        "api_handler": {"redshift-data:ListDatabases": every, "redshift-data:DescribeTable": every},
    }.get(function, {})
    out = set(FIXED[function])
    for action, warehouses in sql.items():  # a direct warehouse is reached over the network, not the Data API
        out |= {(action, _target(w)) for w in warehouses if w.connection != "direct"}
    for w in set().union(*sql.values()) if sql else set():
        out |= _sign_in(w)
    if function == "api_handler":
        for p in catalog.loads:
            out |= {("s3:ListBucket", f"arn:aws:s3:::{p.bucket}"), ("s3:GetObject", f"arn:aws:s3:::{p.bucket}/{p.prefix}*")}
    if function == "worker":  # the header row of CSV files with one (schema drift check)
        for p in catalog.loads:
            if p.format == "csv" and any(o.keyword == "IGNOREHEADER" and o.argument != "0" for o in p.options):
                out.add(("s3:GetObject", f"arn:aws:s3:::{p.bucket}/{p.prefix}*"))
    if function in ("worker", "completion", "sweeper"):  # manifests of unloads/archives; copies' staging
        for u in (*catalog.unloads, *catalog.archives):
            out.add(("s3:GetObject", f"arn:aws:s3:::{u.bucket}/{u.prefix}*"))
        for c in catalog.copies:
            staging = f"arn:aws:s3:::{c.staging_bucket}/{c.staging_prefix}*"
            out |= {("s3:GetObject", staging), ("s3:PutObject", staging), ("s3:DeleteObject", staging),
                    ("s3:ListBucket", f"arn:aws:s3:::{c.staging_bucket}")}
    if topic and function in ("worker", "completion", "sweeper", "api_handler"):
        out.add(("sns:Publish", topic))
    if xray:
        out |= {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
    name = f"redshift-loader-{stage}" if function == "api_handler" else f"redshift-loader-{stage}-{function}"
    logical = "APIHandler" if function == "api_handler" else function.title()
    for group in (name, f"redshift-loader-{stage}-{logical}-*"):
        out |= {(a, f"arn:aws:logs:*:*:log-group:/aws/lambda/{group}{s}")
                for a in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents") for s in ("", ":*")}
    return out


def grants(policy: dict[str, Any]) -> set[Grant]:
    assert policy["Version"] == "2012-10-17"
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    return {(a, r) for s in policy["Statement"] for a in s["Action"] for r in s["Resource"]}


def committed(stage: str, function: str) -> dict[str, Any]:
    name = CONFIG["stages"][stage]["lambda_functions"][function]["iam_policy_file"]
    return json.loads((REPO / ".chalice" / name).read_text())


def test_config_turns_autogen_off_and_gives_every_function_its_own_file() -> None:
    assert CONFIG["autogen_policy"] is False
    assert CONFIG["stages"]["prod"]["xray"] is True
    for stage in STAGES:
        files = {CONFIG["stages"][stage]["lambda_functions"][f]["iam_policy_file"] for f in FUNCTIONS}
        assert len(files) == len(FUNCTIONS) and all((REPO / ".chalice" / f).is_file() for f in files)


@pytest.mark.parametrize("stage", STAGES)
def test_committed_policies_are_not_stale(stage: str) -> None:
    assert policies.write(stage, REPO, check=True) == [], f"run: .venv/bin/python -m chalicelib.policies {stage}"


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_gets_exactly_what_its_code_path_needs(stage: str, function: str) -> None:
    catalog = load_catalog(REPO / "chalicelib" / "pipelines.toml")
    xray = bool(CONFIG["stages"][stage].get("xray", CONFIG.get("xray", False)))
    want, have = expected(function, catalog, stage, xray=xray), grants(committed(stage, function))
    assert not want - have, f"missing (the function would fail): {sorted(want - have)}"
    assert not have - want, f"over-broad: {sorted(have - want)}"


@pytest.mark.parametrize("stage", STAGES)
def test_no_wildcard_actions_and_star_resources_only_where_aws_requires_them(stage: str) -> None:
    for function in FUNCTIONS:
        for action, resource in grants(committed(stage, function)):
            assert "*" not in action, (function, action)
            assert resource != "*" or action in STAR_ONLY, (function, action)


def test_the_manifest_wildcard_is_pinned_to_the_functions_own_account() -> None:
    [statement] = [s for s in committed("prod", "worker")["Statement"] if s["Sid"] == "WriteManifests"]
    assert statement["Condition"] == {"StringEquals": {"s3:ResourceAccount": "${aws:PrincipalAccount}"}}


CATALOG_VARIANT = """
[warehouses.secret]
workgroup = "arn:aws:redshift-serverless:eu-west-1:111122223333:workgroup/0b1c2d3e-aaaa-bbbb-cccc-0123456789ab"
database = "dev"
secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:loader"
iam_role = "arn:aws:iam::111122223333:role/RedshiftS3"
[warehouses.iam]
cluster = "reporting"
database = "rep"
region = "eu-west-1"
[warehouses.unused]
cluster = "spare"
database = "dev"
db_user = "nobody"

[[loads]]
name = "a"
warehouse = "secret"
bucket = "drop-zone"
prefix = "a/"
table = "s.a"
format = "csv"

[[dms_followups]]
name = "f"
warehouse = "iam"
task = "task-1"
steps = ["CALL s.p()"]
"""


def test_other_catalogs_and_stage_settings_derive_the_matching_grants(tmp_path: Path) -> None:
    catalog_path = tmp_path / "pipelines.toml"
    catalog_path.write_text(CATALOG_VARIANT)
    topic = "arn:aws:sns:eu-west-1:111122223333:loader-failures"
    config = {"app_name": "redshift-loader", "environment_variables": {"PIPELINES_FILE": str(catalog_path)},
              "stages": {"qa": {"environment_variables": {"FAILURE_TOPIC_ARN": topic}, "xray": True}}}
    docs = policies.stage_policies(config, "qa", REPO)
    catalog = load_catalog(catalog_path)
    for function in FUNCTIONS:
        assert grants(docs[function]) == expected(function, catalog, "qa", xray=True, topic=topic), function
    worker = grants(docs["worker"])
    assert ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:loader-??????") in worker
    assert ("redshift:GetClusterCredentialsWithIAM", "arn:aws:redshift:eu-west-1:*:dbname:reporting/rep") in worker
    assert not any("spare" in r for _, r in worker)           # only /health reaches an unused warehouse
    assert any("spare" in r for _, r in grants(docs["api_handler"]))
    assert not any(a.startswith(("redshift", "secretsmanager")) for a, _ in grants(docs["router"]) | grants(docs["dms"]))


CATALOG_DIRECT = """
[warehouses.main]
workgroup = "analytics"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/R"

[warehouses.dw]
cluster = "dw-cluster"
database = "dw"
db_user = "loader"
connection = "direct"
host = "dw-cluster.abc123.us-east-1.redshift.amazonaws.com"
iam_role = "arn:aws:iam::123456789012:role/R"

[[loads]]
name = "direct"
warehouse = "dw"
bucket = "landing"
prefix = "direct/"
table = "public.t"
format = "csv"

[[loads]]
name = "via-api"
warehouse = "main"
bucket = "landing"
prefix = "api/"
table = "public.t"
format = "csv"
"""


def test_a_direct_warehouse_gets_its_sign_in_but_no_data_api_actions(tmp_path: Path) -> None:
    catalog_path = tmp_path / "pipelines.toml"
    catalog_path.write_text(CATALOG_DIRECT)
    config = {"app_name": "redshift-loader", "environment_variables": {"PIPELINES_FILE": str(catalog_path)},
              "stages": {"qa": {}}}
    docs = policies.stage_policies(config, "qa", REPO)
    catalog = load_catalog(catalog_path)
    for function in FUNCTIONS:
        assert grants(docs[function]) == expected(function, catalog, "qa", xray=False), function
    sign_in = {("redshift:GetClusterCredentials", "arn:aws:redshift:*:*:dbuser:dw-cluster/loader"),
               ("redshift:GetClusterCredentials", "arn:aws:redshift:*:*:dbname:dw-cluster/dw")}
    for function in ("worker", "completion", "sweeper", "api_handler"):  # submit, load errors, /health and cancel
        found = grants(docs[function])
        assert sign_in <= found, function
        assert not any(a.startswith("redshift-data:") and "dw-cluster" in r for a, r in found), function
    assert ("redshift-data:BatchExecuteStatement", "arn:aws:redshift-serverless:*:*:workgroup/*") in grants(docs["worker"])
