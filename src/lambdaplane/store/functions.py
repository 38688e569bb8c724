"""Function and function-version rows: create, read, list, compare-and-swap update, delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from lambdaplane.store.provisioned import Billing, end_billing, start_snapshot_billing
from lambdaplane.store.schema import (
    function_aliases,
    function_policies,
    function_versions,
    functions,
    provisioned_concurrency_configs,
)

LATEST = "$LATEST"


class AlreadyExists(Exception):
    """A function with that name exists."""


class _Lost(Exception):
    """A compare-and-swap inside a transaction found the row changed."""


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

    def create(self, fn: StoredFunction, first_version: StoredFunction | None = None) -> None:
        """Insert a new function with its $LATEST version (and version 1 when published at
        creation); raises AlreadyExists."""
        try:
            with self._engine.begin() as conn:
                inserted = conn.execute(
                    functions.insert().values(
                        account_id=self._account_id,
                        region=self._region,
                        name=fn.name,
                        created_at=datetime.now(UTC),
                        last_version=0 if first_version is None else 1,
                    )
                ).inserted_primary_key
                assert inserted is not None
                function_id = inserted[0]
                rows = [fn] if first_version is None else [fn, first_version]
                conn.execute(
                    function_versions.insert(),
                    [{"function_id": function_id, **_values(row)} for row in rows],
                )
        except IntegrityError as exc:
            raise AlreadyExists(fn.name) from exc

    def publish(
        self,
        latest: StoredFunction,
        expected_revision: str,
        build: Callable[[int], StoredFunction],
    ) -> StoredFunction | None:
        """Write ``latest`` over $LATEST (compare-and-swap on ``expected_revision``) and add
        the version ``build`` makes from the next version number, in one transaction.

        Returns the new version, or None when $LATEST changed since it was read.
        """
        try:
            with self._engine.begin() as conn:
                return self._publish(conn, latest, expected_revision, build)
        except _Lost:
            return None

    def _publish(
        self,
        conn: sa.Connection,
        latest: StoredFunction,
        expected_revision: str,
        build: Callable[[int], StoredFunction],
    ) -> StoredFunction:
        function_id = conn.execute(
            sa.select(functions.c.id).where(self._scope, functions.c.name == latest.name)
        ).scalar()
        if function_id is None:
            raise _Lost
        swapped = conn.execute(
            function_versions.update()
            .where(
                function_versions.c.function_id == function_id,
                function_versions.c.version == LATEST,
                function_versions.c.revision_id == expected_revision,
            )
            .values(**_values(latest))
        )
        if swapped.rowcount != 1:
            raise _Lost  # rolls the transaction back
        # The increment takes the row's write lock: concurrent publishers queue here.
        conn.execute(
            functions.update()
            .where(functions.c.id == function_id)
            .values(last_version=functions.c.last_version + 1)
        )
        number = conn.execute(
            sa.select(functions.c.last_version).where(functions.c.id == function_id)
        ).scalar_one()
        version = build(int(number))
        conn.execute(function_versions.insert().values(function_id=function_id, **_values(version)))
        return version

    def versions(self, name: str, after: int = 0, limit: int | None = None) -> list[StoredFunction]:
        """$LATEST then the published versions in order (``after`` is a position, for paging)."""
        query = (
            _SELECT.where(self._scope, functions.c.name == name)
            .order_by(function_versions.c.id)
            .offset(after)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(query)]
        return rows  # $LATEST first: it is inserted first and only ever rewritten in place

    def last_published(self, name: str) -> StoredFunction | None:
        """The most recently published version still present."""
        query = (
            _SELECT.where(
                self._scope, functions.c.name == name, function_versions.c.version != LATEST
            )
            .order_by(function_versions.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _row(row)

    def delete_version(self, name: str, version: str) -> bool:
        """Delete one published version, its policy and its provisioned concurrency config;
        False if it did not exist."""
        function_id = (
            sa.select(functions.c.id).where(self._scope, functions.c.name == name).scalar_subquery()
        )
        with self._engine.begin() as conn:
            result = conn.execute(
                function_versions.delete().where(
                    function_versions.c.function_id == function_id,
                    function_versions.c.version == version,
                )
            )
            conn.execute(
                function_policies.delete().where(
                    function_policies.c.function_id == function_id,
                    function_policies.c.qualifier == version,
                )
            )
            conn.execute(
                provisioned_concurrency_configs.delete().where(
                    provisioned_concurrency_configs.c.function_id == function_id,
                    provisioned_concurrency_configs.c.qualifier == version,
                )
            )
            end_billing(conn, self._account_id, self._region, name, version)
        return result.rowcount == 1

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
        self,
        after: str | None,
        limit: int,
        version: str | None = LATEST,
        after_version: str | None = None,
    ) -> list[StoredFunction]:
        """Up to ``limit`` function versions ordered by name, starting after ``after``.

        ``version=None`` lists every version of every function (FunctionVersion=ALL), in
        name then publication order; the page then starts after ``after_version`` of
        ``after``.
        """
        query = _SELECT.where(self._scope)
        if version is not None:
            query = query.where(function_versions.c.version == version)
        if after is not None and version is None and after_version is not None:
            after_id = (
                sa.select(function_versions.c.id)
                .select_from(functions.join(function_versions))
                .where(
                    self._scope,
                    functions.c.name == after,
                    function_versions.c.version == after_version,
                )
                .scalar_subquery()
            )
            query = query.where(
                sa.or_(
                    functions.c.name > after,
                    sa.and_(functions.c.name == after, function_versions.c.id > after_id),
                )
            )
        elif after is not None:
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

    def bill_snapshot(self, name: str, version: str, memory_mb: int, architecture: str) -> None:
        """Start billing the cached snapshot of a SnapStart version (until it is deleted)."""
        billing = Billing(memory_mb, architecture)
        start_snapshot_billing(self._engine, self._account_id, self._region, name, version, billing)

    def delete(self, name: str) -> bool:
        """Delete the function with all its versions, aliases and policies; False if it did
        not exist."""
        with self._engine.begin() as conn:
            function_id = conn.execute(
                sa.select(functions.c.id).where(self._scope, functions.c.name == name)
            ).scalar()
            if function_id is None:
                return False
            conn.execute(
                function_versions.delete().where(function_versions.c.function_id == function_id)
            )
            conn.execute(
                function_aliases.delete().where(function_aliases.c.function_id == function_id)
            )
            conn.execute(
                function_policies.delete().where(function_policies.c.function_id == function_id)
            )
            conn.execute(
                provisioned_concurrency_configs.delete().where(
                    provisioned_concurrency_configs.c.function_id == function_id
                )
            )
            end_billing(conn, self._account_id, self._region, name)
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
