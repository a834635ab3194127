"""The deployment template: `chalice package` + infra/resources.json, checked and linted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import resources

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "infra"))


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("package")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run([str(chalice), "package", "--stage", "prod", "--merge-template", "infra/resources.json",
                    str(out)], cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    template = json.loads((out / "sam.json").read_text())
    template["_path"] = str(out / "sam.json")
    return template


def test_committed_merge_template_matches_the_resource_definitions():
    import template  # infra/template.py

    generated = template.merge_template(REPO / "chalicelib" / "pipelines.toml")
    committed = json.loads((REPO / "infra" / "resources.json").read_text())
    assert committed == generated, "run: python infra/template.py > infra/resources.json"


def test_sqs_mappings_report_batch_item_failures(packaged):
    functions = {k: v for k, v in packaged["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    sqs = [(name, ev) for name, f in functions.items() for ev in f["Properties"].get("Events", {}).values()
           if ev["Type"] == "SQS"]
    assert {name for name, _ in sqs} == {"Router", "Worker"}
    assert all(ev["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for _, ev in sqs)


def test_queues_have_dead_letters_alarms_and_long_enough_visibility(packaged):
    res = packaged["Resources"]
    longest = max(v["Properties"]["Timeout"] for v in res.values() if v["Type"] == "AWS::Serverless::Function")
    for q in resources.QUEUES:
        props = res[q.logical_id]["Properties"]
        assert props["VisibilityTimeout"] >= 6 * longest
        dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert props["RedrivePolicy"]["maxReceiveCount"] == q.max_receive_count
        assert res[dlq]["Properties"].get("FifoQueue", False) == q.fifo
        alarms = [v for v in res.values() if v["Type"] == "AWS::CloudWatch::Alarm"
                  and v["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq, "QueueName"]}]
        assert len(alarms) == 1


def test_ledger_table_has_indexes_and_ttl(packaged):
    props = packaged["Resources"][resources.LEDGER_TABLE.logical_id]["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert {i["IndexName"] for i in props["GlobalSecondaryIndexes"]} == {"jobs_by_time", "active_jobs"}
    env = packaged["Globals"]["Function"]["Environment"]["Variables"]
    assert set(env) == {"LANDING_QUEUE", "JOBS_QUEUE", "LEDGER_TABLE", "MANIFEST_BUCKET"}


def test_packaged_template_passes_cfn_lint(packaged):
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    if cfn_lint is None:
        pytest.skip("cfn-lint is not installed (it is in requirements-dev.txt)")
    result = subprocess.run([cfn_lint, packaged["_path"]], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
