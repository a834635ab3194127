"""Data API statement operations: validation and response shapes (transport-free).

Each public method takes the decoded JSON body and returns the response dict
or raises `ApiError`. Messages copy the real service's where known.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from devstack.redshift.engine import Engine, split_statements
from devstack.redshift.models import TERMINAL, ApiError, Request, Statement, SubStatement
from devstack.redshift.params import ParameterError, check_parameters
from devstack.redshift.results import csv_text, page_token, parse_page_token, records
from devstack.redshift.sessions import Target
from devstack.redshift.validation import (
    check_sql_size,
    connection,
    decode_token,
    encode_token,
    invalid,
    max_results,
    parameters,
    required_str,
    wait_seconds,
)

MAX_BATCH = 40
CLIENT_TOKEN_SECONDS = 8 * 3600


class DataApi:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tokens: dict[str, tuple[str, str, float]] = {}  # ClientToken → (fingerprint, Id, time)
        self._token_lock = threading.Lock()

    # --- ExecuteStatement / BatchExecuteStatement -----------------------------

    def ExecuteStatement(self, body: dict[str, Any]) -> dict[str, Any]:
        sql = required_str(body, "Sql")
        check_sql_size(sql)
        if len(split_statements(sql)) > 1:
            raise invalid("Multiple SQL statements are not supported in ExecuteStatement. "
                           "Use BatchExecuteStatement to run several statements.")
        return self._submit("ExecuteStatement", body, [sql], is_batch=False)

    def BatchExecuteStatement(self, body: dict[str, Any]) -> dict[str, Any]:
        sqls = body.get("Sqls")
        if not isinstance(sqls, list) or not 1 <= len(sqls) <= MAX_BATCH:
            raise invalid(f"Sqls must contain between 1 and {MAX_BATCH} SQL statements.")
        for sql in sqls:
            if not isinstance(sql, str) or not sql.strip():
                raise invalid("Each SQL statement in Sqls must be a non-empty string.")
            check_sql_size(sql)
        mode = body.get("ExecutionMode", "TRANSACTION")
        if mode not in ("TRANSACTION", "AUTO_COMMIT"):
            raise invalid("ExecutionMode must be TRANSACTION or AUTO_COMMIT.")
        return self._submit("BatchExecuteStatement", body, list(sqls), is_batch=True)

    def _submit(self, op: str, body: dict[str, Any], sqls: list[str], *, is_batch: bool) -> dict[str, Any]:
        target, database, session_id = connection(body, allow_session=True)
        keep_alive = body.get("SessionKeepAliveSeconds")
        if keep_alive is not None and (not isinstance(keep_alive, int) or not 0 <= keep_alive <= 86400):
            raise invalid("SessionKeepAliveSeconds must be between 0 and 86400.")
        name = body.get("StatementName")
        if name is not None and (not isinstance(name, str) or len(name) > 2048):
            raise invalid("StatementName must be at most 2048 characters.")
        result_format = body.get("ResultFormat", "JSON")
        if result_format not in ("JSON", "CSV"):
            raise invalid("ResultFormat must be JSON or CSV.")
        wait = wait_seconds(body)
        params = parameters(body.get("Parameters"))
        try:
            check_parameters(sqls, params)
        except ParameterError as exc:
            raise invalid(str(exc)) from None
        token = body.get("ClientToken")
        if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 64):
            raise invalid("ClientToken must be between 1 and 64 characters.")
        request = Request(
            sqls=sqls, is_batch=is_batch, target=target, database=database,
            db_user=body.get("DbUser"), secret_arn=body.get("SecretArn"), statement_name=name,
            with_event=bool(body.get("WithEvent")), result_format=result_format, params=params,
            execution_mode=body.get("ExecutionMode", "TRANSACTION"), session_id=session_id,
            keep_alive=keep_alive or None,
        )
        if token:
            st = self._idempotent_submit(op, body, token, request)
        else:
            st = self.engine.submit(request)
        if wait:
            st.done.wait(wait)
        out = _connection_fields(st)
        out.update(Id=st.id, CreatedAt=st.created_at)
        if wait:
            out.update(Status=st.status, RedshiftPid=st.redshift_pid, HasResultSet=st.has_result_set)
        return out

    def _idempotent_submit(self, op: str, body: dict[str, Any], token: str, request: Request) -> Statement:
        """Same ClientToken + same request within 8 h → the same statement, not a second run."""
        fields = {k: v for k, v in body.items() if k not in ("ClientToken", "WaitTimeSeconds")}
        fingerprint = hashlib.sha256(json.dumps([op, fields], sort_keys=True).encode()).hexdigest()
        now = time.time()
        with self._token_lock:
            for key in [k for k, (_, _, t) in self._tokens.items() if now - t > CLIENT_TOKEN_SECONDS]:
                del self._tokens[key]
            seen = self._tokens.get(token)
            if seen is not None:
                if seen[0] != fingerprint:
                    raise invalid("ClientToken has already been used with different request parameters.")
                st, _ = self.engine.lookup(seen[1])
                return st
            st = self.engine.submit(request)
            self._tokens[token] = (fingerprint, st.id, now)
            return st

    # --- statement status and results ------------------------------------------

    def DescribeStatement(self, body: dict[str, Any]) -> dict[str, Any]:
        st, sub = self.engine.lookup(required_str(body, "Id"))
        if (wait := wait_seconds(body)):
            st.done.wait(wait)
        out = _connection_fields(st)
        if sub is not None:
            out.update(_sub_fields(sub))
            out["RedshiftPid"] = st.redshift_pid
        else:
            out.update(
                Id=st.id, Status=st.status, Duration=st.duration_ns, CreatedAt=st.created_at,
                UpdatedAt=st.updated_at, RedshiftPid=st.redshift_pid, RedshiftQueryId=st.query_id,
                HasResultSet=st.has_result_set, ResultRows=st.result_rows,
                ResultSize=sum(max(s.result_size, 0) for s in st.subs) if st.status in TERMINAL else -1,
                ResultFormat=st.request.result_format,
            )
            if st.error:
                out["Error"] = st.error
            if st.is_batch:
                out["SubStatements"] = [_sub_fields(s) for s in st.subs]
                out["ExecutionMode"] = st.request.execution_mode
            else:
                out["QueryString"] = st.subs[0].sql
        if st.request.params:
            out["QueryParameters"] = [{"name": k, "value": v} for k, v in st.request.params.items()]
        return out

    def GetStatementResult(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._result(body, "JSON")

    def GetStatementResultV2(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._result(body, "CSV")

    def _result(self, body: dict[str, Any], fmt: str) -> dict[str, Any]:
        statement_id = required_str(body, "Id")
        st, sub = self.engine.lookup(statement_id)
        if (wait := wait_seconds(body)):
            st.done.wait(wait)
        if sub is None:
            if st.is_batch:
                raise invalid("BatchExecuteStatement result can only be retrieved with sub-statement id.")
            sub = st.subs[0]
        if sub.status != "FINISHED" or sub.result is None:
            raise ApiError("ValidationException" if sub.status in TERMINAL else "ResourceNotFoundException",
                           "Query does not have result. Please check query status with DescribeStatement.")
        if st.request.result_format != fmt:
            other = "GetStatementResultV2" if fmt == "JSON" else "GetStatementResult"
            raise invalid(f"The statement's ResultFormat is {st.request.result_format}; "
                           f"retrieve its result with {other}.")
        result = sub.result
        page = 0
        if body.get("NextToken"):
            parsed = parse_page_token(body["NextToken"], sub.id)
            if parsed is None or not 0 <= parsed < result.page_count:
                raise invalid("Invalid NextToken.")
            page = parsed
        rows = result.page(page)
        out: dict[str, Any] = {
            "ColumnMetadata": [c.metadata() for c in result.columns],
            "TotalNumRows": result.total_rows,
        }
        if fmt == "JSON":
            out["Records"] = records(rows, result.columns)
        else:
            out["Records"] = [{"CSVRecords": csv_text(rows)}]
            out["ResultFormat"] = "CSV"
        if page + 1 < result.page_count:
            out["NextToken"] = page_token(sub.id, page + 1)
        return out

    def CancelStatement(self, body: dict[str, Any]) -> dict[str, Any]:
        self.engine.cancel(required_str(body, "Id"))
        return {"Status": True}

    def ListStatements(self, body: dict[str, Any]) -> dict[str, Any]:
        status = body.get("Status")
        if status is not None and status not in ("SUBMITTED", "PICKED", "STARTED", "FINISHED", "ABORTED",
                                                  "FAILED", "ALL"):
            raise invalid("Status is not a valid statement status.")
        limit = max_results(body, 100)
        name = body.get("StatementName")
        cluster, workgroup, database = body.get("ClusterIdentifier"), body.get("WorkgroupName"), body.get("Database")
        if cluster and workgroup:
            raise invalid("Specify either ClusterIdentifier or WorkgroupName, not both.")
        after = decode_token(body.get("NextToken"), "seq")
        with self.engine._lock:
            statements = list(reversed(self.engine.statements.values()))  # insertion order = seq
        selected = []
        for st in statements:
            if after is not None and st.seq >= after:
                continue
            if status is None and st.status != "FINISHED":  # the default lists finished statements only
                continue
            if status not in (None, "ALL") and st.status != status:
                continue
            if name and not (st.request.statement_name or "").startswith(name):
                continue
            if cluster and st.target != Target("cluster", cluster):
                continue
            if workgroup and st.target != Target("workgroup", workgroup):
                continue
            if database and st.database.lower() != database.lower():
                continue
            selected.append(st)
            if len(selected) > limit:
                break
        out: dict[str, Any] = {"Statements": [_list_entry(st) for st in selected[:limit]]}
        if len(selected) > limit:
            out["NextToken"] = encode_token(seq=selected[limit - 1].seq)
        return out

    def ListSessions(self, body: dict[str, Any]) -> dict[str, Any]:
        limit = max_results(body, 100)
        offset = decode_token(body.get("NextToken"), "offset") or 0
        with self.engine._lock:
            sessions = sorted(self.engine.sessions.values(), key=lambda s: s.created_at, reverse=True)
        wanted = [
            s for s in sessions
            if (not body.get("SessionId") or s.id == body["SessionId"].split(":")[0])
            and (not body.get("Status") or s.status == body["Status"])
            and (not body.get("ClusterIdentifier") or s.target == Target("cluster", body["ClusterIdentifier"]))
            and (not body.get("WorkgroupName") or s.target == Target("workgroup", body["WorkgroupName"]))
            and (not body.get("Database") or s.database.lower() == body["Database"].lower())
        ]
        page = wanted[offset:offset + limit]
        out: dict[str, Any] = {"Sessions": [{
            "SessionId": s.id, "Status": s.status, "CreatedAt": s.created_at, "UpdatedAt": s.updated_at,
            "Database": s.database, "SessionAliveSeconds": s.keep_alive,
            "SessionTtl": s.updated_at + s.keep_alive,
            **({"ClusterIdentifier": s.target.name} if s.target.kind == "cluster" else {"WorkgroupName": s.target.name}),
            **({"DbUser": s.db_user} if s.db_user else {}),
            **({"CurrentStatementId": s.busy_with} if s.busy_with else {}),
        } for s in page]}
        if offset + limit < len(wanted):
            out["NextToken"] = encode_token(offset=offset + limit)
        return out


# --- response shapes ----------------------------------------------------------

def _connection_fields(st: Statement) -> dict[str, Any]:
    out: dict[str, Any] = {"Database": st.database}
    if st.target.kind == "cluster":
        out["ClusterIdentifier"] = st.target.name
    else:
        out["WorkgroupName"] = st.target.name
    db_user = st.request.db_user or (st.session.db_user if st.session else None)
    if db_user:
        out["DbUser"] = db_user
    secret = st.request.secret_arn or (st.session.secret_arn if st.session else None)
    if secret:
        out["SecretArn"] = secret
    if st.session is not None:
        out["SessionId"] = st.session.id
    return out


def _sub_fields(sub: SubStatement) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Id": sub.id, "Status": sub.status, "Duration": sub.duration_ns, "CreatedAt": sub.created_at,
        "UpdatedAt": sub.updated_at, "QueryString": sub.sql, "ResultRows": sub.result_rows,
        "ResultSize": sub.result_size, "RedshiftQueryId": sub.query_id, "HasResultSet": sub.has_result_set,
    }
    if sub.error:
        out["Error"] = sub.error
    return out


def _list_entry(st: Statement) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Id": st.id, "Status": st.status, "CreatedAt": st.created_at, "UpdatedAt": st.updated_at,
        "IsBatchStatement": st.is_batch, "ResultFormat": st.request.result_format,
    }
    if st.is_batch:
        out["QueryStrings"] = [s.sql for s in st.subs]
    else:
        out["QueryString"] = st.subs[0].sql
    if st.request.statement_name:
        out["StatementName"] = st.request.statement_name
    if st.request.secret_arn:
        out["SecretArn"] = st.request.secret_arn
    if st.session is not None:
        out["SessionId"] = st.session.id
    if st.request.params:
        out["QueryParameters"] = [{"name": k, "value": v} for k, v in st.request.params.items()]
    return out
