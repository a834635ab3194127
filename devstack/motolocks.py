"""Make moto's DynamoDB and SQS safe under concurrent requests, and DynamoDB fast (devstack only).

moto's ThreadedMotoServer serves requests on many threads, but its DynamoDB backend is not
thread-safe: TransactWriteItems deep-copies whole tables to roll back on failure, and a
concurrent write can either break the copy ("dictionary changed size during iteration")
or be undone by the other transaction's rollback — a job the router had just written
vanished from the ledger that way. Real DynamoDB serialises conflicting writes; one lock
around the backend's operations gives devstack the same guarantee.

Copying the whole table per transaction also made each write O(table size): 1,000 landed
files slowed the ledger to a crawl and grew the process to GBs. Under the lock, snapshotting
only the items a transaction touches is enough to roll it back.

SQS: moto deletes a message by rebuilding the queue's message list and assigning it back, outside
the lock its `add_message` appends under. A message sent in between (an S3 notification, while a
router deleted the messages it had handled) was dropped from the queue, and two deletes at once put
each other's message back: 1 file in 1,000 of a burst never reached the router, with no error
anywhere. And two receives at once handed out the same message twice, or failed half-way ("Set
changed size during iteration") leaving messages they had marked in flight with nobody holding
them. Deletes, receives and visibility changes now hold the queue's own lock.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_OPERATIONS = ("put_item", "get_item", "update_item", "delete_item", "query", "scan", "batch_write_item",
               "batch_get_item", "transact_get_items")
_applied = False
_sqs_applied = False
_in_transaction = False


class _TableCopyShim:
    """Stands in for the `copy` module inside moto's DynamoDB models: during our transactions a
    Table is not deep-copied (we snapshot the touched items instead)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if _in_transaction and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def serialize_dynamodb() -> None:
    """Idempotent: wrap the DynamoDB backend's item operations in one process-wide lock."""
    global _applied
    if _applied:
        return
    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend

    for name in _OPERATIONS:
        original = getattr(DynamoDBBackend, name, None)
        if original is not None:
            setattr(DynamoDBBackend, name, _locked(original))
    models.copy = _TableCopyShim()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = _transaction(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    _applied = True


def serialize_sqs() -> None:
    """Idempotent: a queue's deletes, receives and visibility changes hold the lock its appends take
    (a Condition over an RLock; a long poll's wait releases it). Every delete, batch deletes too,
    goes through the backend's `delete_message`."""
    global _sqs_applied
    if _sqs_applied:
        return
    from moto.sqs.models import SQSBackend

    for name in ("delete_message", "receive_message", "change_message_visibility"):
        setattr(SQSBackend, name, _queue_locked(getattr(SQSBackend, name)))
    _sqs_applied = True


def _queue_locked(original: Any) -> Any:
    @functools.wraps(original)
    def locked(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with self.get_queue(queue_name)._messages_lock:
            return original(self, queue_name, *args, **kwargs)

    return locked


def _locked(original: Any) -> Any:
    @functools.wraps(original)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(self, *args, **kwargs)

    return locked


def _transaction(original: Any) -> Any:
    @functools.wraps(original)
    def transact(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        global _in_transaction
        with _LOCK:
            snapshots = _snapshot(self, transact_items)
            _in_transaction = True
            try:
                return original(self, transact_items)
            except Exception:
                for table, hash_key, range_key, item in reversed(snapshots):
                    _restore(table, hash_key, range_key, item)
                raise
            finally:
                _in_transaction = False

    return transact


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    taken = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        attrs = op.get("Key") or op.get("Item") or {}
        if table is None or table.hash_key_attr not in attrs:
            continue
        hash_key = DynamoType(attrs[table.hash_key_attr])
        range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr in attrs else None
        if table.has_range_key and range_key is None:
            continue
        taken.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return taken


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    if range_key is not None:
        if item is None:
            table.items.get(hash_key, {}).pop(range_key, None)
        else:
            table.items[hash_key][range_key] = item
    elif item is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = item
