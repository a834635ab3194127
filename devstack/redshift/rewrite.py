"""Redshift SQL → PostgreSQL 15 SQL, by rules on tokens (not a parser).

The Data API emulator calls:
  split_statements(sql)  -- one request's text → statements (top-level `;`, quote/comment/$$-aware)
  statement_kind(sql)    -- "copy" | "unload" | "truncate" | "select" | "call" | "other"
  rewrite(sql)           -- one Redshift statement → PostgreSQL text

`rewrite` keeps everything it does not understand as written (PostgreSQL then reports real
errors) and raises UnsupportedSql for what would run with a different meaning (QUALIFY,
SUPER navigation, Python UDFs, external tables, ...). Rules never touch string literals,
quoted identifiers or comments; they do recurse into the `$$` bodies of CREATE
FUNCTION/PROCEDURE and DO, so procedures may use the same Redshift constructs.

The result is usually one statement. `MERGE ... REMOVE DUPLICATES` becomes two
(`DELETE ... USING ...; INSERT ... SELECT * ...`): callers either run the text as one
parameterless execute (psycopg sends it as one simple query, which PostgreSQL runs
atomically) or pass it through split_statements() and run the parts in their transaction,
as the emulator's engine does.

Deliberate choices, see also compat/10_functions.sql:
  - VACUUM and the Redshift-only ALTER TABLE ... ALTER DISTKEY/SORTKEY/ENCODE forms become
    a no-op statement (NOOP); ANALYZE loses PREDICATE/ALL COLUMNS.
  - LOCK, TRUNCATE, GRANT ... TO GROUP, CREATE/ALTER/DROP GROUP run as written: PostgreSQL has
    the same syntax. LOCK needs a transaction block in PG (the emulator runs statements in one);
    GRANT to a missing group fails as it does on Redshift.
  - Primary/unique/foreign keys stay enforced (Redshift only records them).
"""

from __future__ import annotations

import re

from devstack.redshift.contracts import UnsupportedSql
from devstack.redshift.rewrite_from import subquery_aliases
from devstack.redshift.rewrite_rules import RULES, Tokens, reject_unsupported
from devstack.redshift.sqltokens import DOLLAR, PUNCT, TRIVIA, Token, join, tokenize

NOOP = "DO $$BEGIN END$$"
_MAX_PASSES = 200  # a rule re-runs until nothing changes (nested calls: one level per pass)
# Redshift-only session settings: kept as custom settings (rs.<name>) so SET/SHOW still work.
_REDSHIFT_SETTINGS = {"query_group", "enable_result_cache_for_session", "wlm_query_slot_count",
                      "analyze_threshold_percent", "json_parse_truncate_strings", "auto_analyze",
                      "describe_field_name_in_uppercase", "mv_enable_aqmv_for_session",
                      "enable_case_sensitive_super_attribute", "spectrum_query_maxerror",
                      "max_concurrency_scaling_clusters", "datashare_break_glass_session_var",
                      "default_geometry_encoding", "use_fips_ssl", "enable_numeric_rounding"}
_UNSUPPORTED_CREATE = {"EXTERNAL": "CREATE EXTERNAL TABLE/SCHEMA/FUNCTION (Spectrum, Lambda UDFs)",
                       "LIBRARY": "CREATE LIBRARY", "MODEL": "CREATE MODEL", "DATASHARE": "datashares"}
_STATEMENT_PREFIXES = ("BEGIN", "THEN", "ELSE", "LOOP")


def split_statements(sql: str) -> list[str]:
    """Statements of `sql` without their `;`, stripped; empty (or comment-only) ones dropped."""
    parts: list[list[Token]] = [[]]
    for tok in tokenize(sql):
        if tok.kind == PUNCT and tok.text == ";":
            parts.append([])
        else:
            parts[-1].append(tok)
    return [join(p).strip() for p in parts if any(t.kind not in TRIVIA for t in p)]


