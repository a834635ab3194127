"""Unloads, archives, table copies and copy runs through the service, every adapter a fake."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib.jobs import Job, JobKind, JobStatus
from chalicelib.moves import Moves
from chalicelib.pipelines import CatalogError, parse_catalog
from chalicelib.service import Disposition, Service
from chalicelib.settings import Settings
from tests.unit.fakes import FakeLedger, FakeNotifier, FakeQueue, FakeStorage, FakeWarehouse, SteppingClock

CATALOG = """
[warehouses.main]
workgroup = "analytics"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/RedshiftS3"

[warehouses.archive]
cluster = "archive-cluster"
database = "archive"
db_user = "loader"
iam_role = "arn:aws:iam::123456789012:role/RedshiftS3"

[[unloads]]
name = "orders-export"
warehouse = "main"
query = "SELECT * FROM sales.orders WHERE status = 'shipped'"
bucket = "exports"
prefix = "orders/"
format = "csv"
header = true
compression = "gzip"
schedule = "cron(0 3 * * ? *)"

[[archives]]
name = "old-events"
warehouse = "main"
table = "analytics.events"
timestamp_column = "event_time"
retention_days = 30
bucket = "archive-bucket"
prefix = "events/"

[[copies]]
name = "tenants"
source = "main"
target = "archive"
tables = ["sales.orders"]
schemas = ["tenant_a"]
staging_bucket = "staging"
staging_prefix = "copies/"
max_parallel = 2
include_views = false
"""


class ScriptedWarehouse(FakeWarehouse):
    """A fake whose queries answer by the first matching SQL fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[str, list[dict[str, Any]]]] = []

    def query(self, warehouse, sql, *, timeout=15.0):  # type: ignore[override]
        self.queries.append(sql)
        for fragment, rows in self.answers:
            if fragment in sql:
                return rows
        return []

    def table_columns(self, warehouse, table):  # type: ignore[override]
        return self.columns.get(f"{warehouse.name}:{table.qualified}", [])


@pytest.fixture()
def env():
    catalog = parse_catalog(CATALOG, "pipelines.toml")
    settings = Settings.from_env({"MAX_ATTEMPTS": "3", "POLL_SECONDS": "30", "SWEEP_GRACE_SECONDS": "60"})
    warehouse = ScriptedWarehouse()
    service = Service(catalog=catalog, settings=settings, clock=SteppingClock(), ledger=FakeLedger(),
                      queue=FakeQueue(), warehouse=warehouse, storage=FakeStorage(),
                      notifier=FakeNotifier())  # type: ignore[arg-type]
    return service, Moves(service), warehouse


def run(service: Service, job: Job) -> Job:
    """One delivery of the job's message; returns the job as stored."""
    service.run_job_message(job.id, receipt="r", receive_count=1)
    return service.ledger.get_job(job.id)


def finish(service: Service, job: Job, **kwargs: Any) -> Job:
    service.warehouse.finish(job.statement_id, **kwargs)
    return service._finish(job, service.warehouse.describe(job.statement_id))


def put_manifest(service: Service, url: str, rows: int, columns: tuple[str, ...] = ("id", "name")) -> None:
    bucket, key = url.removeprefix("s3://").split("/", 1)
    service.storage.put_text(bucket, key + "manifest", json.dumps({
        "entries": [{"url": url + "0000_part_00", "meta": {"record_count": rows}}],
        "schema": {"elements": [{"name": c, "type": {"base": "integer"}} for c in columns]},
        "meta": {"record_count": rows}}))


# ---------------------------------------------------------------- unloads
def test_an_unload_writes_below_its_own_run_folder_and_counts_rows_from_the_manifest(env):
    service, moves, warehouse = env
    job = moves.start_unload(service.catalog.move("unloads", "orders-export"))
    assert job.kind is JobKind.UNLOAD and job.target == "main:unload:orders-export"
    job = run(service, job)
    [sql] = warehouse.submitted[job.statement_id][1]
    url = f"s3://exports/orders/{job.id}/"
    assert sql.startswith("UNLOAD ('SELECT * FROM sales.orders WHERE status = ''shipped''') TO " + repr(url))
    assert "FORMAT AS CSV HEADER GZIP" in sql and "MANIFEST VERBOSE" in sql and sql.endswith("CLEANPATH")
    put_manifest(service, url, 42)
    done = finish(service, job)
    assert done.status is JobStatus.SUCCEEDED and done.rows == 42
    assert done.results["manifest"] == url + "manifest" and done.results["files"] == 1


