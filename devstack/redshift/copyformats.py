"""Record readers for COPY: one object's bytes → `Record`s (line number + field values).

Fields are strings as read, or None for a value that is NULL by construction (a JSON
null, a Parquet null, a missing JSON key). NULL AS / EMPTYASNULL / type checks happen
later, per column (copyconvert.py). A record that cannot even be split into fields
carries a `Fault` instead, so MAXERROR can skip it and the error names its line.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from dataclasses import dataclass
from typing import IO, Any

from devstack.redshift.contracts import RedshiftError
from devstack.redshift.copyopts import CopySpec

csv.field_size_limit(64 * 1024 * 1024)  # long values fail as "too long for the column", not as a parse error

_INVALID_UTF8 = re.compile("[\udc80-\udcff]")
JSON_CHUNK = 1 << 20


@dataclass(slots=True)
class Fault:
    code: int
    reason: str
    column: str = ""
    value: str = ""


@dataclass(slots=True)
class Record:
    line: int
    fields: list[str | None] | None
    raw: str = ""
    fault: Fault | None = None


def _text_lines(stream: IO[bytes], spec: CopySpec) -> Iterator[str]:
    text = io.TextIOWrapper(stream, encoding=spec.encoding, errors="surrogateescape", newline="")
    for _ in range(spec.ignore_header):
        if not text.readline():
            return
    yield from text


def fix_invalid_utf8(value: str, spec: CopySpec) -> str:
    """Invalid bytes (decoded as surrogates) → ACCEPTINVCHARS' character, or a load error."""
    if spec.accept_inv_chars is not None:
        return _INVALID_UTF8.sub(spec.accept_inv_chars, value)
    bad = _INVALID_UTF8.search(value)
    assert bad is not None
    raise FaultError(Fault(1220, f"String contains invalid or unsupported UTF8 codepoints. "
                                 f"Bad UTF8 hex sequence: {ord(bad.group()) - 0xDC00:02x} (error 4)"))


class FaultError(Exception):
    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.reason)
        self.fault = fault


class Quoted(str):
    """A CSV field that was written in quotes. `""` is an empty string, not an empty field
    (EMPTYASNULL and NULL AS '' only take two delimiters with nothing between them), and a
    quoted value never matches NULL AS: UNLOAD ... CSV writes NULL as an empty field and quotes
    an empty string or a value equal to the NULL AS string, so the two read back apart."""

    __slots__ = ()


def csv_records(stream: IO[bytes], spec: CopySpec) -> Iterator[Record]:
    delimiter, quote = spec.effective_delimiter, spec.quote
    null_marker = "\\N" if spec.null_as is None else spec.null_as
    consumed: list[str] = []  # the physical lines of the record being read (csv.reader does not read ahead)

    def lines() -> Iterator[str]:
        for text in _text_lines(stream, spec):
            consumed.append(text)
            yield text

    reader = csv.reader(lines(), delimiter=delimiter, quotechar=quote, doublequote=True, strict=False)
    line = spec.ignore_header
    try:
        for fields in reader:
            start, line = line + 1, reader.line_num + spec.ignore_header
            raw = "".join(consumed)
            consumed.clear()
            if not fields and spec.has("IGNOREBLANKLINES"):
                continue
            if quote in raw and any(f == "" or f == null_marker for f in fields):
                # Only then does it matter which fields were quoted (csv.reader does not say).
                fields = [Quoted(f) if quoted else f for f, quoted in zip(fields, _quoted(raw, delimiter, quote))]
            yield _checked(Record(start, fields or [""]), spec)  # type: ignore[arg-type]
    except csv.Error as exc:
        yield Record(line + 1, None, fault=Fault(1216, f"Invalid quote formatting for CSV: {exc}"))


def _quoted(raw: str, delimiter: str, quote: str) -> list[bool]:
    """Which fields of one CSV record (its raw text) start with a quote, read the way
    csv.reader(strict=False) reads them: a quote inside an unquoted field is a plain character,
    a doubled quote inside a quoted one is a quote, text after the closing quote joins the field."""
    rest_of_field = re.compile(f"[^{re.escape(delimiter)}\r\n]*")
    flags: list[bool] = []
    i, n = 0, len(raw)
    while True:
        quoted = raw.startswith(quote, i)
        flags.append(quoted)
        if quoted:  # to just past the closing quote; a quoted field may hold delimiters and newlines
            i += 1
            while (j := raw.find(quote, i)) >= 0 and raw.startswith(quote, j + 1):
                i = j + 2
            i = n if j < 0 else j + 1
        i = rest_of_field.match(raw, i).end()  # type: ignore[union-attr]
        if i >= n or raw[i] != delimiter:
            return flags
        i += 1


