"""Refuse credentials in pipelines.toml: the catalog names how to sign in, it never holds a password or key.

Redshift sign-in is a Secrets Manager secret (`secret_arn`), temporary credentials (`db_user`, clusters)
or the function's IAM identity; COPY and UNLOAD read and write S3 with the warehouse's `iam_role`. So a
field called like a password or key, an access key id, a COPY `CREDENTIALS` / `ACCESS_KEY_ID` clause or a
`password=` anywhere in the file is a mistake, and a dangerous one: the catalog is committed, packaged and
echoed in errors. The problems reported here never quote the offending value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from chalicelib.pipelines import CatalogProblem

# Field names (lower-cased, '-' read as '_') that only a credential would have. `secret_arn` names a secret.
_CREDENTIAL_FIELD = re.compile(
    r"(^|_)(password|passwd|pwd|passphrase)($|_)|^secret$|secret_(access_)?key|client_secret|secret_(value|string)"
    r"|access_key(_id)?$|(^|_)(session_)?token$|credentials?$|private_key|api_key")
_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
# COPY / UNLOAD authorization other than IAM_ROLE, as clauses or as an inline credentials string.
# A keyword counts as a clause when it starts the text (an option) or is followed by its quoted argument,
# so names like `rs-credentials` in an ARN or `refresh_credentials()` are not mistaken for one.
_SQL_CREDENTIALS = re.compile(
    r"^\s*(WITH\s+)?(?P<lead>CREDENTIALS|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|MASTER_SYMMETRIC_KEY)\b"
    r"|(?<![\w-])(WITH\s+)?(?P<clause>CREDENTIALS|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|MASTER_SYMMETRIC_KEY)"
    r"\s+(AS\s+)?'|(?P<inline>aws_(secret_)?access_key(_id)?|(?<![\w-])token)\s*=", re.IGNORECASE)
# `password=x`, `"password": "x"`, `PASSWORD 'x'` (CREATE/ALTER USER), `scheme://user:password@host`.
_PASSWORD = re.compile(r"\b(password|passwd|pwd)\b[\"']?\s*[:=]|\bPASSWORD\s+'|://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)

HOW_TO_SIGN_IN = ("the catalog never holds passwords or keys: sign in to Redshift with secret_arn (a Secrets Manager "
                  "secret), db_user (a cluster's temporary credentials) or neither (the function's IAM identity)")


def credential_problems(data: dict[str, Any], source: str) -> list[CatalogProblem]:
    """Every credential-looking field or value in the parsed file, located, without its value."""
    problems = []
    for section, name, field, item, value in _leaves(data):
        why = _why_field(field) if item == _KEY else _why_value(value)
        if why:
            where = f"item {item}: " if isinstance(item, int) else ""
            problems.append(CatalogProblem(source, section, name, field, where + why))
    return problems


def looks_like_credential(name: str, value: Any) -> str | None:
    """Why a setting called `name` holding `value` looks like a credential, or None (for other config files)."""
    return _why_field(name) or _why_value(value)


def _why_field(field: str) -> str | None:
    last = field.rsplit(".", 1)[-1].lower().replace("-", "_")
    if _CREDENTIAL_FIELD.search(last):
        return f"a field named like a credential is not allowed; {HOW_TO_SIGN_IN}"
    return None


def _why_value(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    clause = _SQL_CREDENTIALS.search(value)
    if clause:
        keyword = (clause.group("lead") or clause.group("clause") or clause.group("inline")).upper()
        return (f"COPY/UNLOAD credentials ({keyword}) are not allowed: COPY and "
                f"UNLOAD authorize with the warehouse's iam_role only; {HOW_TO_SIGN_IN}")
    if _ACCESS_KEY_ID.search(value):
        return f"holds what looks like an AWS access key id, which is not allowed; {HOW_TO_SIGN_IN}"
    if _PASSWORD.search(value):
        return f"holds what looks like a password, which is not allowed; {HOW_TO_SIGN_IN}"
    return None


_KEY = "key"
# (section label, entry name, field path, _KEY | list position | None, value)
Leaf = tuple[str, "str | None", str, "str | int | None", Any]


def _leaves(data: dict[str, Any]) -> Iterator[Leaf]:
    """Every key and scalar of the file, located the way the checker names places."""
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            for name, table in value.items():      # [warehouses.main]-style: named by their key
                yield from _walk(str(key), str(name), table, "")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, table in enumerate(value):     # [[loads]]-style: named by `name`, else by position
                name = table.get("name")
                named = isinstance(name, str) and bool(name)
                yield from _walk(str(key) if named else f"{key} #{i + 1}", name if named else None, table, "")
        else:
            yield from _walk("top level", None, {key: value}, "")


def _walk(section: str, name: str | None, value: Any, path: str, item: int | None = None) -> Iterator[Leaf]:
    if isinstance(value, dict):
        for key, inner in value.items():
            field = f"{path}.{key}" if path else str(key)
            yield section, name, field, _KEY, None
            yield from _walk(section, name, inner, field)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _walk(section, name, inner, path, i + 1)
    else:
        yield section, name, path, item, value
