"""SQL for data leaving or moving between warehouses: UNLOAD, archive DELETE, copy checks, introspection.

Pure, like chalicelib/sql.py, whose `quote_ident` / `quote_literal` are the only way a name or a value
gets in here. The only verbatim text is a catalog unload's query (trusted, like post_load steps) and
DDL the source warehouse printed itself (SHOW TABLE / SHOW VIEW / SHOW PROCEDURE).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.movespecs import UnloadOptions
from chalicelib.pipelines import TableName
from chalicelib.sql import qualified, quote_ident, quote_literal

CHECK_PREFIX = "rl_check_"   # alias of a guard statement: its failure means a count did not match
_COMPRESSION = {"gzip": "GZIP", "bzip2": "BZIP2", "zstd": "ZSTD"}
_FORMAT = {"csv": "FORMAT AS CSV", "parquet": "FORMAT AS PARQUET", "json": "FORMAT AS JSON"}
_CUTOFF_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def render_unload(query: str, url: str, *, iam_role: str, options: UnloadOptions, cleanpath: bool,
                  verbose_manifest: bool = False) -> str:
    """One UNLOAD. `query` is a SELECT we rendered or a catalog query; it goes in as a literal."""
    if not url.startswith("s3://"):
        raise ValueError(f"UNLOAD destination must be an s3:// url, got {url!r}")
    if not iam_role:
        raise ValueError("UNLOAD needs an IAM role (the warehouse's iam_role)")
    parts = ["UNLOAD", f"({quote_literal(query)})", "TO", quote_literal(url), "IAM_ROLE", quote_literal(iam_role),
             _FORMAT[options.format]]
    if options.header:
        parts.append("HEADER")
    if options.compression:
        parts.append(_COMPRESSION[options.compression])
    if options.partition_by:
        parts.append("PARTITION BY (" + ", ".join(quote_ident(c) for c in options.partition_by) + ")")
    if options.max_file_size_mb:
        parts.append(f"MAXFILESIZE {int(options.max_file_size_mb)} MB")
    if options.manifest or verbose_manifest:
        parts.append("MANIFEST VERBOSE" if verbose_manifest else "MANIFEST")
    if options.kms_key_id:
        parts += ["KMS_KEY_ID", quote_literal(options.kms_key_id), "ENCRYPTED"]
    if not options.parallel:
        parts.append("PARALLEL OFF")
    # Our prefixes are private to one job (or, with overwrite, meant to be replaced): a retry that finds
    # the files of a failed attempt replaces them rather than failing on "destination is not empty".
    if cleanpath:
        parts.append("CLEANPATH")
    return " ".join(parts)


def render_select_table(table: TableName, columns: Sequence[str] | None = None) -> str:
    cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
    return f"SELECT {cols} FROM {qualified(table)}"


def cutoff_literal(cutoff: str) -> str:
    """`CAST('2026-09-01 00:00:00' AS TIMESTAMP)`; the cutoff is computed by us, checked anyway."""
    if not _CUTOFF_RE.match(cutoff):
        raise ValueError(f"cutoff {cutoff!r} is not 'YYYY-MM-DD HH:MM:SS'")
    return f"CAST({quote_literal(cutoff)} AS TIMESTAMP)"


def render_archive_select(table: TableName, column: str, cutoff: str) -> str:
    return f"SELECT * FROM {qualified(table)} WHERE {quote_ident(column)} < {cutoff_literal(cutoff)}"


def render_archive_delete(table: TableName, column: str, cutoff: str) -> str:
    return f"DELETE FROM {qualified(table)} WHERE {quote_ident(column)} < {cutoff_literal(cutoff)}"


def render_count(table: TableName, where: str | None = None) -> str:
    return f"SELECT COUNT(*) FROM {qualified(table)}" + (f" WHERE {where}" if where else "")


def render_count_guard(count_sql: str, expected: int, label: str) -> str:
    """A statement that fails (division by zero) unless `count_sql` returns `expected`.

    SQL has no ASSERT outside procedures; in a batch, its failure rolls back the whole
    transaction, so what follows it (a DELETE, a COMMIT of copied rows) never happens.
    """
    if not re.fullmatch(r"[a-z_]+", label):
        raise ValueError(f"guard label {label!r} must be lower-case letters and _")
    return (f"SELECT 1 / (CASE WHEN ({count_sql}) = {int(expected)} THEN 1 ELSE 0 END) "
            f"AS {quote_ident(CHECK_PREFIX + label)}")


def guard_label(sql_text: str) -> str | None:
    """The label of a guard statement (None for any other statement)."""
    found = re.search(r'AS "' + CHECK_PREFIX + r'([a-z_]+)"\s*$', sql_text)
    return found.group(1) if found else None


def render_lock(table: TableName) -> str:
    return f"LOCK {qualified(table)}"


def render_delete_all(table: TableName) -> str:
    return f"DELETE FROM {qualified(table)}"  # not TRUNCATE: that commits the transaction


def render_copy_parquet(table: TableName, manifest_url: str, *, iam_role: str, columns: Sequence[str]) -> str:
    return (f"COPY {qualified(table)} (" + ", ".join(quote_ident(c) for c in columns) + ") FROM "
            f"{quote_literal(manifest_url)} IAM_ROLE {quote_literal(iam_role)} FORMAT AS PARQUET MANIFEST")


def render_create_schema(schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"


def render_add_column(table: TableName, column: str, type_sql: str) -> str:
    return f"ALTER TABLE {qualified(table)} ADD COLUMN {quote_ident(column)} {type_sql}"


# ------------------------------------------------------------ introspection
def render_columns_query(table: TableName) -> str:
    """Columns in order with what is needed to spell their types (information_schema: same on both)."""
    return ("SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
            f"FROM information_schema.columns WHERE table_schema = {quote_literal(table.schema)} "
            f"AND table_name = {quote_literal(table.name)} ORDER BY ordinal_position")


def render_show_table(table: TableName) -> str:
    return f"SHOW TABLE {qualified(table)}"


def render_show_view(schema: str, name: str) -> str:
    return f"SHOW VIEW {quote_ident(schema)}.{quote_ident(name)}"


def render_list_tables(schemas: Sequence[str]) -> str:
    """Base tables of the schemas, without materialized views' backing tables (mv_tbl__*)."""
    return ("SELECT table_schema, table_name FROM svv_tables WHERE table_type = 'BASE TABLE' "
            f"AND table_schema IN ({_literals(schemas)}) AND LEFT(table_name, 8) <> 'mv_tbl__' "
            "ORDER BY table_schema, table_name")


