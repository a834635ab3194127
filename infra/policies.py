"""Generate one least-privilege IAM policy per Lambda into .chalice/ (autogen_policy is off).

Each function gets exactly the actions its code path calls, scoped to the app's queues, ledger
table, manifest bucket, landing buckets and, from the catalog, the warehouses it runs SQL on:
Data API actions on those clusters/workgroups, and per warehouse the one way it authenticates
(Secrets Manager read of its secret, GetClusterCredentials for its db_user, or Serverless
GetCredentials). Account and Region are wildcards so the files work for `chalice deploy` too.

    python infra/policies.py [pipelines.toml] [--failure-topic ARN]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chalicelib import resources  # noqa: E402
from chalicelib.pipelines import Catalog, load_catalog  # noqa: E402

FUNCTIONS = ("router", "worker", "completion", "dms", "sweeper", "api_handler")
MANIFEST_BUCKET_PATTERN = "redshift-loader-manifests-*"  # infra names it <prefix>-<account>-<region>
# Data API calls on a statement id are checked against the caller who ran it, not a resource.
DATA_API_OWN = ["redshift-data:CancelStatement", "redshift-data:DescribeStatement", "redshift-data:GetStatementResult"]
DATA_API_RUN = ["redshift-data:BatchExecuteStatement", "redshift-data:ExecuteStatement", "redshift-data:ListDatabases"]


def _queue_arn(name: str) -> str:
    return f"arn:aws:sqs:*:*:{name}"


def _statement(sid: str, actions: list[str], resources_: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)), "Resource": sorted(set(resources_))}


def warehouse_statements(catalog: Catalog) -> list[dict[str, Any]]:
    targets, secrets, db_users, serverless = [], [], [], []
    for w in catalog.warehouses.values():
        if w.cluster:
            targets.append(f"arn:aws:redshift:*:*:cluster:{w.cluster}")
        else:  # a workgroup ARN carries its id, not its name
            targets.append("arn:aws:redshift-serverless:*:*:workgroup/*")
        if w.secret_arn:
            secrets.append(w.secret_arn)
        elif w.db_user and w.cluster:
            db_users += [f"arn:aws:redshift:*:*:dbuser:{w.cluster}/{w.db_user}",
                         f"arn:aws:redshift:*:*:dbname:{w.cluster}/{w.database}"]
        elif w.workgroup:
            serverless.append("arn:aws:redshift-serverless:*:*:workgroup/*")
    out = [_statement("RunSqlOnTheCatalogsWarehouses", DATA_API_RUN, targets),
           _statement("FollowOwnStatements", DATA_API_OWN, ["*"])]
    if secrets:
        out.append(_statement("ReadWarehouseSecrets", ["secretsmanager:GetSecretValue"], secrets))
    if db_users:
        out.append(_statement("TemporaryClusterCredentials", ["redshift:GetClusterCredentials"], db_users))
    if serverless:
        out.append(_statement("ServerlessCredentials", ["redshift-serverless:GetCredentials"], serverless))
    return out


def policies(catalog: Catalog, failure_topic: str | None = None) -> dict[str, dict[str, Any]]:
    landing, jobs = resources.LANDING_QUEUE, resources.JOBS_QUEUE
    table = resources.LEDGER_TABLE.default_name
    ledger = _statement("Ledger", ["dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
                                   "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                        [f"arn:aws:dynamodb:*:*:table/{table}", f"arn:aws:dynamodb:*:*:table/{table}/index/*"])
    logs = _statement("Logs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                      ["arn:aws:logs:*:*:*"])
    xray = _statement("Tracing", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"])
    consume = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    send = ["sqs:GetQueueUrl", "sqs:SendMessage"]
    all_queues = [_queue_arn(q.default_name) for q in resources.QUEUES] + [_queue_arn(q.dlq_name) for q in resources.QUEUES]
    send_all = _statement("SendToTheAppsQueues", send, all_queues)
    release = _statement("ReleaseHeldJobMessages", ["sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"],
                         [_queue_arn(jobs.default_name)])
    notify = [_statement("JobEvents", ["events:PutEvents"], ["arn:aws:events:*:*:event-bus/default"])]
    if failure_topic:
        notify.append(_statement("FailureTopic", ["sns:Publish"], [failure_topic]))
    manifests = _statement("WriteManifests", ["s3:PutObject"], [f"arn:aws:s3:::{MANIFEST_BUCKET_PATTERN}/*"])
    buckets = sorted({p.bucket for p in catalog.loads})
    landing_read = _statement("ReadLandingBuckets", ["s3:GetObject", "s3:ListBucket"],
                              [f"arn:aws:s3:::{b}" for b in buckets] + [f"arn:aws:s3:::{b}/*" for b in buckets])
    warehouse = warehouse_statements(catalog)
    by_function = {
        "router": [_statement("ConsumeLanding", consume, [_queue_arn(landing.default_name)]), send_all, ledger],
        "worker": [_statement("ConsumeJobs", consume, [_queue_arn(jobs.default_name)]), send_all, ledger,
                   manifests, *warehouse, *notify],
        "completion": [release, send_all, ledger, *warehouse, *notify],
        "dms": [_statement("DescribeReplicationTasks", ["dms:DescribeReplicationTasks"], ["*"]), send_all, ledger],
        "sweeper": [release, send_all, ledger, manifests, *warehouse, *notify],
        "api_handler": [send_all, ledger, landing_read, *warehouse, *notify],
    }
    return {name: {"Version": "2012-10-17", "Statement": [*stmts, logs, xray]} for name, stmts in by_function.items()}


def write(catalog_path: Path, out_dir: Path, failure_topic: str | None = None) -> list[Path]:
    written = []
    for name, doc in policies(load_catalog(catalog_path), failure_topic).items():
        path = out_dir / f"policy-{name.replace('_', '-')}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        written.append(path)
    return written


def main() -> None:
    args = sys.argv[1:]
    topic = None
    if "--failure-topic" in args:
        i = args.index("--failure-topic")
        topic = args[i + 1]
        del args[i:i + 2]
    catalog = Path(args[0]) if args else REPO / "chalicelib" / "pipelines.toml"
    for path in write(catalog, REPO / ".chalice", topic):
        print(path.relative_to(REPO))


if __name__ == "__main__":
    main()
