"""Make moto cheaper per request (devstack only): SQS linear in the queue's length, and no
directory listing of moto's own package on every request.

Under a burst of landed files the landing queue holds a backlog, and moto 5 made every request on
it quadratic in that backlog: ReceiveMessage checks each candidate message's retention period
through `get_queue_attributes`, which recomputes every attribute, including three approximate
counts that each test every message's visibility; and every visibility test converted the
current time through `datetime` (`unix_time_millis`). A profile of a 1,000-file burst spent 40%
of moto's CPU in `Queue.attributes` and 28% in clock conversions: the routers fell behind the
puts, the backlog grew, and each request got slower still.

And before any of that, moto's server listed its package directory (os.listdir + an isdir per
entry, ~150 of them) on every request to tell a service name from a host name: a fifth of the
time of a 7 ms request. The list never changes while the server runs.

The patches keep moto's behaviour and change only its cost:
- the clock used by `moto.sqs.models` reads `time.time()` (same value, no datetime round trip);
- the retention check reads the queue's retention period directly instead of building every
  attribute for each message;
- sending a message reads the one queue attribute moto consults there (content-based
  deduplication) instead of building all of them: every S3 notification of a burst counted the
  whole landing backlog three times over (43% of moto's CPU for a put into a notifying bucket);
- the list of moto's service modules is read once;
- moto's Flask apps run out of debug mode (in it, Flask made a class per request with a body);
- deleting an SQS message is one pass over the queue (moto made two, each building every message's
  list of receipt handles), and the JSON paths of EventBridge's default input template and the list
  of a response class's methods are computed once instead of on every event and request, as is
  the service a host name stands for (moto tried hundreds of URL patterns per request);
- an update expression is parsed once per text, and each update validates a fresh copy of that
  tree instead of a deepcopy (marking a job's 200 files parsed and deep-copied the same
  "SET #s = :s, job_id = :j" 200 times: a quarter of the time of those updates);
- a DynamoDB projection converts only the attributes it names (moto converted the whole item,
  once per projected attribute: the loader's read of a batch's counters cost O(files in it));
- a table's items are sorted on their keys' plain values, computed once per item: moto sorted
  them through `DynamoType.__lt__`, which rebuilds both values on every comparison, and it sorts
  the whole table for every query on an index (143 ms per query on a 20,000-item ledger, 85% of
  it in those comparisons; the sweeper makes two such queries per period);
- an attribute value's size and deep copy walk the value once, without moto's per-node type
  tests and re-wrapping, and an item's attributes are deep-copied without re-measuring the whole
  item for each attribute put back: moto measures the whole item on every attribute it sets (its
  400 KB check) and copies it before every update, so an append to a batch of a few hundred
  files spent half its time there.
- an update measures the item once, after its actions, instead of before each attribute it sets
  (moto walked the whole item for every one of the eleven attributes the router's append sets:
  a quarter of a transaction's time on a 200-file batch). The limit is the same 400 KB check, on
  the item as updated; moto's per-set check also counted the replaced value, so it refused
  slightly earlier;
- an update of a table without a stream does not deep-copy the item first: moto keeps that copy
  only to hand the stream the old image (a transaction's rollback copy is devstack/motolocks.py's);
- a DynamoDB item read, query or write result whose values are all plain JSON is written with
  `json.dumps`: moto 5.2 walks the botocore output shape for every value (guessing each
  attribute's keys), 250 ms to return one 200-file job where json.dumps takes under 1 ms; the
  wire format is that same JSON. Anything else (binary values, timestamps) takes moto's path.
  And the result is built from moto's item without an import statement per attribute value
  (moto's `dynamo_to_dict` imports DynamoType on each of its recursive calls).

(A transaction's rollback copy is cut to the items it names in devstack/motolocks.py.)
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import pickle
import threading
import time
from collections.abc import Iterator
from typing import Any

_applied = False
_ORIGINAL: dict[str, Any] = {}  # moto's functions we replace, for the cases we hand back to them
_DynamoType: Any = None  # moto's DynamoType and LimitedSizeDict, once moto is patched
_LimitedSizeDict: Any = None


def _unix_time(dt: Any = None) -> float:
    return time.time() if dt is None else _ORIGINAL["unix_time"](dt)


def _unix_time_millis(dt: Any = None) -> float:
    return time.time() * 1000.0 if dt is None else _ORIGINAL["unix_time_millis"](dt)


def _retention_ok(self: Any, queue_name: str, message: Any) -> bool:
    """moto's check, without computing every attribute of the queue per message."""
    retention_period = int(self.get_queue(queue_name).message_retention_period)
    return retention_period + message.sent_timestamp / 1000 > time.time()


