"""devstack's moto DynamoDB patch: a failed transaction leaves nothing behind, a good one commits."""

from __future__ import annotations

import boto3
import pytest


def test_failed_transaction_rolls_back_only_its_items(moto_endpoint):
    from devstack.motolocks import serialize_dynamodb

    serialize_dynamodb()  # the session's moto server runs in this process
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    ddb.create_table(TableName="ml-t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="ml-t", Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": "ml-t", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}}}},
            {"Put": {"TableName": "ml-t", "Item": {"pk": {"S": "b"}}}},
            {"Put": {"TableName": "ml-t", "Item": {"pk": {"S": "a2"}}, "ConditionExpression": "attribute_exists(pk)"}},
        ])
    assert ddb.get_item(TableName="ml-t", Key={"pk": {"S": "a"}})["Item"]["v"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName="ml-t", Key={"pk": {"S": "b"}})
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": "ml-t", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = :two",
                    "ExpressionAttributeValues": {":two": {"N": "2"}}}},
        {"Put": {"TableName": "ml-t", "Item": {"pk": {"S": "b"}}}},
    ])
    assert ddb.get_item(TableName="ml-t", Key={"pk": {"S": "a"}})["Item"]["v"] == {"N": "2"}
    assert "Item" in ddb.get_item(TableName="ml-t", Key={"pk": {"S": "b"}})


def test_moto_in_its_own_process_serves_and_stops():
    from devstack.motoserver import MotoProcess

    moto = MotoProcess()
    try:
        s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")
        s3.create_bucket(Bucket="ml-own-process")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["ml-own-process"]
    finally:
        moto.stop()
    assert moto._proc.poll() is not None
