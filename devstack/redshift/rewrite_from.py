"""Rewrite rule: FROM items that PostgreSQL 15 needs named.

Redshift (like PostgreSQL 16) accepts a subquery in FROM without an alias:
`SELECT * FROM (SELECT 1 AS a)`; PostgreSQL 15 fails with "subquery in FROM must have an
alias". The rule adds `AS rs_subquery_N`. Nothing can refer to an unnamed subquery, so the
name is free to choose; its columns stay reachable unqualified, as on Redshift.
"""

from __future__ import annotations

from devstack.redshift.rewrite_rules import Tokens
from devstack.redshift.sqltokens import QIDENT, WORD, matching_paren

# Words that may follow a FROM item without being its alias (a clause, a join, a set operation).
_AFTER_FROM_ITEM = {"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR", "WINDOW", "UNION",
                    "INTERSECT", "EXCEPT", "MINUS", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "NATURAL",
                    "ON", "USING", "RETURNING", "WHEN", "QUALIFY", "TABLESAMPLE"}
# The clause words a `, (SELECT ...)` can belong to; only FROM makes it a FROM item.
_CLAUSES = {"FROM", "SELECT", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "RETURNING", "SET", "VALUES", "INTO",
            "WINDOW", "BY", "IN"}
_QUERY_STARTS = ("SELECT", "WITH", "VALUES")


def subquery_aliases(tk: Tokens) -> None:
    """`FROM (SELECT ...)` (also after JOIN, a FROM-list comma, LATERAL, DELETE/MERGE USING)
    without an alias → `FROM (SELECT ...) AS rs_subquery_N`."""
    n = 0
    for i in tk.code:
        if not tk.punct(i, "(") or not _is_from_item(tk, i) or not _is_query(tk, i):
            continue
        close = matching_paren(tk.t, i)
        after = tk.next(close)
        if after is not None and (tk.t[after].kind == QIDENT
                                  or (tk.t[after].kind == WORD and tk.word(after) not in _AFTER_FROM_ITEM)):
            continue  # `(...) AS x`, `(...) x`, `(...) "x"`
        n += 1
        tk.replace(close + 1, close + 1, f" AS rs_subquery_{n}")


def _is_from_item(tk: Tokens, open_i: int) -> bool:
    before = tk.prev(open_i)
    if tk.word(before) == "LATERAL":
        before = tk.prev(before)  # type: ignore[arg-type]
    if tk.word(before) in ("JOIN", "USING"):  # USING: DELETE ... USING / MERGE ... USING
        return True
    if tk.word(before) == "FROM":
        return _at_level(tk, before, ("SELECT", "DELETE", "UPDATE")) is not None  # not EXTRACT(x FROM (...))
    if not tk.punct(before, ","):
        return False
    clause = _at_level(tk, before, _CLAUSES)  # which clause does the comma belong to?
    return clause is not None and tk.word(clause) == "FROM"


def _at_level(tk: Tokens, i: int, words: set[str] | tuple[str, ...]) -> int | None:
    """The nearest of `words` before token i at its parenthesis level (None past the opening one)."""
    depth = 0
    j = tk.prev(i)
    while j is not None:
        if tk.punct(j, ")"):
            depth += 1
        elif tk.punct(j, "("):
            if depth == 0:
                return None
            depth -= 1
        elif depth == 0 and tk.word(j) in words:
            return j
        j = tk.prev(j)
    return None


def _is_query(tk: Tokens, open_i: int) -> bool:
    """`( SELECT|WITH|VALUES ...)`, or `((SELECT ...) UNION ...)`: a subquery, not a join in parentheses."""
    first = tk.next(open_i)
    if tk.word(first) in _QUERY_STARTS:
        return True
    if tk.punct(first, "(") and _is_query(tk, first):  # type: ignore[arg-type]
        after = tk.next(matching_paren(tk.t, first))  # type: ignore[arg-type]
        return tk.punct(after, ")") or tk.word(after) in ("UNION", "INTERSECT", "EXCEPT", "MINUS", "ORDER", "LIMIT",
                                                           "OFFSET")
    return False