def render_list_views(schemas: Sequence[str]) -> str:
    return ("SELECT table_schema, table_name FROM svv_tables WHERE table_type = 'VIEW' "
            f"AND table_schema IN ({_literals(schemas)}) ORDER BY table_schema, table_name")


def render_list_materialized_views(schemas: Sequence[str]) -> str:
    return f"SELECT TRIM(schema) AS schema, TRIM(name) AS name FROM stv_mv_info WHERE TRIM(schema) IN ({_literals(schemas)})"


def render_view_dependencies(schemas: Sequence[str]) -> str:
    """(view, what it depends on) pairs among views of the schemas, from the rewrite rules."""
    return ("SELECT DISTINCT vn.nspname AS view_schema, v.relname AS view_name, dn.nspname AS dep_schema, "
            "d.relname AS dep_name FROM pg_depend dep JOIN pg_rewrite r ON r.oid = dep.objid "
            "JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace "
            "JOIN pg_class d ON d.oid = dep.refobjid JOIN pg_namespace dn ON dn.oid = d.relnamespace "
            f"WHERE v.oid <> d.oid AND vn.nspname IN ({_literals(schemas)})")


def render_list_procedures(schemas: Sequence[str]) -> str:
    return ("SELECT n.nspname AS schema, p.proname AS name, oidvectortypes(p.proargtypes) AS args "
            "FROM pg_proc_info p JOIN pg_namespace n ON n.oid = p.pronamespace "
            f"WHERE p.prokind = 'p' AND n.nspname IN ({_literals(schemas)}) ORDER BY 1, 2, 3")


def render_show_procedure(schema: str, name: str, args: str) -> str:
    if not re.fullmatch(r"[a-z0-9 _,()\"\[\]]*", args):
        raise ValueError(f"unexpected procedure argument types {args!r}")
    return f"SHOW PROCEDURE {quote_ident(schema)}.{quote_ident(name)}({args})"


def render_refresh(schema: str, name: str) -> str:
    return f"REFRESH MATERIALIZED VIEW {quote_ident(schema)}.{quote_ident(name)}"


def _literals(values: Sequence[str]) -> str:
    if not values:
        raise ValueError("need at least one value")
    return ", ".join(quote_literal(v) for v in values)


# ------------------------------------------------------------------ types
_PLAIN_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "boolean", "date",
                "timestamp without time zone", "timestamp with time zone", "time without time zone",
                "time with time zone", "super", "geometry", "geography", "hllsketch", "varbyte"}


def column_type_sql(row: Mapping[str, Any]) -> str:
    """The type of an information_schema.columns row, as DDL (only known type names pass)."""
    data_type = str(row.get("data_type") or "").lower()
    if data_type in ("character varying", "character"):
        length = row.get("character_maximum_length")
        return f"{data_type}({int(length)})" if length else data_type
    if data_type == "numeric":
        precision, scale = row.get("numeric_precision"), row.get("numeric_scale")
        return f"numeric({int(precision)},{int(scale or 0)})" if precision else "numeric"
    if data_type in _PLAIN_TYPES:
        return data_type
    raise ValueError(f"column {row.get('column_name')!r}: type {data_type!r} is not one the loader can recreate")


def retarget_ddl(ddl: str, source: TableName, target: TableName) -> str:
    """SHOW TABLE's `CREATE TABLE <source> (...)` as `CREATE TABLE <target> (...)`."""
    text = ddl.strip().rstrip(";").strip()
    found = re.match(r'^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?("?[\w$]+"?\s*\.\s*"?[\w$]+"?)\s*\(', text,
                     re.IGNORECASE)
    if not found:
        raise ValueError(f"SHOW TABLE {source.qualified} did not print a CREATE TABLE statement: {text[:80]!r}")
    named = found.group(1).replace('"', "").replace(" ", "").lower()
    if named != source.qualified:
        raise ValueError(f"SHOW TABLE {source.qualified} printed DDL for {named}")
    if ";" in text and _outside_quotes_semicolon(text):
        raise ValueError(f"SHOW TABLE {source.qualified} printed more than one statement")
    return f"CREATE TABLE {qualified(target)} " + text[found.end() - 1:]


def _outside_quotes_semicolon(text: str) -> bool:
    quote: str | None = None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            return True
    return False
