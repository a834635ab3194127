"""Token rules of the Redshift → PostgreSQL rewriter (see rewrite.py for the pipeline).

Each rule takes the token list of one piece of SQL and returns the rewritten text, or None
when it changed nothing. Rules only look at code tokens, so strings, quoted identifiers,
comments and dollar-quoted bodies are never edited here (rewrite.py recurses into bodies).
"""

from __future__ import annotations

from collections.abc import Callable

from devstack.redshift.contracts import UnsupportedSql
from devstack.redshift.sqltokens import (
    NUMBER,
    OP,
    PARAM,
    PUNCT,
    QIDENT,
    STRING,
    WORD,
    Token,
    code_indexes,
    join,
    matching_paren,
    split_args,
)

# Redshift date part names and aliases → the name PostgreSQL's date functions accept.
_PARTS = {
    "millennium": ("millennium", "millennia", "mil", "mils"),
    "century": ("century", "centuries", "c", "cent", "cents"),
    "decade": ("decade", "decades", "dec", "decs"),
    "epoch": ("epoch",),
    "year": ("year", "years", "y", "yr", "yrs"),
    "quarter": ("quarter", "quarters", "qtr", "qtrs"),
    "month": ("month", "months", "mon", "mons"),
    "week": ("week", "weeks", "w"),
    "dow": ("dayofweek", "dow", "dw", "weekday"),
    "doy": ("dayofyear", "doy", "dy", "yearday"),
    "day": ("day", "days", "d"),
    "hour": ("hour", "hours", "h", "hr", "hrs"),
    "minute": ("minute", "minutes", "m", "min", "mins"),
    "second": ("second", "seconds", "s", "sec", "secs"),
    "milliseconds": ("millisecond", "milliseconds", "ms", "msec", "msecs", "msecond", "mseconds",
                     "millisec", "millisecs", "millisecon"),
    "microseconds": ("microsecond", "microseconds", "microsec", "microsecs", "microsecond", "usecond",
                     "useconds", "us", "usec", "usecs"),
    "timezone": ("timezone",), "timezone_hour": ("timezone_hour",), "timezone_minute": ("timezone_minute",),
}
PART_ALIASES = {alias: canonical for canonical, aliases in _PARTS.items() for alias in aliases}
_DATE_FUNCS = {"DATEADD": "dateadd", "DATEDIFF": "datediff", "DATEPART": "datepart",
               "DATE_PART": "datepart", "DATE_TRUNC": "date_trunc"}
# Redshift regexp functions differ from PostgreSQL's same-named ones (REGEXP_REPLACE replaces
# every match; the `parameters` flags differ), so calls go to compat wrappers.
_RENAMED_CALLS = {"NVL": "coalesce", "LEN": "length", "REGEXP_REPLACE": "rs_compat.rs_regexp_replace",
                  "REGEXP_SUBSTR": "rs_compat.rs_regexp_substr", "REGEXP_INSTR": "rs_compat.rs_regexp_instr",
                  "REGEXP_COUNT": "rs_compat.rs_regexp_count"}
_CHAR_TYPES = {"VARCHAR": "65535", "VARYING": "65535", "NVARCHAR": "65535", "CHAR": "4096",
               "CHARACTER": "4096", "NCHAR": "4096", "BPCHAR": "4096"}
_BYTE_TYPES = ("VARBYTE", "VARBINARY")