def test_two_runs_of_one_unload_never_share_a_folder(env):
    service, moves, _ = env
    spec = service.catalog.move("unloads", "orders-export")
    a, b = moves.start_unload(spec), moves.start_unload(spec)
    assert a.params["url"] != b.params["url"]


def test_a_schedule_starts_one_run_per_due_time_however_often_the_sweeper_looks(env):
    service, moves, _ = env
    three_am = 1_795_402_800.0  # 2026-11-23T03:00:00Z
    first = moves.run_due(three_am + 30)
    again = moves.run_due(three_am + 90)
    assert [j.pipeline for j in first] == ["orders-export"] and again == []
    assert moves.run_due(three_am + 3600) == []  # not due at 04:00


# ---------------------------------------------------------------- archives
def test_an_archive_unloads_then_deletes_exactly_the_rows_it_unloaded(env):
    service, moves, warehouse = env
    at = 1_795_402_800.0
    job = moves.start_archive(service.catalog.move("archives", "old-events"), at=at)
    assert job.params["cutoff"] == "2026-10-24 03:00:00"  # fixed when the run starts: 30 days before
    job = run(service, job)
    [unload] = warehouse.submitted[job.statement_id][1]
    assert "WHERE \"event_time\" < CAST(''2026-10-24 03:00:00'' AS TIMESTAMP)" in unload
    put_manifest(service, job.params["url"], 3)
    job = finish(service, job)
    assert job.status is JobStatus.QUEUED and job.step == 1 and job.results["unloaded_rows"] == 3
    job = run(service, job)
    lock, guard, delete = warehouse.submitted[job.statement_id][1]
    assert lock == 'LOCK "analytics"."events"'
    assert "= 3 THEN 1 ELSE 0 END" in guard and "CAST('2026-10-24 03:00:00' AS TIMESTAMP)" in guard
    assert delete == ('DELETE FROM "analytics"."events" WHERE "event_time" < '
                      "CAST('2026-10-24 03:00:00' AS TIMESTAMP)")
    done = finish(service, job, rows=3)
    assert done.status is JobStatus.SUCCEEDED and done.rows == 3


def test_an_archive_with_nothing_older_than_the_cutoff_succeeds_with_zero_rows_and_deletes_nothing(env):
    service, moves, warehouse = env
    job = run(service, moves.start_archive(service.catalog.move("archives", "old-events")))
    put_manifest(service, job.params["url"], 0)
    done = finish(service, job)
    assert done.status is JobStatus.SUCCEEDED and done.rows == 0 and done.results["deleted_rows"] == 0
    assert len(warehouse.submitted) == 1  # the DELETE never ran


def test_an_archive_whose_rows_changed_since_the_unload_fails_without_deleting(env):
    service, moves, warehouse = env
    job = run(service, moves.start_archive(service.catalog.move("archives", "old-events")))
    put_manifest(service, job.params["url"], 3)
    job = run(service, finish(service, job))
    failed = finish(service, job, status="FAILED", error="ERROR: division by zero", failed_index=1)
    assert failed.status is JobStatus.FAILED and failed.attempt == 1  # not retried as if transient
    assert "stopped before deleting anything" in failed.error and "3 rows were unloaded" in failed.error
    retried = service.retry(failed)
    assert retried.step == 0 and retried.results == {}  # a retry unloads again


# --------------------------------------------------------------- table copies
def copy_run(service: Service, moves: Moves, warehouse: ScriptedWarehouse, tables: list[str]) -> Job:
    warehouse.answers.append(("FROM svv_tables WHERE table_type = 'BASE TABLE'",
                              [{"table_schema": t.split(".")[0], "table_name": t.split(".")[1]} for t in tables]))
    return run(service, moves.start_copy(service.catalog.move("copies", "tenants")))


