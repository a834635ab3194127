"""Least-privilege IAM policy per Lambda, derived from the stage's config and the catalog.

    python -m chalicelib.policies STAGE [--check]

writes .chalice/policy-<stage>-<function>.json and points the stage's `lambda_functions` at them
(`autogen_policy` is off, so Chalice gives each function its own role with exactly that policy).
`--check` only reports stale files. Pure Python, no boto3: `make package` runs it first.

Names come from the same environment the functions see (top level → stage → function, as Chalice
merges it), so a stage that renames a queue or points PIPELINES_FILE elsewhere gets matching
policies. Account and Region are wildcards: the files serve `chalice deploy` and CloudFormation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from chalicelib.pipelines import Catalog, Warehouse, load_catalog
from chalicelib.resources import (FAILED_EVENTS_FUNCTIONS, FAILED_EVENTS_QUEUE, MANIFEST_BUCKET_DEFAULT,
                                  MANIFEST_BUCKET_ENV, QueueDef)
from chalicelib.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("router", "worker", "completion", "dms", "sweeper", "api_handler")
Policy = dict[str, Any]

# What each function's code path calls (app.py → handlers → service / followups / api → adapters).
_JOBS, _SEALS = ("GetItem", "PutItem", "UpdateItem"), ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
LEDGER_ITEMS = {"router": _SEALS, "worker": _JOBS, "completion": _JOBS, "dms": ("PutItem",),  # seal_batch deletes
                "sweeper": _SEALS, "api_handler": _SEALS}                                  # POST /loads seals too
LEDGER_INDEXES = {"worker": ("active_jobs",), "sweeper": ("active_jobs",), "api_handler": ("jobs_by_time",)}
CONSUMES = {"router": "landing", "worker": "jobs"}   # their SQS event source mappings
SENDS = {"router": ("landing", "jobs", "landing-dlq"),  # flush timers, sealed jobs, poison messages
         "worker": ("jobs", "jobs-dlq"), "completion": ("jobs", "jobs-dlq"), "sweeper": ("jobs", "jobs-dlq"),
         "dms": ("jobs",), "api_handler": ("landing", "jobs")}
RELEASES_JOBS = ("worker", "completion", "sweeper")  # ChangeMessageVisibility on held job messages
# Data API actions checked against the warehouse, by function, with the warehouses they reach:
# "loads" = warehouses of [[loads]], "followups" = of [[dms_followups]], "moves" = of [[unloads]],
# [[archives]] and both sides of [[copies]], "all" = every warehouse.
SQL_ACTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "worker": {"BatchExecuteStatement": ("loads", "followups", "moves"), "DescribeTable": ("loads", "moves"),
               "ExecuteStatement": ("loads", "followups", "moves")},  # plan, submit, load errors, SHOW TABLE
    "completion": {"ExecuteStatement": ("loads", "moves")},   # load errors; a copy run lists its tables
    "sweeper": {"ExecuteStatement": ("loads", "moves")},
    "api_handler": {"ListDatabases": ("all",), "DescribeTable": ("all",)},  # /health; ad hoc unloads check the table
}
# S3 under the prefixes of unloads, archives and copies' staging: read manifests (worker, completion, sweeper
# finish steps), write a copy run's object list and report, delete its staging files when a table is in.
MOVE_S3 = ("worker", "completion", "sweeper")
# Statement-id actions: IAM accepts only "*" for them (no statement ARN exists).
_FOLLOW = ("DescribeStatement", "GetStatementResult")
STATEMENT_ACTIONS = {"worker": _FOLLOW, "completion": _FOLLOW, "sweeper": _FOLLOW, "api_handler": ("CancelStatement",)}
NOTIFIES = ("worker", "completion", "sweeper", "api_handler")  # job status events (cancel notifies too)


def stage_env(config: Mapping[str, Any], stage: str, function: str) -> dict[str, str]:
    """The environment Chalice gives `function` in `stage` (top level → stage → stage function)."""
    stage_cfg = config.get("stages", {}).get(stage, {})
    env: dict[str, str] = {}
    for layer in (config, stage_cfg, stage_cfg.get("lambda_functions", {}).get(function, {})):
        env.update(layer.get("environment_variables", {}))
    return env


def xray_enabled(config: Mapping[str, Any], stage: str, function: str) -> bool:
    stage_cfg = config.get("stages", {}).get(stage, {})
    for layer in (stage_cfg.get("lambda_functions", {}).get(function, {}), stage_cfg,
                  config.get("lambda_functions", {}).get(function, {}), config):
        if layer.get("xray") is not None:
            return bool(layer["xray"])
    return False


def _stmt(sid: str, actions: Iterable[str], resources: Iterable[str], condition: dict | None = None) -> Policy:
    out: Policy = {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)), "Resource": sorted(set(resources))}
    if condition:
        out["Condition"] = condition
    return out


def _dlq(name: str) -> str:
    return QueueDef(logical_id="", env_var="", default_name=name, fifo=name.endswith(".fifo"),
                    visibility_timeout=0, max_receive_count=0).dlq_name


def target_arn(w: Warehouse) -> str:
    region = w.region or "*"
    if w.cluster:
        return f"arn:aws:redshift:{region}:*:cluster:{w.cluster}"
    if (w.workgroup or "").startswith("arn:"):
        return w.workgroup or ""
    # A workgroup ARN ends in its id, not its name: give the ARN as `workgroup` to narrow this.
    return f"arn:aws:redshift-serverless:{region}:*:workgroup/*"


def credential_grants(w: Warehouse) -> list[tuple[str, str]]:
    """The one way this warehouse signs in (Data API or direct connection alike), as (action, resource) pairs."""
    if w.secret_arn:  # a partial ARN (no random suffix) needs the -?????? wildcard to match
        return [("secretsmanager:GetSecretValue", w.secret_arn), ("secretsmanager:GetSecretValue", w.secret_arn + "-??????")]
    if w.cluster:
        dbname = f"arn:aws:redshift:{w.region or '*'}:*:dbname:{w.cluster}/{w.database}"
        if w.db_user:
            user = f"arn:aws:redshift:{w.region or '*'}:*:dbuser:{w.cluster}/{w.db_user}"
            return [("redshift:GetClusterCredentials", user), ("redshift:GetClusterCredentials", dbname)]
        return [("redshift:GetClusterCredentialsWithIAM", dbname)]
    return [("redshift-serverless:GetCredentials", target_arn(w))]


def _warehouses(catalog: Catalog, scopes: Iterable[str]) -> list[Warehouse]:
    names: set[str] = set()
    for scope in scopes:
        names |= {"loads": {p.warehouse for p in catalog.loads},
                  "followups": {f.warehouse for f in catalog.dms_followups},
                  "moves": {u.warehouse for u in (*catalog.unloads, *catalog.archives)}
                  | {w for c in catalog.copies for w in (c.source, c.target)},
                  "all": set(catalog.warehouses)}[scope]
    return [catalog.warehouses[n] for n in sorted(names)]


def log_groups(app: str, stage: str, function: str) -> list[str]:
    """The function's own log group under either deployment path, and its streams."""
    # `chalice deploy`: <app>-<stage>-<fn>, the API handler <app>-<stage>. CloudFormation:
    # <stack>-<LogicalId>-<suffix>, so name the stack <app>-<stage> (README) and both match.
    deployed = f"{app}-{stage}" if function == "api_handler" else f"{app}-{stage}-{function}"
    logical = "APIHandler" if function == "api_handler" else function.title()
    groups = [f"/aws/lambda/{deployed}", f"/aws/lambda/{app}-{stage}-{logical}-*"]
    return [f"arn:aws:logs:*:*:log-group:{g}{s}" for g in groups for s in ("", ":*")]


