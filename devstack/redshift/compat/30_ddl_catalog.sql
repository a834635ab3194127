-- (No backslashes in literals here: the server runs with standard_conforming_strings=off.)
-- What Redshift knows about tables, views and procedures but PostgreSQL cannot keep, because the
-- rewriter strips it (ENCODE, DISTSTYLE, DISTKEY, SORTKEY, BACKUP, late binding, OUT parameters).
-- devstack/redshift/ddlcatalog.py writes these rows when it runs the DDL; SHOW TABLE / SHOW VIEW /
-- SHOW PROCEDURE and the system views below read them. Rows are keyed by object id, so a rename
-- keeps them; the event trigger at the end forgets them when the object (or column) is dropped.

CREATE TABLE IF NOT EXISTS rs_compat.ddl_tables (
    relid oid PRIMARY KEY,
    backup boolean NOT NULL DEFAULT true,
    diststyle text,                                -- AUTO | EVEN | KEY | ALL (NULL: not given, AUTO)
    distkey smallint,                              -- attnum
    sortstyle text,                                -- COMPOUND | INTERLEAVED | AUTO
    sortkey smallint[] NOT NULL DEFAULT '{}'       -- attnums, in key order
);

CREATE TABLE IF NOT EXISTS rs_compat.ddl_columns (
    relid oid NOT NULL,
    attnum smallint NOT NULL,
    encoding text NOT NULL,                        -- as given with ENCODE (lower case)
    PRIMARY KEY (relid, attnum)
);

CREATE TABLE IF NOT EXISTS rs_compat.ddl_views (
    relid oid PRIMARY KEY,
    kind "char" NOT NULL,                          -- l: late-binding view, m: materialized view
    definition text NOT NULL,                      -- the CREATE statement as it was sent
    autorefresh boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS rs_compat.ddl_routines (
    prooid oid PRIMARY KEY,
    body text NOT NULL,                            -- the body as written (before rewriting)
    out_args smallint[] NOT NULL DEFAULT '{}',     -- 1-based positions of OUT parameters (PG has INOUT)
    nonatomic boolean NOT NULL DEFAULT false,
    security_definer boolean NOT NULL DEFAULT false
);

CREATE OR REPLACE FUNCTION rs_compat._forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM rs_compat.ddl_tables t USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND t.relid = d.objid;
    DELETE FROM rs_compat.ddl_columns t USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND t.relid = d.objid AND (d.objsubid = 0 OR t.attnum = d.objsubid);
    UPDATE rs_compat.ddl_tables t SET distkey = NULL, diststyle = 'EVEN'
    FROM pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0 AND t.relid = d.objid AND t.distkey = d.objsubid;
    UPDATE rs_compat.ddl_tables t SET sortkey = array_remove(t.sortkey, d.objsubid::smallint)
    FROM pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0 AND t.relid = d.objid;
    DELETE FROM rs_compat.ddl_views t USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND t.relid = d.objid;
    DELETE FROM rs_compat.ddl_routines t USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_proc'::regclass AND t.prooid = d.objid;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'rs_compat_forget_dropped') THEN
        CREATE EVENT TRIGGER rs_compat_forget_dropped ON sql_drop EXECUTE FUNCTION rs_compat._forget_dropped();
    END IF;
END
$$;

-- Late-binding views run their query when they are read: the view itself is
-- `SELECT * FROM rs_compat.late_binding_rows('<query>') AS q(<columns>)`, so PostgreSQL records no
-- dependency on the tables and they can be dropped and recreated under it, as on Redshift.
CREATE OR REPLACE FUNCTION rs_compat.late_binding_rows(query text) RETURNS SETOF record
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE query;
END
$$;

-- pg_get_late_binding_view_cols(): columns of late-binding views; the caller names the columns:
-- SELECT * FROM pg_get_late_binding_view_cols() cols(view_schema name, view_name name, col_name name,
--                                                     col_type varchar, col_num int)
CREATE OR REPLACE FUNCTION rs_compat.pg_get_late_binding_view_cols() RETURNS SETOF record
    LANGUAGE sql STABLE AS $$
    SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)::varchar, a.attnum::integer
    FROM rs_compat.ddl_views v
    JOIN pg_class c ON c.oid = v.relid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE v.kind = 'l'
    ORDER BY 1, 2, 5 $$;

