"""No password or access key ever leaves the places that hold them, end to end on devstack.

A stack of its own runs in a child process (so its AWS credentials can be distinctive without
disturbing the session's stack) with three warehouses, one per way to sign in: a Secrets Manager
secret, a cluster's temporary credentials (db_user), and the IAM identity. The secret exists in the
local Secrets Manager with a distinctive password; the app's AWS keys and session token are distinctive
too. Files load (one good, one with a bad row), HTTP calls list, read, request and retry jobs. Then
every log line the app wrote, everything the child printed, every ledger item, every HTTP response and
the SQL of every statement the app sent are searched: none holds the password, the access key id, the
secret key or the session token, COPY authorizes with IAM_ROLE only, and each warehouse reached the
Data API the way the catalog says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:8]
PASSWORD = f"Pw-{RUN}-Zq9x!LeakCanary"
ACCESS_KEY_ID = f"AKIALEAK{RUN.upper()}0000"[:20]
SECRET_ACCESS_KEY = f"leakcanary/{RUN}/wJalrXUtnFEMIK7MDENGbPxRfiCY"
SESSION_TOKEN = f"FwoGZXIvYXdzLEAKCANARY{RUN}token"
SECRETS = {"password": PASSWORD, "access key id": ACCESS_KEY_ID, "secret key": SECRET_ACCESS_KEY,
           "session token": SESSION_TOKEN}
SECRET_NAME = f"it-loader-{RUN}"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET_NAME}"
IAM_ROLE = "arn:aws:iam::123456789012:role/RedshiftS3"
CATALOG = f"""
[warehouses.vault]
workgroup = "it-secret-{RUN}"
database = "dev"
secret_arn = "{SECRET_ARN}"
iam_role = "{IAM_ROLE}"

[warehouses.temporary]
cluster = "it-dbuser-{RUN}"
database = "dev"
db_user = "loader"
iam_role = "{IAM_ROLE}"

[warehouses.identity]
workgroup = "it-iam-{RUN}"
database = "dev"
iam_role = "{IAM_ROLE}"

[[loads]]
name = "vault"
warehouse = "vault"
bucket = "it-secret-landing"
prefix = "vault/"
suffix = ".csv"
table = "sec.orders"
format = "csv"
options = ["IGNOREHEADER 1"]
mode = "upsert"
keys = ["id"]
batch = {{ max_files = 10, max_seconds = 1 }}

[[loads]]
name = "temporary"
warehouse = "temporary"
bucket = "it-secret-landing"
prefix = "temporary/"
table = "sec.orders"
format = "csv"
options = ["IGNOREHEADER 1"]
batch = {{ max_files = 10, max_seconds = 1 }}

