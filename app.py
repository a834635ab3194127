"""Chalice wiring only: each decorator hands its event to chalicelib."""

from __future__ import annotations

import os

from chalice import Chalice, Rate

from chalicelib import bootstrap, handlers, resources

app = Chalice(app_name="redshift-loader")

# Queue names are read at import: Chalice needs them to build the event sources.
LANDING_QUEUE = os.environ.get(resources.LANDING_QUEUE.env_var, resources.LANDING_QUEUE.default_name)
JOBS_QUEUE = os.environ.get(resources.JOBS_QUEUE.env_var, resources.JOBS_QUEUE.default_name)
STATEMENT_PREFIX = os.environ.get("STATEMENT_PREFIX", "redshift-loader")

bootstrap.catalog()  # validate pipelines.toml at cold start: a bad catalog fails loudly, before any event


@app.on_sqs_message(queue=LANDING_QUEUE, batch_size=10, name="router")
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


@app.schedule(Rate(1, unit=Rate.MINUTES), name="sweeper")
def sweeper(event):
    bootstrap.service().sweep()
