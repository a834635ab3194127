-- (No backslashes in literals here: the server runs with standard_conforming_strings=off.)
-- Redshift system views, reduced to the columns tools and loaders read, from PostgreSQL's catalog.
-- Redshift-only properties get fixed values: no distribution keys, no sort keys, no compression.

-- The Redshift database name this PostgreSQL database stands for (sessions.py writes it in a comment).
CREATE OR REPLACE FUNCTION rs_compat.redshift_database() RETURNS text
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(CASE WHEN d.c LIKE '{%' THEN d.c::json ->> 'database' END, current_database())
    FROM (SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = current_database()) AS d $$;

-- Exact row count of one table (svv_table_info reports real counts; devstack tables are small).
CREATE OR REPLACE FUNCTION rs_compat._row_count(t regclass) RETURNS bigint
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', t) INTO n;
    RETURN n;
END
$$;

-- Like Redshift, only non-empty permanent user tables appear.
CREATE OR REPLACE VIEW rs_compat.svv_table_info AS
SELECT current_database()::text AS database, n.nspname::text AS schema, c.oid::integer AS table_id,
       c.relname::text AS "table", 'N'::text AS encoded, 'AUTO(ALL)'::text AS diststyle,
       NULL::text AS sortkey1, 0 AS max_varchar, NULL::text AS sortkey1_enc, 0 AS sortkey_num,
       greatest(1, ceil(pg_total_relation_size(c.oid) / 1048576.0))::bigint AS size, 0::numeric(10, 4) AS pct_used,
       0::numeric(10, 4) AS empty, NULL::numeric(5, 2) AS unsorted, 0::numeric(5, 2) AS stats_off,
       r.n::numeric(38, 0) AS tbl_rows, NULL::numeric(19, 2) AS skew_sortkey1, NULL::numeric(19, 2) AS skew_rows,
       r.n::numeric(38, 0) AS estimated_visible_rows, NULL::text AS risk_event, NULL::numeric(12, 2) AS vacuum_sort_benefit,
       NULL::timestamp AS create_time
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (SELECT rs_compat._row_count(c.oid) AS n) AS r
WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rs_compat') AND left(n.nspname, 3) <> 'pg_'
  AND r.n > 0;

-- PG_TABLE_DEF: columns of tables in schemas on the search_path.
CREATE OR REPLACE VIEW rs_compat.pg_table_def AS
SELECT n.nspname AS schemaname, c.relname AS tablename, a.attname AS "column",
       format_type(a.atttypid, a.atttypmod)::text AS type, 'none'::char(12) AS encoding, false AS distkey,
       0 AS sortkey, a.attnotnull AS notnull
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (current_schemas(false))
  AND n.nspname <> 'rs_compat';

CREATE OR REPLACE VIEW rs_compat.svv_columns AS
SELECT table_catalog, table_schema, table_name, column_name, ordinal_position, column_default, is_nullable,
       data_type, character_maximum_length, numeric_precision, numeric_precision_radix, numeric_scale,
       datetime_precision, interval_type, interval_precision, character_set_catalog, character_set_schema,
       character_set_name, collation_catalog, collation_schema, collation_name, domain_name, remarks
FROM (SELECT c.*,
             col_description((quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass,
                             c.ordinal_position::integer) AS remarks
      FROM information_schema.columns c
      WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema', 'rs_compat')
        AND left(c.table_schema, 3) <> 'pg_') AS c;

-- Materialized views are listed as views, as Redshift lists them (their mv_tbl__ storage tables,
-- which Redshift lists as base tables, do not exist here).
CREATE OR REPLACE VIEW rs_compat.svv_tables AS
SELECT rs_compat.redshift_database()::character varying(128) AS table_catalog,
       t.table_schema::character varying(128) AS table_schema, t.table_name::character varying(128) AS table_name,
       t.table_type::character varying(128) AS table_type, NULL::character varying(256) AS remarks
FROM (SELECT table_schema, table_name, table_type FROM information_schema.tables
      UNION ALL
      SELECT schemaname, matviewname, 'VIEW' FROM pg_matviews) AS t
WHERE t.table_schema NOT IN ('pg_catalog', 'information_schema', 'rs_compat') AND left(t.table_schema, 3) <> 'pg_';

CREATE OR REPLACE VIEW rs_compat.stv_sessions AS
SELECT backend_start::timestamp AS starttime, pid AS process, usename::char(50) AS user_name,
       datname::char(50) AS db_name, NULL::integer AS timeout_sec, NULL::timestamp AS timeout_at
FROM pg_stat_activity WHERE backend_type = 'client backend';
