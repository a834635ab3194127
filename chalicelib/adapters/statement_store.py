"""Outcomes of statements run over a direct connection, where any Lambda can read them.

The Data API keeps a statement's status for us; a direct (redshift-connector)
connection does not outlive the worker that ran the batch. So the direct
adapter records each batch here, keyed by its statement id, and `describe`
reads it back from whichever Lambda asks (completion, sweeper, API, worker).

Items live in the ledger table (hash key `pk`), outside its indexes:
  direct#<statement id>   one batch: STARTED (claimed by one worker) → FINISHED | FAILED | ABORTED
The conditional put of the STARTED item is what makes a resubmission with the
same client token return the recorded id instead of running the batch twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.adapters.aws import client, error_code

STARTED = "STARTED"
RETENTION_SECONDS = 7 * 86400  # the Data API keeps statements 24 h; a little longer costs nothing
SQL_TEXT_LIMIT = 4000          # per statement, so 40 statements stay far below DynamoDB's 400 KB item limit


@dataclass(frozen=True)
class SubOutcome:
    """How one statement of the batch ended (or SUBMITTED while the batch runs)."""

    sql: str
    status: str = "SUBMITTED"
    error: str | None = None
    rows: int | None = None
    query_id: int | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class StatementRecord:
    id: str
    token: str
    warehouse: str                  # catalog name: cancel and the sweeper find the connection by it
    name: str
    status: str
    started_at: float               # epoch seconds
    deadline: float                 # epoch seconds; a STARTED record past it lost its worker
    subs: tuple[SubOutcome, ...] = ()
    error: str | None = None
    finished_at: float | None = None
    backend_pid: int | None = None  # the session running it, for pg_cancel_backend
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.status != STARTED


class StatementStore(Protocol):
    def claim(self, record: StatementRecord) -> StatementRecord | None:
        """Store `record` unless its id exists; returns the existing record then, else None."""

    def get(self, statement_id: str) -> StatementRecord | None: ...

    def set_backend(self, statement_id: str, pid: int) -> None: ...

    def finish(self, statement_id: str, *, status: str, error: str | None, subs: Sequence[SubOutcome],
               finished_at: float) -> StatementRecord | None:
        """Record the outcome if the record is still STARTED; returns the stored record, None if it was final."""

    def request_cancel(self, statement_id: str) -> StatementRecord | None:
        """Flag a STARTED record for cancelling; returns the record as it now stands (None: unknown id)."""


# ---------------------------------------------------------------- DynamoDB
_ser, _de = TypeSerializer(), TypeDeserializer()


def _key(statement_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"direct#{statement_id}"}}


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _num(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _subs_to_item(subs: Sequence[SubOutcome]) -> list[dict[str, Any]]:
    out = []
    for s in subs:
        item: dict[str, Any] = {"sql": s.sql[:SQL_TEXT_LIMIT], "status": s.status}
        for name in ("error", "rows", "query_id"):
            if getattr(s, name) is not None:
                item[name] = getattr(s, name)
        if s.duration_ms is not None:
            item["duration_us"] = int(round(s.duration_ms * 1000))
        out.append(item)
    return out


def _subs_from_item(items: list[dict[str, Any]]) -> tuple[SubOutcome, ...]:
    return tuple(SubOutcome(sql=i.get("sql", ""), status=i.get("status", ""), error=i.get("error"),
                            rows=_num(i.get("rows")), query_id=_num(i.get("query_id")),
                            duration_ms=_num(i["duration_us"]) / 1000 if "duration_us" in i else None)
                 for i in items)


def to_item(record: StatementRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "direct-statement", "id": record.id, "token": record.token, "warehouse": record.warehouse,
        "name": record.name, "status": record.status, "started_ms": _ms(record.started_at),
        "deadline_ms": _ms(record.deadline), "subs": _subs_to_item(record.subs),
        "cancel_requested": record.cancel_requested,
        "expires_at": int(record.started_at) + RETENTION_SECONDS}
    if record.error is not None:
        item["error"] = record.error
    if record.finished_at is not None:
        item["finished_ms"] = _ms(record.finished_at)
    if record.backend_pid is not None:
        item["backend_pid"] = record.backend_pid
    return {k: _ser.serialize(v) for k, v in item.items()}


def from_item(raw: dict[str, Any]) -> StatementRecord:
    item = {k: _de.deserialize(v) for k, v in raw.items()}
    return StatementRecord(
        id=item["id"], token=item.get("token", ""), warehouse=item.get("warehouse", ""), name=item.get("name", ""),
        status=item["status"], started_at=_num(item["started_ms"]) / 1000, deadline=_num(item["deadline_ms"]) / 1000,
        subs=_subs_from_item(item.get("subs", [])), error=item.get("error"),
        finished_at=_num(item["finished_ms"]) / 1000 if "finished_ms" in item else None,
        backend_pid=_num(item.get("backend_pid")), cancel_requested=bool(item.get("cancel_requested")))


class DynamoStatementStore:
    def __init__(self, table: str, *, api: Any | None = None) -> None:
        self.table = table
        self._api = api

    @property
    def api(self) -> Any:
        return self._api or client("dynamodb")

    def claim(self, record: StatementRecord) -> StatementRecord | None:
        try:
            self.api.put_item(TableName=self.table, Item={**_key(record.id), **to_item(record)},
                              ConditionExpression="attribute_not_exists(pk)")
            return None
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        return self.get(record.id) or record

    def get(self, statement_id: str) -> StatementRecord | None:
        found = self.api.get_item(TableName=self.table, Key=_key(statement_id), ConsistentRead=True).get("Item")
        return from_item(found) if found else None

    def set_backend(self, statement_id: str, pid: int) -> None:
        self.api.update_item(TableName=self.table, Key=_key(statement_id), UpdateExpression="SET backend_pid = :p",
                             ConditionExpression="attribute_exists(pk)",
                             ExpressionAttributeValues={":p": {"N": str(pid)}})

    def finish(self, statement_id: str, *, status: str, error: str | None, subs: Sequence[SubOutcome],
               finished_at: float) -> StatementRecord | None:
        values = {":s": _ser.serialize(status), ":subs": _ser.serialize(_subs_to_item(subs)),
                  ":f": _ser.serialize(_ms(finished_at)), ":started": _ser.serialize(STARTED)}
        update = "SET #s = :s, subs = :subs, finished_ms = :f"
        if error is not None:
            update += ", #e = :e"
            values[":e"] = _ser.serialize(error)
        try:
            result = self.api.update_item(
                TableName=self.table, Key=_key(statement_id), UpdateExpression=update,
                ConditionExpression="#s = :started", ReturnValues="ALL_NEW",
                ExpressionAttributeNames={"#s": "status", **({"#e": "error"} if error is not None else {})},
                ExpressionAttributeValues=values)
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return None
        return from_item(result["Attributes"])

    def request_cancel(self, statement_id: str) -> StatementRecord | None:
        try:
            result = self.api.update_item(
                TableName=self.table, Key=_key(statement_id), UpdateExpression="SET cancel_requested = :t",
                ConditionExpression="#s = :started", ReturnValues="ALL_NEW",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":t": {"BOOL": True}, ":started": {"S": STARTED}})
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return self.get(statement_id)  # already final (or unknown: None)
        return from_item(result["Attributes"])


class MemoryStatementStore:
    """The same contract in memory: unit tests, and a direct warehouse used from one process only."""

    def __init__(self) -> None:
        self.records: dict[str, StatementRecord] = {}

    def claim(self, record: StatementRecord) -> StatementRecord | None:
        existing = self.records.get(record.id)
        if existing is None:
            self.records[record.id] = record
        return existing

    def get(self, statement_id: str) -> StatementRecord | None:
        return self.records.get(statement_id)

    def set_backend(self, statement_id: str, pid: int) -> None:
        self.records[statement_id] = replace(self.records[statement_id], backend_pid=pid)

    def finish(self, statement_id: str, *, status: str, error: str | None, subs: Sequence[SubOutcome],
               finished_at: float) -> StatementRecord | None:
        current = self.records.get(statement_id)
        if current is None or current.finished:
            return None
        done = replace(current, status=status, error=error, subs=tuple(subs), finished_at=finished_at)
        self.records[statement_id] = done
        return done

    def request_cancel(self, statement_id: str) -> StatementRecord | None:
        current = self.records.get(statement_id)
        if current is not None and not current.finished:
            current = self.records[statement_id] = replace(current, cancel_requested=True)
        return current