def force(service: Service, job: Job, status: JobStatus, **changes: Any) -> None:
    """Put a table job straight into a state (as if its statements had run)."""
    service.ledger.jobs[job.id] = dataclasses.replace(job, status=status, **changes)


def children(service: Service) -> list[Job]:
    return sorted((j for j in service.ledger.jobs.values() if j.kind is JobKind.TABLE_COPY), key=lambda j: j.id)


def test_a_copy_run_lists_its_tables_and_runs_at_most_max_parallel_at_once(env):
    service, moves, warehouse = env
    run_job = copy_run(service, moves, warehouse, ["tenant_a.a", "tenant_a.b", "tenant_a.c", "tenant_a.d"])
    assert run_job.status is JobStatus.RUNNING
    assert run_job.results["tables"] == ["sales.orders", "tenant_a.a", "tenant_a.b", "tenant_a.c", "tenant_a.d"]
    assert [c.params["table"] for c in children(service)] == ["sales.orders", "tenant_a.a"]  # max_parallel = 2
    assert {c.target for c in children(service)} == {"archive:sales.orders", "archive:tenant_a.a"}
    force(service, children(service)[0], JobStatus.FAILED, error="boom")
    moves.runs.supervise(service.ledger.get_job(run_job.id))
    assert len(children(service)) == 3  # lane 0 moved on to the third table


def test_a_copy_run_reports_failed_tables_and_a_retry_runs_only_those(env):
    service, moves, warehouse = env
    run_job = copy_run(service, moves, warehouse, ["tenant_a.a"])
    for child in children(service):
        bad = child.params["table"] == "tenant_a.a"
        force(service, child, JobStatus.FAILED if bad else JobStatus.SUCCEEDED, error="bad" if bad else None, rows=5)
    moves.runs.supervise(service.ledger.get_job(run_job.id))
    ended = service.ledger.get_job(run_job.id)
    assert ended.status is JobStatus.FAILED and ended.error == "1 of 2 tables failed (tenant_a.a: bad)"
    report = json.loads(service.storage.objects[("staging", f"copies/{run_job.id}/report.json")])
    assert [(t["table"], t["status"]) for t in report["tables"]] == [("sales.orders", "SUCCEEDED"),
                                                                     ("tenant_a.a", "FAILED")]
    retried = service.retry(ended)
    assert retried.results["rounds"][-1] == [1]
    run(service, retried)
    fresh = [c for c in children(service) if "-r2-" in c.id]
    assert [c.params["table"] for c in fresh] == ["tenant_a.a"]


def test_a_table_copy_creates_a_missing_target_from_the_sources_ddl_and_guards_the_count(env):
    service, moves, warehouse = env
    copy_run(service, moves, warehouse, [])
    child = children(service)[0]
    child = run(service, child)
    [unload] = warehouse.submitted[child.statement_id][1]
    assert unload.startswith('UNLOAD (\'SELECT * FROM "sales"."orders"\')') and "FORMAT AS PARQUET" in unload
    put_manifest(service, child.params["url"], 7, ("id", "name"))
    child = finish(service, child)
    assert child.step == 1 and child.results["columns"] == ["id", "name"]
    warehouse.answers.append(("SHOW TABLE", [{"Show Table DDL statement":
                                              "CREATE TABLE sales.orders ( id integer ENCODE az64, name varchar(9) )"
                                              " DISTSTYLE AUTO;"}]))
    child = run(service, child)
    sqls = warehouse.submitted[child.statement_id][1]
    assert sqls[:2] == ['CREATE SCHEMA IF NOT EXISTS "sales"',
                        'CREATE TABLE "sales"."orders" ( id integer ENCODE az64, name varchar(9) ) DISTSTYLE AUTO']
    assert sqls[2:4] == ['LOCK "sales"."orders"', 'DELETE FROM "sales"."orders"']
    assert sqls[4].startswith('COPY "sales"."orders" ("id", "name") FROM ') and sqls[4].endswith("PARQUET MANIFEST")
    assert 'SELECT COUNT(*) FROM "sales"."orders") = 7' in sqls[5]
    done = finish(service, child)
    assert done.status is JobStatus.SUCCEEDED and done.rows == 7
    assert ("staging", child.params["url"].removeprefix("s3://staging/")) in service.storage.deleted_prefixes


