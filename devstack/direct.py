"""Direct (redshift-connector) warehouses on devstack: the local endpoint and what signing in needs.

The app reaches a warehouse with `connection = "direct"` at the catalog's host and
port; devstack sets REDSHIFT_DIRECT_ENDPOINT so the app connects to the emulator's
Redshift-protocol endpoint (redshift/wire.py) instead, as AWS_ENDPOINT_URL_* send the
SDK to moto. That one endpoint serves every direct warehouse, told apart by database
name (the start-up packet names only the database), so two direct warehouses need
two databases.

Signing in works as deployed, against moto: each direct cluster exists in moto (so
redshift:GetClusterCredentials answers), and each `secret_arn` names a moto secret
holding the endpoint's master user. The endpoint accepts that user, and any user
with temporary credentials (IAM:…, IAMA:…, IAMR:…), which only AWS could check.
moto has no redshift-serverless:GetCredentials: a direct workgroup signs in with a secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.pipelines import Catalog, Warehouse
from devstack.redshift.sessions import Target, normalize_database

MASTER_USER = "awsuser"
MASTER_PASSWORD = "devstack"  # local only, loopback only
DEFAULT_TARGET = Target("cluster", "devstack")
TEMPORARY_USER_PREFIXES = ("IAM:", "IAMA:", "IAMR:")


class DirectSetupError(ValueError):
    """The catalog's direct warehouses cannot share devstack's one endpoint as written."""


def direct_warehouses(catalog: Catalog) -> list[Warehouse]:
    return [w for w in catalog.warehouses.values() if w.connection == "direct"]


def targets_by_database(catalog: Catalog) -> dict[str, Target]:
    """Database name → the direct warehouse's cluster or workgroup (what the endpoint maps it to)."""
    out: dict[str, Target] = {}
    owners: dict[str, str] = {}
    for w in direct_warehouses(catalog):
        database = normalize_database(w.database)
        target = Target("workgroup", w.workgroup) if w.workgroup else Target("cluster", w.cluster or "")
        if database in out and out[database] != target:
            raise DirectSetupError(f"{catalog.source}: direct warehouses '{owners[database]}' and '{w.name}' both "
                                   f"use database '{database}' on different targets; devstack's one endpoint "
                                   "tells them apart only by database, so give them different databases")
        out[database], owners[database] = target, w.name
    return out


def resolver(targets: Mapping[str, Target]) -> Any:
    def resolve(database: str) -> Target:
        return targets.get(normalize_database(database), DEFAULT_TARGET)
    return resolve


def authenticate(user: str, password: str) -> bool:
    if user.startswith(TEMPORARY_USER_PREFIXES):
        return bool(password)  # temporary credentials from (moto's) IAM APIs: nothing local can verify them
    return user == MASTER_USER and password == MASTER_PASSWORD


def provision_sign_in(catalog: Catalog, client: Any) -> None:
    """Make each direct warehouse's way of signing in answer on moto. `client(service)` → boto3 client."""
    for w in direct_warehouses(catalog):
        if w.secret_arn:
            name = w.secret_arn.split(":secret:", 1)[1]
            try:
                client("secretsmanager").create_secret(
                    Name=name, SecretString=json.dumps({"username": MASTER_USER, "password": MASTER_PASSWORD}))
            except Exception as exc:
                if "ResourceExists" not in f"{type(exc).__name__}: {exc}":
                    raise
        elif w.cluster:
            try:
                client("redshift").create_cluster(
                    ClusterIdentifier=w.cluster, NodeType="ra3.xlplus", ClusterType="single-node",
                    MasterUsername=MASTER_USER, MasterUserPassword="Devstack1", DBName=w.database)
            except Exception as exc:
                if "ClusterAlreadyExists" not in f"{type(exc).__name__}: {exc}":
                    raise


class DirectEndpoint:
    """The running endpoint and the environment that points the app at it."""

    def __init__(self, emulator: Any, catalog: Catalog, client: Any, *, port: int = 0) -> None:
        from devstack.redshift.wire import RedshiftWire

        self.wire = RedshiftWire(emulator, port=port, authenticate=authenticate,
                                 resolve_target=resolver(targets_by_database(catalog)))
        provision_sign_in(catalog, client)

    def start(self) -> "DirectEndpoint":
        self.wire.start()
        return self

    def stop(self) -> None:
        self.wire.stop()

    def environment(self) -> dict[str, str]:
        return {"REDSHIFT_DIRECT_ENDPOINT": self.wire.endpoint, "DEVSTACK_REDSHIFT_USER": MASTER_USER,
                "DEVSTACK_REDSHIFT_PASSWORD": MASTER_PASSWORD}
