"""Make moto's in-process DynamoDB safe under concurrent requests (devstack only).

moto's ThreadedMotoServer serves requests on many threads, but its DynamoDB backend is not
thread-safe: TransactWriteItems deep-copies the tables to roll back on failure, and a
concurrent write can either break the copy ("dictionary changed size during iteration")
or be undone by the other transaction's rollback — a job the router just wrote vanished
from the ledger that way. Real DynamoDB serialises conflicting writes; one lock around the
backend's operations gives devstack the same guarantee.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_OPERATIONS = ("put_item", "get_item", "update_item", "delete_item", "query", "scan", "batch_write_item",
               "batch_get_item", "transact_write_items", "transact_get_items")
_applied = False


def serialize_dynamodb() -> None:
    """Idempotent: wrap the DynamoDB backend's item operations in one process-wide lock."""
    global _applied
    if _applied:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in _OPERATIONS:
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _LOCK:
                return __original(self, *args, **kwargs)

        functools.update_wrapper(locked, original)
        setattr(DynamoDBBackend, name, locked)
    _applied = True
