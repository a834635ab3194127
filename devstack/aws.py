"""Create on moto the resources the app needs, from the definitions the deployment uses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from chalicelib import resources
from chalicelib.pipelines import Catalog
from chalicelib.resources import QueueDef, TableDef
from chalicelib.settings import Settings


@dataclass(frozen=True)
class Provisioned:
    queue_urls: dict[str, str]
    buckets: tuple[str, ...]
    table: str


def _client(service: str, endpoint: str, region: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=region)


def create_queue(sqs: Any, definition: QueueDef, name: str, *, visibility: int | None = None) -> str:
    """The queue and its DLQ with the deployed redrive policy (visibility may be shortened locally)."""
    fifo_attrs = {"FifoQueue": "true", "ContentBasedDeduplication": "false"} if definition.fifo else {}
    dlq_name = QueueDef(definition.logical_id, definition.env_var, name, definition.fifo,
                        definition.visibility_timeout, definition.max_receive_count).dlq_name
    dlq_url = sqs.create_queue(QueueName=dlq_name, Attributes={**fifo_attrs})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attrs = {
        **fifo_attrs,
        "VisibilityTimeout": str(visibility if visibility is not None else definition.visibility_timeout),
        "MessageRetentionPeriod": str(definition.retention_seconds),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": definition.max_receive_count}),
    }
    return sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]


def create_table(ddb: Any, definition: TableDef, name: str) -> None:
    keys = {definition.hash_key} | {k for _, h, r in definition.indexes for k in (h, r)}
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in sorted(keys)],
        KeySchema=[{"AttributeName": definition.hash_key, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{
            "IndexName": index, "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}, {"AttributeName": r, "KeyType": "RANGE"}],
        } for index, h, r in definition.indexes])
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": definition.ttl_attribute})


def provision(endpoint: str, settings: Settings, catalog: Catalog, *, visibility: int | None = None,
              dynamodb_endpoint: str | None = None) -> Provisioned:
    """Queues + DLQs, the ledger table, the manifest bucket, and every catalog bucket wired to the landing queue."""
    region = settings.region
    sqs, s3 = (_client(s, endpoint, region) for s in ("sqs", "s3"))
    ddb = _client("dynamodb", dynamodb_endpoint or endpoint, region)
    urls = {
        settings.landing_queue: create_queue(sqs, resources.LANDING_QUEUE, settings.landing_queue, visibility=visibility),
        settings.jobs_queue: create_queue(sqs, resources.JOBS_QUEUE, settings.jobs_queue, visibility=visibility),
    }
    urls[resources.FAILED_EVENTS_QUEUE] = sqs.create_queue(QueueName=resources.FAILED_EVENTS_QUEUE)["QueueUrl"]
    create_table(ddb, resources.LEDGER_TABLE, settings.ledger_table)
    landing_arn = sqs.get_queue_attributes(QueueUrl=urls[settings.landing_queue],
                                           AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    buckets = sorted({p.bucket for p in catalog.loads})
    # Where unloads, archives and copies' staging write (no notifications: nothing loads from them).
    outputs = {u.bucket for u in (*catalog.unloads, *catalog.archives)} | {c.staging_bucket for c in catalog.copies}
    for bucket in sorted({settings.manifest_bucket, *buckets, *outputs}):
        s3.create_bucket(Bucket=bucket)
    for bucket in buckets:
        # One notification per bucket: the router, not S3 filters, decides which pipeline a key belongs to.
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "QueueConfigurations": [{"Id": "redshift-loader", "QueueArn": landing_arn,
                                     "Events": ["s3:ObjectCreated:*"]}]})
    return Provisioned(queue_urls=urls, buckets=tuple(buckets), table=settings.ledger_table)
