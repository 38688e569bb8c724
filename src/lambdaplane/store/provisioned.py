"""Provisioned concurrency config rows: put (insert or replace), read, list, delete.

Every write that starts, changes or ends a configuration also opens or closes its
billing period (``provisioned_usage``) in the same transaction, so the bill follows the
configs exactly: ``end_billing`` is called by the deletes of configs, aliases, versions
and functions alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from lambdaplane.store.schema import functions, provisioned_usage
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


@dataclass(frozen=True)
class Billing:
    """What a configuration bills: the version's memory and architecture when it was put."""

    memory_mb: int
    architecture: str


PROVISIONED, SNAPSTART = "provisioned", "snapstart"  # provisioned_usage.kind


def end_billing(
    conn: sa.Connection,
    account_id: str,
    region: str,
    function_name: str,
    qualifier: str | None = None,
    at_ms: int | None = None,
    kind: str | None = None,
) -> None:
    """Close the open billing periods of a function (of one qualifier, or all; of one
    kind, or all: a deleted version ends its provisioned concurrency and its snapshot)."""
    u = provisioned_usage.c
    query = provisioned_usage.update().where(
        u.account_id == account_id,
        u.region == region,
        u.function_name == function_name,
        u.end_ms.is_(None),
    )
    if qualifier is not None:
        query = query.where(u.qualifier == qualifier)
    if kind is not None:
        query = query.where(u.kind == kind)
    conn.execute(query.values(end_ms=int(time.time() * 1000) if at_ms is None else at_ms))


class ProvisionedConfigRepository:
    """Provisioned concurrency configs of the functions of one account and region."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._account_id = account_id
        self._region = region
        self._scope = sa.and_(functions.c.account_id == account_id, functions.c.region == region)

    def put(self, config: StoredProvisionedConfig, billing: Billing) -> bool:
        """Insert or replace the config of its qualifier, ending the billing period of the
        one it replaces and starting its own; False if the function vanished."""
        at_ms = int(config.last_modified * 1000)
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
            scope = (self._account_id, self._region, config.function_name)
            end_billing(conn, *scope, config.qualifier, at_ms, PROVISIONED)
            conn.execute(
                provisioned_usage.insert().values(
                    account_id=self._account_id,
                    region=self._region,
                    function_name=config.function_name,
                    qualifier=config.qualifier,
                    kind=PROVISIONED,
                    concurrency=config.requested,
                    memory_mb=billing.memory_mb,
                    architecture=billing.architecture,
                    start_ms=at_ms,
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
            end_billing(
                conn, self._account_id, self._region, function_name, qualifier, kind=PROVISIONED
            )
        return result.rowcount == 1


def start_snapshot_billing(
    engine: sa.Engine,
    account_id: str,
    region: str,
    function_name: str,
    version: str,
    billing: Billing,
    at_ms: int | None = None,
) -> None:
    """A SnapStart version's snapshot is cached from now until the version is deleted."""
    with engine.begin() as conn:
        end_billing(conn, account_id, region, function_name, version, at_ms, SNAPSTART)
        conn.execute(
            provisioned_usage.insert().values(
                account_id=account_id,
                region=region,
                function_name=function_name,
                qualifier=version,
                kind=SNAPSTART,
                concurrency=1,
                memory_mb=billing.memory_mb,
                architecture=billing.architecture,
                start_ms=int(time.time() * 1000) if at_ms is None else at_ms,
            )
        )