class Tokens:
    """A token list with code-token navigation and non-overlapping edits."""

    def __init__(self, tokens: list[Token]) -> None:
        self.t = tokens
        self.code = code_indexes(tokens)
        self._pos = {ti: k for k, ti in enumerate(self.code)}
        self.edits: list[tuple[int, int, str]] = []

    def next(self, i: int, n: int = 1) -> int | None:
        """Token index of the n-th code token after token i."""
        k = self._pos[i] + n
        return self.code[k] if 0 <= k < len(self.code) else None

    def prev(self, i: int, n: int = 1) -> int | None:
        return self.next(i, -n)

    def word(self, i: int | None) -> str:
        """Upper-case text of token i if it is a word, else ''."""
        return self.t[i].text.upper() if i is not None and self.t[i].kind == WORD else ""

    def punct(self, i: int | None, char: str) -> bool:
        return i is not None and self.t[i].is_punct(char)

    def text(self, a: int, b: int) -> str:
        return join(self.t[a:b])

    def replace(self, a: int, b: int, text: str) -> bool:
        """Replace tokens a..b-1; False (and no edit) if it overlaps an earlier edit."""
        if any(a < e_b and e_a < b for e_a, e_b, _ in self.edits):
            return False
        if text == self.text(a, b):
            return True  # already in the target form: not a change (rules run to a fixpoint)
        self.edits.append((a, b, text))
        return True

    def result(self) -> str | None:
        if not self.edits:
            return None
        out, pos = [], 0
        for a, b, text in sorted(self.edits):
            out.append(self.text(pos, a))
            out.append(text)
            pos = b
        out.append(self.text(pos, len(self.t)))
        return "".join(out)

    def statement_end(self, i: int) -> int:
        """Index of the top-level `;` ending the statement that contains token i (or len)."""
        depth = 0
        for j in range(i, len(self.t)):
            tok = self.t[j]
            if tok.kind == PUNCT:
                if tok.text in "([":
                    depth += 1
                elif tok.text in ")]":
                    depth -= 1
                    if depth < 0:
                        return j  # the statement is a subquery ending here
                elif tok.text == ";" and depth == 0:
                    return j
        return len(self.t)


Rule = Callable[[Tokens], None]


def reject_unsupported(tk: Tokens) -> None:
    """Raise UnsupportedSql for constructs PostgreSQL cannot run with Redshift's meaning."""
    for i in tk.code:
        w = tk.word(i)
        if w == "QUALIFY":
            raise UnsupportedSql("QUALIFY", "filter on the window function in an outer query instead")
        if w in ("PIVOT", "UNPIVOT") and tk.punct(tk.next(i), "("):
            raise UnsupportedSql(w)
        if w == "IGNORE" and tk.word(tk.next(i)) == "NULLS":
            raise UnsupportedSql("IGNORE NULLS in window functions")
        if w in ("PLPYTHONU", "PLPYTHON3U") and tk.word(tk.prev(i)) == "LANGUAGE":
            raise UnsupportedSql("Python UDFs (LANGUAGE plpythonu)")
        if tk.punct(i, "["):
            before = tk.prev(i)
            if before is not None and tk.t[before].kind in (WORD, QIDENT) and tk.word(before) != "ARRAY" \
                    or tk.punct(before, ")") or tk.punct(before, "]"):
                raise UnsupportedSql("SUPER navigation (subscripts like c.items[0])")


def _is_call(tk: Tokens, i: int) -> bool:
    """Token i is a function name followed by `(` and not qualified (`x.len(...)` is not ours)."""
    return tk.punct(tk.next(i), "(") and not tk.punct(tk.prev(i), ".")


def ddl_clauses(tk: Tokens) -> None:
    """Strip distribution/sort/compression/backup clauses and rewrite IDENTITY and LIKE
    inside CREATE TABLE, CREATE MATERIALIZED VIEW and ALTER TABLE statements."""
    for i in tk.code:
        w = tk.word(i)
        if w not in ("CREATE", "ALTER"):
            continue
        j = tk.next(i)
        while tk.word(j) in ("TEMP", "TEMPORARY", "LOCAL", "GLOBAL", "MATERIALIZED"):
            j = tk.next(j)
        if tk.word(j) not in ("TABLE", "VIEW") or (tk.word(j) == "VIEW" and tk.word(tk.prev(j)) != "MATERIALIZED"):
            continue
        _strip_ddl_region(tk, j, tk.statement_end(i))


