"""Runs one worker invocation the way a traced Lambda would, in its own process, and prints what X-Ray got.

    python -m tests.unit.tracing_probe [on|off]

`on`: the stage's TRACING=xray, Lambda's LAMBDA_TASK_ROOT and _X_AMZN_TRACE_ID (the SDK then hangs
subsegments off Lambda's facade segment and sends each as soon as it ends), aws-xray-sdk's own recorder
with an in-memory emitter instead of the UDP one. The app is imported as Lambda would (app.py decides
whether to trace), then its worker handler runs one job through in-memory fakes, except the Data API
client: a real boto3 client with botocore's Stubber, so the patched botocore call is traced too.
Prints JSON: the emitted entities, which heavy modules `import app` loaded, and the handler's result.
A separate process because patching botocore lasts for the life of the process.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

TRACE_ID = "1-6566c8a0-0123456789abcdef01234567"
CATALOG = """
[warehouses.main]
workgroup = "analytics"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/RedshiftS3"

[[loads]]
name = "orders"
warehouse = "main"
bucket = "landing"
prefix = "orders/"
table = "sales.orders"
format = "csv"
"""


def main(mode: str) -> dict[str, Any]:
    os.environ.pop("AWS_XRAY_SDK_ENABLED", None)
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="probe", AWS_SECRET_ACCESS_KEY="probe",
                      AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR", API_AUTH="none")
    if mode == "on":
        os.environ.update(TRACING="xray", LAMBDA_TASK_ROOT=os.getcwd(),
                          _X_AMZN_TRACE_ID=f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1")
    else:
        os.environ.pop("TRACING", None)
    import app  # noqa: F401  (what a cold start runs)

    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"aws_xray_sdk", "devstack", "moto", "psycopg"})
    sent: list[dict[str, Any]] = []
    if mode == "on":
        from aws_xray_sdk.core import xray_recorder
        from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter

        class MemoryEmitter(UDPEmitter):
            def send_entity(self, entity: Any) -> None:
                sent.append(json.loads(entity.serialize()))

        xray_recorder.configure(emitter=MemoryEmitter())
    result = run_one_job(app)
    return {"loaded": loaded, "sent": sent, "result": result,
            "botocore_patched": type(_make_api_call()).__name__ != "function"}


def _make_api_call() -> Any:
    import botocore.client

    return botocore.client.BaseClient.__dict__["_make_api_call"]


def run_one_job(app: Any) -> dict[str, Any]:
    import boto3
    from botocore.stub import Stubber

    from chalicelib import bootstrap
    from chalicelib.adapters.warehouse import DataApiWarehouse
    from chalicelib.events import FileEvent
    from chalicelib.pipelines import parse_catalog
    from chalicelib.service import Service
    from chalicelib.settings import Settings
    from tests.unit.fakes import FakeLedger, FakeNotifier, FakeQueue, FakeStorage

    api = boto3.client("redshift-data", region_name="us-east-1")
    stubber = Stubber(api)
    stubber.add_response("batch_execute_statement", {"Id": "stmt-probe-1"})
    stubber.activate()
    queue = FakeQueue()
    service = Service(catalog=parse_catalog(CATALOG, "pipelines.toml"), settings=Settings.from_env({}),
                      ledger=FakeLedger(), queue=queue, warehouse=DataApiWarehouse(api=api), storage=FakeStorage(),
                      notifier=FakeNotifier())
    service.files_landed([FileEvent(bucket="landing", key="orders/a.csv", etag="e1", version_id=None, size=10,
                                    sequencer=None, event_name="ObjectCreated:Put", event_time="")])
    job = service.seal("orders")
    bootstrap.service = lambda: service      # the composition root's products, replaced for this run
    bootstrap.queues = lambda: queue
    event = {"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "body": json.dumps({"job_id": job.id}),
                         "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs.fifo"}]}
    response = app.worker(event, None)
    stubber.assert_no_pending_responses()
    after = service.ledger.get_job(job.id)
    return {"job_id": job.id, "status": after.status.value if after else None, "response": response,
            "statement_id": after.statement_id if after else None}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "on")))
