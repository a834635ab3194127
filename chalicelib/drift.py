"""Schema drift: a CSV file's header row against the target table's columns (pure).

Before a load runs, the header of each of its files is compared with the columns it loads into
(the pipeline's `columns`, or the table's). Same names in another order load by name (COPY with a
column list); names only in the file are added to the table first when the pipeline allows new
nullable columns; anything else fails the job with a message listing the differing columns.
"""

from __future__ import annotations

import bz2
import csv
import io
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib.jobs import FileRef
from chalicelib.sql import is_identifier

HEAD_BYTES = 64 * 1024   # the header must fit in the first 64 KiB (decompressed prefix of it)
NEW_COLUMN_TYPE = "VARCHAR(65535)"  # a CSV header says nothing of types: widest text, nullable


@dataclass(frozen=True)
class Drift:
    only_file: tuple[str, ...]
    only_table: tuple[str, ...]

    @property
    def any(self) -> bool:
        return bool(self.only_file or self.only_table)

    def describe(self, file_url: str, table: str) -> str:
        parts = [f"only in the file: {', '.join(self.only_file)}" if self.only_file else "",
                 f"only in the table: {', '.join(self.only_table)}" if self.only_table else ""]
        return f"the header of {file_url} does not match {table}: " + "; ".join(p for p in parts if p)


def header_columns(head: bytes, *, compression: str | None, delimiter: str = ",", quote: str = '"') -> list[str] | None:
    """The first row of a (possibly compressed) CSV prefix, lower-cased; None when it cannot be read."""
    try:
        if compression == "GZIP":
            data = zlib.decompressobj(wbits=47).decompress(head, HEAD_BYTES * 4)
        elif compression == "BZIP2":
            data = bz2.BZ2Decompressor().decompress(head, HEAD_BYTES * 4)
        elif compression is None:
            data = head
        else:
            return None  # ZSTD: no decoder in the Lambda package
    except (zlib.error, OSError, EOFError, ValueError):
        return None
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    if "\n" not in text and len(head) >= HEAD_BYTES:
        return None  # the first line did not fit in the prefix
    row = next(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=quote), None)
    return [c.strip().lower() for c in row] if row else None


def compare(header: Sequence[str], expected: Sequence[str]) -> Drift:
    wanted = [c.lower() for c in expected]
    return Drift(only_file=tuple(c for c in header if c not in wanted),
                 only_table=tuple(c for c in wanted if c not in header))


def bad_names(header: Sequence[str]) -> list[str]:
    """Header names that cannot be column names (the COPY column list quotes plain identifiers only)."""
    return [c for c in header if not is_identifier(c)]


class DriftError(ValueError):
    """The files of a load do not fit the table (the message lists the differing columns)."""


def plan_columns(files: Sequence[FileRef], read_head: Callable[[FileRef], bytes], *, table: str,
                 expected: Sequence[str], compression: str | None, delimiter: str, quote: str,
                 allow_new_columns: bool) -> tuple[list[str] | None, list[str]]:
    """(the COPY column list from the files' common header, columns to add first), or DriftError.

    (None, []) when no header can be read (a ZSTD file, a header over 64 KiB): the load then runs
    by position as before, and a misfit shows as a bad row."""
    header: list[str] | None = None
    first: FileRef | None = None
    for f in files:
        cols = header_columns(read_head(f), compression=compression, delimiter=delimiter, quote=quote)
        if cols is None:
            return None, []
        if header is None:
            header, first = cols, f
        elif cols != header:
            assert first is not None
            raise DriftError(f"files of one load have different headers: {first.url} has ({', '.join(header)}), "
                             f"{f.url} has ({', '.join(cols)})")
    if header is None or first is None:
        return None, []
    odd = bad_names(header)
    if odd:
        raise DriftError(f"the header of {first.url} has names that are not plain SQL identifiers: "
                         + ", ".join(repr(c) for c in odd[:5]))
    drift = compare(header, expected)
    if not drift.any:
        return header, []  # same columns, perhaps in another order: COPY by name
    if drift.only_file and allow_new_columns and not drift.only_table:
        return header, list(drift.only_file)
    hint = "" if drift.only_table or allow_new_columns else " (set allow_new_columns = true to add them)"
    raise DriftError(drift.describe(first.url, table) + hint)