def statement_kind(sql: str) -> str:
    """What kind of statement `sql` is, by its first keyword."""
    tk = Tokens(tokenize(sql))
    code = [i for i in tk.code if not tk.punct(i, "(")]  # `(SELECT ...) UNION ...`
    if not code:
        return "other"
    first = tk.word(code[0])
    if first == "WITH":
        depth = 0
        for i in tk.code:
            if tk.punct(i, "("):
                depth += 1
            elif tk.punct(i, ")"):
                depth -= 1
            elif depth == 0 and tk.word(i) in ("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES"):
                first = tk.word(i)
                break
    if first in ("SELECT", "VALUES", "SHOW", "TABLE", "EXPLAIN"):
        return "select"
    return first.lower() if first in ("COPY", "UNLOAD", "TRUNCATE", "CALL") else "other"


def rewrite(sql: str) -> str:
    """One Redshift statement → PostgreSQL. Raises UnsupportedSql naming the construct."""
    return _rewrite(sql, top_level=True)


def _rewrite(sql: str, *, top_level: bool) -> str:
    sql = _statements(sql, top_level)  # first: names CREATE LIBRARY etc. before generic checks
    reject_unsupported(Tokens(tokenize(sql)))
    for rule in (*RULES, subquery_aliases):
        for _ in range(_MAX_PASSES):
            tk = Tokens(tokenize(sql))
            rule(tk)
            changed = tk.result()
            if changed is None:
                break
            sql = changed
    return _bodies(sql)


def _bodies(sql: str) -> str:
    """Rewrite the $$ bodies of CREATE FUNCTION/PROCEDURE (SQL, plpgsql) and DO blocks."""
    tk = Tokens(tokenize(sql))
    for i in tk.code:
        if tk.t[i].kind != DOLLAR:
            continue
        before = tk.word(tk.prev(i))
        stmt_words = {tk.word(k) for k in tk.code if k < i}
        if before != "DO" and not (before == "AS" and stmt_words & {"FUNCTION", "PROCEDURE"}) \
                and tk.word(tk.prev(i, 2)) != "DO":  # DO LANGUAGE plpgsql $$...$$
            continue
        language = _language(tk, i)
        if language not in ("PLPGSQL", "SQL"):
            continue
        text = tk.t[i].text
        tag = re.match(r"\$[^$]*\$", text).group(0)  # type: ignore[union-attr]
        inner = text[len(tag):len(text) - len(tag)] if len(text) >= 2 * len(tag) else text[len(tag):]
        tk.replace(i, i + 1, tag + _rewrite(inner, top_level=False) + tag)
    return tk.result() or sql


def _language(tk: Tokens, body: int) -> str:
    end = tk.statement_end(body)
    for k in tk.code:
        if k < end and tk.word(k) == "LANGUAGE":
            return tk.word(tk.next(k)) or tk.t[tk.next(k)].text.strip("'").upper()  # type: ignore[index]
    return "PLPGSQL"  # DO's default; Redshift procedures are always plpgsql


def _statement_starts(tk: Tokens, top_level: bool) -> list[int]:
    if top_level:
        return tk.code[:1]
    return [i for i in tk.code if tk.prev(i) is None or tk.punct(tk.prev(i), ";")
            or tk.word(tk.prev(i)) in _STATEMENT_PREFIXES]


def _statements(sql: str, top_level: bool) -> str:
    """Rules that look at a whole statement, keyed by its first word(s)."""
    tk = Tokens(tokenize(sql))
    for s in _statement_starts(tk, top_level):
        end = tk.statement_end(s)
        words = [tk.word(k) for k in tk.code if s <= k < end]
        _statement(tk, s, end, words, top_level)
    return tk.result() or sql