def _strip_ddl_region(tk: Tokens, start: int, end: int) -> None:
    depth = 0
    for i in tk.code:
        if i <= start or i >= end:
            continue
        t = tk.t[i]
        if t.kind == PUNCT and t.text == "(":
            depth += 1
            if tk.word(tk.next(i)) == "LIKE":
                _like(tk, i)
        elif t.kind == PUNCT and t.text == ")":
            depth -= 1
        if depth == 0 and tk.word(i) == "AS":
            return  # CTAS / materialized view: the query is not DDL
        w = tk.word(i)
        nxt = tk.next(i)
        if w in ("ENCODE", "DISTSTYLE") and nxt is not None and tk.t[nxt].kind == WORD:
            tk.replace(i, nxt + 1, "")
        elif w in ("DISTKEY", "SORTKEY"):
            if tk.punct(nxt, "("):
                tk.replace(i, matching_paren(tk.t, nxt) + 1, "")
            elif tk.word(nxt) in ("AUTO", "NONE"):
                tk.replace(i, nxt + 1, "")
            else:
                tk.replace(i, i + 1, "")  # column-level DISTKEY / SORTKEY
        elif w in ("COMPOUND", "INTERLEAVED") and tk.word(nxt) == "SORTKEY":
            tk.replace(i, i + 1, "")
        elif w == "BACKUP" and tk.word(nxt) in ("YES", "NO"):
            tk.replace(i, nxt + 1, "")
        elif w == "AUTO" and tk.word(nxt) == "REFRESH":
            tk.replace(i, tk.next(nxt) + 1, "")  # type: ignore[operator]
        elif w == "IDENTITY" and tk.punct(nxt, "(") and tk.word(tk.next(nxt)) != "START":
            close = matching_paren(tk.t, nxt)
            args = split_args(tk.t, nxt, close)
            if len(args) != 2:
                raise UnsupportedSql("IDENTITY without (seed, step)")
            spec = f"(START WITH {args[0]} INCREMENT BY {args[1]})"
            if tk.word(tk.prev(i)) == "AS":  # GENERATED BY DEFAULT AS IDENTITY(s, i)
                tk.replace(nxt, close + 1, spec)
            else:
                tk.replace(i, close + 1, "GENERATED BY DEFAULT AS IDENTITY " + spec)


def _like(tk: Tokens, open_i: int) -> None:
    """`(LIKE t [INCLUDING DEFAULTS])` → also copy identity: PG's LIKE copies neither by default."""
    close = matching_paren(tk.t, open_i)
    words = [tk.word(k) for k in tk.code if open_i < k < close]
    if "EXCLUDING" in words or "IDENTITY" in words:
        return
    inner = tk.text(open_i + 1, close).rstrip()
    if "INCLUDING" not in words:
        inner += " INCLUDING DEFAULTS"
    tk.replace(open_i, close + 1, f"({inner} INCLUDING IDENTITY)")


def temp_tables(tk: Tokens) -> None:
    """`#stage` → `"#stage"`; CREATE TABLE #x / SELECT ... INTO #x create a temporary table."""
    operand_kinds = (NUMBER, STRING, QIDENT, PARAM)
    for i in tk.code:
        t = tk.t[i]
        if not (t.kind == OP and t.text == "#" and i + 1 < len(tk.t) and tk.t[i + 1].kind == WORD):
            continue
        before = tk.prev(i)
        if before is not None and (tk.t[before].kind in operand_kinds or tk.punct(before, ")")
                                   or (tk.t[before].kind == WORD and tk.word(before) not in _BEFORE_TABLE)):
            continue  # `a # b`: bitwise XOR
        name = f'"#{tk.t[i + 1].text.lower()}"'
        b_word = tk.word(before)
        if b_word == "TABLE":
            creator = tk.prev(before)  # type: ignore[arg-type]
            if tk.word(creator) == "CREATE":
                tk.replace(before, before + 1, "TEMP TABLE")  # type: ignore[operator]
        elif b_word == "EXISTS" and tk.word(tk.prev(before, 3)) == "TABLE" and tk.word(tk.prev(before, 4)) == "CREATE":
            tk.replace(tk.prev(before, 3), tk.prev(before, 3) + 1, "TEMP TABLE")  # type: ignore[arg-type,operator]
        elif b_word == "INTO" and tk.word(tk.prev(before)) not in ("INSERT", "MERGE"):  # type: ignore[arg-type]
            name = "TEMP " + name
        tk.replace(i, i + 2, name)


