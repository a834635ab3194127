"""The emulator's side catalog of Redshift-only DDL attributes (compat/30_ddl_catalog.sql), and
the SHOW TABLE / SHOW VIEW / SHOW PROCEDURE answers built from it and PostgreSQL's catalog.

Everything here runs on the statement's own connection, inside its transaction, so the
attributes are written together with the object and name resolution follows the session's
search_path exactly as the DDL itself did.
"""

from __future__ import annotations

from typing import Any

import psycopg

from devstack.redshift.contracts import RedshiftError
from devstack.redshift.ddlparse import split_type_words
from devstack.redshift.ddltokens import Name
from devstack.redshift.ddlshow import (
    ColumnDef,
    ProcedureArg,
    ProcedureDef,
    TableDef,
    render_procedure,
    render_stored_statement,
    render_table,
    render_view,
)

Conn = psycopg.Connection[Any]
TABLE_KINDS = ("r", "p")
VIEW_KINDS = ("v", "m")
_MODES = {"i": "IN", "o": "OUT", "b": "INOUT", "v": "VARIADIC"}


# --- name resolution ------------------------------------------------------------------------

def find_relation(conn: Conn, name: Name, *, creation: bool = False) -> tuple[int, str, str] | None:
    """(oid, relkind, schema.name quoted) of a relation, resolved like the DDL resolved it:
    qualified names directly; unqualified ones on the search_path, or — for an object the
    statement just created — in the creation schema (current_schema())."""
    if name.schema is None and creation:
        where, args = "n.nspname = current_schema()", {}
    elif name.schema is None:
        where, args = "n.nspname = ANY (current_schemas(true))", {}
    else:
        where, args = "n.nspname = %(schema)s", {"schema": name.schema}
    row = conn.execute(
        "SELECT c.oid::int8, c.relkind::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE c.relname = %(name)s AND {where}"
        " ORDER BY array_position(current_schemas(true), n.nspname) LIMIT 1",
        {"name": name.name, **args}).fetchone()
    return (int(row[0]), row[1], row[2]) if row else None


def _attnums(conn: Conn, oid: int) -> dict[str, int]:
    rows = conn.execute("SELECT attname::text, attnum::int FROM pg_attribute"
                        " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped", (oid,)).fetchall()
    return {name: num for name, num in rows}


# --- writing ---------------------------------------------------------------------------------

def write_table(conn: Conn, oid: int, *, backup: bool = True, diststyle: str | None = None,
                distkey: str | None = None, sortstyle: str | None = None, sortkey: tuple[str, ...] = (),
                encodings: dict[str, str] | None = None) -> None:
    """Record a new table's attributes (column names as the table has them)."""
    nums = _attnums(conn, oid)
    sort_nums = [nums[c] for c in sortkey if c in nums]
    conn.execute(
        "INSERT INTO rs_compat.ddl_tables (relid, backup, diststyle, distkey, sortstyle, sortkey)"
        " VALUES (%s, %s, %s, %s, %s, %s::smallint[]) ON CONFLICT (relid) DO UPDATE SET backup = EXCLUDED.backup,"
        " diststyle = EXCLUDED.diststyle, distkey = EXCLUDED.distkey, sortstyle = EXCLUDED.sortstyle,"
        " sortkey = EXCLUDED.sortkey",
        (oid, backup, diststyle, nums.get(distkey) if distkey else None, sortstyle, sort_nums))
    conn.execute("DELETE FROM rs_compat.ddl_columns WHERE relid = %s", (oid,))
    for column, encoding in (encodings or {}).items():
        set_encoding(conn, oid, nums.get(column), encoding)


def set_encoding(conn: Conn, oid: int, attnum: int | None, encoding: str) -> None:
    if attnum is None:
        return
    conn.execute("INSERT INTO rs_compat.ddl_columns (relid, attnum, encoding) VALUES (%s, %s, %s)"
                 " ON CONFLICT (relid, attnum) DO UPDATE SET encoding = EXCLUDED.encoding",
                 (oid, attnum, encoding.lower()))


