"""Provisioned concurrency config rows: put (insert or replace), read, list, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from lambdaplane.store.schema import functions
from lambdaplane.store.schema import provisioned_concurrency_configs as table


@dataclass(frozen=True)
class StoredProvisionedConfig:
    function_name: str
    qualifier: str  # a version number or an alias name
    requested: int
    last_modified: float  # epoch seconds


_SELECT = sa.select(
    functions.c.name, table.c.qualifier, table.c.requested, table.c.last_modified
).select_from(functions.join(table))


def _row(row: Any) -> StoredProvisionedConfig:
    name, qualifier, requested, modified = row
    return StoredProvisionedConfig(name, qualifier, int(requested), float(modified))


class ProvisionedConfigRepository:
    """Provisioned concurrency configs of the functions of one account and region."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._scope = sa.and_(functions.c.account_id == account_id, functions.c.region == region)

    def put(self, config: StoredProvisionedConfig) -> bool:
        """Insert or replace the config of its qualifier; False if the function vanished."""
        with self._engine.begin() as conn:
            function_id = conn.execute(
                sa.select(functions.c.id).where(
                    self._scope, functions.c.name == config.function_name
                )
            ).scalar()
            if function_id is None:
                return False
            values = {"requested": config.requested, "last_modified": config.last_modified}
            updated = conn.execute(
                table.update()
                .where(table.c.function_id == function_id, table.c.qualifier == config.qualifier)
                .values(**values)
            )
            if updated.rowcount == 0:
                conn.execute(
                    table.insert().values(
                        function_id=function_id, qualifier=config.qualifier, **values
                    )
                )
        return True

    def get(self, function_name: str, qualifier: str) -> StoredProvisionedConfig | None:
        query = _SELECT.where(
            self._scope, functions.c.name == function_name, table.c.qualifier == qualifier
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _row(row)

    def of_function(self, function_name: str) -> list[StoredProvisionedConfig]:
        """The function's configs in the order they were first put."""
        query = _SELECT.where(self._scope, functions.c.name == function_name).order_by(table.c.id)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def all(self) -> list[StoredProvisionedConfig]:
        """Every config of the account and region (what the nodes keep provisioned)."""
        query = _SELECT.where(self._scope).order_by(functions.c.name, table.c.id)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def totals(self) -> dict[str, int]:
        """Each function's total provisioned concurrency (functions without any are absent)."""
        query = (
            sa.select(functions.c.name, sa.func.sum(table.c.requested))
            .select_from(functions.join(table))
            .where(self._scope)
            .group_by(functions.c.name)
        )
        with self._engine.connect() as conn:
            return {name: int(total) for name, total in conn.execute(query)}

    def delete(self, function_name: str, qualifier: str) -> bool:
        function_id = (
            sa.select(functions.c.id)
            .where(self._scope, functions.c.name == function_name)
            .scalar_subquery()
        )
        with self._engine.begin() as conn:
            result = conn.execute(
                table.delete().where(
                    table.c.function_id == function_id, table.c.qualifier == qualifier
                )
            )
        return result.rowcount == 1