def text_records(stream: IO[bytes], spec: CopySpec) -> Iterator[Record]:
    delim = spec.effective_delimiter
    escape, remove_quotes = spec.has("ESCAPE"), spec.has("REMOVEQUOTES")
    line_no = spec.ignore_header
    pending, start = "", 0
    for raw in _text_lines(stream, spec):
        line_no += 1
        body = raw[:-1] if raw.endswith("\n") else raw
        if escape and _ends_with_escape(body) and raw.endswith("\n"):
            # An escaped newline continues the value on the next line.
            if not pending:
                start = line_no
            pending += body[:-1] + "\n"
            continue
        if pending:
            body, first = pending + body, start
            pending = ""
        else:
            first = line_no
        if not body and spec.has("IGNOREBLANKLINES"):
            continue
        if escape or remove_quotes:
            fields: list[str | None] = _split_slow(body, delim, escape, remove_quotes, spec.null_as)  # type: ignore[assignment]
        else:
            fields = body.split(delim)  # type: ignore[assignment]
        yield _checked(Record(first, fields, raw=body), spec)
    if pending:
        yield Record(start, None, raw=pending, fault=Fault(1214, "Delimiter not found: file ends inside an escaped newline"))


def _ends_with_escape(body: str) -> bool:
    n = len(body) - len(body.rstrip("\\"))
    return n % 2 == 1


def _split_slow(body: str, delim: str, escape: bool, remove_quotes: bool, null_as: str | None) -> list[str | None]:
    """Split one TEXT line honouring ESCAPE (backslash takes the next character literally)
    and REMOVEQUOTES (quotes around a value are dropped; delimiters inside them are kept)."""
    null_marker = "\\N" if null_as is None else null_as
    fields: list[str | None] = []
    cur: list[str] = []
    raw: list[str] = []
    quoted = False
    i, n = 0, len(body)
    while i <= n:
        c = body[i] if i < n else None
        if c is None or (c == delim and not quoted):
            raw_text = "".join(raw)
            fields.append(None if raw_text == null_marker else "".join(cur))
            cur, raw = [], []
            i += 1
            continue
        if escape and c == "\\" and i + 1 < n:
            cur.append(body[i + 1])
            raw.append(body[i:i + 2])
            i += 2
            continue
        if remove_quotes and c == '"':
            quoted = not quoted
            raw.append(c)
            i += 1
            continue
        cur.append(c)
        raw.append(c)
        i += 1
    return fields


def _checked(record: Record, spec: CopySpec) -> Record:
    """Invalid UTF-8 in any field: replaced (ACCEPTINVCHARS) or the record becomes a fault."""
    fields = record.fields
    if fields is None:
        return record
    for i, value in enumerate(fields):
        if value is not None and _INVALID_UTF8.search(value):
            try:
                fields[i] = fix_invalid_utf8(value, spec)
            except FaultError as exc:
                exc.fault.value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                return Record(record.line, None, raw=record.raw, fault=exc.fault)
    return record


# ------------------------------------------------------------------ JSON

def json_records(stream: IO[bytes], spec: CopySpec, columns: list[str], paths: list[list[str | int]] | None
                 ) -> Iterator[Record]:
    """Objects (or arrays, with jsonpaths) one after another, whitespace between them."""
    text = io.TextIOWrapper(stream, encoding=spec.encoding, errors="surrogateescape", newline="")
    decoder = json.JSONDecoder()
    ignore_case = (spec.json_paths or "").lower() == "auto ignorecase"
    buf, pos, line, eof = "", 0, 1, False
    while True:
        while True:  # skip whitespace, counting lines
            m = _WS.match(buf, pos)
            if m:
                line += buf.count("\n", pos, m.end())
                pos = m.end()
            if pos < len(buf) or eof:
                break
            buf, pos, eof = _refill(text, buf, pos)
        if pos >= len(buf):
            return
        try:
            value, end = decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            if not eof and len(buf) - pos < 64 * JSON_CHUNK:
                buf, pos, eof = _refill(text, buf, pos)
                continue
            yield Record(line, None, raw=buf[pos:pos + 1024], fault=Fault(1224, f"Invalid JSON: {exc.msg}"))
            return  # the rest of the file cannot be re-synchronised
        if end == len(buf) and not eof and not isinstance(value, (dict, list)):
            buf, pos, eof = _refill(text, buf, pos)  # a bare number may continue in the next chunk
            continue
        raw = buf[pos:end]
        yield _checked(_json_record(value, line, raw, columns, paths, ignore_case), spec)
        line += buf.count("\n", pos, end)
        pos = end


