"""Named parameters, BatchExecuteStatement transactions, sessions and ClientToken."""

from __future__ import annotations

import time
import uuid

import pytest


def p(**values: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


# --- parameters -------------------------------------------------------------------

def test_parameters_are_cast_by_the_server(rsdata, run):
    run("CREATE TABLE people (id INT, name VARCHAR(30), born DATE)")
    run("INSERT INTO people VALUES (:id, :name, :born)", Parameters=p(id="1", name="O'Brien", born="2001-02-03"))
    desc = run("SELECT name, born::text, '50%' AS pct, id::text || ':x' AS tag, '::id' AS lit /* :c */ "
               "FROM people WHERE id = :id AND born > :d::date -- :cmt",
               Parameters=p(id="1", d="2000-01-01"))
    assert desc["QueryParameters"] == [{"name": "id", "value": "1"}, {"name": "d", "value": "2000-01-01"}]
    rows = rsdata.get_statement_result(Id=desc["Id"])["Records"]
    assert rows == [[{"stringValue": "O'Brien"}, {"stringValue": "2001-02-03"}, {"stringValue": "50%"},
                     {"stringValue": "1:x"}, {"stringValue": "::id"}]]


def test_parameter_values_are_never_sql(rsdata, run):
    desc = run("SELECT :v AS v, $$:notaparam$$ AS d", Parameters=p(v="x'; DROP TABLE y; --"))
    assert rsdata.get_statement_result(Id=desc["Id"])["Records"] == [
        [{"stringValue": "x'; DROP TABLE y; --"}, {"stringValue": ":notaparam"}]]


@pytest.mark.parametrize("sql, params, message", [
    ("SELECT :a, :b", {"a": "1"}, ":b is used in the SQL statement but is not specified"),
    ("SELECT :a", {"a": "1", "extra": "2"}, "extra is specified in the parameters list but is not used"),
    ("SELECT ':a'", {"a": "1"}, "a is specified in the parameters list but is not used"),
])
def test_parameter_mismatch_is_a_validation_error(rsdata, database, sql, params, message):
    with pytest.raises(rsdata.exceptions.ValidationException, match=message):
        rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql=sql, Parameters=p(**params))


# --- batches ----------------------------------------------------------------------

def _batch(rsdata, database, sqls, **kwargs):
    return rsdata.batch_execute_statement(WorkgroupName="wg-test", Database=database, Sqls=sqls, **kwargs)["Id"]


def test_batch_is_all_or_nothing(rsdata, run, wait, database):
    run("CREATE TABLE b (x INT)")
    bid = _batch(rsdata, database, ["INSERT INTO b VALUES (1)", "INSERT INTO b VALUES (2)",
                                    "INSERT INTO missing VALUES (3)", "INSERT INTO b VALUES (4)"])
    desc = wait(rsdata, bid)
    assert desc["Status"] == "FAILED"
    assert desc["Error"] == 'ERROR: relation "missing" does not exist'
    subs = desc["SubStatements"]
    assert [s["Id"] for s in subs] == [f"{bid}:{i}" for i in range(1, 5)]
    assert [s["Status"] for s in subs] == ["FINISHED", "FINISHED", "FAILED", "ABORTED"]
    assert subs[2]["Error"] == desc["Error"]
    assert subs[0]["QueryString"] == "INSERT INTO b VALUES (1)" and subs[0]["ResultRows"] == 1
    count = run("SELECT count(*) FROM b")
    assert rsdata.get_statement_result(Id=count["Id"])["Records"] == [[{"longValue": 0}]]


def test_batch_sub_statement_results(rsdata, wait, database):
    bid = _batch(rsdata, database, ["CREATE TEMP TABLE tmp AS SELECT 5 AS v", "SELECT v FROM tmp", "SELECT 'z'"])
    desc = wait(rsdata, bid)
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert desc["HasResultSet"] is True
    assert [s["HasResultSet"] for s in desc["SubStatements"]] == [False, True, True]
    assert rsdata.get_statement_result(Id=f"{bid}:2")["Records"] == [[{"longValue": 5}]]
    assert rsdata.describe_statement(Id=f"{bid}:3")["QueryString"] == "SELECT 'z'"
    with pytest.raises(rsdata.exceptions.ValidationException, match="sub-statement id"):
        rsdata.get_statement_result(Id=bid)
    with pytest.raises(rsdata.exceptions.ResourceNotFoundException):
        rsdata.describe_statement(Id=f"{bid}:9")


def test_truncate_in_a_batch_commits_like_redshift(rsdata, run, wait, database):
    run("CREATE TABLE keep (x INT)")
    run("CREATE TABLE wipe (x INT)")
    run("INSERT INTO wipe VALUES (1)")
    bid = _batch(rsdata, database, ["INSERT INTO keep VALUES (1)", "TRUNCATE wipe",
                                    "INSERT INTO keep VALUES (2)", "SELECT 1/0"])
    assert wait(rsdata, bid)["Status"] == "FAILED"
    keep = rsdata.get_statement_result(Id=run("SELECT x FROM keep")["Id"])["Records"]
    wipe = rsdata.get_statement_result(Id=run("SELECT count(*) FROM wipe")["Id"])["Records"]
    assert keep == [[{"longValue": 1}]]  # committed by the TRUNCATE; row 2 rolled back
    assert wipe == [[{"longValue": 0}]]


