"""The DDL introspection a table copy or schema migration needs, through a plain boto3 redshift-data
client: SHOW TABLE / SHOW VIEW / SHOW PROCEDURE in one warehouse, their output run in another
(a second cluster + database), and the catalog views that list what to copy."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.integration.conftest import wait

Rows = list[list[Any]]

ORDERS_DDL = """CREATE TABLE sales.orders (
    order_id integer NOT NULL ENCODE az64,
    note varchar(256) ENCODE lzo,
    code char(3),
    id bigint identity(100, 5),
    created timestamp DEFAULT getdate() ENCODE az64,
    amount decimal(12,2) DEFAULT 0 NOT NULL ENCODE zstd,
    flag boolean,
    ratio real ENCODE raw,
    PRIMARY KEY (order_id)
) BACKUP NO DISTSTYLE KEY DISTKEY (order_id) COMPOUND SORTKEY (created, order_id)"""

ORDERS_SHOWN = """CREATE TABLE sales.orders (
    order_id integer NOT NULL ENCODE az64 distkey,
    note character varying(256) ENCODE lzo,
    code character(3) ENCODE lzo,
    id bigint NOT NULL identity(100,5) ENCODE az64,
    created timestamp without time zone DEFAULT getdate() ENCODE az64,
    amount numeric(12,2) NOT NULL DEFAULT 0 ENCODE zstd,
    flag boolean,
    ratio real,
    PRIMARY KEY (order_id)
)
BACKUP NO
DISTSTYLE KEY
SORTKEY ( created, order_id );"""

COLUMNS_SQL = ("SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, "
               "is_nullable, column_default, is_identity, identity_start, identity_increment "
               "FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = '{table}' "
               "ORDER BY ordinal_position")
# amazon-redshift-utils' admin.v_view_dependency, unchanged.
VIEW_DEPENDENCY_SQL = """SELECT DISTINCT
    srcobj.oid AS src_oid, srcnsp.nspname AS src_schemaname, srcobj.relname AS src_objectname,
    tgtobj.oid AS dependent_viewoid, tgtnsp.nspname AS dependent_schemaname, tgtobj.relname AS dependent_objectname
