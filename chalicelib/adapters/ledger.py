"""The file and job ledger in DynamoDB (one table, conditional writes).

Items (hash key `pk`):
  file#["bucket","key","version"]  one per file version ever seen: the exactly-once guard
  open#<pipeline>                  the pipeline's open batch (files not yet in a job)
  job#<id>                         a job; `g1pk="job"` lists jobs newest first,
                                   `g2pk="active"|"open"` finds work for the sweeper
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.adapters.aws import client, error_code
from chalicelib.jobs import FileRef, Job, JobKind, JobStatus, JobSummary
from chalicelib.ports import ADD_GROUP, ADD_GROUP_BYTES, AddResult, BatchTally, JobPage, OpenBatch

_ser, _de = TypeSerializer(), TypeDeserializer()
TERMINAL = {JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value}


def _dump(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_decimalize(v)) for k, v in item.items()}


def _load(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _undecimalize(_de.deserialize(v)) for k, v in item.items()}


def _decimalize(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _decimalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_decimalize(v) for v in value]
    return value


def _undecimalize(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _undecimalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_undecimalize(v) for v in value]
    return value


MARK_GROUP = 100  # DynamoDB's limit of items per transaction


def file_pk(f: FileRef) -> str:
    return "file#" + json.dumps([f.bucket, f.key, f.version], ensure_ascii=False)


# File references are stored as compact JSON text: an open batch's list holds one string per file, a
# job holds one string for all its files. They are only ever read whole, and maps of five typed
# attributes per file cost every write and read of a 200-file batch or job a typed value per field
# (to serialize, send, check and parse: the worker's read of a job was most of its time).
def _file_from_fields(fields: list[Any]) -> FileRef:
    """A reference from its decoded FileRef.as_json text: [bucket, key, version, size, created]."""
    bucket, key, version, size, created = fields
    return FileRef(bucket=bucket, key=key, version=version, size=int(size), created=created)


def _file_from_stored(stored: str | dict[str, Any]) -> FileRef:
    if isinstance(stored, str):
        return _file_from_fields(json.loads(stored))
    # A map of five attributes: how batches were stored before.
    return FileRef(bucket=stored["b"], key=stored["k"], version=stored["v"], size=int(stored["s"]),
                   created=stored.get("t", ""))


class DynamoLedger:
    def __init__(self, table: str, *, ttl_days: int = 400, api: Any | None = None) -> None:
        self.table = table
        self.ttl_seconds = ttl_days * 86400
        self._api = api

    @property
    def api(self) -> Any:
        return self._api or client("dynamodb")

    # ------------------------------------------------------------------ files
    def add_files(self, pipeline: str, files: Sequence[FileRef], *, now: float, batch_id: str,
                  force: bool) -> AddResult:
        if len(files) > ADD_GROUP or sum(f.record_bytes for f in files) > ADD_GROUP_BYTES:
            raise ValueError(f"at most {ADD_GROUP} files and {ADD_GROUP_BYTES} bytes of file references per "
                             f"ledger write, not {len(files)} files (see ports.ledger_groups)")
        pending: dict[str, FileRef] = {}
        duplicates: list[tuple[FileRef, str | None]] = []
        for file in files:  # twice in one delivery: the second is a duplicate of the first
            if file_pk(file) in pending:
                duplicates.append((file, "BATCHED"))
            else:
                pending[file_pk(file)] = file
        attempt = 0
        while pending:
            group = list(pending.values())
            try:
                self.api.transact_write_items(TransactItems=[*({"Put": self._file_put(pipeline, f, now, force)}
                                                               for f in group),
                                                             {"Update": self._append(pipeline, group, now, batch_id)}])
                break
            except Exception as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
                seen = [f for f, code in zip(group, reasons) if code == "ConditionalCheckFailed"]
                if seen:  # already recorded: report them, append the others
                    for f in seen:
                        duplicates.append((f, self.file_status(f)))
                        del pending[file_pk(f)]
                    continue
                attempt += 1
                if attempt == 8:
                    raise RuntimeError(f"could not record {len(group)} file(s) of {pipeline}, first "
                                       f"{group[0].bucket}/{group[0].key}: the ledger kept conflicting") from exc
                time.sleep(0.02 * 2 ** attempt)  # a conflicting transaction on the open batch: retry
        if not pending:
            return AddResult(duplicates=tuple(duplicates))
        tally = self._tally(pipeline)
        return AddResult(added=tuple(pending.values()), duplicates=tuple(duplicates), tally=tally,
                         opened=tally is not None and tally.batch_id == batch_id)

    def _file_put(self, pipeline: str, file: FileRef, now: float, force: bool) -> dict[str, Any]:
        item = {"pk": file_pk(file), "item_type": "file", "pipeline": pipeline, "bucket": file.bucket,
                "key": file.key, "version": file.version, "size": file.size, "status": "BATCHED",
                "seen_at": now, "expires_at": int(now) + self.ttl_seconds}
        put: dict[str, Any] = {"TableName": self.table, "Item": _dump(item)}
        if not force:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        return put

    def _append(self, pipeline: str, files: list[FileRef], now: float, batch_id: str) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Key": _dump({"pk": f"open#{pipeline}"}),
            "UpdateExpression": ("SET files = list_append(if_not_exists(files, :empty), :f), "
                                 "batch_id = if_not_exists(batch_id, :bid), opened_at = if_not_exists(opened_at, :now), "
                                 "version = if_not_exists(version, :zero) + :one, item_type = :kind, "
                                 "pipeline = :p, g2pk = :g2, g2sk = if_not_exists(g2sk, :bid), "
                                 "file_count = if_not_exists(file_count, :zero) + :n, "
                                 "total_bytes = if_not_exists(total_bytes, :zero) + :size, "
                                 "record_bytes = if_not_exists(record_bytes, :zero) + :rb"),
            "ExpressionAttributeValues": _dump({":empty": [], ":f": [f.as_json() for f in files], ":bid": batch_id,
                                                ":now": now, ":zero": 0, ":one": 1, ":kind": "open",
                                                ":p": pipeline, ":g2": "open", ":n": len(files),
                                                ":size": sum(f.size for f in files),
                                                ":rb": sum(f.record_bytes for f in files)}),
        }

    def _tally(self, pipeline: str) -> BatchTally | None:
        """The open batch's counters, not its file list: reading the whole list after every append
        made landing a file cost O(files already batched)."""
        item = self.api.get_item(TableName=self.table, Key=_dump({"pk": f"open#{pipeline}"}), ConsistentRead=True,
                                 ProjectionExpression="batch_id, file_count, total_bytes, record_bytes").get("Item")
        if not item:
            return None
        values = _load(item)
        return BatchTally(batch_id=values["batch_id"], files=int(values["file_count"]),
                          bytes=int(values["total_bytes"]), record_bytes=int(values["record_bytes"]))

    def file_status(self, file: FileRef) -> str | None:
        item = self.api.get_item(TableName=self.table, Key=_dump({"pk": file_pk(file)}), ConsistentRead=True).get("Item")
        return _load(item).get("status") if item else None

    def mark_files(self, files: Iterable[FileRef], status: str, job_id: str) -> None:
        """Up to MARK_GROUP files per request (a transaction of plain updates), not one request per file:
        a 200-file job is finished in two round trips instead of two hundred. The updates are
        idempotent, so a group cancelled by a concurrent write is simply written again file by file."""
        update = {"UpdateExpression": "SET #s = :s, job_id = :j", "ExpressionAttributeNames": {"#s": "status"},
                  "ExpressionAttributeValues": _dump({":s": status, ":j": job_id})}
        keys = list(dict.fromkeys(file_pk(f) for f in files))  # one operation per item in a transaction
        for start in range(0, len(keys), MARK_GROUP):
            group = keys[start:start + MARK_GROUP]
            try:
                self.api.transact_write_items(TransactItems=[
                    {"Update": {"TableName": self.table, "Key": _dump({"pk": pk}), **update}} for pk in group])
            except Exception as exc:
                if error_code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
                    raise
                for pk in group:
                    self.api.update_item(TableName=self.table, Key=_dump({"pk": pk}), **update)

    # ---------------------------------------------------------------- batches
    def open_batch(self, pipeline: str) -> OpenBatch | None:
        item = self.api.get_item(TableName=self.table, Key=_dump({"pk": f"open#{pipeline}"}),
                                 ConsistentRead=True).get("Item")
        return _batch(_load(item)) if item else None

    def open_batches(self) -> list[OpenBatch]:
        return [_batch(i) for i in self._query_index("active_jobs", "g2pk", "open")]

    def seal_batch(self, batch: OpenBatch, job: Job, *, remainder: tuple[FileRef, ...] = (),
                   remainder_id: str | None = None) -> bool:
        key = _dump({"pk": f"open#{batch.pipeline}"})
        condition = {"ConditionExpression": "version = :v", "ExpressionAttributeValues": _dump({":v": batch.version})}
        if remainder:
            tally = BatchTally.of(remainder_id or "", remainder)
            rest = {"pk": f"open#{batch.pipeline}", "item_type": "open", "pipeline": batch.pipeline,
                    "batch_id": remainder_id, "files": [f.as_json() for f in remainder], "opened_at": batch.opened_at,
                    "version": batch.version + 1, "g2pk": "open", "g2sk": remainder_id,
                    "file_count": tally.files, "total_bytes": tally.bytes, "record_bytes": tally.record_bytes}
            first = {"Put": {"TableName": self.table, "Item": _dump(rest), **condition}}
        else:
            first = {"Delete": {"TableName": self.table, "Key": key, **condition}}
        second = {"Put": {"TableName": self.table, "Item": _dump(self._job_item(job)),
                          "ConditionExpression": "attribute_not_exists(pk)"}}
        try:
            self.api.transact_write_items(TransactItems=[first, second])
            return True
        except Exception as exc:
            if error_code(exc) in ("TransactionCanceledException", "TransactionConflictException"):
                return False
            raise

    # ------------------------------------------------------------------- jobs
    def _job_item(self, job: Job, *, with_files: bool = True) -> dict[str, Any]:
        item = {**job.to_item(), "pk": f"job#{job.id}", "item_type": "job", "g1pk": "job", "g1sk": job.id}
        del item["files"]  # stored as JSON text, and only when the job is created
        if with_files:
            item["files_json"] = "[" + ",".join(f.as_json() for f in job.files) + "]"
        if job.status.value not in TERMINAL:
            item.update(g2pk="active", g2sk=job.id)
        return item

    def create_job(self, job: Job) -> bool:
        try:
            self.api.put_item(TableName=self.table, Item=_dump(self._job_item(job)),
                              ConditionExpression="attribute_not_exists(pk)")
            return True
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def get_job(self, job_id: str) -> Job | None:
        item = self.api.get_item(TableName=self.table, Key=_dump({"pk": f"job#{job_id}"}),
                                 ConsistentRead=True).get("Item")
        return _job(item) if item else None

    def save_job(self, job: Job, *, expected: JobStatus, expected_attempt: int | None = None) -> bool:
        # A job's files are fixed when it is created (Job.transition refuses to change them): writing
        # a 200-file list again on every status change cost ~30 KB per request to send and store.
        item = self._job_item(job, with_files=False)
        item.pop("pk")
        names, values, sets = {}, {}, []
        for i, (k, v) in enumerate(item.items()):
            names[f"#a{i}"] = k
            values[f":v{i}"] = v
            sets.append(f"#a{i} = :v{i}")
        expression = "SET " + ", ".join(sets)
        if job.status.value in TERMINAL:
            names["#g2"], names["#g2s"] = "g2pk", "g2sk"
            expression += " REMOVE #g2, #g2s"
        names["#st"] = "status"
        values[":expected"] = expected.value
        condition = "#st = :expected"
        if expected_attempt is not None:
            names["#att"] = "attempt"
            values[":att"] = expected_attempt
            condition += " AND #att = :att"
        try:
            self.api.update_item(TableName=self.table, Key=_dump({"pk": f"job#{job.id}"}),
                                 UpdateExpression=expression, ConditionExpression=condition,
                                 ExpressionAttributeNames=names, ExpressionAttributeValues=_dump(values))
            return True
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def set_receipt(self, job_id: str, receipt: str | None) -> Job | None:
        # The job comes back with the write: the worker needs its state as of now, and reading it
        # before and after (a 200-file job is ~30 KB) cost two more round trips per delivery.
        try:
            item = self.api.update_item(TableName=self.table, Key=_dump({"pk": f"job#{job_id}"}),
                                        UpdateExpression="SET receipt = :r", ConditionExpression="attribute_exists(pk)",
                                        ExpressionAttributeValues=_dump({":r": receipt or ""}),
                                        ReturnValues="ALL_NEW")["Attributes"]
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return _job(item)

    def get_receipt(self, job_id: str) -> str | None:
        item = self.api.get_item(TableName=self.table, Key=_dump({"pk": f"job#{job_id}"}),
                                 ProjectionExpression="receipt", ConsistentRead=True).get("Item")
        return (_load(item).get("receipt") or None) if item else None

    def list_jobs(self, *, pipeline: str | None, status: str | None, since: float | None, limit: int,
                  next_token: str | None) -> JobPage:
        start = json.loads(base64.urlsafe_b64decode(next_token)) if next_token else None
        jobs: list[Job] = []
        while len(jobs) < limit:
            kwargs: dict[str, Any] = {
                "TableName": self.table, "IndexName": "jobs_by_time", "ScanIndexForward": False,
                "KeyConditionExpression": "g1pk = :j", "ExpressionAttributeValues": _dump({":j": "job"}),
                "Limit": max(limit * 2, 25)}
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.api.query(**kwargs)
            for raw in page.get("Items", []):
                job = _job(raw)
                if pipeline and job.pipeline != pipeline or status and job.status.value != status.upper():
                    continue
                if since is not None and job.created_at < since:
                    continue
                jobs.append(job)
                if len(jobs) == limit:
                    start = {"pk": raw["pk"], "g1pk": raw["g1pk"], "g1sk": raw["g1sk"]}
                    break
            else:
                start = page.get("LastEvaluatedKey")
                if not start:
                    return JobPage(jobs, None)
                continue
            break
        token = base64.urlsafe_b64encode(json.dumps(start).encode()).decode() if start else None
        return JobPage(jobs, token)

    def active_jobs(self) -> list[JobSummary]:
        names = {f"#{name}": name for name in JobSummary.FIELDS}
        items = self._query_index("active_jobs", "g2pk", "active", ProjectionExpression=", ".join(names),
                                  ExpressionAttributeNames=names)
        return [JobSummary.from_item(i) for i in items]

    def busy_pipelines(self) -> set[str]:
        """Pipelines with an open batch or an unfinished load, read without any file list."""
        batches = self._query_index("active_jobs", "g2pk", "open", ProjectionExpression="pipeline")
        loads = {j.pipeline for j in self.active_jobs() if j.kind is JobKind.LOAD}
        return {i["pipeline"] for i in batches} | loads

    def _query_index(self, index: str, key: str, value: str, **extra: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "IndexName": index,
                                  "KeyConditionExpression": f"{key} = :v", "ExpressionAttributeValues": _dump({":v": value}),
                                  **extra}
        while True:
            page = self.api.query(**kwargs)
            items += [_load(i) for i in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


_INTERNAL = {"pk", "item_type", "g1pk", "g1sk", "g2pk", "g2sk", "receipt"}


def _strip(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _INTERNAL}


def _job(raw: dict[str, Any]) -> Job:
    item = _strip(_load(raw))
    text = item.pop("files_json", None)
    job = Job.from_item(item)  # jobs stored before files_json carry a "files" list of maps, which it reads
    if text is not None:
        job = dataclasses.replace(job, files=tuple(_file_from_fields(fields) for fields in json.loads(text)))
    return job


def _batch(item: dict[str, Any]) -> OpenBatch:
    return OpenBatch(pipeline=item["pipeline"], batch_id=item["batch_id"],
                     files=tuple(_file_from_stored(m) for m in item.get("files", [])),
                     opened_at=float(item["opened_at"]), version=int(item["version"]))
