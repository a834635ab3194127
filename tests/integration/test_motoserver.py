"""devstack's moto server (cheroot, kept-alive connections) serves S3 as moto's own server does."""

from __future__ import annotations

import boto3

from devstack.motoserver import KeepAliveMotoServer
from devstack.redshift.awsclients import unsigned_s3_authorization


def test_keys_with_encoded_characters_keep_their_exact_names(s3, bucket):
    """cheroot names the raw path REQUEST_URI, moto reads RAW_URI: "%2B" in a key came back as "+"."""
    keys = ["a/%2Bencoded%20.csv", "a/space and+plus.csv", "a/slash%2Fin.csv", "a/ünï 日本.csv", "a/q?x=1#f.csv"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(keys)
    assert all(s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode() for key in keys)


def test_a_connection_serves_many_requests_and_the_server_stops():
    import http.client

    server = KeepAliveMotoServer()
    server.start()
    host, port = server.get_host_and_port()
    try:
        boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1").create_bucket(
            Bucket="keepalive-bucket")
        conn = http.client.HTTPConnection(host, port, timeout=10)
        auth = unsigned_s3_authorization("x", "us-east-1")
        for i in range(3):
            conn.request("PUT", f"/keepalive-bucket/k{i}", body=b"x", headers={"Authorization": auth})
            response = conn.getresponse()
            response.read()
            assert response.status == 200 and response.getheader("Connection") != "close"
        sock = conn.sock
        conn.request("GET", "/keepalive-bucket/k2", headers={"Authorization": auth})
        assert conn.getresponse().read() == b"x" and conn.sock is sock  # the same connection throughout
    finally:
        server.stop()
