"""The emulator's plain-HTTP object reads answer as boto3's get_object does."""

from __future__ import annotations

import gzip

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack.redshift.s3plain import PlainGetS3


@pytest.fixture()
def plain(s3, moto_endpoint) -> PlainGetS3:
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    return PlainGetS3(client, moto_endpoint, "us-east-1", max_connections=2)


def test_bodies_lengths_and_keys_match_boto3(plain, s3, bucket):
    keys = ["plain.csv", "dir/o'brien; --.csv", "a/%2Bencoded%20.csv", "a/space and+plus.csv", "ünï/日本.csv"]
    for n, key in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=f"{n},{key}\n".encode() * 1000)
    for _ in range(3):  # more reads than pooled connections: each goes back to the pool when read
        for key in keys:
            ours, theirs = plain.get_object(Bucket=bucket, Key=key), s3.get_object(Bucket=bucket, Key=key)
            assert ours["ContentLength"] == theirs["ContentLength"]
            assert ours["Body"].read(100) + ours["Body"].read() == theirs["Body"].read()


def test_a_gzip_encoded_object_comes_back_compressed(plain, s3, bucket):
    data = gzip.compress(b"1,2\n" * 100)
    s3.put_object(Bucket=bucket, Key="z.csv.gz", Body=data, ContentEncoding="gzip")
    assert plain.get_object(Bucket=bucket, Key="z.csv.gz")["Body"].read() == data


def test_missing_objects_and_buckets_raise_boto3s_error_codes(plain, bucket):
    with pytest.raises(ClientError) as missing_key:
        plain.get_object(Bucket=bucket, Key="nope.csv")
    assert missing_key.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as missing_bucket:
        plain.get_object(Bucket="no-such-bucket-plain", Key="x")
    assert missing_bucket.value.response["Error"]["Code"] == "NoSuchBucket"


def test_a_body_closed_unread_and_other_calls_still_work(plain, s3, bucket):
    s3.put_object(Bucket=bucket, Key="big.csv", Body=b"x" * 1_000_000)
    body = plain.get_object(Bucket=bucket, Key="big.csv")["Body"]
    assert body.read(10) == b"x" * 10
    body.close()
    assert plain.get_object(Bucket=bucket, Key="big.csv", Range="bytes=0-3")["Body"].read() == b"xxxx"  # via boto3
    assert [o["Key"] for o in plain.list_objects_v2(Bucket=bucket)["Contents"]] == ["big.csv"]


def test_plain_reads_skip_moto_and_anything_unusual_is_answered_by_moto(plain, s3, bucket, monkeypatch):
    """devstack's moto answers the emulator's marked reads of stored objects itself (devstack/motoread.py);
    a missing, deleted, archived or ranged read goes to moto as before."""
    from moto.s3.responses import S3Response

    through_moto: list[str] = []
    original = S3Response.key_response
    monkeypatch.setattr(S3Response, "key_response",
                        lambda self, request, *a, **k: (through_moto.append(request.method), original(
                            self, request, *a, **k))[1])
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="v.csv", Body=b"old")
    s3.put_object(Bucket=bucket, Key="v.csv", Body=b"new")
    s3.put_object(Bucket=bucket, Key="cold.csv", Body=b"cold", StorageClass="GLACIER")
    s3.put_object(Bucket=bucket, Key="gone.csv", Body=b"gone")
    s3.delete_object(Bucket=bucket, Key="gone.csv")  # a delete marker is now the latest version
    through_moto.clear()
    read = plain.get_object(Bucket=bucket, Key="v.csv")
    assert read["Body"].read() == b"new" and read["ContentLength"] == 3
    assert through_moto == []  # answered without moto's dispatch
    for key, code in (("gone.csv", "NoSuchKey"), ("cold.csv", "InvalidObjectState"), ("never.csv", "NoSuchKey")):
        with pytest.raises(ClientError) as refused:
            plain.get_object(Bucket=bucket, Key=key)
        assert refused.value.response["Error"]["Code"] == code
    assert plain.get_object(Bucket=bucket, Key="v.csv", Range="bytes=0-1")["Body"].read() == b"ne"
    assert through_moto == ["GET"] * 4
