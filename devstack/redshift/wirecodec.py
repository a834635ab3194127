"""PostgreSQL v3 wire messages for the Redshift-protocol endpoint (wire.py), and value formats.

PostgreSQL hands the endpoint every value as text. redshift_connector asks for most
scalar types in *binary* (its format codes follow the type OIDs the endpoint reports),
so `to_binary` turns PostgreSQL's text output into the binary layouts PostgreSQL itself
would send: big-endian integers and floats, dates as days and timestamps as
microseconds since 2000-01-01. Types the endpoint cannot encode are reported as
VARCHAR (whose binary form is its text), so such a value arrives as a string instead
of failing the query.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone

PG_EPOCH_DATE = date(2000, 1, 1)
PG_EPOCH = datetime(2000, 1, 1)
PG_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=timezone.utc)
VARCHAR = 1043
TEXT_LIKE = frozenset({18, 19, 25, 705, 1042, 1043})
_PACKERS = {20: "!q", 21: "!h", 23: "!i", 26: "!I"}
# Types redshift_connector reads only in binary, which `to_binary` does not encode: reported as VARCHAR.
_BINARY_ONLY_ELSEWHERE = frozenset({24, 702, 1002, 1005, 1007, 1009, 1015, 1021, 1028, 1033, 1034, 1186, 1187})


class WireFormatError(ValueError):
    """A value or message this endpoint cannot represent."""


# ------------------------------------------------------------------ messages
def message(code: bytes, body: bytes = b"") -> bytes:
    return code + struct.pack("!i", len(body) + 4) + body


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def auth_request(code: int) -> bytes:
    return message(b"R", struct.pack("!i", code))


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstr(name) + cstr(value))


def backend_key(pid: int, secret: int) -> bytes:
    return message(b"K", struct.pack("!ii", pid, secret))


def ready(status: str) -> bytes:
    return message(b"Z", status.encode())


def command_complete(tag: str) -> bytes:
    return message(b"C", cstr(tag))


def error_response(fields: dict[str, str]) -> bytes:
    body = b"".join(code.encode() + cstr(value) for code, value in fields.items() if value is not None)
    return message(b"E", body + b"\0")


def parameter_description(oids: Sequence[int]) -> bytes:
    return message(b"t", struct.pack("!h", len(oids)) + b"".join(struct.pack("!i", o) for o in oids))


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int          # what the client is told (see reported_oid)
    table_oid: int = 0
    column_number: int = 0
    type_size: int = -1
    type_modifier: int = -1
    source_oid: int = 0    # PostgreSQL's own type


def row_description(columns: Sequence[Column], formats: Sequence[int] = ()) -> bytes:
    body = bytearray(struct.pack("!h", len(columns)))
    for i, c in enumerate(columns):
        body += cstr(c.name) + struct.pack("!ihihih", c.table_oid, c.column_number, c.type_oid, c.type_size,
                                           c.type_modifier, column_format(formats, i))
    return message(b"T", bytes(body))


def data_row(values: Iterable[bytes | None]) -> bytes:
    items = list(values)
    body = bytearray(struct.pack("!h", len(items)))
    for v in items:
        body += struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v
    return message(b"D", bytes(body))


def column_format(formats: Sequence[int], index: int) -> int:
    """Bind's result-format codes: none = all text, one = all columns, else one per column."""
    if not formats:
        return 0
    return formats[0] if len(formats) == 1 else formats[index]


# ------------------------------------------------------------------ reading
class Reader:
    """Fields of one message body, in order."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def int16(self) -> int:
        (value,) = struct.unpack_from("!h", self.data, self.pos)
        self.pos += 2
        return int(value)

    def int32(self) -> int:
        (value,) = struct.unpack_from("!i", self.data, self.pos)
        self.pos += 4
        return int(value)

    def cstr(self) -> str:
        end = self.data.index(b"\0", self.pos)
        text = self.data[self.pos:end].decode()
        self.pos = end + 1
        return text

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> str:
        return self.take(1).decode()


def startup_parameters(body: bytes) -> dict[str, str]:
    reader, params = Reader(body), {}
    while reader.pos < len(body) and body[reader.pos:reader.pos + 1] != b"\0":
        key = reader.cstr()
        params[key] = reader.cstr()
    return params


# ------------------------------------------------------------------- values
def reported_oid(source_oid: int) -> int:
    """The type OID to announce for a PostgreSQL result column."""
    return VARCHAR if source_oid in _BINARY_ONLY_ELSEWHERE else source_oid


def to_binary(oid: int, text: bytes) -> bytes:
    """PostgreSQL's binary send format of `text` (its text output) for the reported type `oid`."""
    value = text.decode()
    if oid in TEXT_LIKE:
        return text
    if oid in _PACKERS:
        return struct.pack(_PACKERS[oid], int(value))
    if oid == 16:
        return b"\x01" if value in ("t", "true") else b"\x00"
    if oid in (700, 701):
        return struct.pack("!f" if oid == 700 else "!d", float(value))
    if oid == 1082:
        if value in ("infinity", "-infinity"):
            return struct.pack("!i", 0x7FFFFFFF if value == "infinity" else -0x80000000)
        return struct.pack("!i", (date.fromisoformat(value) - PG_EPOCH_DATE).days)
    if oid in (1114, 1184):
        if value in ("infinity", "-infinity"):
            return struct.pack("!q", 0x7FFFFFFFFFFFFFFF if value == "infinity" else -0x8000000000000000)
        moment = datetime.fromisoformat(value)
        delta = moment - (PG_EPOCH_UTC if moment.tzinfo else PG_EPOCH)
        return struct.pack("!q", (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if oid in (1083, 1266):
        moment = time.fromisoformat(value)
        micros = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + moment.microsecond
        if oid == 1083:
            return struct.pack("!q", micros)
        offset = moment.utcoffset()
        seconds_west = -int(offset.total_seconds()) if offset is not None else 0
        return struct.pack("!qi", micros, seconds_west)
    raise WireFormatError(f"devstack's Redshift endpoint cannot send type oid {oid} in binary; ask for text")
