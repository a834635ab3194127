"""The deployment template: `chalice package` + infra/resources.json, checked and linted.

Packaging needs no AWS credentials, only a Region. Chalice reuses its cached dependency zip
(.chalice/deployments), so the whole module takes a few seconds once that cache exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib import resources
from chalicelib.pipelines import load_catalog
from chalicelib.policies import policy_file

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "infra"))
# Chalice's logical ids for app.py's functions (CamelCase of the decorator names).
LOGICAL_IDS = {"router": "Router", "worker": "Worker", "completion": "Completion", "dms": "Dms",
               "sweeper": "Sweeper", "api_handler": "APIHandler"}
Template = dict[str, Any]


def chalice_package(out: Path, stage: str, *merge: str) -> Template:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    merge_args = ["--merge-template", *merge] if merge else []
    done = subprocess.run([str(BIN / "chalice"), "package", "--stage", stage, *merge_args, str(out)],
                          cwd=REPO, env=env, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "sam.json").read_text())


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Template:
    out = tmp_path_factory.mktemp("package")
    template = chalice_package(out, "prod", "infra/resources.json")
    template["_path"] = str(out / "sam.json")
    return template


def functions(template: Template) -> dict[str, Template]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def test_committed_merge_template_matches_the_resource_definitions() -> None:
    import template  # infra/template.py

    generated = template.merge_template(REPO / "chalicelib" / "pipelines.toml")
    committed = json.loads((REPO / "infra" / "resources.json").read_text())
    assert committed == generated, "run: .venv/bin/python infra/template.py > infra/resources.json"


def test_every_sqs_mapping_reports_batch_item_failures_on_the_queues_the_template_creates(packaged: Template) -> None:
    res = packaged["Resources"]
    sqs = {(name, ev_name): ev for name, f in functions(packaged).items()
           for ev_name, ev in f["Properties"].get("Events", {}).items() if ev["Type"] == "SQS"}
    # SAM turns these into the AWS::Lambda::EventSourceMappings RouterRouterSqsEventSource and
    # WorkerWorkerSqsEventSource, copying FunctionResponseTypes (test_sam_translation checks that).
    assert set(sqs) == {("Router", "RouterSqsEventSource"), ("Worker", "WorkerSqsEventSource")}
    consumed = {"Router": resources.LANDING_QUEUE, "Worker": resources.JOBS_QUEUE}
    for (name, _), ev in sqs.items():
        assert ev["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
        queue_arn = ev["Properties"]["Queue"]["Fn::Sub"]
        queue = consumed[name]
        assert queue_arn.endswith(":" + res[queue.logical_id]["Properties"]["QueueName"]), (name, queue_arn)
        if queue.fifo:  # FIFO: at most 10 per batch, and no batching window
            assert ev["Properties"]["BatchSize"] <= 10 and ev["Properties"]["MaximumBatchingWindowInSeconds"] == 0
        else:  # above 10 Lambda requires a window of at least 1 s; a short one keeps routing prompt
            assert ev["Properties"]["BatchSize"] <= 10 or 1 <= ev["Properties"]["MaximumBatchingWindowInSeconds"] <= 5


def test_queues_have_dead_letters_alarms_and_long_enough_visibility(packaged: Template) -> None:
    res = packaged["Resources"]
    longest = max(f["Properties"]["Timeout"] for f in functions(packaged).values())
    for q, receives in ((resources.LANDING_QUEUE, 5), (resources.JOBS_QUEUE, 50)):
        props = res[q.logical_id]["Properties"]
        assert props["VisibilityTimeout"] >= 6 * longest, q.logical_id
        assert props["RedrivePolicy"]["maxReceiveCount"] == receives
        dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert res[dlq]["Properties"]["QueueName"] == q.dlq_name
        assert res[dlq]["Properties"].get("FifoQueue", False) == q.fifo == props.get("FifoQueue", False)
        assert res[dlq]["Properties"]["MessageRetentionPeriod"] >= props["MessageRetentionPeriod"]
        alarms = [v["Properties"] for v in res.values() if v["Type"] == "AWS::CloudWatch::Alarm"
                  and v["Properties"]["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]]
        assert len(alarms) == 1, dlq
        assert alarms[0]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarms[0]["Threshold"] == 0 and alarms[0]["ComparisonOperator"] == "GreaterThanThreshold"


def test_ledger_table_has_its_indexes_ttl_and_on_demand_billing(packaged: Template) -> None:
    props = packaged["Resources"][resources.LEDGER_TABLE.logical_id]["Properties"]
    assert props["TableName"] == resources.LEDGER_TABLE.default_name
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    indexes = {i["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]]
               for i in props["GlobalSecondaryIndexes"]}
    assert indexes == {"jobs_by_time": [("g1pk", "HASH"), ("g1sk", "RANGE")],
                       "active_jobs": [("g2pk", "HASH"), ("g2sk", "RANGE")]}


def test_functions_find_the_queues_table_and_bucket_through_their_environment(packaged: Template) -> None:
    env = packaged["Globals"]["Function"]["Environment"]["Variables"]
    assert env == {
        resources.LANDING_QUEUE.env_var: {"Fn::GetAtt": [resources.LANDING_QUEUE.logical_id, "QueueName"]},
        resources.JOBS_QUEUE.env_var: {"Fn::GetAtt": [resources.JOBS_QUEUE.logical_id, "QueueName"]},
        resources.LEDGER_TABLE.env_var: {"Ref": resources.LEDGER_TABLE.logical_id},
        resources.MANIFEST_BUCKET_ENV: {"Ref": "ManifestBucket"},
    }
    for name, f in functions(packaged).items():  # a function-level value would override Globals
        assert not set(env) & set(f["Properties"]["Environment"]["Variables"]), name
    assert packaged["Resources"]["ManifestBucket"]["Type"] == "AWS::S3::Bucket"


def test_event_rules_cover_object_created_dms_and_statement_status(packaged: Template) -> None:
    res = packaged["Resources"]
    events = {name: ev for name, f in functions(packaged).items() for ev in f["Properties"].get("Events", {}).values()}
    assert events["Completion"]["Properties"]["Pattern"]["detail-type"] == ["Redshift Data Statement Status Change"]
    assert events["Dms"]["Properties"]["Pattern"]["detail-type"] == ["DMS Replication Task State Change"]
    assert events["Sweeper"]["Type"] == "Schedule"
    rule = res["LandingObjectCreatedRule"]["Properties"]
    buckets = sorted({p.bucket for p in load_catalog(REPO / "chalicelib" / "pipelines.toml").loads})
    assert rule["EventPattern"]["detail-type"] == ["Object Created"]
    assert rule["EventPattern"]["detail"]["bucket"]["name"] == buckets
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [resources.LANDING_QUEUE.logical_id, "Arn"]}
    statement = res["LandingQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["LandingObjectCreatedRule", "Arn"]}


def test_events_the_event_driven_functions_fail_on_three_times_are_kept_not_dropped(packaged: Template) -> None:
    res, fns = packaged["Resources"], functions(packaged)
    for name in ("Dms", "Completion"):
        config = fns[name]["Properties"]["EventInvokeConfig"]
        assert config["MaximumRetryAttempts"] == 2
        assert config["DestinationConfig"]["OnFailure"] == {
            "Type": "SQS", "Destination": {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}}
    queue = res["FailedEventsQueue"]["Properties"]
    assert queue["QueueName"] == resources.FAILED_EVENTS_QUEUE and queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert res["FailedEventsQueueAlarm"]["Properties"]["Threshold"] == 0


def test_each_function_has_its_own_role_with_the_committed_policy(packaged: Template) -> None:
    res = packaged["Resources"]
    for function, logical in LOGICAL_IDS.items():
        role = res[functions(packaged)[logical]["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert role["Type"] == "AWS::IAM::Role"
        committed = json.loads((REPO / ".chalice" / policy_file("prod", function)).read_text())
        assert [p["PolicyDocument"] for p in role["Properties"]["Policies"]] == [committed], function
    assert all(f["Properties"]["Tracing"] == "Active" for f in functions(packaged).values())  # xray in prod


def test_packaged_template_passes_cfn_lint(packaged: Template) -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(BIN))
    assert cfn_lint, "cfn-lint is missing from the venv: make venv (it is in requirements-dev.txt)"
    result = subprocess.run([cfn_lint, "--", packaged["_path"]], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_translation_puts_partial_batch_responses_on_the_event_source_mappings(packaged: Template,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # cfn-lint accepts any FunctionResponseTypes value, so check what SAM generates when it can be run.
    translator = pytest.importorskip("samtranslator.translator.transform",
                                     reason="aws-sam-translator is not installed (optional; pip install aws-sam-translator)")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = json.loads(Path(packaged["_path"]).read_text())
    for f in functions(template).values():  # the translator wants the S3 URI `aws cloudformation package` writes
        f["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    out = translator.transform(template, {}, NoManagedPolicies())["Resources"]
    mappings = {k: v["Properties"] for k, v in out.items() if v["Type"] == "AWS::Lambda::EventSourceMapping"}
    assert set(mappings) == {"RouterRouterSqsEventSource", "WorkerWorkerSqsEventSource"}
    assert all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings.values())


def test_plain_chalice_package_still_works_for_chalice_deploy_users(tmp_path: Path) -> None:
    # Same config and policy files `chalice deploy` reads; no merge template.
    template = chalice_package(tmp_path, "dev")
    assert {"Router", "Worker", "Completion", "Dms", "Sweeper", "APIHandler"} <= set(functions(template))
    assert "LandingQueue" not in template["Resources"]
    assert {f["Properties"]["Tracing"] for f in functions(template).values()} == {"PassThrough"}  # xray: prod only