def _statement(tk: Tokens, s: int, end: int, words: list[str], top_level: bool) -> None:
    first = words[0] if words else ""
    second = words[1] if len(words) > 1 else ""
    where = "" if top_level else " inside a procedure or function"
    if first in ("COPY", "UNLOAD"):
        raise UnsupportedSql(f"{first}{where or ' through the SQL rewriter'}",
                             "the emulator runs COPY/UNLOAD statements with its own handler")
    if first == "CREATE":
        rest = [w for w in words[1:4] if w not in ("OR", "REPLACE")]
        if rest and rest[0] in _UNSUPPORTED_CREATE:
            raise UnsupportedSql(_UNSUPPORTED_CREATE[rest[0]])
    if first == "ALTER" and second == "DATASHARE":
        raise UnsupportedSql("datashares")
    code = [k for k in tk.code if s <= k < end]
    if first == "VACUUM" or (first == "ANALYZE" and second == "COMPRESSION") \
            or (first == "ALTER" and second == "SCHEMA" and "QUOTA" in words) or _alter_table_noop(words):
        if not top_level:
            raise UnsupportedSql(f"{first} {second}{where}")
        tk.replace(s, end, NOOP)
    elif first == "ANALYZE":
        for k in code:
            if tk.word(k) in ("PREDICATE", "ALL") and tk.word(tk.next(k)) == "COLUMNS":
                tk.replace(k, tk.next(k) + 1, "")  # type: ignore[operator]
    elif first == "ALTER" and second == "TABLE" and "APPEND" in words:
        _append(tk, code, end)
    elif first == "MERGE" and words[-2:] == ["REMOVE", "DUPLICATES"]:
        _merge_remove_duplicates(tk, code, end)
    elif first == "DELETE" and second not in ("FROM", ""):
        tk.replace(s, s + 1, tk.t[s].text + " FROM")  # Redshift's FROM is optional
    elif first in ("SET", "RESET", "SHOW"):
        _setting(tk, code, end)
    elif first == "CREATE" and second == "SCHEMA" and "QUOTA" in words:
        q = next(k for k in code if tk.word(k) == "QUOTA")
        tk.replace(q, code[-1] + 1, "")  # storage quotas mean nothing here
    elif first == "CREATE" and "BINDING" in words:
        for k in code:
            if tk.word(k) == "WITH" and [tk.word(tk.next(k, n)) for n in (1, 2, 3)] == ["NO", "SCHEMA", "BINDING"]:
                tk.replace(k, tk.next(k, 3) + 1, "")  # type: ignore[operator]  # late binding: PG binds early


def _alter_table_noop(words: list[str]) -> bool:
    """ALTER TABLE t ALTER DISTKEY/DISTSTYLE/[COMPOUND] SORTKEY/ENCODE ..., ALTER COLUMN c ENCODE x."""
    if words[:2] != ["ALTER", "TABLE"]:
        return False
    for n, w in enumerate(words[2:], 2):
        nxt = words[n + 1] if n + 1 < len(words) else ""
        if w == "ALTER" and nxt in ("DISTKEY", "DISTSTYLE", "SORTKEY", "COMPOUND", "INTERLEAVED", "ENCODE"):
            return True
        if w == "ALTER" and nxt == "COLUMN" and "ENCODE" in words[n:]:
            return True
    return False


def _literal(text: str) -> str:
    # The server runs with standard_conforming_strings=off: double backslashes as well as quotes.
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _append(tk: Tokens, code: list[int], end: int) -> None:
    """ALTER TABLE t APPEND FROM s [IGNOREEXTRA | FILLTARGET] → CALL rs_compat.append_from(...)."""
    k_table = next(k for k in code if tk.word(k) == "TABLE")
    k_append = next(k for k in code if tk.word(k) == "APPEND")
    k_from = tk.next(k_append)
    if tk.word(k_from) != "FROM":
        raise UnsupportedSql("ALTER TABLE ... APPEND without FROM")
    tail = [k for k in code if k > k_from]
    mode = tk.word(tail[-1]) if tail and tk.word(tail[-1]) in ("IGNOREEXTRA", "FILLTARGET") else ""
    source_end = tail[-1] if mode else end
    target = tk.text(k_table + 1, k_append).strip()
    source = tk.text(k_from + 1, source_end).strip()  # type: ignore[operator]
    tk.replace(code[0], end, f"CALL rs_compat.append_from({_literal(target)}, {_literal(source)}, "
                             f"{_literal(mode.lower())})")


