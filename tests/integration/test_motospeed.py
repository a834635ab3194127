"""devstack's moto speed-ups: same behaviour (SQS delays, visibility, retention, counts), less cost."""

from __future__ import annotations

import time

import boto3
import pytest


def _sqs(moto_endpoint: str):
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


def test_visibility_delay_retention_and_counts_behave_as_sqs(moto_endpoint):
    sqs = _sqs(moto_endpoint)
    url = sqs.create_queue(QueueName="msqs-semantics", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="now")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
    counts = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed"]

    def attributes() -> list[int]:
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=counts)["Attributes"]
        return [int(got[name]) for name in counts]

    assert attributes() == [1, 0, 1]
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]
    assert [m["Body"] for m in first] == ["now"]  # the delayed one is not given out yet
    assert attributes() == [0, 1, 1]
    time.sleep(2.2)  # "now" is visible again, "later" no longer delayed
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    assert sorted(m["Body"] for m in again) == ["later", "now"]
    assert attributes() == [0, 2, 0]


def test_an_expired_message_is_not_delivered(moto_endpoint):
    sqs = _sqs(moto_endpoint)
    url = sqs.create_queue(QueueName="msqs-retention", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    # Retention is checked against the send time: pretend this one was sent two minutes ago.
    from moto.sqs.models import sqs_backends

    (message,) = sqs_backends["123456789012"]["us-east-1"].get_queue("msqs-retention")._messages
    message.sent_timestamp -= 120_000
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)


def test_receiving_does_not_rebuild_every_queue_attribute_per_message(moto_endpoint, monkeypatch):
    # moto's retention check built all attributes (three passes over every message) for each
    # candidate: quadratic in the backlog, which starved the routers of a 1,000-file burst.
    from moto.sqs.models import Queue

    sqs = _sqs(moto_endpoint)
    url = sqs.create_queue(QueueName="msqs-backlog")["QueueUrl"]
    for start in range(0, 50, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)])
    built = []
    original = Queue.attributes
    monkeypatch.setattr(Queue, "attributes", property(lambda queue: built.append(queue.name) or original.fget(queue)))
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)["Messages"]
    assert len(got) == 10 and built == []


def test_sending_does_not_build_every_queue_attribute_and_still_deduplicates_by_content(moto_endpoint, monkeypatch):
    # moto built all attributes (three passes over the backlog) to read one of them on every send:
    # each S3 notification of a burst paid for the whole landing backlog.
    from moto.sqs.models import Queue

    sqs = _sqs(moto_endpoint)
    plain = sqs.create_queue(QueueName="msqs-send")["QueueUrl"]
    fifo = sqs.create_queue(QueueName="msqs-send.fifo", Attributes={"FifoQueue": "true",
                                                                     "ContentBasedDeduplication": "true"})["QueueUrl"]
    counted = []  # walks over the queue's messages (each approximate count makes one)
    original = Queue.messages
    ours = {"msqs-send", "msqs-send.fifo"}  # the session's moto also serves other tests' pollers
    monkeypatch.setattr(Queue, "messages", property(
        lambda queue: (queue.name in ours and counted.append(queue.name)) or original.fget(queue)))
    for _ in range(2):
        sqs.send_message(QueueUrl=plain, MessageBody="same")
        sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
    sqs.send_message_batch(QueueUrl=plain, Entries=[{"Id": "1", "MessageBody": "other"}])
    assert counted == []
    monkeypatch.setattr(Queue, "messages", original)
    counts = {url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
              ["Attributes"]["ApproximateNumberOfMessages"] for url in (plain, fifo)}
    assert counts == {plain: "3", fifo: "1"}  # the FIFO queue dropped the same body sent again


def test_the_server_still_tells_services_apart(moto_endpoint):
    # Host-name dispatch uses the cached module list: a service name is still a service.
    import moto.backends

    assert "sqs" in moto.backends.list_of_moto_modules() and "s3" in moto.backends.list_of_moto_modules()
    assert _sqs(moto_endpoint).list_queues().get("QueueUrls") is not None


