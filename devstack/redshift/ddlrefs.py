"""Table references of a query, for late-binding views (pure).

Redshift refuses `CREATE VIEW ... WITH NO SCHEMA BINDING` when a table in the query has no
schema; the emulator checks the same before it creates the view.
"""

from __future__ import annotations

from devstack.redshift.ddltokens import CodeTokens, ident
from devstack.redshift.sqltokens import PUNCT

LATE_BINDING_UNQUALIFIED = ("ERROR: All the relation names inside should be qualified when creating VIEW "
                            "WITH NO SCHEMA BINDING.")
_CLAUSE_END = {"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "UNION", "INTERSECT", "EXCEPT", "MINUS",
               "WINDOW", "QUALIFY", "ON", "USING", "WITH"}
_JOIN_WORDS = {"JOIN"}


def unqualified_relation(query: str) -> str | None:
    """The first table reference of `query` without a schema (None when all are qualified).

    Redshift refuses such late-binding views. Names of WITH queries are not tables; FROM
    inside function calls (EXTRACT, TRIM, SUBSTRING) and IS DISTINCT FROM are not clauses.
    """
    c = CodeTokens(query)
    ctes = {_cte_name(c, j) for j in range(1, len(c)) if c.word(j) == "AS" and c.punct(j + 1, "(")}
    selects = _select_levels(c)
    for j in range(len(c)):
        w = c.word(j)
        if w == "FROM" and c.word(j - 1) != "DISTINCT" and selects.get(_level(c, j)):
            found = _from_items(c, j + 1, ctes)
        elif w in _JOIN_WORDS:
            found = _relation(c, j + 1, ctes)
        else:
            continue
        if found:
            return found
    return None


def _cte_name(c: CodeTokens, as_k: int) -> str | None:
    """The name before `AS (`: `name AS (` or `name (columns) AS (`."""
    k = as_k - 1
    if c.punct(k, ")"):
        k = _level(c, k) - 1
    return ident(c.tok(k))


def _level(c: CodeTokens, j: int) -> int:
    """Code index of the `(` enclosing j (-1 at top level)."""
    depth = 0
    for x in range(j - 1, -1, -1):
        t = c.tok(x)
        if t is not None and t.kind == PUNCT and t.text in ")]":
            depth += 1
        elif t is not None and t.kind == PUNCT and t.text in "([":
            if depth == 0:
                return x
            depth -= 1
    return -1


def _select_levels(c: CodeTokens) -> dict[int, bool]:
    """For each paren level (by opener index), whether a SELECT appears directly in it."""
    levels: dict[int, bool] = {}
    for j in range(len(c)):
        if c.word(j) in ("SELECT", "DELETE", "UPDATE"):
            levels[_level(c, j)] = True
    return levels


def _from_items(c: CodeTokens, k: int, ctes: set[str | None]) -> str | None:
    """Check the comma-separated FROM list starting at k (up to the end of its clause)."""
    depth = 0
    item_start = True
    for j in range(k, len(c)):
        t = c.tok(j)
        if t is not None and t.kind == PUNCT and t.text in "([":
            if depth == 0 and item_start:
                item_start = False
            depth += 1
            continue
        if t is not None and t.kind == PUNCT and t.text in ")]":
            if depth == 0:
                return None
            depth -= 1
            continue
        if depth:
            continue
        if c.word(j) in _CLAUSE_END or c.word(j) in _JOIN_WORDS:
            return None
        if c.punct(j, ","):
            item_start = True
            continue
        if item_start:
            item_start = False
            if c.word(j) == "LATERAL":
                item_start = True
                continue
            found = _relation(c, j, ctes)
            if found:
                return found
    return None


def _relation(c: CodeTokens, j: int, ctes: set[str | None]) -> str | None:
    if c.word(j) == "LATERAL":
        j += 1
    name = ident(c.tok(j))
    if name is None or c.punct(j + 1, ".") or c.punct(j + 1, "(") or name in ctes:
        return None
    return name