FROM pg_catalog.pg_class AS srcobj
INNER JOIN pg_catalog.pg_depend AS srcdep ON srcobj.oid = srcdep.refobjid
INNER JOIN pg_catalog.pg_depend AS tgtdep ON srcdep.objid = tgtdep.objid
JOIN pg_catalog.pg_class AS tgtobj ON tgtdep.refobjid = tgtobj.oid AND srcobj.oid <> tgtobj.oid
LEFT OUTER JOIN pg_catalog.pg_namespace AS srcnsp ON srcobj.relnamespace = srcnsp.oid
LEFT OUTER JOIN pg_catalog.pg_namespace tgtnsp ON tgtobj.relnamespace = tgtnsp.oid
WHERE tgtdep.deptype = 'i' AND tgtobj.relkind = 'v'"""
# The same through pg_rewrite: which relations each view's rewrite rule references.
REWRITE_DEPENDENCY_SQL = """SELECT DISTINCT v.relname AS view_name, d.relname AS dep_name
FROM pg_depend dep JOIN pg_rewrite r ON r.oid = dep.objid
JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_class d ON d.oid = dep.refobjid
WHERE v.oid <> d.oid AND vn.nspname = 'sales'"""


class Warehouse:
    """One (cluster or workgroup, database) reached through the Data API."""

    def __init__(self, client: Any, target: dict[str, str]) -> None:
        self.client, self.target = client, target

    def run(self, sql: str, *, expect: str = "FINISHED") -> dict[str, Any]:
        desc = wait(self.client, self.client.execute_statement(Sql=sql, **self.target)["Id"])
        assert desc["Status"] == expect, f"{sql[:80]!r}: {desc.get('Error')}"
        return desc

    def error(self, sql: str) -> str:
        return str(self.run(sql, expect="FAILED")["Error"])

    def rows(self, sql: str) -> Rows:
        result = self.client.get_statement_result(Id=self.run(sql)["Id"])
        return [[None if f.get("isNull") else next(iter(f.values())) for f in rec] for rec in result["Records"]]

    def columns(self, sql: str) -> list[str]:
        result = self.client.get_statement_result(Id=self.run(sql)["Id"])
        return [m["name"] for m in result["ColumnMetadata"]]

    def one(self, sql: str) -> Any:
        rows = self.rows(sql)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def batch(self, sqls: list[str]) -> dict[str, Any]:
        return wait(self.client, self.client.batch_execute_statement(Sqls=sqls, **self.target)["Id"])


@pytest.fixture()
def source(rsdata, database) -> Warehouse:
    wh = Warehouse(rsdata, {"WorkgroupName": "wg-test", "Database": database})
    wh.run("CREATE SCHEMA IF NOT EXISTS sales")
    return wh


@pytest.fixture()
def target(rsdata) -> Warehouse:
    wh = Warehouse(rsdata, {"ClusterIdentifier": "c-ddl-target", "Database": f"db_{uuid.uuid4().hex[:8]}",
                            "DbUser": "awsuser"})
    wh.run("CREATE SCHEMA IF NOT EXISTS sales")
    return wh


def retarget(ddl: str, old: str, new: str) -> str:
    """What the loader does with SHOW output: another name at the start of the statement."""
    pattern = re.compile(r"^(CREATE (?:OR REPLACE )?(?:MATERIALIZED )?(?:TABLE|VIEW|PROCEDURE) )" + re.escape(old),
                         re.IGNORECASE)
    assert pattern.match(ddl), ddl[:80]
    return pattern.sub(lambda m: m.group(1) + new, ddl, count=1)


# --- SHOW TABLE -------------------------------------------------------------------------------

def test_show_table_prints_every_attribute_and_recreates_the_table_elsewhere(source, target):
    source.run(ORDERS_DDL)
    assert source.columns("SHOW TABLE sales.orders") == ["Show Table DDL statement"]
    shown = source.one("SHOW TABLE sales.orders")
    assert shown == ORDERS_SHOWN

    target.run(retarget(shown, "sales.orders", "sales.orders_copy"))
    assert target.one("SHOW TABLE sales.orders_copy") == ORDERS_SHOWN.replace("sales.orders", "sales.orders_copy")
    assert target.rows(COLUMNS_SQL.format(schema="sales", table="orders_copy")) == \
        source.rows(COLUMNS_SQL.format(schema="sales", table="orders"))
    target.run("INSERT INTO sales.orders_copy (order_id) VALUES (1), (2)")
    assert target.rows("SELECT id, amount, created IS NOT NULL FROM sales.orders_copy ORDER BY id") == \
        [[100, "0.00", True], [105, "0.00", True]]


def test_show_table_defaults_for_a_table_created_without_redshift_attributes(source):
    source.run("CREATE TABLE sales.plain (a int, b varchar(10), c double precision, d date, e super, f bool)")
    assert source.one("SHOW TABLE sales.plain") == """CREATE TABLE sales.plain (
    a integer ENCODE az64,
    b character varying(10) ENCODE lzo,
    c double precision,
    d date ENCODE az64,
    e super,
    f boolean
)
DISTSTYLE AUTO;"""
    # Column-level DISTKEY / SORTKEY; unqualified names resolve on the search_path.
    source.run("CREATE TABLE keyed (k varchar(36) NOT NULL DISTKEY SORTKEY, v int ENCODE delta)")
    assert source.one("SHOW TABLE keyed") == """CREATE TABLE public.keyed (
    k character varying(36) NOT NULL distkey,
    v integer ENCODE delta
)
DISTSTYLE KEY
SORTKEY ( k );"""


def test_show_table_errors(source):
    assert source.error("SHOW TABLE sales.nope") == 'ERROR: relation "sales.nope" does not exist'
    source.run("CREATE VIEW sales.some_view AS SELECT 1 AS x")
    assert source.error("SHOW TABLE sales.some_view") == 'ERROR: "sales.some_view" is not a table'
    assert source.error("SHOW VIEW sales.nope") == 'ERROR: relation "sales.nope" does not exist'


def test_attributes_follow_rename_alter_and_drop(source):
    source.run("CREATE TABLE sales.t (a int ENCODE zstd, b varchar(5)) DISTSTYLE ALL SORTKEY (b)")
    source.run("CREATE TABLE IF NOT EXISTS sales.t (a int) DISTSTYLE EVEN")  # exists: nothing changes
    source.run("ALTER TABLE sales.t RENAME TO t2")
    source.run("ALTER TABLE sales.t2 RENAME COLUMN a TO a2")
    source.run("ALTER TABLE sales.t2 ADD COLUMN c numeric(5,1) DEFAULT 1.5 ENCODE bytedict NULL")
    source.run("ALTER TABLE sales.t2 ALTER COLUMN b ENCODE runlength")
    source.run("ALTER TABLE sales.t2 ALTER DISTKEY a2")
    assert source.one("SHOW TABLE sales.t2") == """CREATE TABLE sales.t2 (
    a2 integer ENCODE zstd distkey,
    b character varying(5) ENCODE runlength,
    c numeric(5,1) DEFAULT 1.5 ENCODE bytedict
)
DISTSTYLE KEY
SORTKEY ( b );"""
    source.run("ALTER TABLE sales.t2 DROP COLUMN c")
    source.run("ALTER TABLE sales.t2 ALTER SORTKEY AUTO")
    source.run("ALTER TABLE sales.t2 ALTER ENCODE AUTO")
    assert source.one("SHOW TABLE sales.t2") == """CREATE TABLE sales.t2 (
    a2 integer ENCODE az64 distkey,
    b character varying(5) ENCODE lzo
)
DISTSTYLE KEY;"""
    # Dropped with the table: a new table of the same name starts with the defaults.
    source.run("DROP TABLE sales.t2")
    source.run("CREATE TABLE sales.t2 (a2 int)")
    assert source.one("SHOW TABLE sales.t2").endswith("a2 integer ENCODE az64\n)\nDISTSTYLE AUTO;")
    assert source.one("SELECT COUNT(*) FROM rs_compat.ddl_columns") == 0


def test_like_copies_distribution_sort_key_and_encodings(source):
    source.run("CREATE TABLE sales.parent (k int ENCODE delta, v varchar(9)) DISTKEY (k) SORTKEY (v)")
    source.run("CREATE TABLE sales.child (LIKE sales.parent)")
    assert source.one("SHOW TABLE sales.child") == source.one("SHOW TABLE sales.parent").replace("parent", "child")


def test_attributes_roll_back_with_the_table(source):
    desc = source.batch(["CREATE TABLE sales.rolled (a int ENCODE zstd) DISTSTYLE ALL", "SELECT 1 / 0"])
    assert desc["Status"] == "FAILED"
    source.run("CREATE TABLE sales.rolled (a int)")
    assert source.one("SHOW TABLE sales.rolled").endswith("a integer ENCODE az64\n)\nDISTSTYLE AUTO;")


def test_ctas_and_plain_ddl_still_work(source):
    source.run("CREATE SCHEMA IF NOT EXISTS sales")
    source.run("DROP TABLE IF EXISTS sales.never_there")
    source.run("CREATE TABLE sales.base (a int)")
    source.run("INSERT INTO sales.base VALUES (1), (2), (3)")
    ctas = source.run("CREATE TABLE sales.copy DISTKEY (a) SORTKEY (a) AS SELECT a FROM sales.base")
    assert ctas["ResultRows"] == 3
    source.run("ALTER TABLE sales.copy ADD COLUMN note varchar(10) DEFAULT 'n/a'")
    source.run("ALTER TABLE sales.copy ADD COLUMN maybe int NULL")
    assert source.rows("SELECT COUNT(*), MIN(note), COUNT(maybe) FROM sales.copy") == [[3, "n/a", 0]]
    assert "DISTSTYLE KEY\nSORTKEY ( a );" in source.one("SHOW TABLE sales.copy")


# --- views ---------------------------------------------------------------------------------------

def test_views_late_binding_views_and_dependencies(source, target):
    source.run("CREATE TABLE sales.items (id int, price decimal(8,2), kind varchar(10))")
    source.run("INSERT INTO sales.items VALUES (1, 2.50, 'a'), (2, 4.00, 'b')")
    source.run("CREATE VIEW sales.cheap AS SELECT id, price FROM sales.items WHERE price < 3")
    source.run("CREATE VIEW sales.cheap_ids AS SELECT id FROM sales.cheap")
    source.run("CREATE VIEW sales.late AS SELECT id, kind FROM sales.items WITH NO SCHEMA BINDING")

    assert source.columns("SHOW VIEW sales.cheap") == ["Show View DDL statement"]
    cheap = source.one("SHOW VIEW sales.cheap")
    assert cheap.startswith("SELECT items.id,") and cheap.endswith("WHERE (items.price < (3)::numeric);")
    late = source.one("SHOW VIEW sales.late")
    assert late == "CREATE VIEW sales.late AS SELECT id, kind FROM sales.items WITH NO SCHEMA BINDING;"

    # Dependencies as Redshift users query them: bound views only (late-binding ones record none).
    deps = {(r[2], r[5]) for r in source.rows(VIEW_DEPENDENCY_SQL) if r[1] == "sales"}
    assert deps == {("items", "cheap"), ("cheap", "cheap_ids")}
    assert {tuple(r) for r in source.rows(REWRITE_DEPENDENCY_SQL)} == {("cheap", "items"), ("cheap_ids", "cheap")}
    listed = source.rows("SELECT table_name, table_type FROM svv_tables WHERE table_schema = 'sales' ORDER BY 1")
    assert listed == [["cheap", "VIEW"], ["cheap_ids", "VIEW"], ["items", "BASE TABLE"], ["late", "VIEW"]]
    assert source.rows("SELECT * FROM pg_get_late_binding_view_cols() cols(view_schema name, view_name name, "
                       "col_name name, col_type varchar, col_num int) ORDER BY col_num") == \
        [["sales", "late", "id", "integer", 1], ["sales", "late", "kind", "character varying(10)", 2]]

    # Late binding: the table can go away under the view and come back.
    source.run("DROP TABLE sales.items CASCADE")  # takes the bound views with it
    assert "relation \"sales.items\" does not exist" in source.error("SELECT * FROM sales.late")
    source.run("CREATE TABLE sales.items (id int, kind varchar(10))")
    source.run("INSERT INTO sales.items VALUES (7, 'z')")
    assert source.rows("SELECT * FROM sales.late") == [[7, "z"]]

    # Recreated elsewhere from what SHOW VIEW printed.
    target.run("CREATE TABLE sales.items (id int, price decimal(8,2), kind varchar(10))")
    target.run("CREATE OR REPLACE VIEW sales.cheap AS " + cheap)
    target.run(retarget(late, "sales.late", "sales.late"))
    assert target.one("SHOW VIEW sales.late") == late
    assert target.one("SHOW VIEW sales.cheap") == cheap


def test_late_binding_views_need_qualified_names(source):
    source.run("CREATE TABLE sales.items (id int)")
    expected = ("ERROR: All the relation names inside should be qualified when creating VIEW WITH NO SCHEMA "
                "BINDING.")
    assert source.error("CREATE VIEW sales.bad AS SELECT id FROM items WITH NO SCHEMA BINDING") == expected
    source.run("CREATE VIEW sales.ok AS WITH x AS (SELECT id FROM sales.items) SELECT EXTRACT(year FROM now()) AS y, "
               "id FROM x WITH NO SCHEMA BINDING")
    # Replaced by an ordinary view: no longer late-binding.
    source.run("CREATE OR REPLACE VIEW sales.ok AS SELECT 1::numeric AS y, id FROM sales.items")
    assert source.one("SHOW VIEW sales.ok").startswith("SELECT (1)::numeric AS y,")


def test_materialized_view_listing_refresh_and_recreation(source, target):
    source.run("CREATE TABLE sales.events (kind varchar(10))")
    source.run("INSERT INTO sales.events VALUES ('a'), ('b'), ('a')")
    mv_sql = ("CREATE MATERIALIZED VIEW sales.kinds BACKUP NO DISTSTYLE ALL SORTKEY (kind) AUTO REFRESH YES AS "
              "SELECT kind, COUNT(*) AS n FROM sales.events GROUP BY kind")
    source.run(mv_sql)
    assert source.rows("SELECT TRIM(db_name), TRIM(schema), TRIM(name), is_stale, state, autorefresh "
                       "FROM stv_mv_info") == [[source.target["Database"], "sales", "kinds", "f", 0, "t"]]
    assert source.rows("SELECT TRIM(schema_name), TRIM(name) FROM svv_mv_info") == [["sales", "kinds"]]
    assert source.rows("SELECT table_type FROM svv_tables WHERE table_name = 'kinds'") == [["VIEW"]]
    assert source.one("SHOW VIEW sales.kinds") == mv_sql + ";"

    source.run("INSERT INTO sales.events VALUES ('c')")
    source.run("REFRESH MATERIALIZED VIEW sales.kinds")
    assert source.rows("SELECT kind, n FROM sales.kinds ORDER BY kind") == [["a", 2], ["b", 1], ["c", 1]]

    target.run("CREATE TABLE sales.events (kind varchar(10))")
    target.run(source.one("SHOW VIEW sales.kinds").rstrip(";"))
    assert target.rows("SELECT TRIM(name), autorefresh FROM stv_mv_info") == [["kinds", "t"]]


# --- procedures ----------------------------------------------------------------------------------

PROCEDURE_SQL = """CREATE OR REPLACE PROCEDURE sales.tally(f1 int, INOUT f2 varchar(20), OUT total bigint)
AS $$
BEGIN
    f2 := f2 || '+' || NVL(f1, 0);
    SELECT INTO total COUNT(*) FROM sales.items;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER"""

LIST_PROCEDURES_SQL = ("SELECT p.proname, oidvectortypes(p.proargtypes) FROM pg_proc_info p "
                       "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'sales' AND p.prokind = 'p'")


def test_procedure_round_trip(source, target):
    source.run("CREATE TABLE sales.items (id int)")
    source.run("INSERT INTO sales.items VALUES (1), (2)")
    source.run(PROCEDURE_SQL)
    assert source.rows(LIST_PROCEDURES_SQL) == [["tally", "integer, character varying"]]
    assert source.rows("SELECT proargmodes, pronargs FROM pg_proc_info WHERE proname = 'tally'") == \
        [["{i,b,o}", 2]]

    assert source.columns("SHOW PROCEDURE sales.tally(integer, character varying)") == \
        ["Stored Procedure Definition"]
    shown = source.one("SHOW PROCEDURE sales.tally(integer, character varying)")
    assert shown == """CREATE OR REPLACE PROCEDURE sales.tally(f1 integer, INOUT f2 character varying, OUT total bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
AS $_$
BEGIN
    f2 := f2 || '+' || NVL(f1, 0);
    SELECT INTO total COUNT(*) FROM sales.items;
END;
$_$"""
    assert source.one("SHOW PROCEDURE sales.tally") == shown  # not overloaded: no argument list needed
    assert source.one("SHOW PROCEDURE sales.tally(f1 int, INOUT f2 varchar, OUT bigint)") == shown
    assert source.error("SHOW PROCEDURE sales.tally(bigint)") == "ERROR: procedure sales.tally(bigint) does not exist"

    target.run("CREATE TABLE sales.items (id int)")
    target.run(shown)
    assert target.one("SHOW PROCEDURE sales.tally") == shown
    assert target.rows(LIST_PROCEDURES_SQL) == source.rows(LIST_PROCEDURES_SQL)
    assert target.rows("CALL sales.tally(3, 'x')") == [["x+3", 0]]
    assert source.rows("CALL sales.tally(3, 'x')") == [["x+3", 2]]

    # Dropped by its Redshift signature (input parameters only), as listed by pg_proc_info.
    target.run("DROP PROCEDURE sales.tally(integer, character varying)")
    assert target.one("SELECT COUNT(*) FROM rs_compat.ddl_routines") == 0
    source.run("DROP PROCEDURE IF EXISTS sales.tally(int, varchar, bigint)")  # all parameters also name it
    source.run("DROP PROCEDURE IF EXISTS sales.tally(int, varchar)")
    assert source.rows(LIST_PROCEDURES_SQL) == []


def test_overloaded_procedures_need_argument_types(source):
    source.run("CREATE PROCEDURE sales.p(a int) AS $$ BEGIN NULL; END $$ LANGUAGE plpgsql")
    source.run("CREATE PROCEDURE sales.p(a varchar) AS $$ BEGIN RAISE INFO 'v'; END $$ LANGUAGE plpgsql")
    assert "not unique" in source.error("SHOW PROCEDURE sales.p")
    assert "RAISE INFO" in source.one("SHOW PROCEDURE sales.p(varchar)")
    assert "NULL;" in source.one("SHOW PROCEDURE sales.p(integer)")

