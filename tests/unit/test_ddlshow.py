"""Pure parts of the emulator's DDL introspection: reading Redshift DDL (ddlparse) and laying out
SHOW TABLE / SHOW PROCEDURE text (ddlshow)."""

from __future__ import annotations

import pytest

from devstack.redshift.ddlparse import (
    AlterTable,
    CreateProcedure,
    CreateTable,
    CreateView,
    DropProcedure,
    Param,
    Show,
    classify,
    split_type_words,
)
from devstack.redshift.ddlrefs import unqualified_relation
from devstack.redshift.ddlshow import (
    ColumnDef,
    ProcedureArg,
    ProcedureDef,
    TableDef,
    default_encoding,
    render_procedure,
    render_table,
    render_view,
)
from devstack.redshift.ddltokens import Name

# --- rendering ------------------------------------------------------------------------------

def test_render_table_matches_the_documented_layout():
    # The category table of the Redshift SHOW TABLE documentation.
    table = TableDef("tickit", "category", (
        ColumnDef("catid", "smallint", "int2", not_null=True),
        ColumnDef("catgroup", "character varying(10)", "varchar"),
        ColumnDef("catname", "character varying(10)", "varchar"),
        ColumnDef("catdesc", "character varying(50)", "varchar"),
    ), diststyle="KEY", distkey="catid", sortstyle="COMPOUND", sortkey=("catid",))
    assert render_table(table) == """CREATE TABLE tickit.category (
    catid smallint NOT NULL distkey,
    catgroup character varying(10) ENCODE lzo,
    catname character varying(10) ENCODE lzo,
    catdesc character varying(50) ENCODE lzo
)
DISTSTYLE KEY
SORTKEY ( catid );"""


def test_render_table_defaults_constraints_identity_and_options():
    table = TableDef("public", "foo", (
        ColumnDef("a", "integer", "int4", not_null=True),
        ColumnDef("b", "integer", "int4", default="0"),
        ColumnDef("id", "bigint", "int8", not_null=True, identity=(1, 1), default="ignored"),
        ColumnDef('"Odd"', "real", "float4", encoding="raw"),
        ColumnDef("n", "numeric(5,2)", "numeric", encoding="RAW"),
    ), constraints=("PRIMARY KEY (a)",), backup=False, diststyle="EVEN", sortstyle="INTERLEAVED", sortkey=("a", "n"))
    assert render_table(table) == """CREATE TABLE public.foo (
    a integer NOT NULL,
    b integer DEFAULT 0 ENCODE az64,
    id bigint NOT NULL identity(1,1) ENCODE az64,
    "Odd" real,
    n numeric(5,2),
    PRIMARY KEY (a)
)
BACKUP NO
DISTSTYLE EVEN
INTERLEAVED SORTKEY ( a, n );"""


def test_raw_is_printed_only_where_it_is_not_the_default():
    plain = TableDef("s", "t", (ColumnDef("a", "integer", "int4", encoding="raw"),))
    assert "a integer ENCODE raw" in render_table(plain)
    auto_sorted = TableDef("s", "t", (ColumnDef("a", "integer", "int4"),), sortstyle="AUTO", sortkey=())
    assert "a integer ENCODE az64" in render_table(auto_sorted) and "SORTKEY" not in render_table(auto_sorted)


@pytest.mark.parametrize(("base", "sortkey", "expected"), [
    ("int2", False, "az64"), ("int8", False, "az64"), ("numeric", False, "az64"), ("date", False, "az64"),
    ("timestamptz", False, "az64"), ("varchar", False, "lzo"), ("bpchar", False, "lzo"), ("bool", False, "raw"),
    ("float4", False, "raw"), ("float8", False, "raw"), ("jsonb", False, "raw"), ("int4", True, "raw"),
])
def test_default_encoding(base, sortkey, expected):
    assert default_encoding(base, sortkey) == expected


def test_render_view_ends_with_a_semicolon():
    assert render_view(" SELECT t.a\n   FROM s.t;") == "SELECT t.a\n   FROM s.t;"
    assert render_view("CREATE VIEW s.v AS SELECT 1 WITH NO SCHEMA BINDING") == \
        "CREATE VIEW s.v AS SELECT 1 WITH NO SCHEMA BINDING;"


def test_render_procedure_like_the_documentation():
    proc = ProcedureDef("public", "test_sp2", (
        ProcedureArg("f1", "IN", "integer"), ProcedureArg("f2", "INOUT", "character varying"),
        ProcedureArg(None, "OUT", "character varying")), body=" BEGIN NULL; END; ")
    assert render_procedure(proc) == (
        "CREATE OR REPLACE PROCEDURE public.test_sp2(f1 integer, INOUT f2 character varying, OUT character varying)\n"
        " LANGUAGE plpgsql\nAS $_$ BEGIN NULL; END; $_$")