[[loads]]
name = "identity"
warehouse = "identity"
bucket = "it-secret-landing"
prefix = "identity/"
table = "sec.orders"
format = "csv"
options = ["IGNOREHEADER 1"]
batch = {{ max_files = 10, max_seconds = 1 }}
"""
SIGN_IN = {  # warehouse → (target parameter, value), and how it signs in
    "vault": ({"WorkgroupName": f"it-secret-{RUN}"}, {"SecretArn": SECRET_ARN}),
    "temporary": ({"ClusterIdentifier": f"it-dbuser-{RUN}"}, {"DbUser": "loader"}),
    "identity": ({"WorkgroupName": f"it-iam-{RUN}"}, {}),
}
GOOD = "id,name,amount\n1,ann,5.00\n2,bob,7.50\n"
BAD = "id,name,amount\n3,cy,1.00\nnot-a-number,dee,2.00\n"


def serve(state_dir: str, dsn: str, credentials: dict[str, str]) -> None:
    """The child: devstack with the catalog in state_dir and the given AWS credentials, until stdin closes."""
    from devstack.stack import Devstack, StackOptions

    where = Path(state_dir)
    options = StackOptions(pipelines=where / "pipelines.toml", dsn=dsn, state_dir=where, log_file=where / "app.log",
                           schedule_seconds=1.0, poll_seconds=2, visibility_seconds=10, sweep_grace_seconds=5,
                           extra_env=credentials)
    with Devstack(options):
        sys.stdin.read()


@dataclass
class Stack:
    env: dict[str, str]
    state_dir: Path
    responses: list[str] = field(default_factory=list)

    def client(self, service: str) -> Any:
        endpoint = self.env["AWS_ENDPOINT_URL_REDSHIFT_DATA" if service == "redshift-data" else "AWS_ENDPOINT_URL"]
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def http(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        reply = requests.request(method, self.env["LOADER_API_URL"] + path, timeout=15, **kwargs)
        self.responses.append(f"{method} {path} {reply.status_code} {dict(reply.headers)} {reply.text}")
        return reply

    def wait_jobs(self, pipeline: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.http("GET", "/jobs", params={"pipeline": pipeline}).json()["jobs"]
            if len(jobs) >= count and all(j["status"] in ("SUCCEEDED", "FAILED") for j in jobs):
                return jobs
            time.sleep(0.5)
        raise TimeoutError(f"{count} finished job(s) of {pipeline}: {jobs}")


@pytest.fixture(scope="module")
def stack(pg_server, tmp_path_factory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("secrets-stack")
    (state_dir / "pipelines.toml").write_text(CATALOG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    # The values go to the child as arguments: its own import of this module draws another RUN.
    credentials = {"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                   "AWS_SESSION_TOKEN": SESSION_TOKEN}
    call = f"serve({str(state_dir)!r}, {pg_server.dsn!r}, {credentials!r})"
    with open(state_dir / "child.out", "w") as out, open(state_dir / "child.err", "w") as err:
        child = subprocess.Popen([sys.executable, "-c", f"from tests.integration.test_secrets import serve; {call}"],
                                 cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 120
        while not (state_dir / "env").exists():
            assert child.poll() is None, (state_dir / "child.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "the child stack did not start"
            time.sleep(0.2)
        time.sleep(0.2)  # the env file is written in one go; let it land
        stack_env = dict(line.split("=", 1) for line in (state_dir / "env").read_text().splitlines() if "=" in line)
        yield Stack(stack_env, state_dir)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_sql(stack: Stack, warehouse: str, sqls: list[str]) -> None:
    target, auth = SIGN_IN[warehouse]
    data_api = stack.client("redshift-data")
    sid = data_api.batch_execute_statement(Sqls=sqls, Database="dev", **target, **auth)["Id"]
    for _ in range(300):
        d = data_api.describe_statement(Id=sid)
        if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            assert d["Status"] == "FINISHED", d.get("Error")
            return
        time.sleep(0.05)
    raise TimeoutError(sid)


def statements(stack: Stack) -> list[dict[str, Any]]:
    """Every statement the emulator ran, described (SQL text and how it signed in)."""
    data_api = stack.client("redshift-data")
    listed, token = [], None
    while True:
        page = data_api.list_statements(Status="ALL", MaxResults=100, **({"NextToken": token} if token else {}))
        listed += page["Statements"]
        token = page.get("NextToken")
        if not token:
            return [data_api.describe_statement(Id=s["Id"]) for s in listed]


def ledger_items(stack: Stack) -> list[dict[str, Any]]:
    dynamodb = stack.client("dynamodb")
    items = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            items += page["Items"]
    return items


def test_no_password_or_access_key_appears_in_logs_ledger_responses_or_sql(stack: Stack) -> None:
    assert (stack.env["AWS_ACCESS_KEY_ID"], stack.env["AWS_SESSION_TOKEN"]) == (ACCESS_KEY_ID, SESSION_TOKEN)
    secrets_manager = stack.client("secretsmanager")
    value = json.dumps({"username": "loader", "password": PASSWORD})
    try:
        secrets_manager.create_secret(Name=SECRET_NAME, SecretString=value)
    except secrets_manager.exceptions.ResourceExistsException:  # devstack made it for the catalog already
        secrets_manager.put_secret_value(SecretId=SECRET_NAME, SecretString=value)
    stored = json.loads(secrets_manager.get_secret_value(SecretId=SECRET_NAME)["SecretString"])
    assert stored["password"] == PASSWORD  # the secret the vault warehouse names really holds it
    for warehouse in SIGN_IN:
        run_sql(stack, warehouse, ["CREATE SCHEMA sec",
                                   "CREATE TABLE sec.orders (id INT, name VARCHAR(20), amount DECIMAL(10,2))"])
    s3 = stack.client("s3")
    for warehouse in SIGN_IN:
        s3.put_object(Bucket="it-secret-landing", Key=f"{warehouse}/good.csv", Body=GOOD.encode())
    for warehouse in SIGN_IN:
        [job] = stack.wait_jobs(warehouse, 1)
        assert job["status"] == "SUCCEEDED", job
    s3.put_object(Bucket="it-secret-landing", Key="vault/bad.csv", Body=BAD.encode())
    failed = [j for j in stack.wait_jobs("vault", 2) if j["status"] == "FAILED"]
    assert len(failed) == 1 and failed[0]["load_errors"], failed
    assert (failed[0]["load_errors"][0]["line"], failed[0]["load_errors"][0]["column"]) == (3, "id")

    # Every HTTP call a person or script makes (responses recorded by Stack.http).
    assert stack.http("POST", "/loads", json={"pipeline": "vault", "keys": ["vault/good.csv"], "force": True}
                      ).status_code == 202
    assert stack.http("POST", f"/jobs/{failed[0]['id']}/retry").status_code in (200, 202)
    stack.wait_jobs("vault", 3)
    for path in ("/health", "/pipelines", "/openapi.json", "/jobs", "/jobs?status=FAILED"):
        assert stack.http("GET", path).status_code == 200, path
    for job in stack.http("GET", "/jobs").json()["jobs"]:
        assert stack.http("GET", f"/jobs/{job['id']}").status_code == 200
    assert stack.http("GET", "/pipelines").json()["warehouses"]["vault"]["auth"] == "secret"

    described = statements(stack)
    sqls = [d.get("QueryString", "") for d in described] + [s.get("QueryString", "") for d in described
                                                   for s in d.get("SubStatements", [])]
    copies = [q for q in sqls if q.lstrip().upper().startswith("COPY ")]
    assert len(copies) >= 5 and all(f"IAM_ROLE '{IAM_ROLE}'" in q for q in copies), copies
    for keyword in ("CREDENTIALS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
        assert not any(keyword in q.upper() for q in copies), keyword
    ours = [d for d in described if (d.get("QueryString") or "").find("sec.") >= 0 or d.get("SubStatements")]
    for warehouse, (target, auth) in SIGN_IN.items():  # how each warehouse reached the Data API
        sent = [d for d in ours if all(d.get(k) == v for k, v in target.items())]
        assert sent, warehouse
        assert all(d.get("SecretArn") == auth.get("SecretArn") and d.get("DbUser") == auth.get("DbUser")
                   for d in sent), (warehouse, [(d.get("SecretArn"), d.get("DbUser")) for d in sent])

    log_text = (stack.state_dir / "app.log").read_text()
    log_lines = [json.loads(line) for line in log_text.splitlines()]
    assert {line["event"] for line in log_lines} >= {"job_submitted", "job_finished"}
    items = ledger_items(stack)
    assert any(failed[0]["id"] in json.dumps(item) for item in items)
    child_output = (stack.state_dir / "child.out").read_text() + (stack.state_dir / "child.err").read_text()
    places = {"app log": log_text, "child output": child_output, "ledger items": json.dumps(items),
              "HTTP responses": "\n".join(stack.responses), "statements": json.dumps(described, default=str)}
    for place, text in places.items():
        for what, secret in SECRETS.items():
            assert secret not in text, f"the {what} appears in the {place}"
