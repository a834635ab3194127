"""X-Ray: on only where the stage turns it on, free when off, and each job's work found by its id.

The end-to-end checks run tests/unit/tracing_probe.py in its own process (patching botocore lasts for
the life of a process): the app imported the way a Lambda cold start does, its worker handler run on one
job, X-Ray's own recorder sending to an in-memory emitter instead of the daemon.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib import logs, policies, tracing

REPO = Path(__file__).resolve().parents[2]
CONFIG = json.loads((REPO / ".chalice" / "config.json").read_text())


def probe(mode: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.unit.tracing_probe", mode], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("stage", sorted(CONFIG["stages"]))
def test_stages_with_xray_set_tracing_and_only_those(stage: str) -> None:
    for function in policies.FUNCTIONS:
        env = policies.stage_env(CONFIG, stage, function)
        assert tracing.wanted(env) == policies.xray_enabled(CONFIG, stage, function), (stage, function)
    assert any(policies.xray_enabled(CONFIG, s, "worker") for s in CONFIG["stages"]), "no stage traces at all"


def test_with_tracing_off_the_sdk_is_never_imported() -> None:
    report = probe("off")
    assert report["loaded"] == []           # nor devstack, moto or psycopg: Lambda has none of them
    assert report["botocore_patched"] is False and report["sent"] == []
    assert report["result"]["status"] == "SUBMITTED"


def test_a_traced_worker_run_annotates_the_job_and_nests_its_aws_calls() -> None:
    report = probe("on")
    assert report["loaded"] == ["aws_xray_sdk"] and report["botocore_patched"] is True
    job_id = report["result"]["job_id"]
    assert report["result"]["status"] == "SUBMITTED"
    by_name = {entity["name"]: entity for entity in report["sent"]}
    run_job = by_name["run_job"]
    assert run_job["annotations"] == {"job_id": job_id, "pipeline": "orders", "table": "main:sales.orders"}
    assert run_job["trace_id"] == "1-6566c8a0-0123456789abcdef01234567"    # under Lambda's own segment
    data_api = by_name["redshift-data"]
    assert data_api["parent_id"] == run_job["id"] and data_api["aws"]["operation"] == "BatchExecuteStatement"


def test_wanted_reads_the_stage_variable_and_the_sdk_switch() -> None:
    assert tracing.wanted({"TRACING": "xray"}) and tracing.wanted({"TRACING": " XRay "})
    assert not tracing.wanted({}) and not tracing.wanted({"TRACING": "off"})
    assert not tracing.wanted({"TRACING": "xray", "AWS_XRAY_SDK_ENABLED": "false"})


class FakeSubsegment:
    def __init__(self, name: str) -> None:
        self.name, self.annotations, self.error = name, {}, None

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value


class FakeRecorder:
    def __init__(self) -> None:
        self.subsegments: list[FakeSubsegment] = []

    def in_subsegment(self, name: str) -> Any:
        recorder = self

        class Scope:
            def __enter__(self) -> FakeSubsegment:
                recorder.subsegments.append(FakeSubsegment(name))
                return recorder.subsegments[-1]

            def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
                recorder.subsegments[-1].error = exc

        return Scope()


@pytest.fixture()
def recorder() -> Any:
    fake = FakeRecorder()
    assert tracing.start(recorder=fake) and tracing.active()
    yield fake
    tracing.stop()


def test_job_scope_annotates_records_failures_and_binds_the_log_fields(recorder: FakeRecorder) -> None:
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("redshift_loader").addHandler(handler)
    try:
        with pytest.raises(RuntimeError):
            with tracing.job_scope("run_job", job_id="j-1", pipeline="orders", table="main:sales.orders"):
                logs.warning("inside")
                raise RuntimeError("boom")
    finally:
        logging.getLogger("redshift_loader").removeHandler(handler)
    [line] = [json.loads(x) for x in lines]
    assert (line["event"], line["job_id"], line["pipeline"], line["table"]) == ("inside", "j-1", "orders",
                                                                                "main:sales.orders")
    [sub] = recorder.subsegments
    assert sub.name == "run_job" and sub.annotations == {"job_id": "j-1", "pipeline": "orders",
                                                         "table": "main:sales.orders"}
    assert isinstance(sub.error, RuntimeError)


def test_traced_is_a_no_op_with_tracing_off_and_leaves_out_missing_annotations(recorder: FakeRecorder) -> None:
    tracing.stop()
    assert not tracing.start() or tracing.wanted()   # the unit test environment does not trace
    with tracing.traced("run_job", job_id="j-1"):
        pass
    assert recorder.subsegments == []
    tracing.start(recorder=recorder)
    with tracing.traced("sweep_job", job_id="j-2", pipeline=None):
        pass
    assert recorder.subsegments[-1].annotations == {"job_id": "j-2"}
