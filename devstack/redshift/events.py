"""Completion events (WithEvent=true) and the fault-injection knobs.

Events are built like the real "Redshift Data Statement Status Change" event
and delivered off the worker threads (a slow EventBridge must not delay
statements). EventBridge delivery is best effort in AWS too, so an
`event_filter` hook may drop or delay events to let tests prove that callers
sweep for lost ones. A `FaultSource` (devstack's FaultPlan) may also lose or delay
events (lose_event, delay_event) and answer calls with throttle / server_error faults.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from devstack.redshift.sessions import ACCOUNT_ID

log = logging.getLogger(__name__)

SOURCE = "aws.redshift-data"
DETAIL_TYPE = "Redshift Data Statement Status Change"
RESULT_RETENTION_SECONDS = 24 * 3600

Listener = Callable[[dict[str, Any]], None]
# Called with the full event (detail included). Return None/True to deliver now,
# False to drop it, or a number of seconds to deliver it that much later.
EventFilter = Callable[[dict[str, Any]], "bool | float | None"]
DELAYED_EVENT_SECONDS = (1.0, 10.0)


class FaultSource(Protocol):
    """What the emulator asks about injected faults (devstack.faults.FaultPlan)."""

    def should(self, kind: str) -> bool: ...

    def uniform(self, low: float, high: float) -> float: ...

    def randrange(self, stop: int) -> int: ...


@dataclass
class Faults:
    """Probabilities of answering a request with an error instead of serving it."""

    throttle_rate: float = 0.0  # HTTP 400 ThrottlingException "Rate exceeded"
    server_error_rate: float = 0.0  # HTTP 500 InternalServerException
    operations: frozenset[str] | None = None  # None: every operation
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    plan: FaultSource | None = None  # a fault plan's throttle / server_error rates, counted by the plan

    def seed(self, value: int) -> None:
        self.rng.seed(value)

    def pick(self, operation: str) -> tuple[int, str, str] | None:
        """(HTTP status, error type, message) to answer with, or None to serve the request."""
        if self.operations is not None and operation not in self.operations:
            return None
        if self.throttle_rate and self.rng.random() < self.throttle_rate or self.plan and self.plan.should("throttle"):
            return 400, "ThrottlingException", "Rate exceeded"
        if (self.server_error_rate and self.rng.random() < self.server_error_rate
                or self.plan and self.plan.should("server_error")):
            return 500, "InternalServerException", "Internal server error (injected fault)"
        return None


def build_event(
    *, region: str, resource_arn: str, principal: str, statement_id: str, statement_name: str | None,
    query_id: int, state: str, rows: int, created_at: float,
) -> dict[str, Any]:
    """The EventBridge event for a statement that reached a terminal state."""
    import uuid

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [resource_arn],
        "detail": {
            "principal": principal,
            "statementName": statement_name or "",
            "statementId": statement_id,
            "redshiftQueryId": query_id,
            "state": state,
            "rows": rows,
            "expireAt": int(created_at + RESULT_RETENTION_SECONDS),
        },
    }


class EventSink:
    """Delivers events in order on one background thread: listeners, then EventBridge."""

    def __init__(self, events_endpoint: str | None, region: str) -> None:
        self.events_endpoint = events_endpoint
        self.region = region
        self.listeners: list[Listener] = []
        self.event_filter: EventFilter | None = None
        self.plan: FaultSource | None = None
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []

    def start(self) -> None:
        if self.events_endpoint:
            self._client = _events_client(self.events_endpoint, self.region)  # made on first event, it delayed it
        self._thread = threading.Thread(target=self._run, name="redshift-data-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def publish(self, event: dict[str, Any]) -> None:
        decision = self.event_filter(event) if self.event_filter else None
        if decision is None and self.plan is not None:
            if self.plan.should("lose_event"):
                decision = False
            elif self.plan.should("delay_event"):
                decision = self.plan.uniform(*DELAYED_EVENT_SECONDS)
        if decision is False:
            log.info("event for %s dropped by event_filter", event["detail"]["statementId"])
            return
        if decision is not None and decision is not True and float(decision) > 0:
            timer = threading.Timer(float(decision), self._queue.put, args=(event,))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
            return
        self._queue.put(event)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            for listener in list(self.listeners):
                try:
                    listener(event["detail"])
                except Exception:  # a test listener must not kill delivery
                    log.exception("event listener failed")
            if self.events_endpoint:
                self._put(event)

    def _put(self, event: dict[str, Any]) -> None:
        try:
            if self._client is None:
                self._client = _events_client(self.events_endpoint, self.region)
            self._client.put_events(Entries=[{
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Resources": event["resources"],
                "Detail": json.dumps(event["detail"]),
            }])
        except Exception:  # best effort, like the real service
            log.exception("could not put event on %s", self.events_endpoint)


def _events_client(endpoint: str | None, region: str) -> Any:
    from devstack.redshift.awsclients import emulator_client

    return emulator_client("events", endpoint, region)