def test_projections_still_pick_nested_attributes_and_list_elements(moto_endpoint):
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    ddb.create_table(TableName="msp-t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="msp-t", Item={"pk": {"S": "a"}, "n": {"N": "3"}, "m": {"M": {"x": {"S": "1"}, "y": {"S": "2"}}},
                                          "l": {"L": [{"S": "p"}, {"S": "q"}]}, "big": {"L": [{"N": "1"}] * 500}})
    got = ddb.get_item(TableName="msp-t", Key={"pk": {"S": "a"}}, ProjectionExpression="n, m.y, l[1], absent")["Item"]
    assert got == {"n": {"N": "3"}, "m": {"M": {"y": {"S": "2"}}}, "l": {"L": [{"S": "q"}]}}
    named = ddb.get_item(TableName="msp-t", Key={"pk": {"S": "a"}}, ProjectionExpression="#n",
                         ExpressionAttributeNames={"#n": "n"})["Item"]
    assert named == {"n": {"N": "3"}}


def test_tables_list_items_in_moto_order_with_numbers_strings_and_range_keys(moto_endpoint):
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from devstack import motospeed

    class FakeTable:
        def __init__(self, range_key: bool) -> None:
            self.range_key_attr = "r" if range_key else None
            self.items: dict = {}

    numbers = FakeTable(range_key=True)
    for h, r in [("10", "b"), ("9", "a"), ("10", "a"), ("-1", "z")]:
        item = Item(hash_key=DynamoType({"N": h}), range_key=DynamoType({"S": r}), attrs={})
        numbers.items.setdefault(DynamoType({"N": h}), {})[DynamoType({"S": r})] = item
    assert [(i.hash_key.value, i.range_key.value) for i in motospeed._all_items(numbers)] == [
        ("-1", "z"), ("9", "a"), ("10", "a"), ("10", "b")]  # numeric order, not text order
    strings = FakeTable(range_key=False)
    for h in ["job#b", "file#z", "batch#a"]:
        strings.items[DynamoType({"S": h})] = Item(hash_key=DynamoType({"S": h}), range_key=None, attrs={})
    assert [i.hash_key.value for i in motospeed._all_items(strings)] == ["batch#a", "file#z", "job#b"]

    # and through the server: an index query still finds and orders what it should
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    ddb.create_table(TableName="mspeed-gsi", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "g", "s")],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[{"IndexName": "by_g", "Projection": {"ProjectionType": "ALL"},
                                              "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                                                            {"AttributeName": "s", "KeyType": "RANGE"}]}])
    for pk, g, s in [("3", "x", "c"), ("1", "x", "a"), ("2", "y", "b"), ("4", "x", "b")]:
        ddb.put_item(TableName="mspeed-gsi", Item={"pk": {"S": pk}, "g": {"S": g}, "s": {"S": s}})
    got = ddb.query(TableName="mspeed-gsi", IndexName="by_g", KeyConditionExpression="g = :g",
                    ExpressionAttributeValues={":g": {"S": "x"}})["Items"]
    assert [i["pk"]["S"] for i in got] == ["1", "4", "3"]


def test_item_sizes_and_copies_match_moto():
    import copy

    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    from devstack import motospeed

    value = {"M": {"s": {"S": "héllo"}, "n": {"N": "123.50"}, "b": {"B": b"\x00\x01"}, "t": {"BOOL": True},
                   "z": {"NULL": True}, "ss": {"SS": ["a", "bé"]}, "ns": {"NS": ["1", "22"]},
                   "l": {"L": [{"S": "x"}, {"M": {"k": {"N": "7"}}}]}}}
    motospeed.speed_up_moto()
    assert motospeed._size(DynamoType(value)) == motospeed._ORIGINAL["size"](DynamoType(value)) == 36
    original = DynamoType(value)
    copied = copy.deepcopy(original)
    assert copied == original and copied.value["l"].value is not original.value["l"].value
    copied.value["l"].value.append(DynamoType({"S": "more"}))
    assert len(original.value["l"].value) == 2  # a deep copy: changing it leaves the original alone

    attributes = LimitedSizeDict({"pk": DynamoType({"S": "a"}), "v": DynamoType(value)})
    twin = copy.deepcopy(attributes)
    assert type(twin) is LimitedSizeDict and twin == attributes and twin["v"] is not attributes["v"]


def test_dynamodb_results_written_as_json_read_back_as_moto_writes_them(moto_endpoint, monkeypatch):
    """Each result the fast path writes is compared with moto's own serializer's body for the same
    result, over every item operation the ledger uses and the value types DynamoDB has."""
    import json

    from moto.dynamodb.responses import DynamoResult

    from devstack import motospeed

    motospeed.speed_up_moto()
    checked: list[str] = []

    def both(self, context):
        fast = motospeed._dynamo_result(self, context)
        original = motospeed._ORIGINAL["dynamo_result"](self, context)
        assert json.loads(fast[2]) == json.loads(original[2]), context.operation_model.name
        assert fast[0] == original[0]
        checked.append(context.operation_model.name)
        return fast

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    ddb.create_table(TableName="ms-json", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                                     {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "N"}],
                     BillingMode="PAY_PER_REQUEST")
    item = {"pk": {"S": "a"}, "sk": {"N": "1"}, "s": {"S": "héllo"}, "n": {"N": "123.50"}, "t": {"BOOL": False},
            "z": {"NULL": True}, "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2"]},
            "files": {"L": [{"M": {"k": {"S": f"f{i}.csv"}, "s": {"N": str(i)}}} for i in range(50)]},
            "empty": {"L": []}, "m": {"M": {}}}
    ddb.put_item(TableName="ms-json", Item=item)
    ddb.put_item(TableName="ms-json", Item={**item, "sk": {"N": "2"}, "b": {"B": b"\x00\xff"}})
    got = ddb.get_item(TableName="ms-json", Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, ConsistentRead=True)
    assert got["Item"]["files"]["L"][49]["M"]["k"] == {"S": "f49.csv"} and got["Item"]["t"] == {"BOOL": False}
    assert ddb.get_item(TableName="ms-json", Key={"pk": {"S": "a"}, "sk": {"N": "2"}})["Item"]["b"] == {"B": b"\x00\xff"}
    assert "Item" not in ddb.get_item(TableName="ms-json", Key={"pk": {"S": "none"}, "sk": {"N": "1"}})
    ddb.get_item(TableName="ms-json", Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, ProjectionExpression="files[1], n",
                 ReturnConsumedCapacity="TOTAL")
    old = ddb.put_item(TableName="ms-json", Item={**item, "n": {"N": "7"}}, ReturnValues="ALL_OLD")
    assert old["Attributes"]["n"] == {"N": "123.5"} or old["Attributes"]["n"] == {"N": "123.50"}
    new = ddb.update_item(TableName="ms-json", Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, UpdateExpression="ADD c :one",
                          ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
    assert new["Attributes"] == {"c": {"N": "1"}}
    page = ddb.query(TableName="ms-json", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}},
                     Limit=1)
    assert page["Count"] == 1 and page["LastEvaluatedKey"] == {"pk": {"S": "a"}, "sk": {"N": "1"}}
    assert ddb.query(TableName="ms-json", KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": {"S": "none"}})["Items"] == []
    assert ddb.scan(TableName="ms-json", Select="COUNT")["Count"] == 2
    ddb.batch_get_item(RequestItems={"ms-json": {"Keys": [{"pk": {"S": "a"}, "sk": {"N": "1"}},
                                                          {"pk": {"S": "x"}, "sk": {"N": "1"}}]}})
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "ms-json", "Item": {"pk": {"S": "c"}, "sk": {"N": "1"}}}}])
    with pytest.raises(ddb.exceptions.TransactionCanceledException):  # errors are moto's: not through the result
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "ms-json", "Item": {"pk": {"S": "c"}, "sk": {"N": "1"}},
                                                         "ConditionExpression": "attribute_not_exists(pk)"}}])
    ddb.batch_write_item(RequestItems={"ms-json": [{"DeleteRequest": {"Key": {"pk": {"S": "c"}, "sk": {"N": "1"}}}}]})
    ddb.delete_item(TableName="ms-json", Key={"pk": {"S": "a"}, "sk": {"N": "2"}}, ReturnValues="ALL_OLD")
    assert {"GetItem", "PutItem", "UpdateItem", "Query", "Scan", "BatchGetItem", "DeleteItem"} <= set(checked)


