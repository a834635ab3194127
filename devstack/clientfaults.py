"""Faults on the app's own AWS clients inside the devstack-run Lambdas.

botocore event hooks on the cached clients of `chalicelib.adapters.aws`, so production
code runs unchanged:

- die_after_submit: the worker's BatchExecuteStatement succeeded, then the Lambda died
  (the statement runs; the ledger never heard of it).
- die_after_record: the worker's ledger write QUEUED → SUBMITTED succeeded, then it died.
- die_completion: the completion Lambda's ledger write finishing a job succeeded, then it
  died (files not marked, no notification, no split of a batch with a bad file).
- ddb_conflict: a conditional ledger write (or transaction) is answered with a DynamoDB
  transaction conflict, as when another writer holds the item. Injected at the HTTP
  layer (`before-send`), so botocore's own retry policy sees it like a real answer.

Deaths raise `LambdaDied`; which Lambda is running comes from the pump
(`faults.lambda_invocation`), so the HTTP API and the tests' own calls never die.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.awsrequest import AWSResponse

from devstack.faults import FaultPlan, LambdaDied, current_function

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
HOOKED_SERVICES = ("dynamodb", "redshift-data")
_CONDITIONAL_WRITES = ("UpdateItem", "PutItem", "DeleteItem")
_PARAMS = "devstack_fault_params"


class ClientFaults:
    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan

    def ensure_hooked(self) -> None:
        """Hook the app's current clients (cheap when already done; bootstrap.reset() makes new ones)."""
        from chalicelib.adapters import aws

        for service in HOOKED_SERVICES:
            client = aws.client(service)
            if getattr(client, "_devstack_faults", None) is self:
                continue
            events = client.meta.events
            for event, handler in self._handlers(service):
                events.unregister(event, unique_id=f"devstack-faults:{event}")
                events.register(event, handler, unique_id=f"devstack-faults:{event}")
            client._devstack_faults = self

    def _handlers(self, service: str) -> list[tuple[str, Any]]:
        if service == "redshift-data":
            return [("after-call.redshift-data.BatchExecuteStatement", self._after_submit)]
        return [("before-call.dynamodb.UpdateItem", self._remember_params),
                ("after-call.dynamodb.UpdateItem", self._after_ledger_update),
                ("before-send.dynamodb", self._conflict)]

    # ------------------------------------------------------------ deaths
    def _after_submit(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if current_function() != "worker" or http_response.status_code >= 300:
            return
        if self.plan.should("die_after_submit"):
            raise LambdaDied(f"worker died after submitting statement {parsed.get('Id')} (injected)")

    @staticmethod
    def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if current_function() in ("worker", "completion"):
            context[_PARAMS] = params.get("body", b"")

    def _after_ledger_update(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        function = current_function()
        body = context.pop(_PARAMS, None)
        if function not in ("worker", "completion") or body is None or http_response.status_code >= 300:
            return
        change = _status_change(body)
        if change is None:
            return
        expected, status = change
        if function == "worker" and expected == "QUEUED" and status == "SUBMITTED":
            if self.plan.should("die_after_record"):
                raise LambdaDied("worker died right after recording its submission (injected)")
        elif function == "completion" and status in TERMINAL:
            if self.plan.should("die_completion"):
                raise LambdaDied(f"completion handler died right after marking a job {status} (injected)")

    # --------------------------------------------------------- conflicts
    def _conflict(self, request: Any, **_: Any) -> AWSResponse | None:
        raw = request.headers.get("X-Amz-Target") or ""
        target = raw.decode() if isinstance(raw, bytes) else str(raw)
        operation = target.rpartition(".")[2]
        if operation == "TransactWriteItems":
            if not self.plan.should("ddb_conflict"):
                return None
            try:
                count = len(json.loads(request.body or b"{}").get("TransactItems", []))
            except ValueError:
                count = 1
            reasons = [{"Code": "None"}] * max(0, count - 1) + [
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
            return _error_response(request.url, "TransactionCanceledException",
                                   "Transaction cancelled, please refer cancellation reasons for specific reasons "
                                   f"[{', '.join(r['Code'] for r in reasons)}]", CancellationReasons=reasons)
        if operation in _CONDITIONAL_WRITES and b"ConditionExpression" in _bytes(request.body):
            if self.plan.should("ddb_conflict"):
                return _error_response(request.url, "TransactionConflictException",
                                       "Transaction is ongoing for the item")
        return None


def _status_change(body: bytes | str) -> tuple[str, str] | None:
    """(expected status, new status) of a ledger save_job UpdateItem; None for other updates."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    names: dict[str, str] = request.get("ExpressionAttributeNames") or {}
    values: dict[str, Any] = request.get("ExpressionAttributeValues") or {}
    expected = (values.get(":expected") or {}).get("S")
    if expected is None:
        return None
    for alias, name in names.items():
        if name == "status" and alias.startswith("#a"):
            status = (values.get(":v" + alias[2:]) or {}).get("S")
            return (expected, status) if status else None
    return None


def _bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    return b""


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def _error_response(url: str, code: str, message: str, **extra: Any) -> AWSResponse:
    payload = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra})
    return AWSResponse(url, 400, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "devstack-fault"},
                       _Body(payload.encode()))