# What the current thread's request is doing, for the patches that behave differently inside it:
# `sending` a message, an update of a table with `no_stream`, `executing` an update's actions.
_scope = threading.local()


@contextlib.contextmanager
def _inside(flag: str, on: bool = True) -> Iterator[None]:
    setattr(_scope, flag, on)
    try:
        yield
    finally:
        setattr(_scope, flag, False)


def _queue_attributes(self: Any) -> dict[str, Any]:
    """moto's Queue.attributes; while a message is sent, only the attribute moto reads there."""
    if getattr(_scope, "sending", False):
        if not self.fifo_queue:
            return {}
        value = self.content_based_deduplication
        return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}
    return _ORIGINAL["queue_attributes"](self)


def _send_message(send: Any) -> Any:
    @functools.wraps(send)
    def send_message(*args: Any, **kwargs: Any) -> Any:
        with _inside("sending"):
            return send(*args, **kwargs)
    return send_message


def _item_copy(self: Any, memo: Any = None) -> Any:
    """moto's Item.__deepcopy__, except the copy update_item takes for a stream that is not there."""
    if getattr(_scope, "no_stream", False):
        return self
    return _ORIGINAL["item_deepcopy"](self, memo if memo is not None else {})


def _update_item(update: Any) -> Any:
    @functools.wraps(update)
    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        table = self.tables.get(table_name)
        with _inside("no_stream", table is not None and table.stream_shard is None):
            return update(self, table_name, *args, **kwargs)
    return update_item


def _limited_set(self: Any, key: str, value: Any) -> None:
    """moto's LimitedSizeDict.__setitem__; inside an update's actions the size is checked once, after them."""
    if getattr(_scope, "executing", False):
        dict.__setitem__(self, key, value)
    else:
        _ORIGINAL["limited_set"](self, key, value)


ITEM_SIZE_LIMIT = 405000  # moto's figure: DynamoDB's 400 KB, measured between 409 and 410 KB


def _execute_update(self: Any, node: Any = None) -> None:
    """moto's UpdateExpressionExecutor.execute (recursive), then one check of the item's size."""
    if getattr(_scope, "executing", False):
        _ORIGINAL["execute_update"](self, node)
        return
    with _inside("executing"):
        _ORIGINAL["execute_update"](self, node)
    from moto.dynamodb.exceptions import ItemSizeTooLarge

    size = sum(len(k.encode("utf-8")) + (v.size() if type(v) is _DynamoType else len(str(v).encode("utf-8")))
               for k, v in self.item.attrs.items())
    if size > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge


# Outputs that are only items, keys, counts and capacities: their DynamoDB JSON is the wire format.
_PLAIN_JSON_OUTPUTS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem",
                                 "DeleteItem", "TransactGetItems"})


def _dynamo_result(self: Any, context: Any) -> Any:
    """moto's DynamoResult.execute_result, as json.dumps for results of plain JSON values."""
    if context.operation_model.name in _PLAIN_JSON_OUTPUTS:
        try:
            body = json.dumps(self.result, separators=(",", ":"))
        except (TypeError, ValueError):  # bytes or datetimes: moto's serializer encodes them
            pass
        else:
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
    return _ORIGINAL["dynamo_result"](self, context)


def _dynamo_to_dict(obj: Any) -> Any:
    """moto's dynamo_to_dict (same output), with DynamoType imported once and plain dicts, lists,
    maps and scalars walked directly; anything else is moto's."""
    kind = type(obj)
    if kind is dict or kind is _LimitedSizeDict:  # an item's attributes
        return {k: _dynamo_to_dict(v) for k, v in obj.items()}
    if kind is list:
        return [_dynamo_to_dict(v) for v in obj]
    if kind is _DynamoType:
        value = obj.value
        if obj.type == "M":
            return {"M": {k: _dynamo_to_dict(v) for k, v in value.items()}}
        if obj.type == "L":
            return {"L": [_dynamo_to_dict(v) for v in value]}
        if obj.type in ("S", "N", "BOOL", "NULL"):
            return {obj.type: value}
    return _ORIGINAL["dynamo_to_dict"](obj)


def _project(self: Any, projection_expressions: list[list[str]]) -> Any:
    """moto's Item.project over only the top-level attributes the expressions start with."""
    from moto.dynamodb.models import dynamo_type

    heads = {expr[0].split("[")[0] for expr in projection_expressions}
    plain = {name: dynamo_type.deserializer.deserialize(value.to_regular_json())
             for name, value in self.attrs.items() if name in heads}
    result: dict[str, Any] = {}
    for expr in projection_expressions:
        dynamo_type.merge_dicts(result, dynamo_type.find_nested_key(expr, plain))
    return dynamo_type.Item(hash_key=self.hash_key, range_key=self.range_key,
                            attrs=dynamo_type.serializer.serialize(result)["M"])


