"""HTTP use cases: validate a request, call the service, shape the JSON answer.

Every rejected request is a 400 (or 404/409) whose message names the field.
Nothing here knows about Chalice; app.py adapts requests and responses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import logs
from chalicelib.events import FileEvent
from chalicelib.followups import Followups
from chalicelib.jobs import JobStatus
from chalicelib.service import IN_FLIGHT, TERMINAL, JobFailure, Service

MAX_FILES_PER_REQUEST = 1000


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        logs.info("request_rejected", status=status, error=message, field=field)

    def reply(self) -> Reply:
        body: dict[str, Any] = {"error": self.message}
        if self.field is not None:  # even '': a client may send a field with an empty name
            body["field"] = self.field
        return Reply(self.status, body)


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def _string(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"'{name}' is required", name)
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"'{name}' must be a non-empty string", name)
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be true or false", name)
    return value


def _unknown_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"unknown field '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})", unknown[0])


def request_load(service: Service, raw: Any) -> Reply:
    """POST /loads: load given keys, or everything under a prefix, into a pipeline now."""
    body = _object(raw)
    _unknown_fields(body, {"pipeline", "keys", "prefix", "force"})
    name = _string(body, "pipeline", required=True)
    try:
        pipeline = service.catalog.load(name or "")
    except KeyError:
        raise ApiError(404, f"no pipeline named '{name}'", "pipeline") from None
    force = _bool(body, "force")
    keys, prefix = body.get("keys"), _string(body, "prefix")
    if (keys is None) == (prefix is None):
        raise ApiError(400, "give exactly one of 'keys' or 'prefix'", "keys")
    if keys is not None:
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise ApiError(400, "'keys' must be a non-empty list of S3 keys", "keys")
        if len(keys) > MAX_FILES_PER_REQUEST:
            raise ApiError(400, f"'keys' has {len(keys)} entries; at most {MAX_FILES_PER_REQUEST}", "keys")
        files = []
        for i, key in enumerate(keys):
            match = service.catalog.match(pipeline.bucket, key)
            if match.pipeline is None or match.pipeline.name != pipeline.name:
                raise ApiError(400, f"keys[{i}] '{key}' does not belong to pipeline '{pipeline.name}': "
                                    f"{match.reason or 'it matches pipeline ' + repr(match.pipeline.name)}", f"keys[{i}]")
            ref = service.storage.head(pipeline.bucket, key)
            if ref is None:
                raise ApiError(404, f"keys[{i}]: s3://{pipeline.bucket}/{key} does not exist", f"keys[{i}]")
            files.append(ref)
    else:
        assert prefix is not None
        if not prefix.startswith(pipeline.prefix):
            raise ApiError(400, f"'prefix' must start with the pipeline's prefix '{pipeline.prefix}'", "prefix")
        files = []
        for ref in service.storage.list(pipeline.bucket, prefix):
            match = service.catalog.match(ref.bucket, ref.key)
            if match.pipeline is not None and match.pipeline.name == pipeline.name:
                files.append(ref)
            if len(files) > MAX_FILES_PER_REQUEST:
                raise ApiError(400, f"more than {MAX_FILES_PER_REQUEST} files under '{prefix}'; narrow the prefix", "prefix")
        if not files:
            raise ApiError(404, f"no files of pipeline '{pipeline.name}' under s3://{pipeline.bucket}/{prefix}", "prefix")
    events = [FileEvent(bucket=f.bucket, key=f.key, etag=f.version, version_id=None, size=f.size, sequencer=None,
                        event_name="ObjectCreated:Api", event_time=datetime.utcnow().isoformat() + "Z") for f in files]
    report = service.files_landed(events, force=force)
    jobs = list(report.jobs)
    sealed = service.seal(pipeline.name)  # an HTTP load does not wait for the batch window
    if sealed:
        jobs.append(sealed)
    logs.info("load_requested", pipeline=pipeline.name, files=len(files), force=force, jobs=[j.id for j in jobs])
    return Reply(202, {
        "pipeline": pipeline.name,
        "jobs": [j.id for j in jobs],
        "queued_files": [f"s3://{f.bucket}/{f.key}" for f in report.queued_files],
        "already_loaded": [f"s3://{f.bucket}/{f.key}" for f in report.duplicates],
        "skipped": [{"file": url, "reason": reason} for url, reason in report.skipped],
    })


def request_followup(followups: Followups, name: str) -> Reply:
    """POST /followups/{name}: run a DMS follow-up now."""
    try:
        job = followups.request(name)
    except KeyError:
        raise ApiError(404, f"no dms_followup named '{name}'", "name") from None
    return Reply(202, job.to_public_dict())


def get_job(service: Service, job_id: str) -> Reply:
    job = service.ledger.get_job(job_id)
    if job is None:
        raise ApiError(404, f"no job with id '{job_id}'", "id")
    return Reply(200, job.to_public_dict())


def list_jobs(service: Service, params: dict[str, str] | None) -> Reply:
    params = params or {}
    allowed = {"pipeline", "status", "since", "limit", "next_token"}
    _unknown_fields(params, allowed)
    status = params.get("status")
    if status and status.upper() not in {s.value for s in JobStatus}:
        raise ApiError(400, f"'status' must be one of {', '.join(s.value for s in JobStatus)}", "status")
    since = _since(params.get("since"))
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "'limit' must be an integer", "limit") from None
    if not 1 <= limit <= 200:
        raise ApiError(400, "'limit' must be between 1 and 200", "limit")
    try:
        page = service.ledger.list_jobs(pipeline=params.get("pipeline"), status=status.upper() if status else None,
                                        since=since, limit=limit, next_token=params.get("next_token"))
    except (ValueError, TypeError):
        raise ApiError(400, "'next_token' is not a token this API returned", "next_token") from None
    return Reply(200, {"jobs": [j.to_public_dict() for j in page.jobs], "next_token": page.next_token})


def _since(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ApiError(400, "'since' must be an ISO-8601 time or epoch seconds", "since") from None


def retry_job(service: Service, job_id: str) -> Reply:
    job = service.ledger.get_job(job_id)
    if job is None:
        raise ApiError(404, f"no job with id '{job_id}'", "id")
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise ApiError(409, f"job '{job_id}' is {job.status.value}; only FAILED or CANCELLED jobs can be retried")
    try:
        retried = service.retry(job)
    except JobFailure as exc:  # e.g. one table of a copy run: the run is what gets retried
        raise ApiError(409, str(exc)) from None
    return Reply(202, retried.to_public_dict())


def cancel_job(service: Service, job_id: str) -> Reply:
    job = service.ledger.get_job(job_id)
    if job is None:
        raise ApiError(404, f"no job with id '{job_id}'", "id")
    if job.status in TERMINAL:
        raise ApiError(409, f"job '{job_id}' is already {job.status.value}")
    result = service.cancel(job)
    return Reply(202, result.to_public_dict())


def pipelines(service: Service) -> Reply:
    return Reply(200, service.catalog.to_public_dict())


def health(service: Service) -> Reply:
    checks = service.health()
    ok = all(c["ok"] for c in checks.values())
    return Reply(200 if ok else 503, {"status": "ok" if ok else "degraded", "checks": checks})


__all__ = ["ApiError", "Reply", "request_load", "get_job", "list_jobs", "retry_job", "cancel_job", "pipelines",
           "health", "IN_FLIGHT"]