def test_results_are_built_from_items_as_moto_builds_them():
    import datetime

    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.utilities import dynamo_to_dict

    from devstack import motospeed

    motospeed.speed_up_moto()
    attrs = {"pk": {"S": "a"}, "n": {"N": "1.5"}, "t": {"BOOL": True}, "z": {"NULL": True}, "b": {"B": "AAH/"},
             "bs": {"BS": ["AAE="]}, "ss": {"SS": ["x"]}, "ns": {"NS": ["1", "2"]},
             "l": {"L": [{"M": {"k": {"S": "v"}, "e": {"L": []}}}, {"N": "3"}]}, "m": {"M": {}}}
    item = Item(hash_key=DynamoType({"S": "a"}), range_key=None, attrs=attrs)
    results = [item.describe_attrs(None), {"Items": [item.attrs], "Count": 1, "ScannedCount": 1},
               {"Table": {"CreationDateTime": datetime.datetime(2026, 1, 1)}}, {}, {"Responses": {"t": []}}]
    for result in results:
        assert motospeed._dynamo_to_dict(result) == dynamo_to_dict(result)


def _ledger_like_table(ddb, name: str, **extra) -> None:
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], **extra)


def test_updates_append_and_refuse_past_400_kb_as_before_measuring_the_item_once(moto_endpoint, monkeypatch):
    from moto.dynamodb.models.dynamo_type import DynamoType

    from devstack import motospeed

    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    _ledger_like_table(ddb, "mspeed-update")

    def append(files: list[str]) -> dict:
        return {"TableName": "mspeed-update", "Key": {"pk": {"S": "open"}},
                "UpdateExpression": ("SET files = list_append(if_not_exists(files, :empty), :f), n = if_not_exists(n, :zero) + :one, "
                                     "a = :one, b = :one, c = :one, d = :one, e = :one"),
                "ExpressionAttributeValues": {":empty": {"L": []}, ":zero": {"N": "0"}, ":one": {"N": "1"},
                                              ":f": {"L": [{"S": f} for f in files]}}}

    def ours(value) -> bool:  # the session's moto also serves other tests: count our list's walks only
        return value.type == "L" and bool(value.value) and str(value.value[0].value).startswith("mspeed-file")

    walks = []
    monkeypatch.setattr(DynamoType, "size", lambda value: (ours(value) and walks.append(1)) or motospeed._size(value))
    for i in range(3):
        walks.clear()
        ddb.update_item(**append([f"mspeed-file-{i}"]))
        if i:  # the list was measured for each of the 7 attributes set (7 walks), now once or twice
            assert len(walks) <= 2, len(walks)
    item = ddb.get_item(TableName="mspeed-update", Key={"pk": {"S": "open"}})["Item"]
    assert item["files"] == {"L": [{"S": f"mspeed-file-{i}"} for i in range(3)]} and item["n"] == {"N": "3"}

    big = append(["x" * 100_000] * 5)  # 500 KB: past DynamoDB's 400 KB item limit
    with pytest.raises(ddb.exceptions.ClientError, match="Item size to update has exceeded the maximum allowed size"):
        ddb.transact_write_items(TransactItems=[{"Update": big}])
    assert ddb.get_item(TableName="mspeed-update", Key={"pk": {"S": "open"}})["Item"] == item  # rolled back
    with pytest.raises(ddb.exceptions.ClientError, match="Item size to update has exceeded the maximum allowed size"):
        ddb.update_item(**big)


