"""HTTP routes through chalice's test client, with the service's adapters faked.

Every response is checked against the OpenAPI document the app serves.
"""

from __future__ import annotations

import json
import os

import pytest
from chalice.test import Client
from jsonschema import Draft4Validator, RefResolver
from openapi_spec_validator import validate

from chalicelib import bootstrap, openapi
from chalicelib.jobs import FileRef
from chalicelib.pipelines import parse_catalog
from chalicelib.service import Service
from chalicelib.settings import Settings
from tests.unit.fakes import FakeLedger, FakeNotifier, FakeQueue, FakeStorage, FakeWarehouse, SteppingClock
from tests.unit.test_service import CATALOG

DOC = openapi.document()
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rs-credentials-XYZ"


@pytest.fixture()
def client(monkeypatch):
    os.environ["API_AUTH"] = "none"
    import importlib

    import app as app_module

    app_module = importlib.reload(app_module)
    catalog = CATALOG.replace('database = "dev"', f'database = "dev"\nsecret_arn = "{SECRET}"', 1)
    service = Service(catalog=parse_catalog(catalog, "pipelines.toml"), settings=Settings.from_env({}),
                      ledger=FakeLedger(), queue=FakeQueue(), warehouse=FakeWarehouse(), clock=SteppingClock(),
                      storage=FakeStorage(listing={"landing": [FileRef("landing", "events/a.json", "v1", 10),
                                                               FileRef("landing", "events/b.json", "v1", 20),
                                                               FileRef("landing", "orders/x.csv", "v1", 5)]}),
                      notifier=FakeNotifier())
    monkeypatch.setattr(bootstrap, "service", lambda: service)
    with Client(app_module.app) as test_client:
        test_client.service = service
        yield test_client


def _json_schema(node):
    """OpenAPI 3.0's `nullable` → JSON Schema's type union, so jsonschema can check responses."""
    if isinstance(node, dict):
        out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in node:
            out["type"] = [node["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


SCHEMA_DOC = _json_schema(DOC)


def check(path: str, method: str, response) -> dict:
    """The response matches the documented schema for its status code."""
    spec = SCHEMA_DOC["paths"][path][method]["responses"][str(response.status_code)]
    schema = spec["content"]["application/json"]["schema"]
    body = response.json_body
    Draft4Validator(schema, resolver=RefResolver("", SCHEMA_DOC)).validate(body)
    return body


def post(client, path: str, body) -> object:
    return client.http.post(path, headers={"Content-Type": "application/json"}, body=json.dumps(body))


def test_the_document_is_valid_openapi_and_covers_every_route():
    validate(DOC)
    import app as app_module

    routes = {(path, method.lower()) for path, entry in app_module.app.routes.items() for method in entry}
    documented = {(path, method) for path, ops in DOC["paths"].items() for method in ops}
    assert routes == documented


def test_load_by_keys_creates_a_job_at_once(client):
    response = post(client, "/loads", {"pipeline": "events", "keys": ["events/a.json", "events/b.json"]})
    body = check("/loads", "post", response)
    assert response.status_code == 202 and len(body["jobs"]) == 1
    assert body["queued_files"] == ["s3://landing/events/a.json", "s3://landing/events/b.json"]
    job = client.service.ledger.get_job(body["jobs"][0])
    assert job.status.value == "QUEUED" and len(job.files) == 2


def test_load_by_prefix_and_forced_reload(client):
    first = check("/loads", "post", post(client, "/loads", {"pipeline": "events", "prefix": "events/"}))
    again = check("/loads", "post", post(client, "/loads", {"pipeline": "events", "prefix": "events/"}))
    assert again["jobs"] == [] and len(again["already_loaded"]) == 2
    forced = check("/loads", "post", post(client, "/loads", {"pipeline": "events", "prefix": "events/", "force": True}))
    assert len(forced["jobs"]) == 1 and forced["jobs"] != first["jobs"]


@pytest.mark.parametrize("body, field", [
    ({}, "pipeline"),
    ({"pipeline": "events"}, "keys"),
    ({"pipeline": "events", "keys": "events/a.json"}, "keys"),
    ({"pipeline": "events", "keys": [], "prefix": "events/"}, "keys"),
    ({"pipeline": "events", "keys": ["orders/x.csv"]}, "keys[0]"),
    ({"pipeline": "events", "prefix": "orders/"}, "prefix"),
    ({"pipeline": "events", "keys": ["events/a.json"], "force": "yes"}, "force"),
    ({"pipeline": "events", "keys": ["events/a.json"], "extra": 1}, "extra"),
    (["not", "an", "object"], None),
])
def test_bad_load_requests_are_refused_naming_the_field(client, body, field):
    response = post(client, "/loads", body)
    assert response.status_code == 400
    payload = check("/loads", "post", response)
    assert payload.get("field") == field


def test_unknown_pipeline_and_missing_key_are_404(client):
    assert post(client, "/loads", {"pipeline": "nope", "keys": ["a"]}).status_code == 404
    response = post(client, "/loads", {"pipeline": "events", "keys": ["events/missing.json"]})
    assert response.status_code == 404 and "missing.json" in check("/loads", "post", response)["error"]


def test_job_status_list_retry_and_cancel(client):
    job_id = post(client, "/loads", {"pipeline": "events", "keys": ["events/a.json"]}).json_body["jobs"][0]
    body = check("/jobs/{job_id}", "get", client.http.get(f"/jobs/{job_id}"))
    assert body["status"] == "QUEUED" and body["files"] == ["s3://landing/events/a.json"]
    listed = check("/jobs", "get", client.http.get("/jobs?pipeline=events&status=QUEUED&limit=5"))
    assert [j["id"] for j in listed["jobs"]] == [job_id]
    assert client.http.get("/jobs?status=BOGUS").status_code == 400
    assert client.http.get("/jobs?limit=0").status_code == 400
    assert client.http.get("/jobs?since=yesterday").json_body["field"] == "since"
    assert client.http.post(f"/jobs/{job_id}/retry").status_code == 409  # not failed
    cancelled = check("/jobs/{job_id}/cancel", "post", client.http.post(f"/jobs/{job_id}/cancel"))
    assert cancelled["status"] == "CANCELLED"
    assert client.http.post(f"/jobs/{job_id}/cancel").status_code == 409
    retried = check("/jobs/{job_id}/retry", "post", client.http.post(f"/jobs/{job_id}/retry"))
    assert retried["status"] == "QUEUED" and retried["attempt"] == 2
    assert client.http.get("/jobs/does-not-exist").status_code == 404


def test_pipelines_hide_secrets_and_health_reports_checks(client):
    catalog = check("/pipelines", "get", client.http.get("/pipelines"))
    assert [p["name"] for p in catalog["loads"]] == ["orders", "events", "snapshot"]
    assert "rs-credentials-XYZ" not in json.dumps(catalog)
    assert catalog["warehouses"]["main"]["auth"] == "secret"
    health = check("/health", "get", client.http.get("/health"))
    assert health["status"] == "ok"
    client.service.warehouse.fail_submit = RuntimeError("EndpointConnectionError: cannot reach")
    degraded = client.http.get("/health")
    assert degraded.status_code == 503 and not degraded.json_body["checks"]["warehouse:main"]["ok"]
