"""Per-column value conversion for COPY, with Redshift's rules and error codes.

Each target column gets one converter: raw field (str, or None = NULL) → the value in
PostgreSQL COPY text format (escaped, or `\\N`). Values are checked here rather than left to
PostgreSQL because PostgreSQL 15 aborts a COPY on its first bad value, while Redshift skips
bad rows up to MAXERROR and records each in STL_LOAD_ERRORS with its own codes and wording.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from devstack.redshift.copyformats import MISSING_MARK, Fault, FaultError, Quoted
from devstack.redshift.copyopts import CopySpec

PG_NULL = "\\N"
_PG_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_INT = re.compile(r"\s*[+-]?\d+\s*\Z")
_DECIMAL = re.compile(r"\s*([+-]?)(\d*)(?:\.(\d*))?\s*\Z")
_ISO_DATE = re.compile(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?\s*\Z")
_INT_RANGES = {"int2": (-(2 ** 15), 2 ** 15 - 1), "int4": (-(2 ** 31), 2 ** 31 - 1),
               "int8": (-(2 ** 63), 2 ** 63 - 1)}
_TRUE = frozenset({"t", "true", "1", "y", "yes", "on"})
_FALSE = frozenset({"f", "false", "0", "n", "no", "off"})
_CHAR_TYPES = frozenset({"varchar", "bpchar", "text", "name"})
# Redshift datetime format elements → strptime, longest first so MONTH wins over MON over MM.
_FORMAT_ELEMENTS = [("YYYY", "%Y"), ("MONTH", "%B"), ("HH24", "%H"), ("HH12", "%I"), ("MON", "%b"),
                    ("DDD", "%j"), ("YY", "%y"), ("MM", "%m"), ("DD", "%d"), ("HH", "%H"), ("MI", "%M"),
                    ("SS", "%S"), ("AM", "%p"), ("PM", "%p"), ("US", "%f"), ("OF", "%z")]
_AUTO_DATE_FORMATS = ("%m/%d/%Y", "%Y/%m/%d", "%d-%b-%Y", "%Y%m%d", "%b %d, %Y", "%d %b %Y", "%m-%d-%Y", "%Y.%m.%d")
_AUTO_TIME_FORMATS = ("%m/%d/%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y%m%d %H%M%S", "%Y%m%dT%H%M%S",
                      "%d-%b-%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p")


@dataclass(frozen=True)
class Column:
    name: str
    typname: str        # pg_type.typname: int4, numeric, varchar, timestamptz, ...
    type_text: str      # format_type(): "character varying(20)"
    typmod: int
    not_null: bool
    default: str | None

    @property
    def is_char(self) -> bool:
        return self.typname in _CHAR_TYPES


Converter = Callable[[str | None], str]


def pg_text(value: str) -> str:
    return value.translate(_PG_ESCAPES)


def redshift_format(fmt: str) -> str:
    """A Redshift DATEFORMAT/TIMEFORMAT string as a strptime format."""
    out, i = [], 0
    while i < len(fmt):
        for element, code in _FORMAT_ELEMENTS:
            if fmt.startswith(element, i) or fmt.startswith(element.lower(), i):
                out.append(code)
                i += len(element)
                break
        else:
            out.append("%%" if fmt[i] == "%" else fmt[i])
            i += 1
    return "".join(out)


def make_converter(col: Column, spec: CopySpec, default_value: str = PG_NULL) -> Converter:
    """The converter for one column; `default_value` is what a missing JSON key loads (COPY text)."""
    check = _checker(col, spec)
    # NULL AS applies to text formats; JSON and Parquet carry real nulls.
    null_marker = ("\\N" if spec.null_as is None else spec.null_as) if spec.fmt in ("CSV", "TEXT") else None
    if spec.fmt == "TEXT" and (spec.has("ESCAPE") or spec.has("REMOVEQUOTES")):
        null_marker = None  # the reader matched the marker before unescaping (an escaped \\N is data)
    empty_as_null, blanks_as_null = spec.has("EMPTYASNULL"), spec.has("BLANKSASNULL")
    is_char, not_null, name = col.is_char, col.not_null, col.name

    def convert(value: str | None) -> str:
        if value is not None:
            if value == MISSING_MARK:
                return default_value
            if value == null_marker and not isinstance(value, Quoted):
                value = None
            elif is_char:
                if (empty_as_null and value == "" and not isinstance(value, Quoted)) \
                        or (blanks_as_null and value.strip() == ""):
                    value = None
            elif value.strip() == "":
                value = None  # an empty non-character field is NULL in Redshift
        if value is None:
            if not_null:
                raise FaultError(Fault(1213, "Missing data for not-null field", name, ""))
            return PG_NULL
        try:
            return check(value)
        except FaultError as exc:
            exc.fault.column, exc.fault.value = name, value
            raise

    return convert


def _fault(code: int, reason: str) -> FaultError:
    return FaultError(Fault(code, reason))


def _checker(col: Column, spec: CopySpec) -> Callable[[str], str]:
    kind = col.typname
    if kind in _INT_RANGES:
        return _int_checker(*_INT_RANGES[kind])
    if kind == "numeric":
        return _numeric_checker(col.typmod, spec.has("ROUNDEC"))
    if kind in ("float4", "float8"):
        return _float_check
    if kind == "bool":
        return _bool_check
    if kind == "date":
        return _date_checker(spec)
    if kind in ("timestamp", "timestamptz"):
        return _timestamp_checker(spec, kind == "timestamptz")
    if kind in ("varchar", "bpchar"):
        limit = col.typmod - 4 if col.typmod > 4 else None
        return _char_checker(limit, spec)
    return _char_checker(None, spec)


def _int_checker(low: int, high: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not _INT.match(value):
            pos = next((i for i, c in enumerate(value) if not (c.isdigit() or c in "+- ")), 0)
            raise _fault(1207, f"Invalid digit, Value '{value[pos:pos + 1]}', Pos {pos}, Type: Integer")
        number = int(value)
        if not low <= number <= high:
            raise _fault(1216, f"Overflow, Value '{value.strip()}' out of range for type Integer")
        return str(number)

    return check


def _numeric_checker(typmod: int, round_half: bool) -> Callable[[str], str]:
    precision, scale = ((typmod - 4) >> 16, (typmod - 4) & 0xFFFF) if typmod >= 4 else (None, None)

    def check(value: str) -> str:
        m = _DECIMAL.match(value)
        if not m or not (m.group(2) or m.group(3)):
            raise _fault(1207, f"Invalid digit, Value '{value.strip()}', Type: Decimal")
        sign, whole, frac = m.group(1), m.group(2).lstrip("0"), m.group(3) or ""
        if precision is not None and scale is not None:
            if len(frac) > scale:
                if round_half:
                    q = Decimal(f"{sign}{whole or '0'}.{frac}").quantize(Decimal(1).scaleb(-scale), ROUND_HALF_UP)
                    whole, frac = str(abs(q)).partition(".")[::2]
                    whole = whole.lstrip("0")
                else:
                    frac = frac[:scale]  # Redshift truncates extra scale unless ROUNDEC
            if len(whole) > precision - scale:
                raise _fault(1216, f"Numeric data overflow (result precision), Value '{value.strip()}'")
        return f"{sign}{whole or '0'}" + (f".{frac}" if frac else "")

    return check


def _float_check(value: str) -> str:
    try:
        float(value)
    except ValueError:
        raise _fault(1208, f"Invalid float value, Value '{value.strip()}'") from None
    return value.strip()


def _bool_check(value: str) -> str:
    v = value.strip().lower()
    if v in _TRUE:
        return "t"
    if v in _FALSE:
        return "f"
    raise _fault(1210, f"Invalid boolean value, Value '{value}'")


def _date_checker(spec: CopySpec) -> Callable[[str], str]:
    fmt = spec.date_format
    accept_any = spec.has("ACCEPTANYDATE")
    custom = redshift_format(fmt) if fmt and fmt.lower() != "auto" else None
    auto = bool(fmt) and fmt.lower() == "auto"

    def check(value: str) -> str:
        text = value.strip()
        try:
            if custom:
                return dt.datetime.strptime(text, custom).date().isoformat()
            m = _ISO_DATE.match(text)
            if m:
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
            if auto:
                for f in _AUTO_DATE_FORMATS:
                    try:
                        return dt.datetime.strptime(text, f).date().isoformat()
                    except ValueError:
                        continue
        except ValueError:
            pass
        if accept_any:
            return PG_NULL
        raise _fault(1205, f"Invalid Date Format - expected {fmt or 'YYYY-MM-DD'}, Value '{text}'")

    return check


def _timestamp_checker(spec: CopySpec, with_zone: bool) -> Callable[[str], str]:
    fmt = (spec.time_format or "").strip()
    mode = fmt.lower()
    custom = redshift_format(fmt) if fmt and mode not in ("auto", "epochsecs", "epochmillisecs") else None

    def render(ts: dt.datetime) -> str:
        if ts.tzinfo is not None and not with_zone:
            ts = ts.astimezone(dt.timezone.utc).replace(tzinfo=None)  # TIMESTAMP keeps UTC wall time
        return ts.isoformat(sep=" ")

    def check(value: str) -> str:
        text = value.strip()
        try:
            if mode in ("epochsecs", "epochmillisecs"):
                seconds = float(text) / (1000 if mode == "epochmillisecs" else 1)
                return render(dt.datetime.fromtimestamp(seconds, dt.timezone.utc))
            if custom:
                return render(dt.datetime.strptime(text, custom))
            try:
                return render(dt.datetime.fromisoformat(text))
            except ValueError:
                if not mode == "auto":
                    raise
            for f in _AUTO_TIME_FORMATS + _AUTO_DATE_FORMATS:
                try:
                    return render(dt.datetime.strptime(text, f))
                except ValueError:
                    continue
        except (ValueError, OverflowError, InvalidOperation):
            pass
        raise _fault(1206, f"Invalid timestamp format or value [{fmt or 'YYYY-MM-DD HH24:MI:SS'}], Value '{text}'")

    return check


def _char_checker(limit: int | None, spec: CopySpec) -> Callable[[str], str]:
    truncate, trim = spec.has("TRUNCATECOLUMNS"), spec.has("TRIMBLANKS")
    replacement = spec.accept_inv_chars

    def check(value: str) -> str:
        if trim:
            value = value.rstrip(" ")
        if "\x00" in value:
            if replacement is None:
                raise _fault(1218, "Invalid null byte - field longer than 1 byte")
            value = value.replace("\x00", replacement)
        # Redshift counts VARCHAR length in bytes; a char is at most 4 bytes in UTF-8.
        if limit is not None and len(value) * 4 > limit:
            encoded = value.encode("utf-8", "surrogatepass")
            if len(encoded) > limit:
                if not truncate:
                    raise _fault(1204, f"String length exceeds DDL length ({len(encoded)} bytes > {limit})")
                value = encoded[:limit].decode("utf-8", "ignore")
        return value.translate(_PG_ESCAPES)

    return check