def test_an_update_copies_the_item_only_for_a_stream(moto_endpoint, monkeypatch):
    from devstack import motospeed

    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    _ledger_like_table(ddb, "mspeed-nostream")
    _ledger_like_table(ddb, "mspeed-stream", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    copies = []
    original = motospeed._ORIGINAL["item_deepcopy"]
    # Only this test's items count: the session's moto also serves other tests' ledgers.
    monkeypatch.setitem(motospeed._ORIGINAL, "item_deepcopy", lambda item, memo: (
        item.hash_key.value == "mspeed-a" and copies.append(item)) or original(item, memo))
    for table in ("mspeed-nostream", "mspeed-stream"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "mspeed-a"}, "v": {"N": "1"}})
        copies.clear()
        ddb.transact_write_items(TransactItems=[{"Update": {
            "TableName": table, "Key": {"pk": {"S": "mspeed-a"}}, "UpdateExpression": "SET v = v + :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
        # One copy is the transaction's rollback snapshot; a stream's old image takes a second.
        assert len(copies) == (1 if table == "mspeed-nostream" else 2), table
        assert ddb.get_item(TableName=table, Key={"pk": {"S": "mspeed-a"}})["Item"]["v"] == {"N": "2"}
    stream = ddb.describe_table(TableName="mspeed-stream")["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, region_name="us-east-1")
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    modify = [r for r in streams.get_records(ShardIterator=iterator)["Records"] if r["eventName"] == "MODIFY"]
    assert modify[-1]["dynamodb"]["OldImage"]["v"] == {"N": "1"} and modify[-1]["dynamodb"]["NewImage"]["v"] == {"N": "2"}


def test_moto_serves_requests_out_of_flask_debug_mode(monkeypatch):
    """In debug mode Flask made a class for every request with a body (7% of moto's time under puts)."""
    import flask.debughelpers
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    from devstack.motospeed import speed_up_moto
    from devstack.redshift.awsclients import unsigned_s3_authorization

    speed_up_moto()
    helpers: list[object] = []
    original = flask.debughelpers.attach_enctype_error_multidict
    monkeypatch.setattr(flask.debughelpers, "attach_enctype_error_multidict",
                        lambda request: (helpers.append(request), original(request)))
    auth = unsigned_s3_authorization("x", "us-east-1")
    client = Client(DomainDispatcherApplication(create_backend_app))
    headers = {"Host": "localhost", "Authorization": auth}
    assert client.put("/msqs-debug-bucket", headers=headers).status_code == 200
    put = client.put("/msqs-debug-bucket/k.csv", headers={**headers, "Content-Type": "text/csv"}, data=b"1,2\n")
    assert put.status_code == 200
    assert client.get("/msqs-debug-bucket/k.csv", headers=headers).data == b"1,2\n"
    assert helpers == []


def test_a_remembered_update_expression_applies_afresh_to_each_item(moto_endpoint):
    """Update expressions are parsed once per text and each update starts from a fresh copy of the tree:
    moto parsed every one and deep-copied the tree again (a 100-file mark cost 100 of each)."""
    from botocore.exceptions import ClientError

    from devstack.motospeed import _parsed

    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    ddb.create_table(TableName="msqs-parse", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    expression = "SET #s = :s, n = if_not_exists(n, :zero) + :one"
    ddb.put_item(TableName="msqs-parse", Item={"pk": {"S": "old"}, "n": {"N": "5"}})
    for pk, status in (("old", "A"), ("new", "B"), ("old", "C")):  # "new" does not exist: moto validates twice
        ddb.update_item(TableName="msqs-parse", Key={"pk": {"S": pk}}, UpdateExpression=expression,
                        ExpressionAttributeNames={"#s": "status"},
                        ExpressionAttributeValues={":s": {"S": status}, ":zero": {"N": "0"}, ":one": {"N": "1"}})
    assert expression in _parsed
    items = {i["pk"]["S"]: i for i in ddb.scan(TableName="msqs-parse")["Items"]}
    assert (items["old"]["status"]["S"], items["old"]["n"]["N"]) == ("C", "7")
    assert (items["new"]["status"]["S"], items["new"]["n"]["N"]) == ("B", "1")
    with pytest.raises(ClientError, match="attribute value used in expression is not defined"):
        ddb.update_item(TableName="msqs-parse", Key={"pk": {"S": "old"}}, UpdateExpression=expression,
                        ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "D"}})
    with pytest.raises(ClientError):
        ddb.update_item(TableName="msqs-parse", Key={"pk": {"S": "old"}}, UpdateExpression="SET = oops",
                        ExpressionAttributeValues={":s": {"S": "D"}})
    assert ddb.get_item(TableName="msqs-parse", Key={"pk": {"S": "old"}})["Item"]["status"]["S"] == "C"


def test_deleting_messages_behaves_as_moto_did_in_one_pass(moto_endpoint, monkeypatch):
    """A delete walked the queue twice, building each message's receipt handle list both times."""
    from botocore.exceptions import ClientError
    from moto.sqs.models import Message

    sqs = _sqs(moto_endpoint)
    url = sqs.create_queue(QueueName="msqs-delete")["QueueUrl"]
    bodies = {f"msqs-delete-{n}" for n in range(30)}
    for body in sorted(bodies):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    built: list[int] = []
    original = Message.all_receipt_handles
    monkeypatch.setattr(Message, "all_receipt_handles",
                        property(lambda self: (self.body in bodies and built.append(1), original.fget(self))[1]))
    stale = next(m for m in first if m["MessageId"] in {a["MessageId"] for a in again})
    sqs.delete_message(QueueUrl=url, ReceiptHandle=stale["ReceiptHandle"])  # an older handle still deletes
    assert len(built) <= 2  # the deleted message's handles only, not every message's
    result = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(again)])
    assert len(result["Successful"]) == len(again) and not result.get("Failed")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])  # deleting twice is no error
    with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert int(counts["ApproximateNumberOfMessages"]) == 30 - len(again)
