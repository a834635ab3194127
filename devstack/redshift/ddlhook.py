"""The engine's entry for DDL that needs more than rewriting (see ddlparse.py for why).

`ddl_hook(sql)` is None for almost every statement (a regex on the first word decides). For
SHOW TABLE / SHOW VIEW / SHOW PROCEDURE it answers from the catalog; for CREATE TABLE, ALTER
TABLE, CREATE [MATERIALIZED] VIEW and CREATE PROCEDURE it runs the rewritten statement and
records the Redshift-only attributes in the same transaction; late-binding views become
views that run their query when read, so no dependency ties them to their tables.

The hook gets the engine's `run(parts) -> (rowcount, result)`, which runs PostgreSQL
statements exactly as the engine runs any rewritten statement (parameters, result streaming).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql as pgsql

from devstack.redshift import ddlcatalog as cat
from devstack.redshift.contracts import RedshiftError
from devstack.redshift.ddlparse import (
    AlterTable,
    CreateProcedure,
    CreateTable,
    CreateView,
    DropProcedure,
    Show,
    classify,
)
from devstack.redshift.ddlrefs import LATE_BINDING_UNQUALIFIED, unqualified_relation
from devstack.redshift.ddlshow import PROCEDURE_COLUMN, TABLE_COLUMN, VIEW_COLUMN
from devstack.redshift.rewrite import rewrite, split_statements

Conn = psycopg.Connection[Any]
RunParts = Callable[[list[str]], tuple[int, Any]]
Hook = Callable[[Conn, RunParts], tuple[int, Any]]


def ddl_hook(sql: str) -> Hook | None:
    """How to run `sql` if it is DDL the emulator keeps extra catalog for, else None."""
    stmt = classify(sql)
    if isinstance(stmt, Show):
        return lambda conn, run: run([_show_sql(conn, stmt)])
    if isinstance(stmt, CreateTable) and not stmt.temporary:
        return lambda conn, run: _create_table(conn, run, sql, stmt)
    if isinstance(stmt, AlterTable):
        return lambda conn, run: _alter_table(conn, run, sql, stmt)
    if isinstance(stmt, CreateView) and stmt.late_binding:
        return lambda conn, run: _create_late_binding_view(conn, run, stmt)
    if isinstance(stmt, CreateView) and (stmt.materialized or stmt.or_replace):
        return lambda conn, run: _create_view(conn, run, sql, stmt)
    if isinstance(stmt, CreateProcedure):
        return lambda conn, run: _create_procedure(conn, run, sql, stmt)
    if isinstance(stmt, DropProcedure):
        return lambda conn, run: _drop_procedure(conn, run, sql, stmt)
    return None


def _rewritten(sql: str) -> list[str]:
    return split_statements(rewrite(sql)) or [""]


def _show_sql(conn: Conn, stmt: Show) -> str:
    if stmt.kind == "TABLE":
        text, column = cat.show_table(conn, stmt.name), TABLE_COLUMN
    elif stmt.kind == "VIEW":
        text, column = cat.show_view(conn, stmt.name), VIEW_COLUMN
    else:
        text, column = cat.show_procedure(conn, stmt.name, stmt.args), PROCEDURE_COLUMN
    return pgsql.SQL("SELECT {}::varchar AS {}").format(pgsql.Literal(text), pgsql.Identifier(column)).as_string(conn)


def _create_table(conn: Conn, run: RunParts, sql: str, stmt: CreateTable) -> tuple[int, Any]:
    parts = _rewritten(sql)
    with conn.transaction():
        existed = stmt.if_not_exists and cat.find_relation(conn, stmt.name, creation=True) is not None
        outcome = run(parts)
        if existed:
            return outcome  # IF NOT EXISTS did nothing: the existing table keeps its attributes
        found = cat.find_relation(conn, stmt.name, creation=True)
        if found is None:
            return outcome
        if stmt.has_attributes:
            encodings = {n: c.encoding for n, c in stmt.columns.items() if c.encoding}
            cat.write_table(conn, found[0], backup=stmt.backup, diststyle=stmt.diststyle, distkey=stmt.distkey,
                            sortstyle=stmt.sortstyle, sortkey=stmt.sortkey, encodings=encodings)
        elif stmt.like is not None:
            parent = cat.find_relation(conn, stmt.like)
            if parent is not None:
                cat.copy_table_attributes(conn, parent[0], found[0])
    return outcome


def _alter_table(conn: Conn, run: RunParts, sql: str, stmt: AlterTable) -> tuple[int, Any]:
    parts = _rewritten(sql)
    with conn.transaction():
        outcome = run(parts)
        found = cat.find_relation(conn, stmt.name)
        if found is not None and found[1] in cat.TABLE_KINDS:
            cat.alter_table(conn, found[0], stmt.changes)
    return outcome


def _create_view(conn: Conn, run: RunParts, sql: str, stmt: CreateView) -> tuple[int, Any]:
    parts = _rewritten(sql)
    with conn.transaction():
        outcome = run(parts)
        found = cat.find_relation(conn, stmt.name, creation=True)
        if found is not None and stmt.materialized:
            cat.write_view(conn, found[0], "m", stmt.statement, stmt.autorefresh)
        elif found is not None:
            cat.forget_view(conn, found[0])  # a late-binding view replaced by an ordinary one
    return outcome


def _create_late_binding_view(conn: Conn, run: RunParts, stmt: CreateView) -> tuple[int, Any]:
    if unqualified_relation(stmt.query) is not None:
        raise RedshiftError(LATE_BINDING_UNQUALIFIED)
    rewritten = rewrite(stmt.statement)  # drops WITH NO SCHEMA BINDING
    bound = classify(rewritten)
    if not isinstance(bound, CreateView):
        raise RedshiftError("ERROR: devstack could not read this late-binding view's query")
    with conn.transaction():
        # Created bound first: PostgreSQL checks the query and tells us its columns.
        outcome = run(split_statements(rewritten) or [""])
        found = cat.find_relation(conn, stmt.name, creation=True)
        if found is None:
            raise RedshiftError(f'ERROR: relation "{stmt.name.text}" does not exist')
        oid, _, qualified = found
        columns = cat.view_columns(conn, oid)
        names = ", ".join(n for n, _ in columns)
        casts = ", ".join(f"q.{n}::{t}" for n, t in columns)
        query = f"SELECT {casts} FROM ({bound.query}) AS q({names})"
        definitions = ", ".join(f"{n} {t}" for n, t in columns)
        conn.execute(pgsql.SQL("CREATE OR REPLACE VIEW {} AS SELECT * FROM rs_compat.late_binding_rows({}) AS q({})")
                     .format(pgsql.SQL(qualified), pgsql.Literal(query), pgsql.SQL(definitions)))
        cat.write_view(conn, oid, "l", stmt.statement)
    return outcome


def _create_procedure(conn: Conn, run: RunParts, sql: str, stmt: CreateProcedure) -> tuple[int, Any]:
    rewritten = rewrite(sql)
    pg = classify(rewritten)
    with conn.transaction():
        outcome = run(split_statements(rewritten) or [""])
        if isinstance(pg, CreateProcedure) and len(pg.params) == len(stmt.params) and stmt.body is not None:
            oid = cat.find_procedure_by_types(conn, stmt.name, [p.type for p in pg.params])
            if oid is not None:
                outs = [n + 1 for n, p in enumerate(stmt.params) if p.mode == "OUT"]
                cat.write_routine(conn, oid, stmt.body, outs, stmt.nonatomic, stmt.security_definer)
    return outcome


def _drop_procedure(conn: Conn, run: RunParts, sql: str, stmt: DropProcedure) -> tuple[int, Any]:
    """Redshift names a procedure by its input parameters; PostgreSQL also wants the OUT ones
    the rewriter turned into INOUT. One match: drop exactly that one; else PostgreSQL decides."""
    found = cat.find_procedures(conn, stmt.name, stmt.args)
    if len(found) != 1:
        return run(_rewritten(sql))
    return run([f"DROP PROCEDURE {found[0]['signature']} {stmt.tail}".rstrip()])
