"""Request validation and paging helpers shared by the Data API operations."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from devstack.redshift.models import ApiError
from devstack.redshift.sessions import Target

MAX_SQL_BYTES = 100 * 1024
_PARAM_NAME = re.compile(r"[0-9a-zA-Z_]+")


def invalid(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise invalid(f"{key} is required.")
    return value


def check_sql_size(sql: str) -> None:
    if len(sql.encode()) > MAX_SQL_BYTES:
        raise invalid("Cannot process query string larger than 100kB")


def wait_seconds(body: dict[str, Any]) -> int | None:
    wait = body.get("WaitTimeSeconds")
    if wait is not None and (not isinstance(wait, int) or not 1 <= wait <= 30):
        raise invalid("WaitTimeSeconds must be between 1 and 30.")
    return wait


def max_results(body: dict[str, Any], maximum: int) -> int:
    limit = body.get("MaxResults")
    if limit is None or limit == 0:
        return maximum
    if not isinstance(limit, int) or not 0 <= limit <= maximum:
        raise invalid(f"MaxResults must be between 0 and {maximum}.")
    return limit


def parameters(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, list) or not raw:
        raise invalid("Parameters must be a non-empty list of {name, value}.")
    params: dict[str, str] = {}
    for item in raw:
        name, value = (item or {}).get("name"), (item or {}).get("value")
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            raise invalid(f"Invalid parameter name: {name!r}.")
        if not isinstance(value, str) or not value:
            raise invalid(f"The value of parameter {name} must be a non-empty string.")
        if name in params:
            raise invalid(f"Duplicate parameter name: {name}.")
        params[name] = value
    return params


def connection(body: dict[str, Any], *, allow_session: bool) -> tuple[Target | None, str | None, str | None]:
    """(target, database, session id) from ClusterIdentifier / WorkgroupName / SessionId + Database."""
    cluster, workgroup = body.get("ClusterIdentifier"), body.get("WorkgroupName")
    session = body.get("SessionId") if allow_session else None
    given = [k for k, v in (("ClusterIdentifier", cluster), ("WorkgroupName", workgroup),
                            ("SessionId", session)) if v]
    if len(given) != 1:
        if allow_session:
            raise invalid("Exactly one of ClusterIdentifier, WorkgroupName or SessionId must be specified.")
        raise invalid("Either ClusterIdentifier or WorkgroupName must be specified, but not both.")
    if session:
        if body.get("Database") or body.get("DbUser") or body.get("SecretArn"):
            raise invalid("Database, DbUser and SecretArn cannot be specified together with SessionId.")
        return None, None, session
    database = body.get("Database")
    if not isinstance(database, str) or not database:
        raise invalid("Database is required.")
    target = Target("cluster", cluster) if cluster else Target("workgroup", workgroup)
    return target, database, None


def encode_token(**state: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def decode_token(token: Any, key: str) -> int | None:
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(str(token).encode()))[key]
        return int(value)
    except (ValueError, KeyError, TypeError):
        raise invalid("Invalid NextToken.") from None


def paged(body: dict[str, Any], key: str, items: list[Any]) -> dict[str, Any]:
    limit = max_results(body, 1000)
    offset = decode_token(body.get("NextToken"), "offset") or 0
    out: dict[str, Any] = {key: items[offset:offset + limit]}
    if offset + limit < len(items):
        out["NextToken"] = encode_token(offset=offset + limit)
    return out
