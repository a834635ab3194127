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

PLACEHOLDER_CREDENTIALS = {"aws_access_key_id": "devstack", "aws_secret_access_key": "devstack"}


def emulator_client(service: str, endpoint: str | None, region: str, config: Any = None) -> Any:
    import boto3

    credentials: dict[str, str] = {}
    if endpoint and not os.environ.get("AWS_ACCESS_KEY_ID"):
        credentials = PLACEHOLDER_CREDENTIALS
    return boto3.client(service, endpoint_url=endpoint, region_name=region, config=config, **credentials)
