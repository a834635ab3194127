"""HTTP use cases for unloads, table copies / migrations and archives.

A request names a configured entry (`{"unload": "daily-orders"}`) or describes one ad hoc with
the same fields as `pipelines.toml`, checked by the same rules (an ad hoc unload names a table,
never a query: no SQL text comes in over HTTP).
"""

from __future__ import annotations

from typing import Any

from chalicelib.api import ApiError, Reply, _object
from chalicelib.catalogcheck import Checker
from chalicelib.catalog_moves import check_archive, check_copy, check_unload
from chalicelib.jobs import JobKind
from chalicelib.moves import Moves
from chalicelib.service import Service

_SECTION = {"unload": "unloads", "copy": "copies", "archive": "archives"}


def request_unload(service: Service, raw: Any) -> Reply:
    """POST /unloads: run a configured unload now, or unload a table ad hoc."""
    return _request(service, raw, "unload")


def request_copy(service: Service, raw: Any) -> Reply:
    """POST /copies: copy tables or schemas between warehouses (a configured copy or ad hoc)."""
    return _request(service, raw, "copy")


def request_archive(service: Service, raw: Any) -> Reply:
    """POST /archives: archive (UNLOAD, then DELETE) rows older than the retention, now."""
    return _request(service, raw, "archive")


def _request(service: Service, raw: Any, kind: str) -> Reply:
    body = _object(raw)
    moves = Moves.of(service)
    section = _SECTION[kind]
    if kind in body:
        if set(body) != {kind}:
            extra = sorted(set(body) - {kind})[0]
            raise ApiError(400, f"'{extra}': give either '{kind}' (a configured name) alone, or the fields of an "
                                f"ad hoc {kind}", extra)
        name = body[kind]
        if not isinstance(name, str) or not name:
            raise ApiError(400, f"'{kind}' must be a non-empty string", kind)
        try:
            spec = service.catalog.move(section, name)
        except KeyError as exc:
            raise ApiError(404, str(exc).strip("'\""), kind) from None
    else:
        spec = _ad_hoc(service, body, kind)
    start = {"unload": moves.start_unload, "copy": moves.start_copy, "archive": moves.start_archive}[kind]
    job = start(spec)  # type: ignore[operator]
    assert job is not None  # a fresh id each time: never a duplicate
    return Reply(202, job.to_public_dict())


def _ad_hoc(service: Service, body: dict[str, Any], kind: str) -> Any:
    checker = Checker("request body")
    fields = {**body, "name": f"adhoc-{kind}"}
    if "name" in body:
        raise ApiError(400, "'name' is set by the service for an ad hoc request; leave it out", "name")
    if "schedule" in body:
        raise ApiError(400, "'schedule' belongs in pipelines.toml; an HTTP request runs once, now", "schedule")
    warehouses = service.catalog.warehouses
    if kind == "unload":
        if "query" in body:
            raise ApiError(400, "'query' is only for unloads in pipelines.toml; over HTTP, give a 'table'", "query")
        spec = check_unload(checker, kind, fields["name"], fields, warehouses, allow_query=False)
    elif kind == "copy":
        spec = check_copy(checker, kind, fields["name"], fields, warehouses)
    else:
        spec = check_archive(checker, kind, fields["name"], fields, warehouses)
    if checker.problems:
        first = checker.problems[0]
        raise ApiError(400, f"{first.field or kind}: {first.message}" if first.field else first.message,
                       first.field)
    if kind in ("unload", "archive") and getattr(spec, "table", None) is not None:
        warehouse = service.catalog.warehouse(spec.warehouse)
        if not service.warehouse.table_columns(warehouse, spec.table):
            raise ApiError(404, f"table {spec.table.qualified} does not exist in warehouse '{spec.warehouse}'",
                           "table")
    return spec


def run_report(service: Service, job_id: str) -> Reply:
    """GET /jobs/{id}/report: a copy run's tables with their status and reason."""
    job = service.ledger.get_job(job_id)
    if job is None:
        raise ApiError(404, f"no job with id '{job_id}'", "id")
    if job.kind is not JobKind.COPY_RUN:
        raise ApiError(409, f"job '{job_id}' is a {job.kind.value} job; only copy runs have a report")
    return Reply(200, Moves.of(service).runs.report(job))

