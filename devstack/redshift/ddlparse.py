"""Reading Redshift DDL for what PostgreSQL cannot keep (pure: text in, dataclasses out).

The rewriter strips ENCODE / DISTSTYLE / DISTKEY / SORTKEY / BACKUP, turns late-binding views
into ordinary ones and OUT parameters into INOUT ones, so PostgreSQL's catalog alone cannot
answer SHOW TABLE / SHOW VIEW / SHOW PROCEDURE the way Redshift does. `classify(sql)` reads
the original statement for those attributes; ddlcatalog.py stores them next to the objects.

Anything this module does not recognise gives None: the statement then runs as usual.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from devstack.redshift.ddltokens import CodeTokens, Name, ident, qualified_name
from devstack.redshift.sqltokens import DOLLAR, OP, STRING, WORD, Token

_FIRST_WORD = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(SHOW|CREATE|ALTER|DROP)\b", re.IGNORECASE | re.DOTALL)
_MULTIWORD_TYPES = {("CHARACTER", "VARYING"), ("DOUBLE", "PRECISION"), ("TIMESTAMP", "WITH"),
                    ("TIMESTAMP", "WITHOUT"), ("TIME", "WITH"), ("TIME", "WITHOUT"), ("BIT", "VARYING"),
                    ("NATIONAL", "CHARACTER"), ("BINARY", "VARYING")}
_MODES = ("IN", "OUT", "INOUT")


@dataclass
class ColumnAttrs:
    encoding: str | None = None
    distkey: bool = False
    sortkey: bool = False


@dataclass
class CreateTable:
    name: Name
    temporary: bool = False
    if_not_exists: bool = False
    like: Name | None = None
    columns: dict[str, ColumnAttrs] = field(default_factory=dict)
    backup: bool = True
    diststyle: str | None = None  # AUTO | EVEN | KEY | ALL; None: not given
    distkey: str | None = None
    sortstyle: str | None = None  # COMPOUND | INTERLEAVED | AUTO; None: not given
    sortkey: tuple[str, ...] = ()

    @property
    def has_attributes(self) -> bool:
        return (not self.backup or self.diststyle is not None or self.distkey is not None
                or self.sortstyle is not None or any(c.encoding for c in self.columns.values()))


@dataclass
class AlterTable:
    """Redshift-only ALTER TABLE clauses: ("encode", column, encoding), ("dist", style, column),
    ("sort", style, columns), ("encode_auto",)."""

    name: Name
    changes: list[tuple[object, ...]]


@dataclass
class CreateView:
    name: Name
    statement: str  # the statement as sent, without a trailing `;`
    query: str  # the text after AS (without WITH NO SCHEMA BINDING)
    or_replace: bool = False
    materialized: bool = False
    late_binding: bool = False
    autorefresh: bool = False


@dataclass(frozen=True)
class Param:
    name: str | None
    mode: str  # IN | OUT | INOUT
    type: str


@dataclass
class CreateProcedure:
    name: Name
    params: list[Param]
    body: str | None
    nonatomic: bool = False
    security_definer: bool = False


@dataclass
class DropProcedure:
    """DROP PROCEDURE, whose argument list on Redshift leaves out OUT parameters."""

    name: Name
    args: list[str] | None
    if_exists: bool = False
    tail: str = ""  # CASCADE | RESTRICT


@dataclass
class Show:
    kind: str  # TABLE | VIEW | PROCEDURE
    name: Name
    args: list[str] | None = None  # SHOW PROCEDURE's argument list, None when not given


Statement = CreateTable | AlterTable | CreateView | CreateProcedure | DropProcedure | Show


def classify(sql: str) -> Statement | None:
    """The Redshift DDL statement `sql` is, if it is one the emulator keeps extra catalog for."""
    found = _FIRST_WORD.match(sql)
    if not found:
        return None
    c = CodeTokens(sql)
    first = found.group(1).upper()
    if first == "SHOW":
        return _show(c)
    if first == "DROP":
        return _drop_procedure(c) if c.word(1) == "PROCEDURE" else None
    if first == "ALTER":
        return _alter_table(c) if c.word(1) == "TABLE" else None
    k = 1
    or_replace = c.word(1) == "OR" and c.word(2) == "REPLACE"
    if or_replace:
        k = 3
    temporary = False
    while c.word(k) in ("LOCAL", "GLOBAL", "TEMP", "TEMPORARY"):
        temporary = temporary or c.word(k) in ("TEMP", "TEMPORARY")
        k += 1
    kind = c.word(k)
    if kind == "TABLE" and not or_replace:
        return _create_table(c, k + 1, temporary)
    if kind == "VIEW" or (kind == "MATERIALIZED" and c.word(k + 1) == "VIEW"):
        return None if temporary else _create_view(sql, c, k, or_replace)
    if kind == "PROCEDURE":
        return _create_procedure(c, k + 1)
    return None


# --- SHOW ---------------------------------------------------------------------------------

def _show(c: CodeTokens) -> Show | None:
    kind = c.word(1)
    if kind not in ("TABLE", "VIEW", "PROCEDURE"):
        return None
    name, k = qualified_name(c, 2)
    if name is None:
        return None
    args = None
    if kind == "PROCEDURE":
        args, k = _procedure_args(c, k)
    return Show(kind, name, args) if k >= len(c) else None


def _procedure_args(c: CodeTokens, k: int) -> tuple[list[str] | None, int]:
    if not c.punct(k, "("):
        return None, k
    end = c.close(k)
    return [c.text(a, b).strip() for a, b in c.split(k + 1, end)], end + 1


def _drop_procedure(c: CodeTokens) -> DropProcedure | None:
    k = 2
    if_exists = c.word(k) == "IF" and c.word(k + 1) == "EXISTS"
    name, k = qualified_name(c, k + 2 if if_exists else k)
    if name is None:
        return None
    args, k = _procedure_args(c, k)
    tail = c.word(k) if c.word(k) in ("CASCADE", "RESTRICT") else ""
    return DropProcedure(name, args, if_exists, tail) if k + (1 if tail else 0) >= len(c) else None


# --- CREATE TABLE -------------------------------------------------------------------------

def _create_table(c: CodeTokens, k: int, temporary: bool) -> CreateTable | None:
    if_not_exists = c.word(k) == "IF" and c.word(k + 1) == "NOT" and c.word(k + 2) == "EXISTS"
    if if_not_exists:
        k += 3
    t = c.tok(k)
    if t is not None and t.kind == OP and t.text == "#":  # #name: a temporary table
        return CreateTable(Name(None, "#" + (ident(c.tok(k + 1)) or "")), temporary=True)
    name, k = qualified_name(c, k)
    if name is None:
        return None
    table = CreateTable(name, temporary=temporary, if_not_exists=if_not_exists)
    if c.punct(k, "("):
        end = c.close(k)
        for a, b in c.split(k + 1, end):
            _element(c, a, b, table)
        k = end + 1
    _table_attributes(c, k, table)
    column_dist = [n for n, col in table.columns.items() if col.distkey]
    if column_dist and table.distkey is None:
        table.distkey = column_dist[0]
    if table.distkey is not None and table.diststyle is None:
        table.diststyle = "KEY"
    column_sort = tuple(n for n, col in table.columns.items() if col.sortkey)
    if column_sort and not table.sortkey:
        table.sortstyle, table.sortkey = "COMPOUND", column_sort
    return table


def _element(c: CodeTokens, a: int, b: int, table: CreateTable) -> None:
    first = c.word(a)
    if first in ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK"):
        return
    if first == "LIKE":
        table.like, _ = qualified_name(c, a + 1)
        return
    column = ident(c.tok(a))
    if column is None:
        return
    attrs = ColumnAttrs()
    j = a + 1
    while j < b:
        w = c.word(j)
        if c.punct(j, "("):
            j = c.close(j) + 1
            continue
        if w == "ENCODE" and c.word(j + 1):
            attrs.encoding = c.word(j + 1).lower()
            j += 1
        elif w == "DISTKEY":
            attrs.distkey = True
        elif w == "SORTKEY":
            attrs.sortkey = True
        j += 1
    table.columns[column] = attrs


def _idents(c: CodeTokens, open_k: int) -> tuple[tuple[str, ...], int]:
    """Names in the parenthesised list at open_k, and the index after its `)`."""
    end = c.close(open_k)
    names = tuple(n for a, b in c.split(open_k + 1, end) if (n := ident(c.tok(a))) is not None)
    return names, end + 1


def _table_attributes(c: CodeTokens, k: int, table: CreateTable) -> None:
    while k < len(c):
        w = c.word(k)
        if w == "AS":
            return  # CREATE TABLE ... AS query
        if w == "BACKUP":
            table.backup = c.word(k + 1) != "NO"
            k += 2
        elif w == "DISTSTYLE" and c.word(k + 1):
            table.diststyle = c.word(k + 1)
            k += 2
        elif w == "DISTKEY" and c.punct(k + 1, "("):
            names, k = _idents(c, k + 1)
            table.distkey = names[0] if names else None
        elif w in ("COMPOUND", "INTERLEAVED") and c.word(k + 1) == "SORTKEY":
            table.sortstyle = w
            table.sortkey, k = _idents(c, k + 2) if c.punct(k + 2, "(") else ((), k + 2)
        elif w == "SORTKEY" and c.punct(k + 1, "("):
            table.sortstyle = "COMPOUND"
            table.sortkey, k = _idents(c, k + 1)
        elif w == "SORTKEY" and c.word(k + 1) in ("AUTO", "NONE"):
            table.sortstyle, table.sortkey = "AUTO", ()
            k += 2
        else:
            k += 1


# --- ALTER TABLE ---------------------------------------------------------------------------

def _alter_table(c: CodeTokens) -> AlterTable | None:
    k = 2
    if c.word(k) == "IF" and c.word(k + 1) == "EXISTS":
        k += 2
    name, k = qualified_name(c, k)
    if name is None:
        return None
    changes: list[tuple[object, ...]] = []
    for a, b in c.split(k, len(c)):
        change = _alter_clause(c, a, b)
        if change is not None:
            changes.append(change)
    return AlterTable(name, changes) if changes else None


def _alter_clause(c: CodeTokens, a: int, b: int) -> tuple[object, ...] | None:
    w, nxt = c.word(a), c.word(a + 1)
    if w == "ADD" and nxt not in ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK"):
        j = a + 2 if nxt == "COLUMN" else a + 1
        column = ident(c.tok(j))
        encodings = [c.word(x + 1).lower() for x in range(j, b) if c.word(x) == "ENCODE" and c.word(x + 1)]
        return ("encode", column, encodings[0]) if column and encodings else None
    if w != "ALTER":
        return None
    if nxt == "COLUMN" and c.word(a + 3) == "ENCODE" and c.word(a + 4):
        column = ident(c.tok(a + 2))
        return ("encode", column, c.word(a + 4).lower()) if column else None
    if nxt == "DISTKEY":
        return ("dist", "KEY", ident(c.tok(a + 2)))
    if nxt == "DISTSTYLE" and c.word(a + 2):
        column = ident(c.tok(a + 4)) if c.word(a + 3) == "DISTKEY" else None
        return ("dist", c.word(a + 2), column)
    if nxt in ("COMPOUND", "INTERLEAVED", "SORTKEY"):
        k = a + 2 if nxt != "SORTKEY" else a + 1
        if c.word(k) != "SORTKEY":
            return None
        if c.word(k + 1) in ("AUTO", "NONE"):
            return ("sort", "AUTO", ())
        if c.punct(k + 1, "("):
            return ("sort", "INTERLEAVED" if nxt == "INTERLEAVED" else "COMPOUND", _idents(c, k + 1)[0])
    if nxt == "ENCODE" and c.word(a + 2) == "AUTO":
        return ("encode_auto",)
    return None


# --- CREATE VIEW / MATERIALIZED VIEW -----------------------------------------------------------

def _create_view(sql: str, c: CodeTokens, k: int, or_replace: bool) -> CreateView | None:
    materialized = c.word(k) == "MATERIALIZED"
    name, k = qualified_name(c, k + (2 if materialized else 1))
    if name is None:
        return None
    if c.punct(k, "("):
        k = c.close(k) + 1
    autorefresh = False
    while k < len(c) and c.word(k) != "AS":
        if c.punct(k, "("):
            k = c.close(k)
        elif c.word(k) == "REFRESH" and c.word(k - 1) == "AUTO":
            autorefresh = c.word(k + 1) == "YES"
        k += 1
    if k >= len(c):
        return None
    end = len(c)
    late = [c.word(end - n) for n in (4, 3, 2, 1)] == ["WITH", "NO", "SCHEMA", "BINDING"]
    if late:
        end -= 4
    statement = c.text(0, len(c)).strip()
    return CreateView(name, statement, c.text(k + 1, end).strip(), or_replace, materialized, late, autorefresh)


# --- CREATE PROCEDURE ---------------------------------------------------------------------

def _create_procedure(c: CodeTokens, k: int) -> CreateProcedure | None:
    name, k = qualified_name(c, k)
    if name is None or not c.punct(k, "("):
        return None
    end = c.close(k)
    params = [_param(c, a, b) for a, b in c.split(k + 1, end)]
    words = {c.word(j) for j in range(end + 1, len(c))}
    body = None
    for j in range(end + 1, len(c)):
        t = c.tok(j)
        if t is not None and c.word(j - 1) == "AS" and t.kind in (DOLLAR, STRING):
            body = _dollar_body(t.text) if t.kind == DOLLAR else t.text[1:-1].replace("''", "'")
            break
    definer = any(c.word(j) == "SECURITY" and c.word(j + 1) == "DEFINER" for j in range(end + 1, len(c)))
    return CreateProcedure(name, params, body, "NONATOMIC" in words, definer)


def _dollar_body(text: str) -> str:
    tag = re.match(r"\$[^$]*\$", text).group(0)  # type: ignore[union-attr]
    return text[len(tag):len(text) - len(tag)] if len(text) >= 2 * len(tag) else text[len(tag):]


def _param(c: CodeTokens, a: int, b: int) -> Param:
    """[argname] [argmode] argtype (Redshift) or [argmode] [argname] argtype (PostgreSQL)."""
    mode, name = "IN", None
    b = next((j for j in range(a, b) if c.word(j) == "DEFAULT" or (c.tok(j) or Token(WORD, "")).text == "="), b)
    if c.word(a) in _MODES:
        mode, a = c.word(a), a + 1
    if b - a >= 2 and ident(c.tok(a)) is not None and (c.word(a), c.word(a + 1)) not in _MULTIWORD_TYPES \
            and not c.punct(a + 1, "(") and not c.punct(a + 1, "[") and not c.punct(a + 1, "."):
        if c.word(a + 1) in _MODES:
            name, mode, a = ident(c.tok(a)), c.word(a + 1), a + 2
        elif ident(c.tok(a + 1)) is not None:
            name, a = ident(c.tok(a)), a + 1
    return Param(name, mode, c.text(a, b).strip())


def split_type_words(arg: str) -> list[str]:
    """SHOW PROCEDURE's argument text as candidate type spellings: the whole text, then
    without a leading name and/or mode (`f1 integer`, `INOUT f2 varchar`, `f2 INOUT varchar`)."""
    c = CodeTokens(arg)
    candidates = [arg.strip()]
    for skip in (1, 2):
        if len(c) > skip:
            candidates.append(c.text(skip, len(c)).strip())
    return candidates
