"""SQS: the FIFO jobs queue, delayed batch flushes on the landing queue, dead letters."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chalicelib import logs
from chalicelib.adapters.aws import client, error_code
from chalicelib.resources import QueueDef

# A receipt handle goes stale once the message is received again or deleted;
# that only means someone else already moved the message on.
_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight",
                  "AWS.SimpleQueueService.MessageNotInflight"}


class SqsQueues:
    def __init__(self, *, landing_queue: str, jobs_queue: str, api: Any | None = None) -> None:
        self.landing_queue = landing_queue
        self.jobs_queue = jobs_queue
        self._api = api
        self._urls: dict[str, str] = {}

    @property
    def api(self) -> Any:
        return self._api or client("sqs")

    def url(self, name: str) -> str:
        if name not in self._urls:
            self._urls[name] = self.api.get_queue_url(QueueName=name)["QueueUrl"]
        return self._urls[name]

    def enqueue_job(self, job_id: str, *, group: str, dedup_id: str) -> None:
        self.api.send_message(QueueUrl=self.url(self.jobs_queue), MessageBody=json.dumps({"job_id": job_id}),
                              MessageGroupId=_safe_id(group), MessageDeduplicationId=_safe_id(dedup_id))

    def hide(self, receipt: str, seconds: int) -> None:
        try:
            self.api.change_message_visibility(QueueUrl=self.url(self.jobs_queue), ReceiptHandle=receipt,
                                               VisibilityTimeout=max(0, min(int(seconds), 43200)))
        except Exception as exc:
            if error_code(exc) not in _STALE_RECEIPT:
                raise
            logs.debug("receipt_stale", error=str(exc))

    def schedule_flush(self, pipeline: str, batch_id: str, delay_seconds: int) -> None:
        body = json.dumps({"flush": {"pipeline": pipeline, "batch_id": batch_id}})
        self.api.send_message(QueueUrl=self.url(self.landing_queue), MessageBody=body,
                              DelaySeconds=max(0, min(int(delay_seconds), 900)))

    def dead_letter(self, queue: str, body: str, reason: str) -> None:
        dlq = QueueDef(logical_id="", env_var="", default_name=queue, fifo=queue.endswith(".fifo"),
                       visibility_timeout=0, max_receive_count=0).dlq_name
        extra: dict[str, Any] = {}
        if dlq.endswith(".fifo"):
            digest = hashlib.sha256(body.encode()).hexdigest()
            extra = {"MessageGroupId": "dead-letters", "MessageDeduplicationId": digest}
        self.api.send_message(QueueUrl=self.url(dlq), MessageBody=body, MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"}}, **extra)
        logs.error("message_dead_lettered", queue=queue, reason=reason)


def _safe_id(value: str) -> str:
    """SQS group/dedup ids: ≤128 chars of alphanumerics and punctuation."""
    cleaned = "".join(ch if 33 <= ord(ch) <= 126 else "_" for ch in value)
    if len(cleaned) <= 128:
        return cleaned
    return cleaned[:100] + "~" + hashlib.sha256(value.encode()).hexdigest()[:27]
