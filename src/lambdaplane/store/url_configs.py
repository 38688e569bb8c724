"""Function URL config rows: create, read (by function and qualifier, or by url id),
list in creation order, replace, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from lambdaplane.store.schema import function_url_configs as table
from lambdaplane.store.schema import functions


class UrlConfigExists(Exception):
    """The function or alias already has a URL config."""


@dataclass(frozen=True)
class StoredUrlConfig:
    function_name: str
    qualifier: str  # "$LATEST" or an alias name
    url_id: str
    auth_type: str
    invoke_mode: str | None
    cors: dict[str, Any] | None
    created_at: float  # epoch seconds
    last_modified: float
    position: int = 0  # creation order, for paging; assigned by the store


_SELECT = sa.select(
    functions.c.name,
    table.c.qualifier,
    table.c.url_id,
    table.c.auth_type,
    table.c.invoke_mode,
    table.c.cors,
    table.c.created_at,
    table.c.last_modified,
    table.c.id,
).select_from(functions.join(table))


def _row(row: Any) -> StoredUrlConfig:
    name, qualifier, url_id, auth, mode, cors, created, modified, position = row
    return StoredUrlConfig(
        name, qualifier, url_id, auth, mode, cors, float(created), float(modified), int(position)
    )


class UrlConfigRepository:
    """URL configs of the functions of one account and region."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._scope = sa.and_(functions.c.account_id == account_id, functions.c.region == region)

    def _function_id(self, function_name: str) -> sa.ScalarSelect[int]:
        return (
            sa.select(functions.c.id)
            .where(self._scope, functions.c.name == function_name)
            .scalar_subquery()
        )

    def create(self, config: StoredUrlConfig) -> bool:
        """Insert ``config``; False if the function vanished meanwhile.

        Raises UrlConfigExists when the function or alias has one already.
        """
        try:
            with self._engine.begin() as conn:
                function_id = conn.execute(
                    sa.select(functions.c.id).where(
                        self._scope, functions.c.name == config.function_name
                    )
                ).scalar()
                if function_id is None:
                    return False
                conn.execute(
                    table.insert().values(
                        function_id=function_id,
                        qualifier=config.qualifier,
                        url_id=config.url_id,
                        **_values(config),
                    )
                )
        except IntegrityError as exc:
            raise UrlConfigExists(config.qualifier) from exc
        return True

    def get(self, function_name: str, qualifier: str) -> StoredUrlConfig | None:
        query = _SELECT.where(
            self._scope, functions.c.name == function_name, table.c.qualifier == qualifier
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _row(row)

    def by_url_id(self, url_id: str) -> StoredUrlConfig | None:
        with self._engine.connect() as conn:
            row = conn.execute(_SELECT.where(self._scope, table.c.url_id == url_id)).first()
        return None if row is None else _row(row)

    def of_function(
        self, function_name: str, after: int | None = None, limit: int | None = None
    ) -> list[StoredUrlConfig]:
        """The function's URL configs in creation order, those after position ``after``."""
        query = _SELECT.where(self._scope, functions.c.name == function_name)
        if after is not None:
            query = query.where(table.c.id > after)
        query = query.order_by(table.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def replace(self, config: StoredUrlConfig) -> bool:
        """Overwrite the settings of an existing config; False if it is gone."""
        with self._engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    table.c.function_id == self._function_id(config.function_name),
                    table.c.qualifier == config.qualifier,
                )
                .values(**_values(config))
            )
        return result.rowcount == 1

    def delete(self, function_name: str, qualifier: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                table.delete().where(
                    table.c.function_id == self._function_id(function_name),
                    table.c.qualifier == qualifier,
                )
            )
        return result.rowcount == 1


def _values(config: StoredUrlConfig) -> dict[str, object]:
    return {
        "auth_type": config.auth_type,
        "invoke_mode": config.invoke_mode,
        "cors": config.cors,
        "created_at": config.created_at,
        "last_modified": config.last_modified,
    }
