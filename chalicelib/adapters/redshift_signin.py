"""Database credentials for a direct (redshift-connector) connection, the way the catalog says to sign in.

- `secret_arn`: the secret's `username` / `password` (Secrets Manager).
- cluster + `db_user`: temporary credentials from redshift:GetClusterCredentials.
- cluster, neither: redshift:GetClusterCredentialsWithIAM (a database user named after the Lambda's role).
- workgroup, no secret: redshift-serverless:GetCredentials (likewise the IAM identity).

Credentials are cached per warehouse until shortly before they expire (secrets for a
few minutes, so a rotated password is picked up), which keeps these calls off the
path of most batches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.adapters.aws import client
from chalicelib.pipelines import Warehouse

TEMPORARY_SECONDS = 900        # the shortest the APIs allow; a batch needs only minutes
REFRESH_MARGIN_SECONDS = 120   # stop using credentials this long before they expire
SECRET_CACHE_SECONDS = 300


class SignInError(RuntimeError):
    """The warehouse's credentials could not be obtained (bad secret, missing permission, unknown cluster)."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    expires_at: float  # epoch seconds


class RedshiftSignIn:
    def __init__(self, *, clients: Callable[[str], Any] = client, now: Callable[[], float] = time.time) -> None:
        self._clients = clients
        self._now = now
        self._cache: dict[str, Credentials] = {}

    def credentials(self, warehouse: Warehouse) -> Credentials:
        cached = self._cache.get(warehouse.name)
        if cached and cached.expires_at - REFRESH_MARGIN_SECONDS > self._now():
            return cached
        fresh = self._fetch(warehouse)
        self._cache[warehouse.name] = fresh
        return fresh

    def forget(self, warehouse: Warehouse) -> None:
        """Drop cached credentials (after the warehouse refused them: a rotated secret, say)."""
        self._cache.pop(warehouse.name, None)

    def _fetch(self, w: Warehouse) -> Credentials:
        if w.secret_arn:
            return self._from_secret(w)
        if w.cluster and w.db_user:
            reply = self._clients("redshift").get_cluster_credentials(
                DbUser=w.db_user, DbName=w.database, ClusterIdentifier=w.cluster,
                DurationSeconds=TEMPORARY_SECONDS, AutoCreate=False)
            return Credentials(reply["DbUser"], reply["DbPassword"], _epoch(reply.get("Expiration"), self._now()))
        if w.cluster:
            reply = self._clients("redshift").get_cluster_credentials_with_iam(
                DbName=w.database, ClusterIdentifier=w.cluster, DurationSeconds=TEMPORARY_SECONDS)
            return Credentials(reply["DbUser"], reply["DbPassword"], _epoch(reply.get("Expiration"), self._now()))
        reply = self._clients("redshift-serverless").get_credentials(
            workgroupName=w.workgroup, dbName=w.database, durationSeconds=TEMPORARY_SECONDS)
        return Credentials(reply["dbUser"], reply["dbPassword"], _epoch(reply.get("expiration"), self._now()))

    def _from_secret(self, w: Warehouse) -> Credentials:
        value = self._clients("secretsmanager").get_secret_value(SecretId=w.secret_arn)
        try:
            body = json.loads(value.get("SecretString") or "")
            user, password = body["username"], body["password"]
        except (ValueError, KeyError, TypeError):
            # Never echo the secret: only what is wrong with its shape.
            raise SignInError(f"warehouse '{w.name}': secret {w.secret_arn} is not JSON with 'username' and "
                              "'password' (the shape Redshift's own secrets have)") from None
        if not isinstance(user, str) or not isinstance(password, str):
            raise SignInError(f"warehouse '{w.name}': secret {w.secret_arn} has a non-string username or password")
        return Credentials(user, password, self._now() + SECRET_CACHE_SECONDS)


def _epoch(value: Any, now: float) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return now + TEMPORARY_SECONDS  # no expiry given: assume the duration we asked for
