"""Alias rows: create, read, list, compare-and-swap update, delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from lambdaplane.store.provisioned import PROVISIONED, end_billing
from lambdaplane.store.schema import (
    function_aliases,
    function_policies,
    function_url_configs,
    functions,
    provisioned_concurrency_configs,
)


class AliasExists(Exception):
    """The function already has an alias of that name."""


@dataclass(frozen=True)
class StoredAlias:
    function_name: str
    name: str
    function_version: str
    description: str
    revision_id: str
    routing: dict[str, float] = field(default_factory=dict)  # {version: weight}


_SELECT = sa.select(
    functions.c.name,
    function_aliases.c.name,
    function_aliases.c.function_version,
    function_aliases.c.description,
    function_aliases.c.revision_id,
    function_aliases.c.routing,
).select_from(functions.join(function_aliases))


def _row(row: Any) -> StoredAlias:
    function_name, name, version, description, revision_id, routing = row
    return StoredAlias(function_name, name, version, description, revision_id, dict(routing or {}))


class AliasRepository:
    """Aliases of the functions of one account and region."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._account_id = account_id
        self._region = region
        self._scope = sa.and_(functions.c.account_id == account_id, functions.c.region == region)

    def _function_id(self, function_name: str) -> sa.ScalarSelect[int]:
        return (
            sa.select(functions.c.id)
            .where(self._scope, functions.c.name == function_name)
            .scalar_subquery()
        )

    def create(self, alias: StoredAlias) -> None:
        """Raises AliasExists (or returns quietly if the function vanished meanwhile)."""
        try:
            with self._engine.begin() as conn:
                function_id = conn.execute(
                    sa.select(functions.c.id).where(
                        self._scope, functions.c.name == alias.function_name
                    )
                ).scalar()
                if function_id is None:
                    return
                conn.execute(
                    function_aliases.insert().values(function_id=function_id, **_values(alias))
                )
        except IntegrityError as exc:
            raise AliasExists(alias.name) from exc

    def get(self, function_name: str, name: str) -> StoredAlias | None:
        query = _SELECT.where(
            self._scope, functions.c.name == function_name, function_aliases.c.name == name
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _row(row)

    def of_function(self, function_name: str, version: str | None = None) -> list[StoredAlias]:
        """The function's aliases by name; only those on ``version`` when it is given."""
        query = _SELECT.where(self._scope, functions.c.name == function_name)
        if version is not None:
            query = query.where(function_aliases.c.function_version == version)
        with self._engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(query.order_by(function_aliases.c.name))]
        return rows

    def referencing(self, function_name: str, version: str) -> list[str]:
        """Names of the aliases that route any traffic to ``version``."""
        return sorted(
            a.name
            for a in self.of_function(function_name)
            if a.function_version == version or version in a.routing
        )

    def replace(self, alias: StoredAlias, expected_revision: str) -> bool:
        """Write ``alias`` if its revision is still ``expected_revision``."""
        with self._engine.begin() as conn:
            result = conn.execute(
                function_aliases.update()
                .where(
                    function_aliases.c.function_id == self._function_id(alias.function_name),
                    function_aliases.c.name == alias.name,
                    function_aliases.c.revision_id == expected_revision,
                )
                .values(**_values(alias))
            )
        return result.rowcount == 1

    def delete(self, function_name: str, name: str) -> bool:
        """Delete the alias and, with it, its function URL config, its policy and its provisioned
        concurrency config."""
        with self._engine.begin() as conn:
            result = conn.execute(
                function_aliases.delete().where(
                    function_aliases.c.function_id == self._function_id(function_name),
                    function_aliases.c.name == name,
                )
            )
            conn.execute(
                function_url_configs.delete().where(
                    function_url_configs.c.function_id == self._function_id(function_name),
                    function_url_configs.c.qualifier == name,
                )
            )
            conn.execute(
                function_policies.delete().where(
                    function_policies.c.function_id == self._function_id(function_name),
                    function_policies.c.qualifier == name,
                )
            )
            conn.execute(
                provisioned_concurrency_configs.delete().where(
                    provisioned_concurrency_configs.c.function_id
                    == self._function_id(function_name),
                    provisioned_concurrency_configs.c.qualifier == name,
                )
            )
            end_billing(conn, self._account_id, self._region, function_name, name, kind=PROVISIONED)
        return result.rowcount == 1


def _values(alias: StoredAlias) -> dict[str, object]:
    return {
        "name": alias.name,
        "function_version": alias.function_version,
        "description": alias.description,
        "revision_id": alias.revision_id,
        "routing": alias.routing,
    }
