"""One WarehousePort over both connections: each warehouse's `connection` picks the adapter.

Calls that name only a statement (describe, cancel) go by the statement id: direct
statement ids carry their own prefix. The direct adapter is built on first use, so a
catalog without direct warehouses never imports redshift-connector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.adapters.redshift_direct import is_direct_statement
from chalicelib.pipelines import TableName, Warehouse
from chalicelib.ports import StatementInfo, WarehousePort


class WarehouseRouter:
    def __init__(self, data_api: WarehousePort, direct: Callable[[], WarehousePort]) -> None:
        self.data_api = data_api
        self._make_direct = direct
        self._direct: WarehousePort | None = None

    @property
    def direct(self) -> WarehousePort:
        if self._direct is None:
            self._direct = self._make_direct()
        return self._direct

    def _for(self, warehouse: Warehouse) -> WarehousePort:
        return self.direct if warehouse.connection == "direct" else self.data_api

    def _for_statement(self, statement_id: str) -> WarehousePort:
        return self.direct if is_direct_statement(statement_id) else self.data_api

    def submit(self, warehouse: Warehouse, sqls: Sequence[str], *, name: str, token: str) -> str:
        return self._for(warehouse).submit(warehouse, sqls, name=name, token=token)

    def describe(self, statement_id: str) -> StatementInfo:
        return self._for_statement(statement_id).describe(statement_id)

    def cancel(self, statement_id: str) -> None:
        self._for_statement(statement_id).cancel(statement_id)

    def query(self, warehouse: Warehouse, sql: str, *, timeout: float = 15.0) -> list[dict[str, Any]]:
        return self._for(warehouse).query(warehouse, sql, timeout=timeout)

    def table_columns(self, warehouse: Warehouse, table: TableName) -> list[str]:
        return self._for(warehouse).table_columns(warehouse, table)

    def ping(self, warehouse: Warehouse) -> None:
        self._for(warehouse).ping(warehouse)
