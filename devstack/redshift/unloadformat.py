"""UNLOAD's value formats: PostgreSQL's output turned into Redshift's, block or row at a time.

Block at a time (the usual paths): PostgreSQL's COPY text format differs from Redshift's TEXT
only in its backslash escapes, so `pg_text_decoder` turns a whole block back into raw values
(keeping a backslash where Redshift's ESCAPE wants one) with one regex pass, and none at all
when the block holds no backslash. Row at a time (what PostgreSQL cannot express: FIXEDWIDTH,
ADDQUOTES without CSV, unusual delimiters or NULL AS strings): rows of PostgreSQL's text format
are parsed and each value formatted here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devstack.redshift.contracts import RedshiftError
from devstack.redshift.unloadopts import UnloadSpec

INT_OIDS = {20: "int64", 21: "int16", 23: "int32"}
FLOAT_OIDS = {700: "float32", 701: "float64"}
NUMERIC_OID, BOOL_OID, DATE_OID, TS_OID, TSTZ_OID, BPCHAR_OID, VARCHAR_OID = 1700, 16, 1082, 1114, 1184, 1042, 1043
JSON_OIDS = {114, 3802}  # json, jsonb (devstack's SUPER): nested JSON, as Redshift writes SUPER
TYPE_NAMES = {16: "boolean", 20: "bigint", 21: "smallint", 23: "integer", 700: "real", 701: "double precision",
              1700: "numeric", 1043: "character varying", 1042: "character", 25: "character varying",
              1082: "date", 1114: "timestamp without time zone", 1184: "timestamp with time zone",
              1083: "time without time zone", 1266: "time with time zone", 3802: "super", 114: "super"}
_PG_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "b": "\b", "f": "\f", "v": "\v"}
_PG_ESCAPE_SEQUENCE = re.compile(rb"\\(.)", re.S)
# Characters PostgreSQL refuses as a text-format delimiter (they would read as escapes or data).
_PG_TEXT_BAD_DELIMITERS = set("\\.abcdefghijklmnopqrstuvwxyz0123456789\r\n")


@dataclass(frozen=True)
class OutColumn:
    name: str
    oid: int
    precision: int | None = None   # numeric(p, s)
    scale: int | None = None
    length: int | None = None      # varchar(n) / char(n)


# --- blocks ----------------------------------------------------------------------------------

def pg_can_write_text(spec: UnloadSpec) -> bool:
    """Can PostgreSQL's text format (then `pg_text_decoder`) produce this TEXT output exactly?"""
    d, null = spec.effective_delimiter, spec.null_as or ""
    return (spec.fixed_width is None and not spec.add_quotes and d.isascii() and d not in _PG_TEXT_BAD_DELIMITERS
            and "\r" not in null and "\n" not in null and ("\\" not in null or null == "\\N"))


def pg_can_write_csv(spec: UnloadSpec) -> bool:
    """Can PostgreSQL's CSV format produce this CSV output exactly? (PostgreSQL's quoting is
    Redshift's: fields holding the delimiter, a quote, CR or LF are quoted, quotes doubled.)"""
    d, null = spec.effective_delimiter, spec.null_as or ""
    return d.isascii() and d not in '"\r\n' and not any(c in null for c in '"\r\n')


def pg_text_decoder(escape: str = "") -> Callable[[Any], bytes]:
    """PostgreSQL's COPY text format → the values as they are, NULL strings as written; the
    characters in `escape` get a backslash in front (Redshift's ESCAPE). PostgreSQL writes a
    backslash only to start an escape (`\\\\`, `\\n`, `\\t`, `\\<delimiter>`, ...), so one left-to-right
    pass over a whole block is exact. A `\\N` can only be the NULL string itself: it stays."""
    table: dict[int, bytes] = {}
    for code in range(256):
        char = bytes([code])
        value = _PG_UNESCAPE.get(chr(code), chr(code)).encode("latin-1") if code < 128 else char
        table[code] = b"\\" + value if value.decode("latin-1") in escape else value
    table[ord("N")] = b"\\N"

    def decode(block: Any) -> bytes:
        if b"\\" not in block:
            return block  # type: ignore[no-any-return]
        return _PG_ESCAPE_SEQUENCE.sub(lambda m: table[m.group(1)[0]], block)

    return decode