def alter_table(conn: Conn, oid: int, changes: list[tuple[object, ...]]) -> None:
    """Apply ALTER TABLE ... ALTER DISTKEY / DISTSTYLE / SORTKEY / ENCODE and ADD COLUMN ... ENCODE."""
    nums = _attnums(conn, oid)
    conn.execute("INSERT INTO rs_compat.ddl_tables (relid) VALUES (%s) ON CONFLICT DO NOTHING", (oid,))
    for change in changes:
        if change[0] == "encode":
            set_encoding(conn, oid, nums.get(str(change[1])), str(change[2]))
        elif change[0] == "encode_auto":
            conn.execute("DELETE FROM rs_compat.ddl_columns WHERE relid = %s", (oid,))
        elif change[0] == "dist":
            column = nums.get(str(change[2])) if change[2] else None
            conn.execute("UPDATE rs_compat.ddl_tables SET diststyle = %s, distkey = %s WHERE relid = %s",
                         (change[1], column, oid))
        elif change[0] == "sort":
            columns = [nums[c] for c in change[2] if c in nums]  # type: ignore[attr-defined]
            conn.execute("UPDATE rs_compat.ddl_tables SET sortstyle = %s, sortkey = %s::smallint[] WHERE relid = %s",
                         (change[1], columns, oid))


def copy_table_attributes(conn: Conn, parent: int, child: int) -> None:
    """CREATE TABLE ... (LIKE parent): Redshift's LIKE keeps distribution, sort key, BACKUP and encodings."""
    row = conn.execute(
        "SELECT backup, diststyle, (SELECT attname::text FROM pg_attribute WHERE attrelid = relid AND attnum = distkey),"
        " sortstyle, ARRAY(SELECT a.attname::text FROM unnest(sortkey) WITH ORDINALITY AS k(n, o)"
        "   JOIN pg_attribute a ON a.attrelid = relid AND a.attnum = k.n ORDER BY k.o)"
        " FROM rs_compat.ddl_tables WHERE relid = %s", (parent,)).fetchone()
    encodings = dict(conn.execute(
        "SELECT a.attname::text, c.encoding FROM rs_compat.ddl_columns c"
        " JOIN pg_attribute a ON a.attrelid = c.relid AND a.attnum = c.attnum WHERE c.relid = %s", (parent,)).fetchall())
    if row is None and not encodings:
        return
    backup, diststyle, distkey, sortstyle, sortkey = row if row else (True, None, None, None, [])
    write_table(conn, child, backup=backup, diststyle=diststyle, distkey=distkey, sortstyle=sortstyle,
                sortkey=tuple(sortkey), encodings=encodings)


def write_view(conn: Conn, oid: int, kind: str, statement: str, autorefresh: bool = False) -> None:
    conn.execute("INSERT INTO rs_compat.ddl_views (relid, kind, definition, autorefresh) VALUES (%s, %s, %s, %s)"
                 " ON CONFLICT (relid) DO UPDATE SET kind = EXCLUDED.kind, definition = EXCLUDED.definition,"
                 " autorefresh = EXCLUDED.autorefresh", (oid, kind, statement, autorefresh))


def forget_view(conn: Conn, oid: int) -> None:
    conn.execute("DELETE FROM rs_compat.ddl_views WHERE relid = %s", (oid,))