def _merge_remove_duplicates(tk: Tokens, code: list[int], end: int) -> None:
    """MERGE INTO t USING s ON c REMOVE DUPLICATES → DELETE FROM t USING s WHERE c; INSERT INTO t SELECT * FROM s."""
    depth0 = [k for k in code if _depth(tk, code[0], k) == 0]
    try:
        k_into = next(k for k in depth0 if tk.word(k) == "INTO")
        k_using = next(k for k in depth0 if tk.word(k) == "USING")
        k_on = next(k for k in depth0 if tk.word(k) == "ON" and k > k_using)
    except StopIteration:
        raise UnsupportedSql("this form of MERGE ... REMOVE DUPLICATES") from None
    k_remove = [k for k in depth0 if tk.word(k) == "REMOVE"][-1]
    target_code = [k for k in depth0 if k_into < k < k_using]
    name_end = target_code[0]  # the target's (possibly qualified) name, without its alias
    while tk.punct(tk.next(name_end), "."):
        name_end = tk.next(name_end, 2)  # type: ignore[assignment]
    target = tk.text(k_into + 1, k_using).strip()
    name = tk.text(target_code[0], name_end + 1)
    source = tk.text(k_using + 1, k_on).strip()
    cond = tk.text(k_on + 1, k_remove).strip()
    tk.replace(code[0], end, f"DELETE FROM {target} USING {source} WHERE {cond}; "
                             f"INSERT INTO {name} SELECT * FROM {source}")


def _depth(tk: Tokens, start: int, k: int) -> int:
    depth = 0
    for j in range(start, k):
        if tk.t[j].kind == PUNCT and tk.t[j].text in "([":
            depth += 1
        elif tk.t[j].kind == PUNCT and tk.t[j].text in ")]":
            depth -= 1
    return depth


def _setting(tk: Tokens, code: list[int], end: int) -> None:
    """SET search_path keeps rs_compat; Redshift-only settings live on as rs.<name>."""
    k = code[1] if len(code) > 1 else None
    if tk.word(k) in ("SESSION", "LOCAL") and tk.t[code[0]].text.upper() == "SET":
        k = code[2] if len(code) > 2 else None
    name = tk.word(k).lower()
    if name == "search_path" and tk.word(code[0]) == "SET":
        values = [tk.t[j].text.strip('"').lower() for j in code if j > k]  # type: ignore[operator]
        if "rs_compat" not in values and "DEFAULT" not in [v.upper() for v in values]:
            tk.replace(code[-1] + 1, code[-1] + 1, ", rs_compat")
    elif name == "enable_case_sensitive_identifier":
        value = [tk.t[j].text.strip("'").lower() for j in code if j > k]  # type: ignore[operator]
        if tk.word(code[0]) == "SET" and value and value[-1] in ("true", "on", "1"):
            raise UnsupportedSql("enable_case_sensitive_identifier")
        tk.replace(code[0], end, NOOP if tk.word(code[0]) != "SHOW" else "SELECT 'off' AS enable_case_sensitive_identifier")
    elif name in _REDSHIFT_SETTINGS:
        if tk.word(code[0]) == "SHOW":
            tk.replace(code[0], end, f"SELECT current_setting('rs.{name}', true) AS {name}")
        else:
            tk.replace(k, k + 1, f"rs.{name}")  # type: ignore[operator]


__all__ = ["NOOP", "rewrite", "split_statements", "statement_kind"]
