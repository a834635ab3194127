"""The `COPY ... TO STDOUT` statements UNLOAD reads, so that PostgreSQL formats the values.

* CSV: PostgreSQL's CSV is Redshift's (`unloadformat.pg_can_write_csv` says when).
* TEXT: PostgreSQL's text format with the same DELIMITER and NULL string; its backslash escapes
  are undone block by block (`unloadformat.pg_text_decoder`).
* JSON: PostgreSQL builds each line (numbers bare, booleans "t"/"f", SUPER nested) as one text
  column; Python only undoes the text format's escapes.
* PARQUET: PostgreSQL's CSV, parsed by pyarrow with the column types of the query.

With PARTITION BY the rows come sorted on the partition columns (then in the query's own
order), and each row starts with one extra column: NULL, except on the first row of a partition,
where it holds a marker and the partition values as a JSON array. So a block reader strips a
known prefix from every row and stops at a row without it: a new partition folder begins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import sql as pgsql

from devstack.redshift.unloadformat import (BOOL_OID, BPCHAR_OID, FLOAT_OIDS, INT_OIDS, JSON_OIDS, NUMERIC_OID,
                                            OutColumn, json_key, pg_text_decoder, redshift_text_escapes)
from devstack.redshift.unloadopts import UnloadSpec

_MARKERS = "#@%&"


@dataclass(frozen=True)
class BlockSource:
    """What to COPY and how to read it back."""

    statement: pgsql.Composable
    kind: str                          # "csv" | "text": the COPY format
    decode: Callable[[Any], Any]       # a block of PostgreSQL's output → the bytes to write
    delimiter: bytes
    partition_names: list[str]         # PARTITION BY columns (empty: no partitions)
    row_prefix: bytes | None = None    # what every row but a partition's first starts with

    def split_first_row(self, row: bytes) -> tuple[list[str | None], bytes]:
        """A partition's first row → (its partition values, the row without the extra column)."""
        if self.kind == "csv":  # `"<marker + json, quotes doubled>"<delimiter><row>`
            i = 1
            while (j := row.index(b'"', i)) + 1 < len(row) and row[j + 1:j + 2] == b'"':
                i = j + 2
            extra, rest = row[1:j].replace(b'""', b'"'), row[j + 2:]
        else:  # text: the column ends at the first delimiter that no backslash escapes
            i = 0
            while row[i:i + 1] != self.delimiter:
                if i >= len(row):
                    raise RuntimeError("UNLOAD PARTITION BY: a partition's first row without its partition column")
                i += 2 if row[i:i + 1] == b"\\" else 1
            extra, rest = pg_text_decoder()(row[:i]), row[i + 1:]
        return json.loads(extra.decode("utf-8")[1:]), rest