def _all_items(self: Any) -> list[Any]:
    """moto's Table.all_items, in the same order, with each item's sort key computed once."""
    items = [item for hash_set in self.items.values()
             for item in (hash_set.values() if self.range_key_attr else (hash_set,))]
    return sorted(items, key=lambda x: (_plain(x.hash_key), _plain(x.range_key)) if x.range_key
                  else _plain(x.hash_key))


def _plain(value: Any) -> Any:
    """A key's value as DynamoType compares it (cast_value), without its type checks for a string."""
    return value.value if value.type == "S" else value.cast_value


_SET_ELEMENT_SIZE = {"N": lambda v: len(str(v)), "S": lambda v: len(v.encode("utf-8")),
                     "B": lambda v: len(v if isinstance(v, bytes) else v.encode("utf-8"))}


def _size(self: Any) -> int:
    """moto's DynamoType.size, same figures (numbers count their text, maps their key names)."""
    kind, value = self.type, self.value
    if kind == "S":
        return len(value.encode("utf-8"))
    if kind == "N":
        return len(str(value))
    if kind == "M":
        return sum(len(k.encode("utf-8")) + _size(v) for k, v in value.items())
    if kind == "L":
        return sum(_size(v) for v in value)
    if kind in ("SS", "NS", "BS"):
        return sum(map(_SET_ELEMENT_SIZE[kind[0]], value))
    if isinstance(value, bool):
        return 1
    return len(value if isinstance(value, bytes) else value.encode("utf-8"))


def _deepcopy(self: Any, memo: Any = None) -> Any:
    """moto's DynamoType.__deepcopy__ (attribute values are trees: no memo needed), in one walk."""
    result = object.__new__(type(self))
    result.type = kind = self.type
    value = self.value
    if kind == "M":
        result.value = {k: _deepcopy(v) for k, v in value.items()}
    elif kind == "L":
        result.value = [_deepcopy(v) for v in value]
    elif kind in ("SS", "NS", "BS"):
        result.value = list(value)
    else:
        result.value = value
    return result


def _copy_attributes(self: Any, memo: Any = None) -> Any:
    """A deep copy of an item's attributes without the 400 KB check per attribute it puts back
    (the original already passed it; moto's copy re-measured the whole item for each attribute)."""
    result = dict.__new__(type(self))
    dict.update(result, {name: _deepcopy(value) if hasattr(value, "type") else copy.deepcopy(value, memo)
                         for name, value in self.items()})
    return result


def speed_up_moto() -> None:
    """Patch moto in this process (idempotent)."""
    global _applied
    if _applied:
        return
    import moto.backends
    from moto.sqs import models

    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]

    _ORIGINAL["unix_time"], _ORIGINAL["unix_time_millis"] = models.unix_time, models.unix_time_millis
    models.unix_time = _unix_time  # type: ignore[assignment]
    models.unix_time_millis = _unix_time_millis  # type: ignore[assignment]
    models.SQSBackend.is_message_valid_based_on_retention_period = _retention_ok  # type: ignore[method-assign]
    _ORIGINAL["queue_attributes"] = models.Queue.attributes.fget
    models.Queue.attributes = property(_queue_attributes)  # type: ignore[assignment]
    models.SQSBackend.send_message = _send_message(models.SQSBackend.send_message)  # type: ignore[method-assign]
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    Item.project = _project  # type: ignore[method-assign]
    _ORIGINAL["size"] = DynamoType.size
    DynamoType.size = _size  # type: ignore[method-assign]
    DynamoType.__deepcopy__ = _deepcopy  # type: ignore[method-assign]
    _ORIGINAL["item_deepcopy"] = Item.__deepcopy__
    Item.__deepcopy__ = _item_copy  # type: ignore[method-assign]
    _ORIGINAL["limited_set"] = LimitedSizeDict.__setitem__
    LimitedSizeDict.__setitem__ = _limited_set  # type: ignore[method-assign,assignment]
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing.executors import UpdateExpressionExecutor

    _ORIGINAL["execute_update"] = UpdateExpressionExecutor.execute
    UpdateExpressionExecutor.execute = _execute_update  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _update_item(DynamoDBBackend.update_item)  # type: ignore[method-assign]
    LimitedSizeDict.__deepcopy__ = _copy_attributes  # type: ignore[attr-defined]
    from moto.dynamodb.models.table import Table

    Table.all_items = _all_items  # type: ignore[method-assign]
    import moto.dynamodb.responses as dynamodb_responses
    from moto.dynamodb.responses import DynamoResult

    global _DynamoType, _LimitedSizeDict
    _DynamoType, _LimitedSizeDict = DynamoType, LimitedSizeDict
    _ORIGINAL["dynamo_to_dict"] = dynamodb_responses.dynamo_to_dict
    dynamodb_responses.dynamo_to_dict = _dynamo_to_dict  # type: ignore[assignment]
    _ORIGINAL["dynamo_result"] = DynamoResult.execute_result
    DynamoResult.execute_result = _dynamo_result  # type: ignore[method-assign]
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import Validator

    _ORIGINAL["parse_update"] = UpdateExpressionParser.make
    UpdateExpressionParser.make = classmethod(_parse_update)  # type: ignore[method-assign,assignment]
    _ORIGINAL["validator_init"] = Validator.__init__
    Validator.__init__ = _validator_init  # type: ignore[method-assign]
    models.Queue.delete_message = _delete_message  # type: ignore[method-assign]
    import jsonpath_ng.ext
    import moto.core.responses as core_responses

    # Both pure functions of their argument, recomputed on every event and every request.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    core_responses.method_names_from_class = functools.lru_cache(maxsize=None)(  # type: ignore[assignment]
        core_responses.method_names_from_class)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    _ORIGINAL["get_application"] = DomainDispatcherApplication.get_application
    DomainDispatcherApplication.get_application = _get_application  # type: ignore[method-assign]
    _ORIGINAL["backend_for_host"] = DomainDispatcherApplication.get_backend_for_host
    DomainDispatcherApplication.get_backend_for_host = _backend_for_host  # type: ignore[method-assign]
    _applied = True