-- Materialized views (PostgreSQL has no incremental refresh: state 0, always fully recomputed).
CREATE OR REPLACE VIEW rs_compat.stv_mv_info AS
SELECT rs_compat.redshift_database()::character(128) AS db_name, n.nspname::character(128) AS schema,
       c.relname::character(128) AS name, 0::bigint AS updated_upto_xid,
       (CASE WHEN c.relispopulated THEN 'f' ELSE 't' END)::character(1) AS is_stale,
       pg_get_userbyid(c.relowner)::character(128) AS owner_user_name, 0 AS state,
       (CASE WHEN coalesce(v.autorefresh, false) THEN 't' ELSE 'f' END)::character(1) AS autorefresh,
       'f'::character(1) AS autorewrite
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN rs_compat.ddl_views v ON v.relid = c.oid
WHERE c.relkind = 'm';

CREATE OR REPLACE VIEW rs_compat.svv_mv_info AS
SELECT db_name AS database_name, schema AS schema_name, owner_user_name AS user_name, name, is_stale, state,
       autorefresh, autorewrite
FROM rs_compat.stv_mv_info;

-- PG_PROC_INFO: pg_proc with prooid; parameters the rewriter turned from OUT into INOUT are OUT again
-- (proargmodes 'o', not among proargtypes), as Redshift reports them.
CREATE OR REPLACE VIEW rs_compat.pg_proc_info AS
SELECT p.oid AS prooid, p.proname, p.pronamespace, p.proowner, p.prolang, p.procost, p.prorows, p.provariadic,
       p.prosupport, p.prokind, coalesce(r.security_definer, p.prosecdef) AS prosecdef, p.proleakproof,
       p.proisstrict, p.proretset, p.provolatile, p.proparallel,
       coalesce(f.nargs, p.pronargs)::smallint AS pronargs,
       (p.pronargdefaults - coalesce(f.converted, 0))::smallint AS pronargdefaults,
       p.prorettype, coalesce(f.argtypes, p.proargtypes) AS proargtypes, p.proallargtypes,
       coalesce(f.modes, p.proargmodes) AS proargmodes, p.proargnames,
       CASE WHEN coalesce(f.converted, 0) = 0 THEN p.proargdefaults END AS proargdefaults,
       p.protrftypes, p.prosrc, p.probin, p.prosqlbody, p.proconfig, p.proacl
FROM pg_proc p
LEFT JOIN rs_compat.ddl_routines r ON r.prooid = p.oid
LEFT JOIN LATERAL (
    SELECT array_agg(m ORDER BY k) AS modes,
           coalesce(array_to_string(array_agg(t ORDER BY k) FILTER (WHERE m <> 'o'), ' '), '')::oidvector AS argtypes,
           count(*) FILTER (WHERE m <> 'o') AS nargs,
           count(*) FILTER (WHERE m = 'o' AND pm = 'b') AS converted
    FROM unnest(p.proallargtypes, p.proargmodes) WITH ORDINALITY AS a(t, pm, k)
    CROSS JOIN LATERAL (SELECT CASE WHEN k = ANY (r.out_args) THEN 'o'::"char" ELSE pm END AS m) AS mm
) AS f ON cardinality(r.out_args) > 0;

-- to_regtype() that also gives NULL for text that is not a type name at all ('f1 integer').
CREATE OR REPLACE FUNCTION rs_compat._try_regtype(t text) RETURNS oid
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN to_regtype(t)::oid;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END
$$;