def function_policy(function: str, settings: Settings, catalog: Catalog, *, xray: bool,
                    manifest_bucket_set: bool, logs: list[str]) -> Policy:
    queues = {"landing": settings.landing_queue, "jobs": settings.jobs_queue,
              "landing-dlq": _dlq(settings.landing_queue), "jobs-dlq": _dlq(settings.jobs_queue),
              "failed-events": FAILED_EVENTS_QUEUE}  # Lambda's on-failure destination, sent with the function's role

    def sqs(*keys: str) -> list[str]:
        return [f"arn:aws:sqs:*:*:{queues[k]}" for k in keys]

    table = f"arn:aws:dynamodb:*:*:table/{settings.ledger_table}"
    out = [_stmt("Logs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], logs)]
    if function in CONSUMES:  # what the event source mapping polls with, under the function's role
        out.append(_stmt("ConsumeQueue", ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                         sqs(CONSUMES[function])))
    out.append(_stmt("SendToQueues", ["sqs:GetQueueUrl", "sqs:SendMessage"], sqs(*SENDS[function])))
    if function in FAILED_EVENTS_FUNCTIONS:  # Lambda sends an event it gave up on with the function's role
        out.append(_stmt("OnFailureDestination", ["sqs:SendMessage"], sqs("failed-events")))
    if function in RELEASES_JOBS:
        out.append(_stmt("ReleaseJobMessages", ["sqs:GetQueueUrl", "sqs:ChangeMessageVisibility"], sqs("jobs")))
    out.append(_stmt("Ledger", [f"dynamodb:{a}" for a in LEDGER_ITEMS[function]], [table]))
    if function in LEDGER_INDEXES:
        out.append(_stmt("LedgerIndexes", ["dynamodb:Query"], [f"{table}/index/{i}" for i in LEDGER_INDEXES[function]]))
    reached: dict[str, Warehouse] = {}
    for action, scopes in sorted(SQL_ACTIONS.get(function, {}).items()):
        found = _warehouses(catalog, scopes)
        reached.update({w.name: w for w in found})
        # A direct warehouse (redshift-connector) is reached over the network, not the Data API: it needs
        # only its sign-in grant below (and the Lambda in the warehouse's VPC).
        via_data_api = [w for w in found if w.connection != "direct"]
        if via_data_api:
            out.append(_stmt(f"Sql{action}", [f"redshift-data:{action}"], [target_arn(w) for w in via_data_api]))
    if function in STATEMENT_ACTIONS:
        out.append(_stmt("OwnStatements", [f"redshift-data:{a}" for a in STATEMENT_ACTIONS[function]], ["*"]))
    by_action: dict[str, set[str]] = {}
    for w in reached.values():
        for action, resource in credential_grants(w):
            by_action.setdefault(action, set()).add(resource)
    for action, resources in sorted(by_action.items()):
        out.append(_stmt("SignIn" + action.split(":")[1], [action], resources))
    if function in NOTIFIES:
        out.append(_stmt("JobEvents", ["events:PutEvents"], ["arn:aws:events:*:*:event-bus/default"]))
        if settings.failure_topic_arn:
            out.append(_stmt("FailureTopic", ["sns:Publish"], [settings.failure_topic_arn]))
    if function == "worker":  # COPY manifests
        if manifest_bucket_set:
            out.append(_stmt("WriteManifests", ["s3:PutObject"], [f"arn:aws:s3:::{settings.manifest_bucket}/*"]))
        else:  # CloudFormation names it <default>-<account>-<region>; `chalice deploy` uses the default
            out.append(_stmt("WriteManifests", ["s3:PutObject"],
                             [f"arn:aws:s3:::{MANIFEST_BUCKET_DEFAULT}/*", f"arn:aws:s3:::{MANIFEST_BUCKET_DEFAULT}-*/*"],
                             {"StringEquals": {"s3:ResourceAccount": "${aws:PrincipalAccount}"}}))
    if function == "api_handler":  # POST /loads heads and lists keys
        for bucket in sorted({p.bucket for p in catalog.loads}):
            prefixes = sorted({p.prefix for p in catalog.loads if p.bucket == bucket})
            tag = "".join(ch for ch in bucket.title() if ch.isalnum())
            # ListBucket unconditioned: without it a missing key's HEAD is 403, not the 404 we report.
            out.append(_stmt(f"ListBucket{tag}", ["s3:ListBucket"], [f"arn:aws:s3:::{bucket}"]))
            out.append(_stmt(f"ReadObjects{tag}", ["s3:GetObject"], [f"arn:aws:s3:::{bucket}/{p}*" for p in prefixes]))
    if function == "worker":  # schema drift: the worker reads the header row of CSV files with one
        headed = sorted({(p.bucket, p.prefix) for p in catalog.loads if has_header(p)})
        if headed:
            out.append(_stmt("ReadFileHeaders", ["s3:GetObject"], [f"arn:aws:s3:::{b}/{p}*" for b, p in headed]))
    if function in MOVE_S3:
        out += move_bucket_statements(catalog)
    if function == "dms":  # why a task stopped, when the event is ambiguous
        out.append(_stmt("DescribeDmsTasks", ["dms:DescribeReplicationTasks"], ["*"]))
    if xray:
        out.append(_stmt("Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]))
    return {"Version": "2012-10-17", "Statement": out}


def has_header(p: Any) -> bool:
    """A CSV load with a header row: its files' headers are checked against the table."""
    return p.format == "csv" and any(o.keyword == "IGNOREHEADER" and o.argument not in (None, "0") for o in p.options)


def move_bucket_statements(catalog: Catalog) -> list[Policy]:
    reads = sorted({(u.bucket, u.prefix) for u in (*catalog.unloads, *catalog.archives)})
    staging = sorted({(c.staging_bucket, c.staging_prefix) for c in catalog.copies})
    out = []
    if reads or staging:
        out.append(_stmt("ReadMoveManifests", ["s3:GetObject"],
                         [f"arn:aws:s3:::{b}/{p}*" for b, p in (*reads, *staging)]))
    if staging:
        out.append(_stmt("CopyStaging", ["s3:PutObject", "s3:DeleteObject"],
                         [f"arn:aws:s3:::{b}/{p}*" for b, p in staging]))
        out.append(_stmt("ListCopyStaging", ["s3:ListBucket"], sorted({f"arn:aws:s3:::{b}" for b, _ in staging})))
    return out


def policy_file(stage: str, function: str) -> str:
    return f"policy-{stage}-{function.replace('_', '-')}.json"


def stage_policies(config: Mapping[str, Any], stage: str, project: Path = PROJECT) -> dict[str, Policy]:
    """Function name → policy document for one stage."""
    if stage not in config.get("stages", {}):
        raise SystemExit(f"no stage '{stage}' in .chalice/config.json")
    out: dict[str, Policy] = {}
    for function in FUNCTIONS:
        env = stage_env(config, stage, function)
        settings = Settings.from_env(env)
        out[function] = function_policy(function, settings, load_catalog(catalog_file(env, project)),
                                        xray=xray_enabled(config, stage, function),
                                        manifest_bucket_set=MANIFEST_BUCKET_ENV in env,
                                        logs=log_groups(config["app_name"], stage, function))
    return out


def catalog_file(env: Mapping[str, str], project: Path) -> Path:
    """PIPELINES_FILE as the Lambda sees it (relative to, or under, /var/task) → this checkout's file."""
    raw = env.get("PIPELINES_FILE")
    if not raw:
        return project / "chalicelib" / "pipelines.toml"
    path = Path(raw.removeprefix("/var/task/"))
    return path if path.is_absolute() else project / path


def write(stage: str, project: Path = PROJECT, *, check: bool = False) -> list[str]:
    """Write (or with check=True only compare) the stage's files; returns the stale ones."""
    chalice_dir = project / ".chalice"
    config_path = chalice_dir / "config.json"
    config = json.loads(config_path.read_text())
    stale: list[str] = []
    docs = stage_policies(config, stage, project)  # exits on an unknown stage
    functions = config["stages"][stage].setdefault("lambda_functions", {})
    for function, doc in docs.items():
        name = policy_file(stage, function)
        text = json.dumps(doc, indent=2) + "\n"
        path = chalice_dir / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
            if not check:
                path.write_text(text)
        if functions.setdefault(function, {}).get("iam_policy_file") != name:
            functions[function]["iam_policy_file"] = name
            stale.append("config.json")
    if "config.json" in stale and not check:
        config_path.write_text(json.dumps(config, indent=2) + "\n")
    return sorted(set(stale))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    stages = [a for a in args if a != "--check"]
    if len(stages) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    stale = write(stages[0], check=check)
    for name in stale:
        print(f".chalice/{name}" + (" is stale" if check else " written"))
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
