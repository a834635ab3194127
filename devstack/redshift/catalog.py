"""ListDatabases, ListSchemas, ListTables and DescribeTable, answered from the mapped
database's catalog (these calls are synchronous in the real service too)."""

from __future__ import annotations

from typing import Any

from devstack.redshift.engine import Engine
from devstack.redshift.results import TYPES
from devstack.redshift.validation import connection, paged

# Emulator plumbing (and PostgreSQL internals Redshift does not show).
_SYSTEM_SCHEMAS = ("pg_toast", "pg_temp_", "pg_toast_temp_", "rs_compat")


class CatalogApi:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ListDatabases(self, body: dict[str, Any]) -> dict[str, Any]:
        target, database, _ = connection(body, allow_session=False)
        self.engine.databases.ensure(target, database)  # the connected database always exists
        names = self.engine.databases.redshift_databases(target)
        return paged(body, "Databases", names)

    def ListSchemas(self, body: dict[str, Any]) -> dict[str, Any]:
        pattern = body.get("SchemaPattern") or "%"
        rows = self._catalog(body, "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY nspname",
                             (pattern,))
        return paged(body, "Schemas", [r[0] for r in rows if not r[0].startswith(_SYSTEM_SCHEMAS)])

    def ListTables(self, body: dict[str, Any]) -> dict[str, Any]:
        rows = self._catalog(
            body,
            "SELECT table_schema, table_name, table_type FROM information_schema.tables"
            " WHERE table_schema LIKE %s AND table_name LIKE %s ORDER BY table_schema, table_name",
            (body.get("SchemaPattern") or "%", body.get("TablePattern") or "%"),
        )
        kinds = {"BASE TABLE": "TABLE", "VIEW": "VIEW", "LOCAL TEMPORARY": "LOCAL TEMPORARY",
                 "FOREIGN": "EXTERNAL TABLE"}
        tables = [{"name": t, "schema": s, "type": kinds.get(k, k)} for s, t, k in rows
                  if not s.startswith(_SYSTEM_SCHEMAS)
                  and (body.get("SchemaPattern") or s not in ("pg_catalog", "information_schema"))]
        return paged(body, "Tables", tables)

    def DescribeTable(self, body: dict[str, Any]) -> dict[str, Any]:
        schema = body.get("Schema") or "public"
        table = body.get("Table")
        rows = self._catalog(
            body,
            "SELECT c.table_schema, c.table_name, c.column_name, c.udt_name, c.character_maximum_length,"
            " c.numeric_precision, c.numeric_scale, c.datetime_precision, c.is_nullable, c.column_default"
            " FROM information_schema.columns c WHERE c.table_schema = %s AND (%s::text IS NULL OR c.table_name = %s)"
            " ORDER BY c.table_name, c.ordinal_position",
            (schema, table, table),
        )
        by_name = {t.name: t for t in TYPES.values()}
        by_name.update(text=TYPES[25], jsonb=TYPES[3802], json=TYPES[114], bytea=TYPES[17])
        columns = []
        for sch, tbl, col, udt, char_len, num_prec, num_scale, dt_prec, nullable, default in rows:
            t = by_name.get(udt)
            precision = char_len or num_prec or (t.precision if t else 0)
            scale = num_scale if num_scale is not None else (dt_prec if dt_prec is not None and t and t.scale else 0)
            meta = {
                "name": col, "label": col, "typeName": t.name if t else udt, "length": char_len or 0,
                "nullable": 1 if nullable == "YES" else 0, "precision": precision or 0, "scale": scale or 0,
                "isSigned": bool(t and t.signed), "isCaseSensitive": bool(t and t.case_sensitive),
                "isCurrency": udt == "money", "schemaName": sch, "tableName": tbl,
            }
            if default is not None:
                meta["columnDefault"] = default
            columns.append(meta)
        out = paged(body, "ColumnList", columns)
        if table:
            out["TableName"] = table
        return out

    def _catalog(self, body: dict[str, Any], query: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        target, database, _ = connection(body, allow_session=False)
        dbname = self.engine.databases.ensure(target, body.get("ConnectedDatabase") or database)
        pool = self.engine.databases.pool(dbname)
        conn = pool.acquire()
        try:
            return conn.execute(query, args).fetchall()
        finally:
            pool.release(conn)