def test_a_table_copy_fails_on_drifted_columns_naming_them(env):
    service, moves, warehouse = env
    copy_run(service, moves, warehouse, [])
    child = run(service, children(service)[0])
    put_manifest(service, child.params["url"], 2, ("id", "name", "email"))
    child = finish(service, child)
    warehouse.columns["archive:sales.orders"] = ["id", "name", "legacy"]
    failed = run(service, child)
    assert failed.status is JobStatus.FAILED
    assert failed.error == ("columns differ between source main:sales.orders and target archive:sales.orders: "
                            "only in source: email; only in target: legacy")


def test_allowed_new_columns_are_added_with_the_sources_types(env):
    service, moves, warehouse = env
    copy_run(service, moves, warehouse, [])
    child = run(service, children(service)[0])
    child = Job(**{**child.__dict__, "params": {**child.params, "allow_new_columns": True}})
    service.ledger.jobs[child.id] = child
    put_manifest(service, child.params["url"], 2, ("id", "name", "email"))
    child = finish(service, child)
    warehouse.columns["archive:sales.orders"] = ["id", "name"]
    warehouse.answers.append(("information_schema.columns", [
        {"column_name": "id", "data_type": "integer"},
        {"column_name": "email", "data_type": "character varying", "character_maximum_length": 320}]))
    child = run(service, child)
    sqls = warehouse.submitted[child.statement_id][1]
    assert sqls[0] == 'ALTER TABLE "sales"."orders" ADD COLUMN "email" character varying(320)'


def test_one_table_of_a_run_is_retried_through_its_run(env):
    service, moves, warehouse = env
    copy_run(service, moves, warehouse, [])
    force(service, children(service)[0], JobStatus.FAILED, error="x")
    failed = children(service)[0]
    with pytest.raises(Exception, match="retry the run"):
        service.retry(failed)


# ---------------------------------------------------------------- catalog
@pytest.mark.parametrize(("section", "message"), [
    ('[[unloads]]\nname = "u"\nwarehouse = "main"\nbucket = "b-b"\nquery = "DELETE FROM x"',
     "unloads 'u' field 'query': must be a SELECT"),
    ('[[unloads]]\nname = "u"\nwarehouse = "main"\nbucket = "b-b"\ntable = "s.t"\nformat = "parquet"\n'
     'compression = "gzip"', "unloads 'u' field 'compression': Parquet files are compressed already"),
    ('[[unloads]]\nname = "u"\nwarehouse = "main"\nbucket = "b-b"\ntable = "s.t"\nschedule = "rate(1 fortnight)"',
     "unloads 'u' field 'schedule'"),
    ('[[unloads]]\nname = "u"\nwarehouse = "main"\nbucket = "b-b"\ntable = "s.t"\nprefix = "x"',
     "unloads 'u' field 'prefix': 'x' must end with '/'"),
    ('[[copies]]\nname = "c"\nsource = "main"\ntarget = "main"\nstaging_bucket = "b-b"\ntables = ["s.t"]',
     "copies 'c' field 'target': source and target are the same warehouse"),
    ('[[copies]]\nname = "c"\nsource = "main"\ntarget = "nowhere"\nstaging_bucket = "b-b"\nschemas = ["x"]',
     "copies 'c' field 'target': unknown warehouse 'nowhere'"),
    ('[[archives]]\nname = "a"\nwarehouse = "main"\ntable = "s.t"\ntimestamp_column = "t"\nbucket = "b-b"\n'
     'retention_days = 0', "archives 'a' field 'retention_days': 0 is out of range"),
    ('[[unloads]]\nname = "u"\nwarehouse = "main"\nbucket = "b-b"\ntable = "s.t"\noverwrite = true',
     "unloads 'u' field 'prefix': overwrite needs a prefix"),
])
def test_catalog_problems_name_section_entry_and_field(section: str, message: str) -> None:
    head = CATALOG.split("[[unloads]]")[0]
    with pytest.raises(CatalogError) as err:
        parse_catalog(head + section + "\n", "pipelines.toml")
    assert message in str(err.value)
