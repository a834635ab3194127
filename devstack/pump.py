"""Deliver events to the app's handlers the way Lambda would.

Read from the app's own decorators (`app.event_sources`): SQS sources are
long-polled with their batch size and handed to the handler; whatever the
handler reports in `batchItemFailures` stays on the queue (no visibility
change, as Lambda does), the rest is deleted; a raised exception fails the
whole batch. EventBridge sources get a rule on the local bus targeting a
devstack queue (moto cannot invoke Lambdas); schedules fire on a timer.

With a `FaultPlan` the pump also misdelivers (dup_s3, dup_sqs, dup_event, reorder) and
lets the app's clients kill invocations (`LambdaDied`, see devstack/clientfaults.py): a
dead invocation's messages stay as received, like a crashed Lambda's.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from chalicelib import resources
from devstack.faults import FaultPlan, LambdaDied, lambda_invocation

ACCOUNT = "123456789012"


@dataclass
class LambdaContext:
    function_name: str
    timeout_seconds: int = 60
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 128
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


RESTING_POLL_SECONDS = 0.1  # between empty short polls while a batching window gathers
FIFO_IDLE_SECONDS = 0.2  # pause between short polls of an empty (or all-locked) FIFO queue
REORDER_SECONDS = (1, 4)  # a held-back delivery comes back this much later
DUPLICATE_DELAY_SECONDS = (0, 3)


@dataclass
class PumpStats:
    invocations: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    deaths: dict[str, int] = field(default_factory=dict)  # invocations killed by an injected LambdaDied
    given_up: dict[str, int] = field(default_factory=dict)  # EventBridge events failed on every attempt

    def count(self, name: str, failed: bool = False) -> None:
        bucket = self.errors if failed else self.invocations
        bucket[name] = bucket.get(name, 0) + 1

    def died(self, name: str) -> None:
        self.deaths[name] = self.deaths.get(name, 0) + 1

    def gave_up(self, name: str) -> None:
        self.given_up[name] = self.given_up.get(name, 0) + 1


class Pump:
    def __init__(self, app: Any, *, endpoint: str, region: str = "us-east-1", schedule_seconds: float = 2.0,
                 concurrency: dict[str, int] | None = None, on_error: Callable[[str, BaseException], None] | None = None,
                 event_filter: Callable[[str, dict[str, Any]], bool] | None = None,
                 faults: FaultPlan | None = None) -> None:
        self.app = app
        self.endpoint = endpoint
        self.region = region
        self.schedule_seconds = schedule_seconds
        self.concurrency = concurrency or {}
        self.on_error = on_error
        self.event_filter = event_filter  # fault injection: return False to drop a delivery
        self.faults = faults or FaultPlan()
        from devstack.clientfaults import ClientFaults

        self.client_faults = ClientFaults(self.faults)
        self.stats = PumpStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region)
        self._events = boto3.client("events", endpoint_url=endpoint, region_name=region)
        self._lock = threading.Lock()
        self._fifo_receive: dict[str, threading.Lock] = {}
        self._fifo_quiet_until: dict[str, float] = {}  # after an empty poll, the next one waits
        self._fifo_wake = threading.Condition()
        self.paused = threading.Event()  # set → pollers idle (tests use it to hold work back)

    # ------------------------------------------------------------- lifecycle
    def start(self) -> "Pump":
        for source in self.app.event_sources:
            kind = type(source).__name__
            handler = self.app.handler_map[source.name]
            if kind == "SQSEventConfig":
                url = self._sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
                for i in range(self.concurrency.get(source.name, 2)):
                    self._spawn(f"sqs-{source.name}-{i}", self._poll_sqs, source.name, handler, url, source.batch_size,
                                float(getattr(source, "maximum_batching_window_in_seconds", 0) or 0))
            elif kind == "CloudWatchEventConfig":
                url = self._wire_rule(source.name, source.event_pattern)
                for i in range(self.concurrency.get(source.name, 2)):
                    self._spawn(f"events-{source.name}-{i}", self._poll_events, source.name, handler, url)
            elif kind == "ScheduledEventConfig":
                self._spawn(f"schedule-{source.name}", self._tick, source.name, handler)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._fifo_wake:
            self._fifo_wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=self._guard, args=(target, *args), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guard(self, target: Callable[..., None], *args: Any) -> None:
        while not self._stop.is_set():
            try:
                target(*args)
                return
            except Exception:  # a poller must never die quietly: log and keep polling
                traceback.print_exc()
                time.sleep(0.5)

    # ------------------------------------------------------------------ SQS
    def _poll_sqs(self, name: str, handler: Callable[..., Any], url: str, batch_size: int,
                  window_seconds: float = 0.0) -> None:
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self._stop.is_set():
            if self.paused.is_set():
                time.sleep(0.1)
                continue
            messages = self._receive(url, batch_size, window_seconds)
            if messages and self.faults.active:
                messages = self._misdeliver_sqs(url, messages)
            if not messages:
                continue
            records = [_sqs_record(m, arn, self.region) for m in messages]
            if self.event_filter and not self.event_filter(name, {"Records": records}):
                continue  # dropped delivery: the messages reappear after their visibility timeout
            failed_ids = self._invoke_sqs(name, handler, records)
            done = [m for m in messages if m["MessageId"] not in failed_ids]
            for start in range(0, len(done), 10):
                chunk = done[start:start + 10]
                self._sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])

    def _receive(self, url: str, batch_size: int, window_seconds: float) -> list[dict[str, Any]]:
        """Up to `batch_size` messages; with a batching window, keep gathering until it is full or the window ends."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + window_seconds
        while len(messages) < batch_size and not self._stop.is_set():
            count = min(batch_size - len(messages), 10)
            if url.endswith(".fifo"):
                got = self._receive_fifo(url, count)
            else:
                # The first poll waits for a message; later ones gather what the window still allows.
                wait = 1 if not messages else max(0, min(1, int(deadline - time.monotonic())))
                got = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
                                                AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            messages += got
            if not messages or window_seconds <= 0 or time.monotonic() >= deadline:
                break
            if not got:  # the queue is empty for now: look again shortly instead of spinning on short polls
                self._stop.wait(min(RESTING_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        return messages

    def _receive_fifo(self, url: str, count: int) -> list[dict[str, Any]]:
        """A short poll: moto's long poll spins without sleeping while a FIFO queue holds visible
        messages of locked groups (jobs waiting for their table). The pollers of a queue take turns,
        and after an empty poll the next one waits FIFO_IDLE_SECONDS: an idle queue costs a few polls
        a second however many pollers it has (each poll costs moto a few ms of CPU)."""
        with self._receive_guard(url):
            pause = self._fifo_quiet_until.get(url, 0.0) - time.monotonic()
            if pause > 0:
                with self._fifo_wake:  # an invocation ending (or stop) cuts the pause short
                    self._fifo_wake.wait(pause)
            got: list[dict[str, Any]] = self._sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=0, AttributeNames=["All"],
                MessageAttributeNames=["All"]).get("Messages", [])
            if not got:
                self._fifo_quiet_until[url] = time.monotonic() + FIFO_IDLE_SECONDS
            return got

    def _receive_guard(self, url: str) -> Any:
        """One receive at a time on a FIFO queue. moto snapshots the locked message groups when a
        long poll starts, so two concurrent polls could hand out two messages of one group (a
        table would load two jobs at once); real SQS never does."""
        if not url.endswith(".fifo"):
            return contextlib.nullcontext()
        with self._lock:
            return self._fifo_receive.setdefault(url, threading.Lock())

    def _misdeliver_sqs(self, url: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Injected delivery faults: copies sent again (a second delivery) and messages held back."""
        fifo = url.endswith(".fifo")
        deliver = []
        for message in messages:
            body = message["Body"]
            is_s3 = '"s3"' in body and '"Records"' in body
            if self.faults.should("dup_s3" if is_s3 else "dup_sqs"):
                extra: dict[str, Any] = {}
                if fifo:
                    attributes = message.get("Attributes", {})
                    extra = {"MessageGroupId": attributes.get("MessageGroupId", "devstack"),
                             "MessageDeduplicationId": str(uuid.uuid4())}
                else:
                    extra = {"DelaySeconds": int(self.faults.uniform(*DUPLICATE_DELAY_SECONDS))}
                self._sqs.send_message(QueueUrl=url, MessageBody=body, **extra)
            if not fifo and self.faults.should("reorder"):  # FIFO order is the queue's promise; keep it
                self._hold_back(url, message)
                continue
            deliver.append(message)
        if not fifo and len(deliver) > 1 and self.faults.rate("reorder"):
            deliver.sort(key=lambda _: self.faults.uniform(0, 1))
        return deliver

    def _call(self, name: str, handler: Callable[..., Any], event: dict[str, Any]) -> Any:
        """One invocation, marked as this function's (the client fault hooks ask which Lambda runs)."""
        if self.faults.active:
            self.client_faults.ensure_hooked()
        try:
            with lambda_invocation(name):
                return handler(event, LambdaContext(name))
        finally:
            # An invocation may have sent to a FIFO queue (a sealed batch's job, a retry): its pollers look
            # again now, as a long poll would have returned with the message, instead of after their pause.
            with self._fifo_wake:
                self._fifo_quiet_until.clear()
                self._fifo_wake.notify_all()

    def _invoke_sqs(self, name: str, handler: Callable[..., Any], records: list[dict[str, Any]]) -> set[str]:
        """Returns the message ids that failed (all of them if the handler raised or answered badly)."""
        every = {r["messageId"] for r in records}
        try:
            result = self._call(name, handler, {"Records": records})
        except LambdaDied:
            # A crashed Lambda changes no visibility: its messages come back after the queue's timeout.
            self.stats.died(name)
            return every
        except Exception as exc:
            self._failed(name, exc)
            return every
        self.stats.count(name)
        if not result:
            return set()
        try:
            failures = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        except (KeyError, TypeError) as exc:
            self._failed(name, exc)
            return every
        if not failures <= every or "" in failures:  # Lambda treats an unknown id as a whole-batch failure
            return every
        return failures

    def _failed(self, name: str, exc: BaseException) -> None:
        self.stats.count(name, failed=True)
        if self.on_error:
            self.on_error(name, exc)
        else:
            traceback.print_exception(exc)

    # ---------------------------------------------------------- EventBridge
    def _wire_rule(self, name: str, pattern: dict[str, Any]) -> str:
        queue = f"devstack-{name}-events"
        url = self._sqs.create_queue(QueueName=queue)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._events.put_rule(Name=f"devstack-{name}", EventPattern=json.dumps(pattern), State="ENABLED")
        self._events.put_targets(Rule=f"devstack-{name}", Targets=[{"Id": "pump", "Arn": arn}])
        return url

    def _poll_events(self, name: str, handler: Callable[..., Any], url: str) -> None:
        while not self._stop.is_set():
            if self.paused.is_set():
                time.sleep(0.1)
                continue
            messages = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                                                 AttributeNames=["All"]).get("Messages", [])
            for message in messages:
                event = json.loads(message["Body"])
                event.setdefault("account", ACCOUNT)  # moto's SQS target drops it; Chalice requires it
                if self.event_filter and not self.event_filter(name, event):
                    self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    continue
                if self.faults.active and self._misdeliver_event(url, message):
                    continue
                receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                try:
                    self._call(name, handler, event)
                    self.stats.count(name)
                except (Exception, LambdaDied) as exc:
                    if isinstance(exc, LambdaDied):
                        self.stats.died(name)
                    else:
                        self._failed(name, exc)
                    if receives < 3:  # async invoke: Lambda retries twice, then drops (or DLQs) the event
                        self._sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                                            VisibilityTimeout=1)
                        continue
                    self._give_up(name, event, exc)
                self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _give_up(self, name: str, event: dict[str, Any], exc: BaseException) -> None:
        """Lambda's last attempt failed: the event goes to the function's on-failure destination
        (infra/template.py), in Lambda's record shape, or is dropped where none is configured."""
        self.stats.gave_up(name)
        if name not in resources.FAILED_EVENTS_FUNCTIONS:
            print(f"devstack: {name} failed on an EventBridge event 3 times; dropped", file=sys.stderr)
            return
        record = {"version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "requestContext": {"functionArn": f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}",
                                     "condition": "RetriesExhausted",
                                     "approximateInvokeCount": 1 + resources.EVENT_RETRY_ATTEMPTS},
                  "requestPayload": event, "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
                  "responsePayload": {"errorType": type(exc).__name__, "errorMessage": str(exc)[:1000]}}
        url = self._sqs.get_queue_url(QueueName=resources.FAILED_EVENTS_QUEUE)["QueueUrl"]
        self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

    def _misdeliver_event(self, url: str, message: dict[str, Any]) -> bool:
        """Injected EventBridge faults; True when the event is held back for later."""
        if self.faults.should("dup_event"):
            self._sqs.send_message(QueueUrl=url, MessageBody=message["Body"],
                                   DelaySeconds=int(self.faults.uniform(*DUPLICATE_DELAY_SECONDS)))
        if self.faults.should("reorder"):
            self._hold_back(url, message)
            return True
        return False

    def _hold_back(self, url: str, message: dict[str, Any]) -> None:
        """Make a received message visible again a little later, so later ones overtake it."""
        try:
            self._sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                                VisibilityTimeout=int(self.faults.uniform(*REORDER_SECONDS)))
        except Exception as exc:  # a slow poller's receipt went stale: another one has the message now
            if "ReceiptHandleIsInvalid" not in f"{type(exc).__name__}: {exc}":
                raise

    # ------------------------------------------------------------ schedules
    def _tick(self, name: str, handler: Callable[..., Any]) -> None:
        while not self._stop.wait(self.schedule_seconds):
            if self.paused.is_set():
                continue
            self.run_schedule(name, handler)

    def run_schedule(self, name: str, handler: Callable[..., Any] | None = None) -> None:
        handler = handler or self.app.handler_map[name]
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "region": self.region, "resources": [f"arn:aws:events:{self.region}:{ACCOUNT}:rule/{name}"],
                 "detail": {}}
        try:
            self._call(name, handler, event)
            self.stats.count(name)
        except LambdaDied:
            self.stats.died(name)
        except Exception as exc:
            self._failed(name, exc)


def _sqs_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": message.get("Attributes", {}), "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": arn,
        "awsRegion": region,
    }