def block_source(query: str, spec: UnloadSpec, columns: list[OutColumn], part_cols: list[int],
                 keep: list[int]) -> BlockSource:
    """The COPY for a format PostgreSQL can write (callers check `pg_can_write_*` first)."""
    renamed = [pgsql.Identifier(f"_c{i}") for i in range(len(columns))]
    if spec.fmt == "JSON":
        kind, options, decode = "text", pgsql.SQL("NULL ''"), pg_text_decoder()
        null, delimiter = "", "\t"
        payload: list[pgsql.Composable] = [_json_line(columns, keep)]
    else:
        kind = "text" if spec.fmt == "TEXT" else "csv"
        delimiter = "," if spec.fmt == "PARQUET" else spec.effective_delimiter
        null = "" if spec.fmt == "PARQUET" else spec.null_as or ""
        options = pgsql.SQL("DELIMITER {}, NULL {}").format(pgsql.Literal(delimiter), pgsql.Literal(null))
        if kind == "csv":
            options = pgsql.SQL("FORMAT csv, {}{}").format(options, pgsql.SQL(", FORCE_QUOTE *" if spec.add_quotes
                                                                              else ""))
        decode = pg_text_decoder(redshift_text_escapes(spec)) if kind == "text" else _same
        payload = [renamed[i] for i in keep]
    wrapped = pgsql.SQL("({}) AS unload_query ({})").format(pgsql.SQL(query), pgsql.SQL(", ").join(renamed))
    if not part_cols:
        if spec.fmt == "JSON":
            select = pgsql.SQL("SELECT {} FROM {}").format(payload[0], wrapped)
        else:
            select = pgsql.SQL(query)  # every column, as the query returns them
        return BlockSource(pgsql.SQL("COPY ({}) TO STDOUT ({})").format(select, options), kind, decode,
                           delimiter.encode(), [])
    row_prefix = (null + delimiter).encode()
    marker = next(m for m in _MARKERS if m.encode() != row_prefix[:1])
    by = pgsql.SQL(", ").join(renamed[i] for i in part_cols)
    # format('%s', x) is the type's output function, as COPY writes it (t/f, padded CHAR).
    values = pgsql.SQL(", ").join(pgsql.SQL("CASE WHEN {c} IS NOT NULL THEN format('%s', {c}) END").format(c=renamed[i])
                                  for i in part_cols)
    first = pgsql.SQL("CASE WHEN row_number() OVER (PARTITION BY {by} ORDER BY _unload_rn) = 1 "
                      "THEN {marker} || json_build_array({values})::text END AS _unload_partition").format(
        by=by, marker=pgsql.Literal(marker), values=values)
    select = pgsql.SQL("SELECT {first}, {payload} FROM (SELECT *, row_number() OVER () AS _unload_rn FROM {wrapped}) "
                       "AS unload_numbered ORDER BY {by}, _unload_rn").format(
        first=first, payload=pgsql.SQL(", ").join(payload), wrapped=wrapped, by=by)
    if kind == "csv" and not spec.add_quotes:  # quoted, a first row never starts like the others
        options = pgsql.SQL("{}, FORCE_QUOTE (_unload_partition)").format(options)
    return BlockSource(pgsql.SQL("COPY ({}) TO STDOUT ({})").format(select, options), kind, decode,
                       delimiter.encode(), [columns[i].name for i in part_cols], row_prefix)


def sorted_rows_query(query: str, columns: list[OutColumn], part_cols: list[int]) -> pgsql.Composable:
    """The query's rows sorted on the partition columns, in the query's own order within each
    (the row-at-a-time path's PARTITION BY: one partition's part open at a time)."""
    renamed = pgsql.SQL(", ").join(pgsql.Identifier(f"_c{i}") for i in range(len(columns)))
    order = pgsql.SQL(", ").join(pgsql.Identifier(f"_c{i}") for i in part_cols)
    return pgsql.SQL(
        "SELECT * FROM (SELECT *, row_number() OVER () AS _unload_rn FROM ({}) AS unload_query ({})) AS unload_sorted "
        "ORDER BY {}, _unload_rn").format(pgsql.SQL(query), renamed, order)


def _same(block: Any) -> Any:
    return block


def _json_line(columns: list[OutColumn], keep: list[int]) -> pgsql.Composable:
    """One JSON object per row, built by PostgreSQL: numbers bare (NaN/Infinity as strings),
    booleans "t"/"f" as Redshift writes them, SUPER nested, NULL as null."""
    parts: list[pgsql.Composable] = []
    for n, i in enumerate(keep):
        col, c = columns[i], pgsql.Identifier(f"_c{i}")
        if col.oid in INT_OIDS or col.oid in FLOAT_OIDS or col.oid == NUMERIC_OID:
            value = pgsql.SQL("CASE WHEN {c}::text IN ('NaN', 'Infinity', '-Infinity') THEN '\"' || {c}::text || '\"' "
                              "ELSE {c}::text END").format(c=c)
        elif col.oid == BOOL_OID:
            value = pgsql.SQL("CASE WHEN {c} THEN '\"t\"' WHEN NOT {c} THEN '\"f\"' END").format(c=c)
        elif col.oid in JSON_OIDS:
            value = pgsql.SQL("{c}::text").format(c=c)
        elif col.oid == BPCHAR_OID:  # bpchar::text drops the padding that COPY (and Redshift) keep
            value = pgsql.SQL("to_json({c})::text").format(c=c)
        else:
            value = pgsql.SQL("to_json({c}::text)::text").format(c=c)
        key = ("," if n else "{") + json_key(col.name) + ":"
        parts.append(pgsql.SQL("{} || coalesce({}, 'null')").format(pgsql.Literal(key), value))
    return pgsql.SQL("{} || '}}'").format(pgsql.SQL(" || ").join(parts))