def _delete_message(self: Any, receipt_handle: str) -> None:
    """moto's Queue.delete_message in one pass over the queue's messages: moto made two, building each
    message's list of receipt handles in both (a router's delete of ten messages walked a backlog of
    hundreds twenty times)."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    if receipt_handle in self.deleted_messages:
        return  # already deleted: moto lets it be deleted again
    found = [m for m in self._messages
             if m.receipt_handle == receipt_handle or receipt_handle in m._old_receipt_handles]
    if not found:
        raise ReceiptHandleIsInvalid()
    for message in found:
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)
    gone = {id(m) for m in found}
    self._messages = [m for m in self._messages if id(m) not in gone]


_PARSED_LIMIT = 512  # distinct update expressions remembered (the loader uses a handful)
_parsed: dict[str, bytes] = {}


def _parse_update(cls: Any, expression: str) -> Any:
    """moto's UpdateExpressionParser.make, parsed once per expression text: a fresh copy of the
    remembered tree (the validator changes the tree it is given)."""
    pristine = _parsed.get(expression)
    if pristine is None:
        pristine = pickle.dumps(_ORIGINAL["parse_update"].__func__(cls, expression))
        if len(_parsed) < _PARSED_LIMIT:
            _parsed[expression] = pristine
    tree = pickle.loads(pristine)
    tree.pristine_copy = lambda: pickle.loads(pristine)  # what the validator starts from, without copying
    return tree


def _validator_init(self: Any, expression: Any, expression_attribute_names: Any, expression_attribute_values: Any,
                    item: Any, table: Any) -> None:
    """moto's Validator.__init__, starting from a fresh copy of the parsed tree instead of a deepcopy of the
    tree it is given (the tree's parent links make deepcopy keep a memo of every node: as long as parsing it)."""
    self.expression_attribute_names = expression_attribute_names
    self.expression_attribute_values = expression_attribute_values
    self.item = item
    self.table = table
    self.processors = self.get_ast_processors()
    fresh = getattr(expression, "pristine_copy", None)
    self.node_to_validate = fresh() if fresh is not None else copy.deepcopy(expression)


_backends_by_host: dict[tuple[int, str | None], Any] = {}


def _backend_for_host(self: Any, host: str | None) -> Any:
    """moto's DomainDispatcherApplication.get_backend_for_host, remembered per host: moto tried its
    services' URL patterns one by one (hundreds of regular expressions) on every request."""
    key = (id(self), host)
    if key not in _backends_by_host:
        _backends_by_host[key] = _ORIGINAL["backend_for_host"](self, host)
    return _backends_by_host[key]


def _get_application(self: Any, environ: dict[str, Any]) -> Any:
    """moto's Flask app for the request, out of debug mode. moto turns debug on, and in debug
    mode Flask builds a new class for every request with a body (its hint for a form posted
    without multipart): 7% of moto's time under a burst of S3 puts."""
    app = _ORIGINAL["get_application"](self, environ)
    if app.debug:
        app.debug = False
    return app
