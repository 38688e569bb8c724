"""Function and function-version rows: create, read, list, compare-and-swap update, delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from lambdaplane.store.schema import function_versions, functions

LATEST = "$LATEST"


class AlreadyExists(Exception):
    """A function with that name exists."""


@dataclass(frozen=True)
class StoredFunction:
    """One version of a function as stored: its configuration and the CAS columns."""

    name: str
    version: str
    revision_id: str
    state: str
    last_update_status: str | None
    code_sha256: str
    code_size: int
    config: dict[str, Any]


_SELECT = sa.select(
    functions.c.name,
    function_versions.c.version,
    function_versions.c.revision_id,
    function_versions.c.state,
    function_versions.c.last_update_status,
    function_versions.c.code_sha256,
    function_versions.c.code_size,
    function_versions.c.config,
).select_from(functions.join(function_versions))


def _row(row: Any) -> StoredFunction:
    name, version, revision_id, state, last_update_status, code_sha256, code_size, config = row
    return StoredFunction(
        name, version, revision_id, state, last_update_status, code_sha256, int(code_size), config
    )


class FunctionRepository:
    """Functions of one account and region."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._scope = sa.and_(functions.c.account_id == account_id, functions.c.region == region)
        self._account_id = account_id
        self._region = region
        self._get = _SELECT.where(
            self._scope,
            functions.c.name == sa.bindparam("name"),
            function_versions.c.version == sa.bindparam("version"),
        )

    def create(self, fn: StoredFunction) -> None:
        """Insert a new function with its $LATEST version; raises AlreadyExists."""
        try:
            with self._engine.begin() as conn:
                inserted = conn.execute(
                    functions.insert().values(
                        account_id=self._account_id,
                        region=self._region,
                        name=fn.name,
                        created_at=datetime.now(UTC),
                    )
                ).inserted_primary_key
                assert inserted is not None
                function_id = inserted[0]
                conn.execute(
                    function_versions.insert().values(function_id=function_id, **_values(fn))
                )
        except IntegrityError as exc:
            raise AlreadyExists(fn.name) from exc

    def get(
        self, name: str, version: str = LATEST, conn: sa.Connection | None = None
    ) -> StoredFunction | None:
        """One version of a function; reuses ``conn`` when the caller already holds one."""
        if conn is None:
            with self._engine.connect() as own:
                row = own.execute(self._get, {"name": name, "version": version}).first()
        else:
            row = conn.execute(self._get, {"name": name, "version": version}).first()
        return None if row is None else _row(row)

    def connect(self) -> sa.Connection:
        """A connection for several reads in a row (one pool checkout instead of many)."""
        return self._engine.connect()

    def page(
        self, after: str | None, limit: int, version: str | None = LATEST
    ) -> list[StoredFunction]:
        """Up to ``limit`` function versions ordered by name, starting after ``after``.

        ``version=None`` lists every version of every function (FunctionVersion=ALL).
        """
        query = _SELECT.where(self._scope)
        if version is not None:
            query = query.where(function_versions.c.version == version)
        if after is not None:
            query = query.where(functions.c.name > after)
        query = query.order_by(functions.c.name, function_versions.c.id).limit(limit)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def replace(self, fn: StoredFunction, expected_revision: str) -> bool:
        """Write ``fn`` over its version if its revision is still ``expected_revision``.

        Returns False when another writer got there first (the caller decides the error).
        """
        function_id = (
            sa.select(functions.c.id)
            .where(self._scope, functions.c.name == fn.name)
            .scalar_subquery()
        )
        with self._engine.begin() as conn:
            result = conn.execute(
                function_versions.update()
                .where(
                    function_versions.c.function_id == function_id,
                    function_versions.c.version == fn.version,
                    function_versions.c.revision_id == expected_revision,
                )
                .values(**_values(fn))
            )
        return result.rowcount == 1

    def delete(self, name: str) -> bool:
        """Delete the function and all its versions; False if it did not exist."""
        with self._engine.begin() as conn:
            function_id = conn.execute(
                sa.select(functions.c.id).where(self._scope, functions.c.name == name)
            ).scalar()
            if function_id is None:
                return False
            conn.execute(
                function_versions.delete().where(function_versions.c.function_id == function_id)
            )
            conn.execute(functions.delete().where(functions.c.id == function_id))
        return True

    def in_transition(self) -> list[StoredFunction]:
        """Versions whose creation or last update has not finished (to resume after a restart)."""
        query = _SELECT.where(
            self._scope,
            sa.or_(
                function_versions.c.state == "Pending",
                function_versions.c.last_update_status == "InProgress",
            ),
        )
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def usage(self) -> tuple[int, int]:
        """(number of functions, total code size of every version) for GetAccountSettings."""
        with self._engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(functions).where(self._scope)
            ).scalar_one()
            size = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(function_versions.c.code_size), 0))
                .select_from(functions.join(function_versions))
                .where(self._scope)
            ).scalar_one()
        return int(count), int(size)


def _values(fn: StoredFunction) -> dict[str, Any]:
    return {
        "version": fn.version,
        "revision_id": fn.revision_id,
        "state": fn.state,
        "last_update_status": fn.last_update_status,
        "code_sha256": fn.code_sha256,
        "code_size": fn.code_size,
        "config": fn.config,
    }
