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

from devstack.redshift.sqltokens import NUMBER, OP, WORD, tokenize

class ParameterError(ValueError):
    """The request's Parameters do not match the `:name` references in the SQL."""


@dataclass(frozen=True)
class _Piece:
    kind: str  # "text" (SQL to copy verbatim) or "param"
    text: str


def _scan(sql: str, known: frozenset[str]) -> Iterator[_Piece]:
    """Split `sql` into verbatim text and `:name` references.

    Uses the rewriter's tokenizer, so literals, quoted identifiers, comments and
    dollar bodies are never scanned, and `::` is a cast, not a parameter. A name
    starting with a digit counts only when it is a supplied parameter, so array
    slices like `a[1:2]` keep working.
    """
    tokens = tokenize(sql)
    text: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.kind == OP and token.text == ":" and after is not None and after.kind in (WORD, NUMBER) \
                and _NAME.fullmatch(after.text) and (not after.text[0].isdigit() or after.text in known):
            if text:
                yield _Piece("text", "".join(text))
                text = []
            yield _Piece("param", after.text)
            i += 2
            continue
        text.append(token.text)
        i += 1
    if text:
        yield _Piece("text", "".join(text))


_NAME = re.compile(r"[0-9A-Za-z_]+")


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