_WS = re.compile(r"\s*")


def _refill(text: IO[str], buf: str, pos: int) -> tuple[str, int, bool]:
    chunk = text.read(JSON_CHUNK)
    return buf[pos:] + chunk, 0, not chunk


def _json_record(value: Any, line: int, raw: str, columns: list[str], paths: list[list[str | int]] | None,
                 ignore_case: bool) -> Record:
    if paths is not None:
        return Record(line, [json_field(_follow(value, p)) for p in paths], raw=raw)
    if not isinstance(value, dict):
        return Record(line, None, raw=raw, fault=Fault(1224, "Invalid JSONPath format: JSON 'auto' needs an object "
                                                              f"per record, got {type(value).__name__}"))
    if ignore_case:
        value = {str(k).lower(): v for k, v in value.items()}
    return Record(line, [json_field(value.get(c, _MISSING)) for c in columns], raw=raw)


class _Missing:
    pass


_MISSING: Any = _Missing()
MISSING_MARK = "\x00missing"  # a missing key: the column's DEFAULT (or NULL)


def json_field(value: Any) -> str | None:
    if value is _MISSING:
        return MISSING_MARK
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _follow(value: Any, path: list[str | int]) -> Any:
    for step in path:
        if isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return None
    return value


_PATH_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(-?\d+))\s*\]""")


def parse_jsonpaths(data: bytes, url: str) -> list[list[str | int]]:
    """A jsonpaths file: {"jsonpaths": ["$.a", "$['b']['c']", "$.d[0]"]}."""
    try:
        exprs = json.loads(data)["jsonpaths"]
        if not isinstance(exprs, list) or not all(isinstance(e, str) for e in exprs):
            raise TypeError("jsonpaths is not a list of strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise RedshiftError(f"ERROR: Invalid JSONPath format in {url}: {exc}") from None
    paths = []
    for expr in exprs:
        if not expr.startswith("$"):
            raise RedshiftError(f"ERROR: Invalid JSONPath format in {url}: {expr!r} does not start with $")
        steps: list[str | int] = []
        pos = 1
        while pos < len(expr):
            m = _PATH_STEP.match(expr, pos)
            if not m:
                raise RedshiftError(f"ERROR: Invalid JSONPath format in {url}: cannot read {expr!r} at {pos}")
            name, single, double, index = m.groups()
            steps.append(int(index) if index is not None else (name or single or double or ""))
            pos = m.end()
        paths.append(steps)
    return paths


# --------------------------------------------------------------- Parquet

def parquet_records(stream: IO[bytes], spec: CopySpec, ncols: int, url: str) -> Iterator[Record]:
    """Parquet columns map to table columns by position, as in Redshift."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryFile() as spool:  # Parquet needs random access: spool to disk, not memory
        while chunk := stream.read(1 << 20):
            spool.write(chunk)
        spool.seek(0)
        try:
            pfile = pq.ParquetFile(spool)
        except Exception as exc:
            raise RedshiftError(f"ERROR: File {url} is not a valid Parquet file: {exc}") from None
        if pfile.metadata.num_columns != ncols:
            raise RedshiftError(f"ERROR: Spectrum Scan Error: File '{url}' has an incompatible Parquet schema: "
                                f"{pfile.metadata.num_columns} columns in the file, {ncols} in the table")
        row = 0
        for batch in pfile.iter_batches(batch_size=8192):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for values in zip(*columns):
                row += 1
                yield Record(row, [parquet_field(v) for v in values])


def parquet_field(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat(sep=" ") if hasattr(value, "hour") and hasattr(value, "day") else value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    if isinstance(value, Decimal):
        return format(value, "f")  # str() gives 1E-7 / 0E-7 from scale 7 on, which no number column reads
    return str(value)