_BEFORE_TABLE = {"TABLE", "FROM", "JOIN", "INTO", "UPDATE", "USING", "EXISTS", "TRUNCATE", "ANALYZE", "LIKE",
                 "LOCK", "TABLES", "ON", "TO", "AS", "SELECT", "WHERE", "AND", "OR", "BY", "VACUUM", "DESCRIBE"}


def types(tk: Tokens) -> None:
    """VARCHAR(MAX) and friends, NVARCHAR, and VARBYTE(n) (the varbyte domain takes no length)."""
    for i in tk.code:
        w = tk.word(i)
        nxt = tk.next(i)
        if w in _CHAR_TYPES and tk.punct(nxt, "(") and tk.word(tk.next(i, 2)) == "MAX" \
                and tk.punct(tk.next(i, 3), ")"):
            tk.replace(nxt, tk.next(i, 3) + 1, f"({_CHAR_TYPES[w]})")  # type: ignore[arg-type,operator]
        elif w == "NVARCHAR":
            tk.replace(i, i + 1, "VARCHAR")
        elif w in _BYTE_TYPES or (w == "BINARY" and tk.word(nxt) == "VARYING"):
            last = nxt if w == "BINARY" else i
            after = tk.next(last)  # type: ignore[arg-type]
            if tk.punct(after, "("):
                last = matching_paren(tk.t, after)  # type: ignore[arg-type]
            tk.replace(i, last + 1, "varbyte")  # type: ignore[operator]


def functions(tk: Tokens) -> None:
    """Function and keyword rewrites that keep Redshift's meaning."""
    for i in tk.code:
        w = tk.word(i)
        if not w:
            continue
        nxt = tk.next(i)
        if w == "SYSDATE" and not tk.punct(nxt, "(") and not tk.punct(tk.prev(i), "."):
            tk.replace(i, i + 1, "LOCALTIMESTAMP")  # transaction start, session time zone, no tz
        elif w == "APPROXIMATE" and tk.word(nxt) in ("COUNT", "PERCENTILE_DISC"):
            tk.replace(i, nxt, "")  # type: ignore[arg-type]
        elif w == "MINUS" and (tk.word(nxt) in ("SELECT", "ALL", "DISTINCT") or tk.punct(nxt, "(")):
            tk.replace(i, i + 1, "EXCEPT")  # Redshift's synonym; PG has no MINUS
        elif w == "RESPECT" and tk.word(nxt) == "NULLS":
            tk.replace(i, nxt + 1, "")  # type: ignore[operator]  # the default
        elif w in _RENAMED_CALLS and _is_call(tk, i):
            tk.replace(i, i + 1, _RENAMED_CALLS[w])
        elif w in _DATE_FUNCS and _is_call(tk, i):
            _date_function(tk, i, w)
        elif w in ("NVL2", "DECODE", "CONVERT") and _is_call(tk, i):
            close = matching_paren(tk.t, nxt)  # type: ignore[arg-type]
            args = split_args(tk.t, nxt, close)  # type: ignore[arg-type]
            text = _case_function(w, args)
            if text is not None:
                tk.replace(i, close + 1, text)
        elif w == "LISTAGG" and _is_call(tk, i):
            _listagg(tk, i)