def test_render_procedure_options_and_a_body_holding_the_tag():
    proc = ProcedureDef("s", "p", (), body="x := '$_$';", nonatomic=True, security_definer=True,
                        config=("SET search_path TO 's'",))
    assert render_procedure(proc) == ("CREATE OR REPLACE PROCEDURE s.p()\n NONATOMIC\n LANGUAGE plpgsql\n"
                                      " SECURITY DEFINER\n SET search_path TO 's'\nAS $_1$x := '$_$';$_1$")


# --- reading Redshift DDL ---------------------------------------------------------------------

def test_create_table_attributes():
    stmt = classify("""-- comment first
        CREATE TABLE IF NOT EXISTS "Sales".Orders (
            id BIGINT IDENTITY(1, 1) ENCODE AZ64, "Note" VARCHAR(10) ENCODE lzo DISTKEY,
            amount DECIMAL(12, 2) DEFAULT (1 + 1), PRIMARY KEY (id)
        ) BACKUP NO DISTSTYLE KEY INTERLEAVED SORTKEY (id, "Note");""")
    assert isinstance(stmt, CreateTable)
    assert stmt.name == Name("Sales", "orders") and stmt.if_not_exists and not stmt.temporary
    assert {n: c.encoding for n, c in stmt.columns.items()} == {"id": "az64", "Note": "lzo", "amount": None}
    assert (stmt.backup, stmt.diststyle, stmt.distkey) == (False, "KEY", "Note")
    assert (stmt.sortstyle, stmt.sortkey) == ("INTERLEAVED", ("id", "Note"))
    assert stmt.has_attributes


def test_create_table_column_keys_ctas_like_and_temporary():
    column_keys = classify("create table t (k int sortkey distkey, v int)")
    assert isinstance(column_keys, CreateTable)
    assert (column_keys.diststyle, column_keys.distkey, column_keys.sortkey) == ("KEY", "k", ("k",))
    ctas = classify("CREATE TABLE s.c DISTKEY(a) SORTKEY(a) AS SELECT a FROM s.b ORDER BY a")
    assert isinstance(ctas, CreateTable) and (ctas.distkey, ctas.sortkey) == ("a", ("a",))
    like = classify("CREATE TABLE s.c (LIKE s.p INCLUDING DEFAULTS)")
    assert isinstance(like, CreateTable) and like.like == Name("s", "p") and not like.has_attributes
    plain = classify("CREATE TABLE s.d (a int) DISTSTYLE AUTO SORTKEY AUTO")
    assert isinstance(plain, CreateTable) and (plain.diststyle, plain.sortstyle) == ("AUTO", "AUTO")
    for temporary in ("CREATE TEMP TABLE x (a int)", "CREATE TABLE #x (a int)", "create local temporary table x (a int)"):
        stmt = classify(temporary)
        assert isinstance(stmt, CreateTable) and stmt.temporary


def test_alter_table_changes():
    stmt = classify("ALTER TABLE s.t ALTER COLUMN a ENCODE zstd, ALTER COLUMN b ENCODE raw")
    assert isinstance(stmt, AlterTable) and stmt.changes == [("encode", "a", "zstd"), ("encode", "b", "raw")]
    assert classify("ALTER TABLE t ALTER DISTSTYLE KEY DISTKEY c").changes == [("dist", "KEY", "c")]  # type: ignore[union-attr]
    assert classify("ALTER TABLE t ALTER DISTKEY c").changes == [("dist", "KEY", "c")]  # type: ignore[union-attr]
    assert classify("ALTER TABLE t ALTER DISTSTYLE ALL").changes == [("dist", "ALL", None)]  # type: ignore[union-attr]
    assert classify("ALTER TABLE t ALTER COMPOUND SORTKEY (a, b)").changes == \
        [("sort", "COMPOUND", ("a", "b"))]  # type: ignore[union-attr]
    assert classify("ALTER TABLE t ALTER SORTKEY NONE").changes == [("sort", "AUTO", ())]  # type: ignore[union-attr]
    assert classify("ALTER TABLE t ALTER ENCODE AUTO").changes == [("encode_auto",)]  # type: ignore[union-attr]
    assert classify("ALTER TABLE t ADD COLUMN c varchar(5) DEFAULT 'x' ENCODE bytedict").changes == \
        [("encode", "c", "bytedict")]  # type: ignore[union-attr]
    for unchanged in ("ALTER TABLE t ADD COLUMN c int", "ALTER TABLE t RENAME TO u", "ALTER TABLE t OWNER TO x"):
        assert classify(unchanged) is None


