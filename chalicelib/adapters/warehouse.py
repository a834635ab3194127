"""Redshift through the Data API (the default warehouse adapter)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.aws import client
from chalicelib.pipelines import TableName, Warehouse
from chalicelib.ports import TERMINAL_STATEMENT_STATES, StatementInfo, SubStatement


class WarehouseQueryError(RuntimeError):
    """A short diagnostic query failed or did not finish in time."""


def connection_params(warehouse: Warehouse) -> dict[str, str]:
    """Target and authentication parameters of a Data API call for this warehouse."""
    params: dict[str, str] = {"Database": warehouse.database}
    if warehouse.workgroup:
        params["WorkgroupName"] = warehouse.workgroup
    else:
        params["ClusterIdentifier"] = warehouse.cluster or ""
    if warehouse.secret_arn:
        params["SecretArn"] = warehouse.secret_arn
    elif warehouse.db_user:
        params["DbUser"] = warehouse.db_user
    return params


class DataApiWarehouse:
    def __init__(self, api: Any | None = None) -> None:
        self._api = api

    @property
    def api(self) -> Any:
        return self._api or client("redshift-data")

    def submit(self, warehouse: Warehouse, sqls: Sequence[str], *, name: str, token: str) -> str:
        common = dict(StatementName=name, WithEvent=True, ClientToken=token[:64], **connection_params(warehouse))
        if len(sqls) == 1:
            # One statement runs on its own, outside a transaction block: what REFRESH MATERIALIZED VIEW,
            # CREATE MATERIALIZED VIEW and procedures that COMMIT need.
            response = self.api.execute_statement(Sql=sqls[0], **common)
        else:
            response = self.api.batch_execute_statement(Sqls=list(sqls), **common)
        return str(response["Id"])

    def describe(self, statement_id: str) -> StatementInfo:
        d = self.api.describe_statement(Id=statement_id)
        subs = tuple(
            SubStatement(id=s["Id"], status=s.get("Status", ""), error=s.get("Error") or None,
                         rows=s.get("ResultRows"), query_id=s.get("RedshiftQueryId"), sql=s.get("QueryString", ""))
            for s in d.get("SubStatements", []))
        duration = d.get("Duration")
        return StatementInfo(id=d["Id"], status=d["Status"], error=d.get("Error") or None, rows=d.get("ResultRows"),
                             duration_ms=duration / 1e6 if isinstance(duration, int) and duration >= 0 else None,
                             sub_statements=subs)

    def cancel(self, statement_id: str) -> None:
        self.api.cancel_statement(Id=statement_id)

    def query(self, warehouse: Warehouse, sql: str, *, timeout: float = 15.0) -> list[dict[str, Any]]:
        statement_id = self.api.execute_statement(Sql=sql, **connection_params(warehouse))["Id"]
        deadline, delay = time.monotonic() + timeout, 0.05
        while True:  # short diagnostic queries only; backoff keeps the call count low
            d = self.api.describe_statement(Id=statement_id)
            if d["Status"] in TERMINAL_STATEMENT_STATES:
                break
            if time.monotonic() > deadline:
                raise WarehouseQueryError(f"query {statement_id} still {d['Status']} after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        if d["Status"] != "FINISHED":
            raise WarehouseQueryError(d.get("Error") or f"query ended {d['Status']}")
        if not d.get("HasResultSet"):
            return []
        rows: list[dict[str, Any]] = []
        for page in self.api.get_paginator("get_statement_result").paginate(Id=statement_id):
            names = [c["name"] for c in page["ColumnMetadata"]]
            for record in page["Records"]:
                rows.append({n: _field_value(f) for n, f in zip(names, record)})
        return rows

    def table_columns(self, warehouse: Warehouse, table: TableName) -> list[str]:
        params = connection_params(warehouse)
        columns: list[str] = []
        token = None
        while True:
            extra = {"NextToken": token} if token else {}
            page = self.api.describe_table(Schema=table.schema, Table=table.name, **params, **extra)
            columns += [c["name"] for c in page.get("ColumnList", [])]
            token = page.get("NextToken")
            if not token:
                return columns

    def ping(self, warehouse: Warehouse) -> None:
        self.api.list_databases(MaxResults=1, **connection_params(warehouse))


def _field_value(field: dict[str, Any]) -> Any:
    if field.get("isNull"):
        return None
    for key in ("stringValue", "longValue", "doubleValue", "booleanValue", "blobValue"):
        if key in field:
            return field[key]
    return None
