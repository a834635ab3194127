"""UNLOAD from PostgreSQL to the local S3, with Redshift's formats, naming and manifests.

The query runs as `COPY (query) TO STDOUT` (unloadsql.py), read in blocks of whole rows
(`pgstream.CopyOut`) while worker threads compress and upload what came before
(`unloadsink.ObjectStream`, multipart past one part), so memory stays at a few MB whatever
the result size and the upload overlaps the query. PostgreSQL writes the values in the
output's own format wherever it can (CSV, TEXT, JSON lines, the CSV that pyarrow turns into
Parquet); what it cannot express (FIXEDWIDTH, ADDQUOTES without CSV, unusual DELIMITER or
NULL AS strings) is formatted here row by row (unloadformat.py). PARTITION BY sorts on the
partition columns so only one partition's part is open at a time.

A failed UNLOAD (the query fails midway, an upload fails, a FIXEDWIDTH value does not fit)
removes every object it stored and aborts its multipart uploads: no partial output is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql as pgsql

from devstack.redshift.contracts import ExecContext, RedshiftError, StatementOutcome
from devstack.redshift.pgstream import CopyOut
from devstack.redshift.rewrite import rewrite
from devstack.redshift.s3io import split_url
from devstack.redshift.unloadformat import OutColumn, parse_pg_text_line, pg_can_write_csv, pg_can_write_text
from devstack.redshift.unloadopts import UnloadSpec, parse_unload
from devstack.redshift.unloadsql import BlockSource, block_source, sorted_rows_query
from devstack.redshift.unloadwrite import BLOCK, Destination, PartWriter, partition_folder, prepare_destination


@dataclass(frozen=True)
class Layout:
    columns: list[OutColumn]    # what the query returns
    part_cols: list[int]        # PARTITION BY columns, as indexes into `columns`
    keep: list[int]             # the columns written to the files
    out_columns: list[OutColumn]


def run_unload(ctx: ExecContext, sql_text: str) -> StatementOutcome:
    spec = parse_unload(sql_text)
    bucket, prefix = split_url(spec.destination)
    # The newline ends a trailing `-- comment`, which would otherwise swallow our closing parenthesis.
    query = rewrite(spec.query).strip().rstrip(";") + "\n"
    layout = _layout(spec, _describe(ctx.conn, query))
    prepare_destination(ctx.s3, bucket, prefix, spec)
    dest = Destination(ctx.s3, bucket, prefix, spec, layout.out_columns)
    try:
        if by_postgres(spec):
            rows = _unload_blocks(ctx.conn, block_source(query, spec, layout.columns, layout.part_cols, layout.keep),
                                  dest)
        else:
            rows = _unload_rows(ctx.conn, query, layout, dest)
        entries = dest.close(empty_file=not layout.part_cols)  # Redshift writes a file even for no rows
        if spec.manifest:
            dest.write_manifest(entries, rows)
    except BaseException as exc:
        dest.written.remove_all()
        if isinstance(exc, psycopg.Error):
            raise _pg_error(exc) from None
        raise
    return StatementOutcome(rows=rows)


def by_postgres(spec: UnloadSpec) -> bool:
    """Can PostgreSQL's COPY write this format (so Python handles blocks, not rows)?"""
    if spec.fmt in ("JSON", "PARQUET"):
        return True
    return pg_can_write_csv(spec) if spec.fmt == "CSV" else pg_can_write_text(spec)


def _pg_error(exc: psycopg.Error) -> RedshiftError:
    return RedshiftError(f"ERROR: {(exc.diag.message_primary or str(exc)).strip()}")


def _describe(conn: psycopg.Connection[Any], query: str) -> list[OutColumn]:
    try:
        with conn.cursor() as cur:
            cur.execute(pgsql.SQL("SELECT * FROM ({}) AS unload_query LIMIT 0").format(pgsql.SQL(query)))
            return [OutColumn(d.name, d.type_code, d.precision, d.scale, d.display_size)
                    for d in cur.description or []]
    except psycopg.Error as exc:
        raise _pg_error(exc) from None


def _layout(spec: UnloadSpec, columns: list[OutColumn]) -> Layout:
    names = [c.name for c in columns]
    for col in spec.partition_by:
        if col not in names:
            raise RedshiftError(f"ERROR: PARTITION BY column \"{col}\" is not in the query's output")
    part_cols = [names.index(c) for c in spec.partition_by]
    keep = [i for i in range(len(columns)) if spec.partition_include or i not in part_cols]
    if not keep:
        raise RedshiftError("ERROR: UNLOAD with PARTITION BY needs at least one column outside the partition "
                            "columns (or INCLUDE)")
    if spec.fixed_width is not None and len(spec.fixed_width) != len(keep):
        raise RedshiftError(f"ERROR: FIXEDWIDTH specifies {len(spec.fixed_width)} columns but the query "
                            f"unloads {len(keep)}")
    return Layout(columns, part_cols, keep, [columns[i] for i in keep])


def _unload_blocks(conn: psycopg.Connection[Any], source: BlockSource, dest: Destination) -> int:
    """PostgreSQL formats; blocks of rows go to the open part (a partition's first row opens its folder)."""
    rows = 0
    writer: PartWriter | None = None if source.partition_names else dest.writer("")
    with CopyOut(conn, source.statement.as_string(conn)) as out:
        while True:
            block = out.read(writer.room if writer is not None else BLOCK, source.row_prefix)
            if out.rows:
                if writer is None:
                    raise RuntimeError("UNLOAD PARTITION BY: rows before the first partition's first row")
                writer.add_block(source.decode(block), out.rows)
                rows += out.rows
            if out.at_boundary:
                values, row = source.split_first_row(out.take_pending())
                if writer is not None:
                    writer.end_part()  # a folder whose text repeats later continues with its next part
                writer = dest.writer(partition_folder(source.partition_names, values))
                writer.add_block(source.decode(row), 1)
                rows += 1
            elif out.pending is not None:
                assert writer is not None
                if not writer.fits(len(out.pending)):
                    writer.end_part()
            elif out.done:
                return rows


def _unload_rows(conn: psycopg.Connection[Any], query: str, layout: Layout, dest: Destination) -> int:
    """Row by row: PostgreSQL's text format parsed, each row formatted in Python."""
    query_sql: pgsql.Composable = pgsql.SQL(query)
    if layout.part_cols:
        query_sql = sorted_rows_query(query, layout.columns, layout.part_cols)
    statement = pgsql.SQL("COPY ({}) TO STDOUT").format(query_sql).as_string(conn)
    names = [layout.columns[i].name for i in layout.part_cols]
    rows, folder = 0, None
    writer: PartWriter | None = None if layout.part_cols else dest.writer("")
    with CopyOut(conn, statement) as out:
        while block := out.read(BLOCK):
            for line in block.split(b"\n")[:-1]:  # the text format escapes newlines inside values
                values = parse_pg_text_line(line)
                if layout.part_cols:
                    here = partition_folder(names, [values[i] for i in layout.part_cols])
                    if here != folder:
                        if writer is not None:
                            writer.end_part()
                        folder, writer = here, dest.writer(here)
                assert writer is not None
                writer.add_row([values[i] for i in layout.keep])
                rows += 1
    return rows
