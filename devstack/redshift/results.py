"""Result sets: streaming rows off PostgreSQL, Redshift typing, paging, spilling to disk.

Rows are read in chunks (libpq chunked-rows mode) as raw *text* values, so the
emulator never builds a Python object per cell it does not need and large
results never sit in memory whole: pages beyond `memory_bytes` go to an
anonymous temp file. A result larger than `max_bytes` fails the statement, like
the Data API's result-size quota.

Values become Data API `Field`s only when a page is requested.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devstack.redshift.contracts import RedshiftError, StatementOutcome

DEFAULT_PAGE_ROWS = 1000
DEFAULT_PAGE_BYTES = 1 << 20
DEFAULT_MEMORY_BYTES = 4 << 20
DEFAULT_MAX_BYTES = 500 << 20  # the Data API's result-size quota
DEFAULT_TOTAL_MEMORY_BYTES = 256 << 20  # all results together, before pages go to disk


@dataclass(frozen=True)
class _Type:
    name: str  # Redshift's typeName
    kind: str  # how a value becomes a Field: long | double | bool | string | bytes | json
    precision: int = 0
    scale: int = 0
    signed: bool = False
    case_sensitive: bool = False


# PostgreSQL type OID → what Redshift reports. TEXT is VARCHAR in Redshift;
# super/varbyte are domains over jsonb/bytea, which PostgreSQL reports as the base type.
TYPES: dict[int, _Type] = {
    16: _Type("bool", "bool", 1),
    18: _Type("char", "string", 1, case_sensitive=True),
    19: _Type("name", "string", 64, case_sensitive=True),
    20: _Type("int8", "long", 19, signed=True),
    21: _Type("int2", "long", 5, signed=True),
    23: _Type("int4", "long", 10, signed=True),
    25: _Type("varchar", "string", 65535, case_sensitive=True),
    26: _Type("oid", "long", 10),
    114: _Type("super", "json", 65535, case_sensitive=True),
    3802: _Type("super", "json", 65535, case_sensitive=True),
    17: _Type("varbyte", "bytes", 65535),
    700: _Type("float4", "double", 8, 8, signed=True),
    701: _Type("float8", "double", 17, 17, signed=True),
    1042: _Type("bpchar", "string", 1, case_sensitive=True),
    1043: _Type("varchar", "string", 65535, case_sensitive=True),
    1082: _Type("date", "string", 13),
    1083: _Type("time", "string", 15, 6),
    1266: _Type("timetz", "string", 21, 6),
    1114: _Type("timestamp", "string", 29, 6),
    1184: _Type("timestamptz", "string", 35, 6),
    1186: _Type("interval", "string", 49, 6),
    1700: _Type("numeric", "string", 38, 0, signed=True),
    790: _Type("money", "string", 19, 2, signed=True),
    2950: _Type("uuid", "string", 36),
    705: _Type("varchar", "string", 65535, case_sensitive=True),  # unknown
}


class ResultTooLarge(RedshiftError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"ERROR: Query result size exceeded the Data API limit of {limit // (1 << 20)} MB. "
            "Use UNLOAD to export large results."
        )


@dataclass
class Column:
    """One result column: the Data API ColumnMetadata plus how to render its values."""

    name: str
    type_oid: int
    type: _Type
    precision: int
    scale: int
    schema_name: str = ""
    table_name: str = ""
    nullable: int = 1
    column_default: str | None = None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "isCaseSensitive": self.type.case_sensitive,
            "isCurrency": self.type.name == "money",
            "isSigned": self.type.signed,
            "label": self.name,
            "name": self.name,
            "nullable": self.nullable,
            "precision": self.precision,
            "scale": self.scale,
            "schemaName": self.schema_name,
            "tableName": self.table_name,
            "typeName": self.type.name,
            "length": 0,
        }
        if self.column_default is not None:
            meta["columnDefault"] = self.column_default
        return meta


def type_for(oid: int, typname: str | None = None) -> _Type:
    return TYPES.get(oid) or _Type(typname or str(oid), "string", 0)


def precision_scale(t: _Type, oid: int, fmod: int) -> tuple[int, int]:
    """Precision/scale from the type modifier, falling back to the type's defaults."""
    if fmod < 0:
        return t.precision, t.scale
    if oid == 1700:
        mod = fmod - 4
        return (mod >> 16) & 0xFFFF, mod & 0xFFFF
    if oid in (1042, 1043):
        return fmod - 4, 0
    if oid in (1083, 1266, 1114, 1184):
        return t.precision - (6 - fmod), fmod
    return t.precision, t.scale


class MemoryBudget:
    """Bytes of result pages all statements may keep in memory together (results live 24 h)."""

    def __init__(self, limit: int = DEFAULT_TOTAL_MEMORY_BYTES) -> None:
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if self.used + size > self.limit:
                return False
            self.used += size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self.used -= size


