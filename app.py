"""Chalice wiring only: each decorator hands its event to chalicelib."""

from __future__ import annotations

import os

from chalice import Chalice, IAMAuthorizer, Rate, Response

from chalicelib import api, api_moves, bootstrap, handlers, openapi, resources, tracing

app = Chalice(app_name="redshift-loader")

# Queue names are read at import: Chalice needs them to build the event sources.
LANDING_QUEUE = os.environ.get(resources.LANDING_QUEUE.env_var, resources.LANDING_QUEUE.default_name)
JOBS_QUEUE = os.environ.get(resources.JOBS_QUEUE.env_var, resources.JOBS_QUEUE.default_name)
STATEMENT_PREFIX = os.environ.get("STATEMENT_PREFIX", "redshift-loader")

# IAM (SigV4) auth on every route but /health when deployed; devstack serves on loopback without it.
AUTH = IAMAuthorizer() if os.environ.get("API_AUTH", "iam") == "iam" else None

tracing.start()  # X-Ray only when the stage sets TRACING=xray; before any AWS client exists
bootstrap.catalog()  # validate pipelines.toml at cold start: a bad catalog fails loudly, before any event


@app.on_sqs_message(queue=LANDING_QUEUE, batch_size=100, maximum_batching_window_in_seconds=1, name="router")
def router(event):
    return handlers.route_landing(bootstrap.service(), event.to_dict())


@app.on_sqs_message(queue=JOBS_QUEUE, batch_size=1, name="worker")
def worker(event):
    return handlers.run_jobs(bootstrap.service(), event.to_dict(), bootstrap.queues().hide)


@app.on_cw_event({"source": ["aws.redshift-data"],
                  "detail-type": ["Redshift Data Statement Status Change"],
                  "detail": {"statementName": [{"prefix": f"{STATEMENT_PREFIX}:"}]}},
                 name="completion")
def completion(event):
    handlers.statement_changed(bootstrap.service(), event.to_dict())


@app.on_cw_event({"source": ["aws.dms"], "detail-type": ["DMS Replication Task State Change"],
                  "detail": {"eventType": ["REPLICATION_TASK_STOPPED", "REPLICATION_TASK_FAILED"]}},
                 name="dms")
def dms(event):
    handlers.dms_task_changed(bootstrap.followups(), event.to_dict())


@app.schedule(Rate(1, unit=Rate.MINUTES), name="sweeper")
def sweeper(event):
    bootstrap.service().sweep()


def _respond(call) -> Response:
    try:
        reply = call(bootstrap.service())
    except api.ApiError as exc:
        reply = exc.reply()
    return Response(body=reply.body, status_code=reply.status, headers={"Content-Type": "application/json"})


@app.route("/health", methods=["GET"])
def health():
    return _respond(api.health)


@app.route("/openapi.json", methods=["GET"])
def openapi_document():
    return openapi.document()


@app.route("/pipelines", methods=["GET"], authorizer=AUTH)
def pipelines():
    return _respond(api.pipelines)


def _json_body():
    """The request's JSON body; one nested too deeply to decode is a 400, not a 500."""
    try:
        return app.current_request.json_body
    except RecursionError:
        raise api.ApiError(400, "request body is not JSON we can read: nested too deeply") from None


@app.route("/loads", methods=["POST"], authorizer=AUTH)
def request_load():
    return _respond(lambda s: api.request_load(s, _json_body()))


@app.route("/unloads", methods=["POST"], authorizer=AUTH)
def request_unload():
    return _respond(lambda s: api_moves.request_unload(s, _json_body()))


@app.route("/copies", methods=["POST"], authorizer=AUTH)
def request_copy():
    return _respond(lambda s: api_moves.request_copy(s, _json_body()))


@app.route("/archives", methods=["POST"], authorizer=AUTH)
def request_archive():
    return _respond(lambda s: api_moves.request_archive(s, _json_body()))


@app.route("/jobs/{job_id}/report", methods=["GET"], authorizer=AUTH)
def job_report(job_id):
    return _respond(lambda s: api_moves.run_report(s, job_id))


@app.route("/followups/{name}", methods=["POST"], authorizer=AUTH)
def run_followup(name):
    return _respond(lambda s: api.request_followup(bootstrap.followups(), name))


@app.route("/jobs", methods=["GET"], authorizer=AUTH)
def list_jobs():
    params = app.current_request.query_params
    return _respond(lambda s: api.list_jobs(s, dict(params or {})))


@app.route("/jobs/{job_id}", methods=["GET"], authorizer=AUTH)
def get_job(job_id):
    return _respond(lambda s: api.get_job(s, job_id))


@app.route("/jobs/{job_id}/retry", methods=["POST"], authorizer=AUTH)
def retry_job(job_id):
    return _respond(lambda s: api.retry_job(s, job_id))


@app.route("/jobs/{job_id}/cancel", methods=["POST"], authorizer=AUTH)
def cancel_job(job_id):
    return _respond(lambda s: api.cancel_job(s, job_id))