def test_views():
    late = classify("CREATE OR REPLACE VIEW s.v (a) AS SELECT x FROM s.t WITH NO SCHEMA BINDING;")
    assert isinstance(late, CreateView)
    assert late.late_binding and late.or_replace and not late.materialized
    assert late.query == "SELECT x FROM s.t" and late.statement == \
        "CREATE OR REPLACE VIEW s.v (a) AS SELECT x FROM s.t WITH NO SCHEMA BINDING"
    mv = classify("CREATE MATERIALIZED VIEW mv BACKUP NO SORTKEY(a) AUTO REFRESH YES AS SELECT a FROM s.t")
    assert isinstance(mv, CreateView) and mv.materialized and mv.autorefresh and mv.name == Name(None, "mv")
    assert classify("CREATE TEMP VIEW v AS SELECT 1") is None


def test_procedures():
    proc = classify("CREATE OR REPLACE PROCEDURE s.p(f1 int, INOUT f2 varchar(10), OUT character varying, "
                    "IN f4 double precision, o5 OUT int, INOUT d int DEFAULT NULL) NONATOMIC AS $body$ BEGIN END "
                    "$body$ LANGUAGE plpgsql SECURITY DEFINER")
    assert isinstance(proc, CreateProcedure)
    assert proc.params == [Param("f1", "IN", "int"), Param("f2", "INOUT", "varchar(10)"),
                           Param(None, "OUT", "character varying"), Param("f4", "IN", "double precision"),
                           Param("o5", "OUT", "int"), Param("d", "INOUT", "int")]
    assert proc.body == " BEGIN END " and proc.nonatomic and proc.security_definer
    quoted_body = classify("CREATE PROCEDURE p() AS 'BEGIN RAISE INFO ''x''; END' LANGUAGE plpgsql")
    assert isinstance(quoted_body, CreateProcedure) and quoted_body.body == "BEGIN RAISE INFO 'x'; END"


def test_show_statements():
    assert classify("SHOW TABLE sales.orders") == Show("TABLE", Name("sales", "orders"))
    assert classify('show view "V"') == Show("VIEW", Name(None, "V"))
    assert classify("SHOW PROCEDURE db.s.p(int, INOUT f2 varchar(10))") == \
        Show("PROCEDURE", Name("s", "p"), ["int", "INOUT f2 varchar(10)"])
    assert classify("SHOW PROCEDURE p()") == Show("PROCEDURE", Name(None, "p"), [])
    for other in ("SHOW search_path", "SHOW TABLES FROM SCHEMA dev.public", "SELECT 1", "CREATE SCHEMA s"):
        assert classify(other) is None


def test_drop_procedure():
    assert classify("DROP PROCEDURE IF EXISTS s.p(int, varchar) CASCADE") == \
        DropProcedure(Name("s", "p"), ["int", "varchar"], True, "CASCADE")
    assert classify("drop procedure p") == DropProcedure(Name(None, "p"), None)
    assert classify("DROP PROCEDURE a(int), b(int)") is None  # not Redshift: left to PostgreSQL
    assert classify("DROP TABLE t") is None


def test_split_type_words():
    assert split_type_words("integer") == ["integer"]
    assert split_type_words("INOUT f2 character varying") == \
        ["INOUT f2 character varying", "f2 character varying", "character varying"]


@pytest.mark.parametrize(("query", "unqualified"), [
    ("SELECT a FROM s.t", None),
    ("SELECT a FROM t", "t"),
    ('SELECT a FROM "S"."T" x JOIN s.u USING (a) LEFT JOIN v ON v.a = x.a', "v"),
    ("SELECT a FROM s.t, u", "u"),
    ("SELECT a FROM s.t WHERE a IN (SELECT b FROM u)", "u"),
    ("WITH c AS (SELECT 1 AS a FROM s.t) SELECT a FROM c", None),
    ("WITH c (a) AS (SELECT 1 FROM s.t) SELECT a FROM c", None),
    ("SELECT EXTRACT(year FROM d), TRIM(BOTH 'x' FROM n), a IS DISTINCT FROM b FROM s.t", None),
    ("SELECT a FROM (SELECT a FROM s.t) AS q, generate_series(1, 3) g", None),
    ("SELECT a FROM s.t UNION SELECT a FROM u", "u"),
])
def test_unqualified_relation(query, unqualified):
    assert unqualified_relation(query) == unqualified
