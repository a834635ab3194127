"""Generate infra/resources.json, the merge template `chalice package` folds into its SAM template.

It adds what the app needs and Chalice does not create, from the same definitions devstack
provisions locally (chalicelib/resources.py) and the catalog's landing buckets:
the landing queue and the FIFO jobs queue with dead-letter queues and alarms, partial batch
responses on both SQS mappings, the DynamoDB ledger with its indexes and TTL, the manifest
bucket, and an EventBridge rule sending the landing buckets' "Object Created" events to the
landing queue (the buckets need EventBridge notifications turned on).

    python infra/template.py [pipelines.toml] > infra/resources.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chalicelib import resources  # noqa: E402
from chalicelib.pipelines import load_catalog  # noqa: E402

# The SQS event sources Chalice generates, by function logical id (see app.py's decorators).
SQS_FUNCTIONS = {"Router": ("RouterSqsEventSource", resources.LANDING_QUEUE),
                 "Worker": ("WorkerSqsEventSource", resources.JOBS_QUEUE)}  # must match app.py's names
MANIFEST_RETENTION_DAYS = 7
# Optional: an SNS topic the dead-letter alarms notify (aws cloudformation deploy --parameter-overrides).
ALARM_PARAMETER, ALARM_CONDITION = "AlarmTopicArn", "HasAlarmTopic"


def queue_resources(q: resources.QueueDef) -> dict[str, Any]:
    dlq_id = f"{q.logical_id}DeadLetters"
    fifo = {"FifoQueue": True, "ContentBasedDeduplication": False} if q.fifo else {}
    return {
        dlq_id: {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": q.dlq_name, "MessageRetentionPeriod": q.retention_seconds, "SqsManagedSseEnabled": True,
            **fifo}},
        q.logical_id: {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": q.default_name, "VisibilityTimeout": q.visibility_timeout,
            "MessageRetentionPeriod": q.retention_seconds, "SqsManagedSseEnabled": True, **fifo,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                              "maxReceiveCount": q.max_receive_count}}},
        f"{dlq_id}Alarm": queue_alarm(
            dlq_id, f"Messages parked on {q.dlq_name}: each carries the reason it could not be processed"),
    }


def queue_alarm(queue_id: str, description: str) -> dict[str, Any]:
    """An alarm as soon as the queue holds a message (to the optional AlarmTopicArn topic)."""
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": description,
        "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
        "Statistic": "Maximum", "Period": 300, "EvaluationPeriods": 1, "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
        "AlarmActions": {"Fn::If": [ALARM_CONDITION, [{"Ref": ALARM_PARAMETER}], {"Ref": "AWS::NoValue"}]}}}


def failed_events() -> dict[str, Any]:
    """Lambda's on-failure destination for the EventBridge-invoked functions, with an alarm: an event they
    failed on three times is kept (14 days) for someone to look at and replay, not dropped."""
    queue = "FailedEventsQueue"
    out: dict[str, Any] = {
        queue: {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": resources.FAILED_EVENTS_QUEUE, "MessageRetentionPeriod": 14 * 24 * 3600,
            "SqsManagedSseEnabled": True}},
        f"{queue}Alarm": queue_alarm(
            queue, f"Events a Lambda failed on three times, kept on {resources.FAILED_EVENTS_QUEUE}"),
    }
    for function in resources.FAILED_EVENTS_FUNCTIONS:
        out[function.title()] = {"Properties": {"EventInvokeConfig": {
            "MaximumRetryAttempts": resources.EVENT_RETRY_ATTEMPTS,
            "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": [queue, "Arn"]}}}}}}
    return out


def table_resource(t: resources.TableDef) -> dict[str, Any]:
    attributes = {t.hash_key} | {a for _, h, r in t.indexes for a in (h, r)}
    return {t.logical_id: {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain",
                           "UpdateReplacePolicy": "Retain", "Properties": {
        "TableName": t.default_name, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        "KeySchema": [{"AttributeName": t.hash_key, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [{"IndexName": name, "Projection": {"ProjectionType": "ALL"},
                                    "KeySchema": [{"AttributeName": h, "KeyType": "HASH"},
                                                  {"AttributeName": r, "KeyType": "RANGE"}]}
                                   for name, h, r in t.indexes],
        "TimeToLiveSpecification": {"AttributeName": t.ttl_attribute, "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True}}}}


def manifest_bucket() -> dict[str, Any]:
    return {"ManifestBucket": {"Type": "AWS::S3::Bucket", "Properties": {
        # A predictable name, so the static IAM policies (chalicelib/policies.py) can name it.
        "BucketName": {"Fn::Sub": "redshift-loader-manifests-${AWS::AccountId}-${AWS::Region}"},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "LifecycleConfiguration": {"Rules": [{"Id": "expire-manifests", "Status": "Enabled",
                                              "ExpirationInDays": MANIFEST_RETENTION_DAYS}]}}}}


def landing_events(buckets: list[str]) -> dict[str, Any]:
    landing = resources.LANDING_QUEUE.logical_id
    return {
        "LandingObjectCreatedRule": {"Type": "AWS::Events::Rule", "Properties": {
            "Description": "New objects in the catalog's landing buckets go to the router",
            "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"],
                             "detail": {"bucket": {"name": buckets}}},
            "Targets": [{"Id": "landing-queue", "Arn": {"Fn::GetAtt": [landing, "Arn"]}}]}},
        "LandingQueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": landing}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": [landing, "Arn"]},
                "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["LandingObjectCreatedRule", "Arn"]}}}}]}}},
    }


def merge_template(catalog_path: Path) -> dict[str, Any]:
    catalog = load_catalog(catalog_path)
    buckets = sorted({p.bucket for p in catalog.loads})
    res: dict[str, Any] = {}
    for queue in resources.QUEUES:
        res.update(queue_resources(queue))
    for table in resources.TABLES:
        res.update(table_resource(table))
    res.update(manifest_bucket())
    res.update(failed_events())
    if buckets:
        res.update(landing_events(buckets))
    # SAM turns each Chalice SQS event into the AWS::Lambda::EventSourceMapping <Function><Event>,
    # carrying FunctionResponseTypes. Chalice's queue ARN (Fn::Sub of the name) stays: the merge is a
    # deep dict merge, so a GetAtt would sit beside it, not replace it. The functions' environment
    # (below) GetAtts the queues, so CloudFormation still creates the queues before the mappings.
    for function, (event, _queue) in SQS_FUNCTIONS.items():
        res[function] = {"Properties": {"Events": {event: {"Properties": {
            "FunctionResponseTypes": ["ReportBatchItemFailures"]}}}}}
    env = {
        resources.LANDING_QUEUE.env_var: {"Fn::GetAtt": [resources.LANDING_QUEUE.logical_id, "QueueName"]},
        resources.JOBS_QUEUE.env_var: {"Fn::GetAtt": [resources.JOBS_QUEUE.logical_id, "QueueName"]},
        resources.LEDGER_TABLE.env_var: {"Ref": resources.LEDGER_TABLE.logical_id},
        resources.MANIFEST_BUCKET_ENV: {"Ref": "ManifestBucket"},
    }
    return {
        "Parameters": {ALARM_PARAMETER: {"Type": "String", "Default": "",
                                         "Description": "SNS topic ARN for the dead-letter queue alarms (optional)"}},
        "Conditions": {ALARM_CONDITION: {"Fn::Not": [{"Fn::Equals": [{"Ref": ALARM_PARAMETER}, ""]}]}},
        "Globals": {"Function": {"Environment": {"Variables": env}}},
        "Resources": res,
    }


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "chalicelib" / "pipelines.toml"
    print(json.dumps(merge_template(path), indent=2))


if __name__ == "__main__":
    main()