def test_auto_commit_batch_keeps_earlier_statements(rsdata, run, wait, database):
    run("CREATE TABLE ac (x INT)")
    bid = _batch(rsdata, database, ["INSERT INTO ac VALUES (1)", "SELECT 1/0", "INSERT INTO ac VALUES (2)"],
                 ExecutionMode="AUTO_COMMIT")
    desc = wait(rsdata, bid)
    assert desc["Status"] == "FAILED" and desc["Error"] == "ERROR: division by zero"
    assert rsdata.get_statement_result(Id=run("SELECT x FROM ac")["Id"])["Records"] == [[{"longValue": 1}]]


def test_batch_parameters_are_shared(rsdata, run, wait, database):
    run("CREATE TABLE bp (x INT, y VARCHAR(5))")
    bid = _batch(rsdata, database, ["INSERT INTO bp VALUES (:x, :y)", "UPDATE bp SET x = x + :x"],
                 Parameters=p(x="2", y="a"))
    assert wait(rsdata, bid)["Status"] == "FINISHED"
    rows = rsdata.get_statement_result(Id=run("SELECT x, y FROM bp")["Id"])["Records"]
    assert rows == [[{"longValue": 4}, {"stringValue": "a"}]]


# --- sessions ---------------------------------------------------------------------

def test_temp_table_does_not_survive_to_the_next_call(rsdata, run):
    run("CREATE TEMP TABLE scratch (x INT)")
    for _ in range(3):  # whichever pooled connection serves it
        desc = run("SELECT * FROM scratch", expect="FAILED")
        assert 'relation "scratch" does not exist' in desc["Error"]
    run("CREATE TEMP TABLE scratch (x INT)")  # no clash either


def test_kept_alive_session_keeps_temp_tables_and_runs_one_at_a_time(rsdata, run, wait, database):
    first = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, SessionKeepAliveSeconds=60,
                                     Sql="CREATE TEMP TABLE s (x INT)")
    session = first["SessionId"]
    uuid.UUID(session)
    assert wait(rsdata, first["Id"])["SessionId"] == session
    run("INSERT INTO s VALUES (1)", SessionId=session)
    desc = run("SELECT x FROM s", SessionId=session)
    assert desc["WorkgroupName"] == "wg-test" and desc["Database"] == database
    assert rsdata.get_statement_result(Id=desc["Id"])["Records"] == [[{"longValue": 1}]]

    slow = rsdata.execute_statement(SessionId=session, Sql="SELECT pg_sleep(0.5)")["Id"]
    with pytest.raises(rsdata.exceptions.ValidationException, match="busy"):
        rsdata.execute_statement(SessionId=session, Sql="SELECT 1")
    wait(rsdata, slow)
    bid = rsdata.batch_execute_statement(SessionId=session, Sqls=["INSERT INTO s VALUES (2)", "SELECT sum(x) FROM s"])
    assert wait(rsdata, bid["Id"])["Status"] == "FINISHED"
    assert rsdata.get_statement_result(Id=f"{bid['Id']}:2")["Records"] == [[{"longValue": 3}]]
    sessions = rsdata.list_sessions(SessionId=session)["Sessions"]
    assert sessions[0]["Status"] == "AVAILABLE" and sessions[0]["SessionAliveSeconds"] == 60


def test_expired_session_is_gone(emulator, rsdata, wait, database):
    out = rsdata.execute_statement(WorkgroupName="wg-test", Database=database, SessionKeepAliveSeconds=1,
                                   Sql="SELECT 1")
    wait(rsdata, out["Id"])
    deadline = time.monotonic() + 5
    while out["SessionId"] in emulator.engine.sessions:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(rsdata.exceptions.ValidationException, match="does not exist or has expired"):
        rsdata.execute_statement(SessionId=out["SessionId"], Sql="SELECT 1")


# --- idempotency --------------------------------------------------------------------

def test_client_token_returns_the_same_statement(rsdata, wait, database):
    token = str(uuid.uuid4())
    kwargs = dict(WorkgroupName="wg-test", Database=database, Sql="SELECT 1", ClientToken=token)
    first = rsdata.execute_statement(**kwargs)["Id"]
    assert rsdata.execute_statement(**kwargs)["Id"] == first
    assert rsdata.execute_statement(WorkgroupName="wg-test", Database=database, Sql="SELECT 1")["Id"] != first
    with pytest.raises(rsdata.exceptions.ValidationException, match="ClientToken"):
        rsdata.execute_statement(**{**kwargs, "Sql": "SELECT 2"})
    wait(rsdata, first)


# --- the `:name` scanner (pure) -------------------------------------------------------

@pytest.mark.parametrize("sql, expected", [
    ("SELECT :a, :b::int, x::text", "SELECT %(a)s, %(b)s::int, x::text"),
    ("SELECT ':a', \":a\", $$ :a $$, $q$:a$q$ -- :a\n/* :a /* :a */ */ :a",
     "SELECT ':a', \":a\", $$ :a $$, $q$:a$q$ -- :a\n/* :a /* :a */ */ %(a)s"),
    ("SELECT 'it\\'s :a' || :a, 5 % 2, 'x%'", "SELECT 'it\\'s :a' || %(a)s, 5 %% 2, 'x%%'"),
    ("SELECT arr[1:2], :a", "SELECT arr[1:2], %(a)s"),
])
def test_pyformat_translation(sql, expected):
    from devstack.redshift.params import to_pyformat

    assert to_pyformat(sql, {"a": "1", "b": "2"}) == expected


def test_splitter_respects_quotes_and_bodies():
    from devstack.redshift.rewrite import split_statements

    sql = "SELECT ';'; CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- done;\n"
    assert split_statements(sql) == ["SELECT ';'", "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql"]