class ResultSet:
    """Rows of one statement, in pages; pages past the memory budgets live in a temp file."""

    def __init__(
        self,
        columns: list[Column],
        *,
        page_rows: int = DEFAULT_PAGE_ROWS,
        page_bytes: int = DEFAULT_PAGE_BYTES,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.columns = columns
        self.total_rows = 0
        self.total_bytes = 0
        self._page_rows, self._page_bytes = page_rows, page_bytes
        self._memory_bytes, self._max_bytes = memory_bytes, max_bytes
        self._budget = budget or MemoryBudget()
        self._in_memory = 0
        self._pages: list[list[list[str | None]] | tuple[int, int]] = []
        self._current: list[list[str | None]] = []
        self._current_bytes = 0
        self._file: Any = None
        self._lock = threading.Lock()

    def add(self, row: list[str | None]) -> None:
        size = sum(len(v) for v in row if v is not None) + len(row)
        self.total_bytes += size
        if self.total_bytes > self._max_bytes:
            raise ResultTooLarge(self._max_bytes)
        self.total_rows += 1
        self._current.append(row)
        self._current_bytes += size
        if len(self._current) >= self._page_rows or self._current_bytes >= self._page_bytes:
            self._flush()

    def finish(self) -> None:
        if self._current or not self._pages:
            self._flush()

    def _flush(self) -> None:
        page, size = self._current, self._current_bytes
        self._current, self._current_bytes = [], 0
        if self._in_memory + size <= self._memory_bytes and self._budget.take(size):
            self._in_memory += size
            self._pages.append(page)
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()
        data = json.dumps(page, separators=(",", ":")).encode()
        with self._lock:
            self._file.seek(0, io.SEEK_END)
            offset = self._file.tell()
            self._file.write(data)
        self._pages.append((offset, len(data)))

    @property
    def page_count(self) -> int:
        return len(self._pages)

    def page(self, index: int) -> list[list[str | None]]:
        stored = self._pages[index]
        if isinstance(stored, list):
            return stored
        offset, length = stored
        with self._lock:
            self._file.seek(offset)
            return json.loads(self._file.read(length))

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        self._budget.give(self._in_memory)
        self._in_memory = 0
        if self._file is not None:
            self._file.close()
            self._file = None
        self._pages.clear()


# --- rendering ---------------------------------------------------------------

def _field(value: str | None, kind: str) -> dict[str, Any]:
    if value is None:
        return {"isNull": True}
    if kind == "long":
        return {"longValue": int(value)}
    if kind == "double":
        return {"doubleValue": float(value)}
    if kind == "bool":
        return {"booleanValue": value in ("t", "true", "True", "1")}
    if kind == "bytes":
        return {"stringValue": value[2:] if value.startswith("\\x") else value}
    if kind == "json":
        # Redshift prints SUPER compactly; PostgreSQL's jsonb output has spaces.
        try:
            return {"stringValue": json.dumps(json.loads(value), separators=(",", ":"), ensure_ascii=False)}
        except ValueError:
            return {"stringValue": value}
    return {"stringValue": value}


def records(rows: list[list[str | None]], columns: Sequence[Column]) -> list[list[dict[str, Any]]]:
    kinds = [c.type.kind for c in columns]
    return [[_field(v, k) for v, k in zip(row, kinds)] for row in rows]


def csv_text(rows: list[list[str | None]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buf.getvalue()


def page_token(statement_id: str, page: int) -> str:
    return base64.urlsafe_b64encode(f"{page}|{statement_id}".encode()).decode()


def parse_page_token(token: str, statement_id: str) -> int | None:
    """The page a NextToken points at, or None if it is not one of ours for this statement."""
    try:
        page, sid = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
        return int(page) if sid == statement_id else None
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class ResultOptions:
    page_rows: int = DEFAULT_PAGE_ROWS
    page_bytes: int = DEFAULT_PAGE_BYTES
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    max_bytes: int = DEFAULT_MAX_BYTES
    budget: MemoryBudget = field(default_factory=MemoryBudget)

    def new(self, columns: list[Column]) -> ResultSet:
        return ResultSet(columns, page_rows=self.page_rows, page_bytes=self.page_bytes,
                         memory_bytes=self.memory_bytes, max_bytes=self.max_bytes, budget=self.budget)


def result_from_outcome(outcome: StatementOutcome, options: ResultOptions) -> ResultSet | None:
    """A ResultSet for rows a COPY/UNLOAD handler returned (typed from the Python values)."""
    if not outcome.columns:
        return None
    oids = []
    for i in range(len(outcome.columns)):
        sample = next((r[i] for r in outcome.records if r[i] is not None), None)
        oids.append(16 if isinstance(sample, bool) else 20 if isinstance(sample, int)
                    else 701 if isinstance(sample, float) else 1043)
    columns = [Column(name, oid, TYPES[oid], TYPES[oid].precision, TYPES[oid].scale)
               for name, oid in zip(outcome.columns, oids)]
    result = options.new(columns)
    render: Callable[[Any], str | None] = (
        lambda v: None if v is None else ("t" if v is True else "f" if v is False else str(v)))
    for record in outcome.records:
        result.add([render(v) for v in record])
    result.finish()
    return result