def _date_function(tk: Tokens, i: int, w: str) -> None:
    """Quote and normalize the date part: DATEADD(d, ...) → dateadd('day', ...)."""
    part = tk.next(i, 2)
    if part is None or not tk.punct(tk.next(part), ","):
        if w == "DATE_PART":
            tk.replace(i, i + 1, "datepart")
        return
    raw = tk.t[part].text
    key = raw.strip("'\"").lower() if tk.t[part].kind in (WORD, STRING, QIDENT) else None
    canonical = PART_ALIASES.get(key) if key else None
    if tk.t[part].kind == WORD and canonical is None:
        if w == "DATE_TRUNC":
            return  # PostgreSQL's date_trunc(text, ...) also takes a column holding the part
        raise UnsupportedSql(f"date part {raw!r} in {w}")
    if canonical and w == "DATE_TRUNC" and canonical in ("dow", "doy", "epoch"):
        raise UnsupportedSql(f"date part {raw!r} in {w}")
    if w == "DATE_PART":
        tk.replace(i, i + 1, "datepart")
    if canonical:
        tk.replace(part, part + 1, f"'{canonical}'")


def _case_function(w: str, args: list[str]) -> str | None:
    if w == "NVL2":
        if len(args) != 3:
            raise UnsupportedSql("NVL2 with other than 3 arguments")
        return f"(CASE WHEN ({args[0]}) IS NOT NULL THEN ({args[1]}) ELSE ({args[2]}) END)"
    if w == "CONVERT":  # Redshift CONVERT(type, expr); PG's 3-argument convert() is left alone
        return f"CAST(({args[1]}) AS {args[0]})" if len(args) == 2 else None
    if len(args) < 3:
        return None  # PostgreSQL's own decode(text, format)
    # DECODE matches NULL with NULL, hence IS NOT DISTINCT FROM rather than CASE x WHEN.
    expr, rest = args[0], args[1:]
    whens = " ".join(f"WHEN ({expr}) IS NOT DISTINCT FROM ({rest[k]}) THEN ({rest[k + 1]})"
                     for k in range(0, len(rest) - 1, 2))
    default = f" ELSE ({rest[-1]})" if len(rest) % 2 else ""
    return f"(CASE {whens}{default} END)"


def _listagg(tk: Tokens, i: int) -> None:
    """LISTAGG([DISTINCT] x [, d]) [WITHIN GROUP (ORDER BY ...)] [OVER (...)]."""
    open_i = tk.next(i)
    close = matching_paren(tk.t, open_i)  # type: ignore[arg-type]
    first = tk.next(open_i)  # type: ignore[arg-type]
    distinct = tk.word(first) == "DISTINCT"
    args = split_args(tk.t, first if distinct else open_i, close)  # type: ignore[arg-type]
    if distinct:
        args[0] = args[0].strip()
    expr, delim = args[0], (args[1] if len(args) > 1 else "''")
    end, order = close, ""
    if tk.word(tk.next(close)) == "WITHIN" and tk.word(tk.next(close, 2)) == "GROUP":
        g_open = tk.next(close, 3)
        end = matching_paren(tk.t, g_open)  # type: ignore[arg-type]
        inner = tk.text(tk.next(g_open) or end, end).strip()  # type: ignore[arg-type]
        if inner.upper().startswith("ORDER"):
            order = inner
    if tk.word(tk.next(end)) == "OVER":
        if distinct:
            raise UnsupportedSql("LISTAGG(DISTINCT ...) as a window function")
        w_open = tk.next(end, 2)
        w_close = matching_paren(tk.t, w_open)  # type: ignore[arg-type]
        window = tk.text(w_open + 1, w_close).strip()  # type: ignore[operator]
        frame = f" {order} ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING" if order else ""
        tk.replace(i, w_close + 1, f"string_agg(({expr})::text, {delim}) OVER ({window}{frame})")
    elif distinct:
        # PG's DISTINCT aggregates can only ORDER BY their argument; aggregate in the requested
        # order, then keep each value's first occurrence.
        tk.replace(i, end + 1, f"array_to_string(rs_compat.array_distinct(array_agg({expr} {order})), {delim})")
    else:
        tk.replace(i, end + 1, f"string_agg(({expr})::text, {delim} {order})".replace(" )", ")"))