def view_columns(conn: Conn, oid: int) -> list[tuple[str, str]]:
    return [(n, t) for n, t in conn.execute(
        "SELECT quote_ident(attname), format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (oid,)).fetchall()]


def find_procedure_by_types(conn: Conn, name: Name, type_texts: list[str]) -> int | None:
    """The procedure just created: name in the creation schema, all parameter types equal."""
    types = [r[0] for r in conn.execute("SELECT rs_compat._try_regtype(x)::int8 FROM unnest(%s::text[])"
                                        " WITH ORDINALITY AS u(x, o) ORDER BY o", (type_texts,)).fetchall()]
    if any(t is None for t in types):
        return None
    row = conn.execute(
        "SELECT p.oid::int8 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE p.prokind = 'p' AND p.proname = %s AND n.nspname = coalesce(%s::text, current_schema())"
        " AND coalesce(p.proallargtypes, p.proargtypes::oid[])::int8[] = %s::int8[]",
        (name.name, name.schema, types)).fetchone()
    return int(row[0]) if row else None


def write_routine(conn: Conn, oid: int, body: str, out_args: list[int], nonatomic: bool,
                  security_definer: bool) -> None:
    conn.execute(
        "INSERT INTO rs_compat.ddl_routines (prooid, body, out_args, nonatomic, security_definer)"
        " VALUES (%s, %s, %s::smallint[], %s, %s) ON CONFLICT (prooid) DO UPDATE SET body = EXCLUDED.body,"
        " out_args = EXCLUDED.out_args, nonatomic = EXCLUDED.nonatomic, security_definer = EXCLUDED.security_definer",
        (oid, body, out_args, nonatomic, security_definer))


# --- SHOW TABLE / SHOW VIEW --------------------------------------------------------------------

def show_table(conn: Conn, name: Name) -> str:
    found = find_relation(conn, name)
    if found is None:
        raise RedshiftError(f'ERROR: relation "{name.text}" does not exist')
    oid, kind, qualified = found
    if kind not in TABLE_KINDS:
        raise RedshiftError(f'ERROR: "{name.text}" is not a table')
    return render_table(table_def(conn, oid, qualified))


def table_def(conn: Conn, oid: int, qualified: str) -> TableDef:
    rows = conn.execute(
        "SELECT quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),"
        " coalesce(bt.typname, t.typname)::text, a.attnotnull, pg_get_expr(d.adbin, d.adrelid),"
        " s.seqstart, s.seqincrement, dc.encoding, a.attnum::int"
        " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " LEFT JOIN pg_depend dep ON a.attidentity <> '' AND dep.classid = 'pg_class'::regclass"
        "  AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum"
        "  AND dep.deptype = 'i'"
        " LEFT JOIN pg_sequence s ON s.seqrelid = dep.objid"
        " LEFT JOIN rs_compat.ddl_columns dc ON dc.relid = a.attrelid AND dc.attnum = a.attnum"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)).fetchall()
    columns = tuple(ColumnDef(name, type_sql, base, bool(notnull), None if seqstart is not None else default,
                              (int(seqstart), int(step)) if seqstart is not None else None, encoding)
                    for name, type_sql, base, notnull, default, seqstart, step, encoding, _ in rows)
    by_num = {num: name for name, *_, num in rows}
    constraints = tuple(r[0] for r in conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s AND contype IN ('p', 'u', 'f')"
        " ORDER BY CASE contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 ELSE 2 END, conname", (oid,)).fetchall())
    attrs = conn.execute("SELECT backup, diststyle, distkey, sortstyle, sortkey FROM rs_compat.ddl_tables"
                         " WHERE relid = %s", (oid,)).fetchone()
    backup, diststyle, distkey, sortstyle, sortkey = attrs if attrs else (True, None, None, None, [])
    schema, _, table = qualified.partition(".")
    return TableDef(schema, table, columns, constraints, backup=bool(backup), diststyle=diststyle or "AUTO",
                    distkey=by_num.get(distkey) if distkey else None, sortstyle=sortstyle,
                    sortkey=tuple(by_num[n] for n in (sortkey or []) if n in by_num))


def show_view(conn: Conn, name: Name) -> str:
    found = find_relation(conn, name)
    if found is None:
        raise RedshiftError(f'ERROR: relation "{name.text}" does not exist')
    oid, kind, qualified = found
    if kind not in VIEW_KINDS:
        raise RedshiftError(f'ERROR: "{name.text}" is not a view')
    stored = conn.execute("SELECT definition FROM rs_compat.ddl_views WHERE relid = %s", (oid,)).fetchone()
    if stored:
        return render_stored_statement(stored[0])
    query = conn.execute("SELECT pg_get_viewdef(%s::oid)", (oid,)).fetchone()[0]  # type: ignore[index]
    if kind == "m":
        return render_stored_statement(f"CREATE MATERIALIZED VIEW {qualified} AS\n{query.strip()}")
    return render_view(query)


# --- SHOW PROCEDURE ---------------------------------------------------------------------------

