"""Least privilege: each Lambda's IAM policy, derived from the catalog, is exactly what it needs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from chalicelib.pipelines import load_catalog

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "infra"))
CATALOG = REPO / "chalicelib" / "pipelines.toml"
UNSCOPABLE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "dms:DescribeReplicationTasks",
              "redshift-data:DescribeStatement", "redshift-data:GetStatementResult", "redshift-data:CancelStatement"}


def committed() -> dict[str, dict]:
    config = json.loads((REPO / ".chalice" / "config.json").read_text())
    assert config["autogen_policy"] is False
    return {name: json.loads((REPO / ".chalice" / spec["iam_policy_file"]).read_text())
            for name, spec in config["lambda_functions"].items()}


def grants(policy: dict) -> set[tuple[str, str]]:
    return {(a, r) for s in policy["Statement"] for a in s["Action"] for r in s["Resource"]}


def test_committed_policies_are_the_generated_ones():
    import policies  # infra/policies.py

    assert committed() == policies.policies(load_catalog(CATALOG)), "run: python infra/policies.py"


def test_every_function_has_its_own_policy_without_wildcard_actions():
    docs = committed()
    assert set(docs) == {"router", "worker", "completion", "dms", "sweeper", "api_handler"}
    for name, doc in docs.items():
        for action, resource in grants(doc):
            assert "*" not in action, (name, action)
            assert resource != "*" or action in UNSCOPABLE, (name, action)


def test_warehouse_access_follows_each_warehouses_authentication():
    docs = committed()
    catalog = load_catalog(CATALOG)
    for name in ("worker", "completion", "sweeper", "api_handler"):
        g = grants(docs[name])
        for w in catalog.warehouses.values():
            target = (f"arn:aws:redshift:*:*:cluster:{w.cluster}" if w.cluster
                      else "arn:aws:redshift-serverless:*:*:workgroup/*")
            assert ("redshift-data:BatchExecuteStatement", target) in g
            if w.secret_arn:
                assert ("secretsmanager:GetSecretValue", w.secret_arn) in g
            elif w.db_user:
                assert ("redshift:GetClusterCredentials", f"arn:aws:redshift:*:*:dbuser:{w.cluster}/{w.db_user}") in g
            else:
                assert ("redshift-serverless:GetCredentials", "arn:aws:redshift-serverless:*:*:workgroup/*") in g
        if not any(w.secret_arn for w in catalog.warehouses.values()):
            assert not any(a.startswith("secretsmanager:") for a, _ in g)
    for name in ("router", "dms"):  # they never run SQL
        assert not any(a.startswith(("redshift", "secretsmanager")) for a, _ in grants(docs[name]))


@pytest.mark.parametrize("name,needed", [
    ("router", {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage", "dynamodb:UpdateItem",
                "dynamodb:PutItem", "dynamodb:Query"}),
    ("worker", {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "s3:PutObject", "events:PutEvents",
                "redshift-data:BatchExecuteStatement", "redshift-data:DescribeStatement", "dynamodb:GetItem"}),
    ("completion", {"sqs:ChangeMessageVisibility", "redshift-data:DescribeStatement", "redshift-data:ExecuteStatement",
                    "events:PutEvents", "dynamodb:UpdateItem"}),
    ("dms", {"dms:DescribeReplicationTasks", "sqs:SendMessage", "dynamodb:PutItem"}),
    ("sweeper", {"sqs:SendMessage", "redshift-data:DescribeStatement", "dynamodb:Query"}),
    ("api_handler", {"s3:ListBucket", "s3:GetObject", "redshift-data:CancelStatement", "redshift-data:ListDatabases",
                     "sqs:SendMessage", "dynamodb:Query"}),
])
def test_each_function_can_make_the_calls_its_code_path_makes(name, needed):
    actions = {a for a, _ in grants(committed()[name])}
    assert needed <= actions, needed - actions


def test_landing_buckets_are_readable_by_the_api_only():
    buckets = {p.bucket for p in load_catalog(CATALOG).loads}
    docs = committed()
    api = {r for a, r in grants(docs["api_handler"]) if a == "s3:ListBucket"}
    assert api == {f"arn:aws:s3:::{b}" for b in buckets} | {f"arn:aws:s3:::{b}/*" for b in buckets}
    assert not any(a in ("s3:GetObject", "s3:ListBucket") for n in ("router", "worker") for a, _ in grants(docs[n]))
