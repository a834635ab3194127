"""Data API named parameters (`:name`) → psycopg placeholders or quoted literals.

The Data API sends `[{name, value}]` with string values that the server casts
implicitly. We bind them as psycopg `%(name)s` with `str` values, which psycopg
sends with the *unknown* type OID, so PostgreSQL infers the type from context
(`WHERE id = :id` with `id int` works) — the same effect as Redshift's cast.

The scanner must not see `:name` inside string literals, quoted identifiers,
comments or dollar-quoted bodies, nor in `::` casts. Once psycopg gets a
params dict it interprets every `%` in the text, so all of them are doubled.
Backslash escapes inside '...' follow Redshift (and our server's
standard_conforming_strings=off): `'it\\'s'` is one literal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_NAME = re.compile(r"[0-9A-Za-z_]+")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_IDENT_CHAR = re.compile(r"[0-9A-Za-z_$]")


class ParameterError(ValueError):
    """The request's Parameters do not match the `:name` references in the SQL."""


@dataclass(frozen=True)
class _Piece:
    kind: str  # "text" (SQL to copy verbatim) or "param"
    text: str


def _scan(sql: str, known: frozenset[str]) -> Iterator[_Piece]:
    """Split `sql` into verbatim text and `:name` references.

    A reference whose name starts with a digit only counts when it is a
    supplied parameter name, so array slices like `a[1:2]` keep working.
    """
    i, n, start = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c == "'":
            i = _skip_string(sql, i)
        elif c == '"':
            end = sql.find('"', i + 1)
            while end != -1 and end + 1 < n and sql[end + 1] == '"':
                end = sql.find('"', end + 2)
            i = n if end == -1 else end + 1
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
        elif c == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif c == "$" and (i == 0 or not _IDENT_CHAR.match(sql[i - 1])):
            m = _DOLLAR_TAG.match(sql, i)
            if m:
                end = sql.find(m.group(0), m.end())
                i = n if end == -1 else end + len(m.group(0))
            else:
                i += 1
        elif c == ":":
            if sql.startswith("::", i):
                i += 2
                continue
            m = _NAME.match(sql, i + 1)
            name = m.group(0) if m else ""
            if name and (not name[0].isdigit() or name in known):
                if start < i:
                    yield _Piece("text", sql[start:i])
                yield _Piece("param", name)
                i = start = m.end()  # type: ignore[union-attr]
            else:
                i += 1
        else:
            i += 1
    if start < n:
        yield _Piece("text", sql[start:])


def _skip_string(sql: str, i: int) -> int:
    n = len(sql)
    i += 1
    while i < n:
        c = sql[i]
        if c == "\\":
            i += 2
        elif c == "'":
            if i + 1 < n and sql[i + 1] == "'":
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def _skip_block_comment(sql: str, i: int) -> int:
    depth, i, n = 1, i + 2, len(sql)
    while i < n and depth:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def split_sql(sql: str) -> list[str]:
    """Split on top-level semicolons (quote-, comment- and $$-aware); drops empty statements.

    Only a stand-in until the SQL rewriter's `split_statements` is available.
    """
    out, start, i, n = [], 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "'":
            i = _skip_string(sql, i)
        elif c == '"':
            end = sql.find('"', i + 1)
            i = n if end == -1 else end + 1
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
        elif c == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif c == "$" and (i == 0 or not _IDENT_CHAR.match(sql[i - 1])) and (m := _DOLLAR_TAG.match(sql, i)):
            end = sql.find(m.group(0), m.end())
            i = n if end == -1 else end + len(m.group(0))
        elif c == ";":
            out.append(sql[start:i])
            i = start = i + 1
        else:
            i += 1
    out.append(sql[start:])
    return [part.strip() for part in out if _has_code(part)]


def _has_code(part: str) -> bool:
    stripped = re.sub(r"--[^\n]*|/\*.*?\*/", "", part, flags=re.S)
    return bool(stripped.strip())


def referenced_names(sql: str, known: frozenset[str] = frozenset()) -> list[str]:
    """Names of the `:name` references in `sql`, in order of first use."""
    seen: dict[str, None] = {}
    for piece in _scan(sql, known):
        if piece.kind == "param":
            seen.setdefault(piece.text, None)
    return list(seen)


def check_parameters(sqls: list[str], params: dict[str, str]) -> None:
    """Raise ParameterError unless every reference is supplied and every parameter used."""
    known = frozenset(params)
    used: set[str] = set()
    for sql in sqls:
        for name in referenced_names(sql, known):
            if name not in params:
                raise ParameterError(
                    f"The parameter :{name} is used in the SQL statement but is not specified in the parameters list."
                )
            used.add(name)
    unused = [name for name in params if name not in used]
    if unused:
        raise ParameterError(
            f"The parameter {unused[0]} is specified in the parameters list but is not used in the SQL statement."
        )


def to_pyformat(sql: str, params: dict[str, str]) -> str:
    """Rewrite `:name` to `%(name)s` and double every other `%` (psycopg syntax)."""
    known = frozenset(params)
    out: list[str] = []
    for piece in _scan(sql, known):
        if piece.kind == "param":
            out.append(f"%({piece.text})s")
        else:
            out.append(piece.text.replace("%", "%%"))
    return "".join(out)


def to_literals(sql: str, params: dict[str, str], quote: Callable[[str], str]) -> str:
    """Inline the values as quoted literals (for COPY/UNLOAD, which take SQL text only)."""
    known = frozenset(params)
    return "".join(quote(params[p.text]) if p.kind == "param" else p.text for p in _scan(sql, known))
