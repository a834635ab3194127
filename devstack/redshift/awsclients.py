"""The emulator's own AWS clients: S3 for COPY and UNLOAD, EventBridge for WithEvent.

A warehouse reads S3 with its own role, not with its caller's credentials, so these clients must
not depend on the environment at the moment the emulator starts: devstack sets the stack's
credentials after starting the emulator, and `python -m devstack.redshift` may run in a bare
shell. Against an explicit (local) endpoint they sign with the environment's credentials when it
has them, else with placeholders moto accepts; with no endpoint, boto3's own chain applies.
"""

from __future__ import annotations

import os
from typing import Any

# What devstack's own AWS clients sign with (moto checks no signature), as environment variables.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "devstack", "AWS_SECRET_ACCESS_KEY": "devstack"}


def emulator_client(service: str, endpoint: str | None, region: str, config: Any = None) -> Any:
    import boto3

    credentials: dict[str, str] = {}
    if endpoint and not os.environ.get("AWS_ACCESS_KEY_ID"):
        credentials = {"aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    return boto3.client(service, endpoint_url=endpoint, region_name=region, config=config, **credentials)


def unsigned_s3_authorization(access_key: str, region: str) -> str:
    """An Authorization header for a plain HTTP request to a local S3: moto reads the account from the
    access key in the credential scope and checks no signature."""
    return (f"AWS4-HMAC-SHA256 Credential={access_key}/20260101/{region}/s3/aws4_request, "
            "SignedHeaders=host, Signature=0")


def emulator_s3_client(endpoint: str | None, region: str) -> Any:
    """COPY's and UNLOAD's S3 client. Connections enough for the statements running at once, each
    with its objects requested ahead (copyfast.OPEN_AHEAD); against a local plain-HTTP S3 its object
    reads are plain GETs (s3plain.py). endpoint None: boto3's own configuration (AWS_ENDPOINT_URL_S3)."""
    from botocore.config import Config

    client = emulator_client("s3", endpoint, region, Config(max_pool_connections=50))
    if endpoint and endpoint.startswith("http://"):
        from devstack.redshift.s3plain import PlainGetS3

        return PlainGetS3(client, endpoint, region)
    return client