def redshift_text_escapes(spec: UnloadSpec) -> str:
    """What Redshift's ESCAPE puts a backslash before (without ADDQUOTES, which is row at a time)."""
    return "\\\n\r" + spec.effective_delimiter if spec.escape else ""


# --- rows ------------------------------------------------------------------------------------

def parse_pg_text_line(line: bytes) -> list[str | None]:
    """One row of PostgreSQL's COPY text format: tab-separated, `\\N` for NULL, backslash escapes."""
    text = line.decode("utf-8").rstrip("\n")
    return [None if f == "\\N" else _unescape(f) if "\\" in f else f for f in text.split("\t")]


def _unescape(field: str) -> str:
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            out.append(_PG_UNESCAPE.get(field[i + 1], field[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def quote_csv(value: str, delimiter: str, null: str, always: bool = False) -> str:
    # PostgreSQL's rule (the block path's): also quote a value that reads back as the NULL string.
    if always or value == null or any(c in value for c in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def format_row(values: list[str | None], spec: UnloadSpec) -> str:
    """One output line (without its newline) of TEXT, CSV or FIXEDWIDTH."""
    null = spec.null_as if spec.null_as is not None else ""
    if spec.fixed_width is not None:
        return "".join(_fixed(v, null, col.label, col.width) for v, col in zip(values, spec.fixed_width))
    d = spec.effective_delimiter
    if spec.fmt == "CSV":
        return d.join(null if v is None else quote_csv(v, d, null, spec.add_quotes) for v in values)
    out = []
    for v in values:
        if v is None:
            out.append(null)
            continue
        if spec.escape:  # Redshift's ESCAPE: a backslash before \, the delimiter, LF, CR (and quotes with ADDQUOTES)
            v = v.replace("\\", "\\\\").replace(d, "\\" + d).replace("\n", "\\\n").replace("\r", "\\\r")
            if spec.add_quotes:
                v = v.replace('"', '\\"').replace("'", "\\'")
        out.append(f'"{v}"' if spec.add_quotes else v)
    return d.join(out)


def header_line(names: list[str], spec: UnloadSpec) -> str:
    d, null = spec.effective_delimiter, spec.null_as or ""
    return d.join(quote_csv(n, d, null) if spec.fmt == "CSV" else n for n in names)


def _fixed(value: str | None, null: str, label: str, width: int) -> str:
    text = null if value is None else value
    if len(text) > width:  # Redshift fails rather than truncate
        raise RedshiftError(f"ERROR: value of {len(text)} characters does not fit FIXEDWIDTH column "
                            f"'{label}' of width {width}")
    return text.ljust(width)


def json_key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def arrow_schema(columns: list[OutColumn]) -> Any:
    import pyarrow as pa

    def arrow_type(col: OutColumn) -> Any:
        if col.oid in INT_OIDS:
            return getattr(pa, INT_OIDS[col.oid])()
        if col.oid in FLOAT_OIDS:
            return getattr(pa, FLOAT_OIDS[col.oid])()
        if col.oid == NUMERIC_OID and col.precision and col.precision <= 38:
            return pa.decimal128(col.precision, col.scale or 0)
        return {BOOL_OID: pa.bool_(), DATE_OID: pa.date32(), TS_OID: pa.timestamp("us"),
                TSTZ_OID: pa.timestamp("us", tz="UTC")}.get(col.oid, pa.string())

    return pa.schema([pa.field(c.name, arrow_type(c)) for c in columns])


def schema_type(col: OutColumn) -> dict[str, Any]:
    """A column's type in a MANIFEST VERBOSE schema."""
    out: dict[str, Any] = {"base": TYPE_NAMES.get(col.oid, "character varying")}
    if col.oid == NUMERIC_OID and col.precision:
        out.update(precision=col.precision, scale=col.scale or 0)
    elif col.oid in (BPCHAR_OID, VARCHAR_OID) and col.length:
        out["max_length"] = col.length
    return out