def top(tk: Tokens) -> None:
    """SELECT [DISTINCT|ALL] TOP n ... → SELECT ... LIMIT n (end of that query level)."""
    for i in tk.code:
        if tk.word(i) != "SELECT":
            continue
        j = tk.next(i)
        if tk.word(j) in ("DISTINCT", "ALL"):
            j = tk.next(j)  # type: ignore[arg-type]
        if tk.word(j) != "TOP":
            continue
        n = tk.next(j)  # type: ignore[arg-type]
        if n is None or tk.t[n].kind not in (NUMBER, PARAM) and not tk.punct(n, "("):
            continue
        n_end = matching_paren(tk.t, n) if tk.punct(n, "(") else n
        end = tk.statement_end(i)
        level = [tk.word(k) for k in tk.code if i < k < end and _depth(tk, i, k) == 0]
        if any(w in ("UNION", "INTERSECT", "EXCEPT", "MINUS", "LIMIT") for w in level):
            raise UnsupportedSql("TOP combined with UNION/INTERSECT/EXCEPT or LIMIT")
        tk.replace(j, n_end + 1, "")  # type: ignore[arg-type]
        last = max(k for k in tk.code if k < end)  # before any trailing comment
        tk.replace(last + 1, last + 1, f" LIMIT {tk.text(n, n_end + 1)}")
        return  # one per pass: positions move


def _depth(tk: Tokens, start: int, k: int) -> int:
    depth = 0
    for j in range(start, k):
        if tk.t[j].kind == PUNCT:
            depth += tk.t[j].text in "([" and 1 or (-1 if tk.t[j].text in ")]" else 0)
    return depth


def routines(tk: Tokens) -> None:
    """CREATE PROCEDURE/FUNCTION: strip NONATOMIC and SECURITY DEFINER (PG forbids COMMIT in
    SECURITY DEFINER procedures; devstack runs as a superuser anyway); trailing OUT parameters
    of procedures become INOUT ... DEFAULT NULL, because Redshift's CALL omits OUT arguments."""
    for i in tk.code:
        w = tk.word(i)
        if w == "NONATOMIC":
            tk.replace(i, i + 1, "")
        elif w == "SECURITY" and tk.word(tk.next(i)) == "DEFINER":
            tk.replace(i, tk.next(i) + 1, "")  # type: ignore[operator]
        elif w == "PROCEDURE" and tk.word(tk.prev(i)) in ("CREATE", "REPLACE"):
            _out_params(tk, i)


def _out_params(tk: Tokens, i: int) -> None:
    open_i = next((k for k in tk.code if k > i and tk.punct(k, "(")), None)
    if open_i is None:
        return
    close = matching_paren(tk.t, open_i)
    params: list[tuple[int, int]] = []
    depth, start = 0, open_i + 1
    for k in range(open_i + 1, close + 1):
        t = tk.t[k]
        if t.kind == PUNCT and t.text == "(":
            depth += 1
        elif t.kind == PUNCT and t.text == ")" and k != close:
            depth -= 1
        elif (t.kind == PUNCT and t.text == "," and depth == 0) or k == close:
            params.append((start, k))
            start = k + 1
    for a, b in reversed(params):
        outs = [k for k in range(a, b) if tk.t[k].is_word("OUT")]
        if not outs:
            break
        tk.replace(outs[0], outs[0] + 1, "INOUT")
        tk.replace(b, b, " DEFAULT NULL")


RULES: list[Rule] = [ddl_clauses, temp_tables, types, functions, top, routines]