def find_procedures(conn: Conn, name: Name, args: list[str] | None) -> list[dict[str, Any]]:
    """Procedures a Redshift `name[(args)]` names: the argument list matches either the input
    parameters (Redshift's signature) or all of them including OUT ones; unqualified names
    look in the first schema of the search_path that has a procedure of that name."""
    rows = conn.execute(
        "SELECT p.oid::int8, quote_ident(n.nspname), quote_ident(p.proname), n.nspname::text,"
        " coalesce(p.proallargtypes, p.proargtypes::oid[])::int8[], coalesce(p.proargmodes::text[], '{}'),"
        " coalesce(p.proargnames, '{}'), p.prosrc, coalesce(p.proconfig, '{}'), r.body,"
        " coalesce(r.out_args, '{}')::int[], coalesce(r.nonatomic, false), coalesce(r.security_definer, p.prosecdef),"
        " p.oid::regprocedure::text"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " LEFT JOIN rs_compat.ddl_routines r ON r.prooid = p.oid"
        " WHERE p.prokind = 'p' AND p.proname = %(name)s AND"
        " (n.nspname = %(schema)s::text OR (%(schema)s::text IS NULL AND n.nspname = ANY (current_schemas(true))))"
        " ORDER BY array_position(current_schemas(true), n.nspname), p.oid",
        {"name": name.name, "schema": name.schema}).fetchall()
    if rows:
        rows = [r for r in rows if r[3] == rows[0][3]]  # unqualified: the first schema on the path
    candidates = [_candidate(r) for r in rows]
    if args is not None:
        wanted = _arg_types(conn, args)
        candidates = [c for c in candidates if wanted in (c["in_types"], c["all_types"])]
    return candidates


def show_procedure(conn: Conn, name: Name, args: list[str] | None) -> str:
    candidates = find_procedures(conn, name, args)
    if not candidates:
        shown = name.text + (f"({', '.join(args)})" if args is not None else "")
        raise RedshiftError(f"ERROR: procedure {shown} does not exist")
    if len(candidates) > 1:
        raise RedshiftError(f'ERROR: procedure name "{name.text}" is not unique: give its argument types')
    c = candidates[0]
    type_names = dict(conn.execute("SELECT t::int8, format_type(t::oid, NULL) FROM unnest(%s::int8[]) AS t",
                                   (c["all_types"],)).fetchall())
    proc_args = tuple(ProcedureArg(_quote(conn, arg_name) if arg_name else None, _MODES.get(mode, "IN"),
                                   type_names[t]) for t, mode, arg_name in c["args"])
    config = tuple(f"SET {k} TO '{v}'" for k, _, v in (s.partition("=") for s in c["config"]))
    return render_procedure(ProcedureDef(c["schema"], c["name"], proc_args, c["body"], c["nonatomic"],
                                         bool(c["definer"]), config))


def _candidate(row: tuple[Any, ...]) -> dict[str, Any]:
    oid, schema, name, _, types, modes, names, prosrc, config, body, out_args, nonatomic, definer, signature = row
    modes = list(modes) or ["i"] * len(types)
    modes = ["o" if n + 1 in out_args else m for n, m in enumerate(modes)]
    names = list(names) + [""] * (len(types) - len(names))
    args = list(zip(types, modes, names))
    return {"oid": oid, "schema": schema, "name": name, "args": args, "all_types": list(types),
            "in_types": [t for t, m, _ in args if m != "o"], "body": body if body is not None else prosrc,
            "config": list(config), "nonatomic": nonatomic, "definer": definer, "signature": signature}


def _arg_types(conn: Conn, args: list[str]) -> list[int | None]:
    """SHOW PROCEDURE's `[argname] [argmode] argtype` list as type oids."""
    out: list[int | None] = []
    for arg in args:
        found = None
        for candidate in split_type_words(arg):
            row = conn.execute("SELECT rs_compat._try_regtype(%s)::int8", (candidate,)).fetchone()
            if row and row[0] is not None:
                found = int(row[0])
                break
        out.append(found)
    return out


def _quote(conn: Conn, ident: str) -> str:
    return str(conn.execute("SELECT quote_ident(%s)", (ident,)).fetchone()[0])  # type: ignore[index]
