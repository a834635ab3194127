"""Lazily created, cached boto3 clients.

Created on first use, not at import: clients cost time at cold start, and
endpoints (AWS_ENDPOINT_URL_*) are resolved when a client is made, so devstack
and tests must be able to set the environment first.

All clients come from one boto3 session: a session loads botocore's endpoint and
partition data (~1 MB of JSON) once, so each client after the first costs 5-20 ms
instead of 40-100 ms.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[str, Any] = {}
# One client per service even when several threads ask at once (devstack runs many invocations in
# one process): an unlocked cache let each router thread of a burst build its own dynamodb client,
# a quarter of the process's time while the first files waited.
_creating = threading.Lock()
_session: Any = None  # one boto3 session, made under _creating (a session is not thread-safe)


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is None:
        with _creating:
            found = _clients.get(service)
            if found is None:
                found = _clients[service] = _new_client(service)
    return found


def _new_client(service: str) -> Any:
    """A client from the shared session; called with _creating held."""
    global _session
    import boto3
    from botocore.config import Config

    if _session is None:
        _session = boto3.session.Session()
    # Standard retry mode retries throttling and 5xx with jittered backoff.
    config = Config(retries={"max_attempts": 6, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    return _session.client(service, config=config)


def reset() -> None:
    """Forget cached clients and the session (tests and devstack change endpoints and credentials
    between runs)."""
    global _session
    with _creating:
        _clients.clear()
        _session = None


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
