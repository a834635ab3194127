"""Job status events out: EventBridge for chaining, SNS for failures, a log line always."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import logs
from chalicelib.adapters.aws import client
from chalicelib.jobs import Job, JobStatus


class EventNotifier:
    def __init__(self, *, source: str, failure_topic_arn: str | None = None, bus: str = "default",
                 events_api: Any | None = None, sns_api: Any | None = None) -> None:
        self.source = source
        self.failure_topic_arn = failure_topic_arn
        self.bus = bus
        self._events = events_api
        self._sns = sns_api

    def job_finished(self, job: Job) -> None:
        detail = job.to_public_dict()
        logs.info("job_status_change", status=job.status.value, job_id=job.id, pipeline=job.pipeline)
        try:
            result = (self._events or client("events")).put_events(Entries=[{
                "Source": self.source, "DetailType": "Job Status Change", "EventBusName": self.bus,
                "Resources": [], "Detail": json.dumps(detail, default=str)}])
            if result.get("FailedEntryCount"):
                logs.warning("job_event_not_published", entries=result.get("Entries"))
        except Exception as exc:  # the job's outcome is already durable; publishing is best effort
            logs.warning("job_event_not_published", error=str(exc))
        if job.status is JobStatus.FAILED and self.failure_topic_arn:
            try:
                (self._sns or client("sns")).publish(
                    TopicArn=self.failure_topic_arn, Subject=f"redshift-loader job {job.id} failed"[:100],
                    Message=json.dumps(detail, default=str, indent=2))
            except Exception as exc:
                logs.warning("failure_notification_not_sent", error=str(exc))
