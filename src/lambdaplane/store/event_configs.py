"""EventInvokeConfig rows: one per function and qualifier, in the API's own shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from lambdaplane.store.schema import event_invoke_configs as table


@dataclass(frozen=True)
class StoredEventInvokeConfig:
    """One function version's or alias's asynchronous-invocation settings.

    ``config`` holds the settings as the API names them (``MaximumRetryAttempts``,
    ``MaximumEventAgeInSeconds``, ``DestinationConfig``), only those that were set;
    ``FunctionArn`` and ``LastModified`` are derived from the other fields.
    """

    function_name: str
    qualifier: str
    config: dict[str, Any]
    last_modified: float  # epoch seconds


_COLUMNS = (table.c.function_name, table.c.qualifier, table.c.config, table.c.last_modified)


def _row(row: Any) -> StoredEventInvokeConfig:
    name, qualifier, config, last_modified = row
    return StoredEventInvokeConfig(name, qualifier, config, float(last_modified))


class EventInvokeConfigRepository:
    """EventInvokeConfigs of one account and region."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._account_id = account_id
        self._region = region
        self._scope = sa.and_(table.c.account_id == account_id, table.c.region == region)

    def _key(self, function_name: str, qualifier: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            self._scope, table.c.function_name == function_name, table.c.qualifier == qualifier
        )

    def get(self, function_name: str, qualifier: str) -> StoredEventInvokeConfig | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(*_COLUMNS).where(self._key(function_name, qualifier))
            ).first()
        return None if row is None else _row(row)

    def put(self, stored: StoredEventInvokeConfig) -> None:
        """Insert ``stored`` or overwrite the row it replaces."""
        values = {"config": stored.config, "last_modified": stored.last_modified}
        key = self._key(stored.function_name, stored.qualifier)
        # Update-then-insert is portable; a concurrent insert of the same key makes ours
        # fail on the primary key, and the second round then updates the winner's row.
        for _ in range(2):
            try:
                with self._engine.begin() as conn:
                    if conn.execute(table.update().where(key).values(**values)).rowcount:
                        return
                    conn.execute(
                        table.insert().values(
                            account_id=self._account_id,
                            region=self._region,
                            function_name=stored.function_name,
                            qualifier=stored.qualifier,
                            **values,
                        )
                    )
                    return
            except IntegrityError:
                continue
        raise RuntimeError(f"could not write the EventInvokeConfig of {stored.function_name}")

    def replace(self, stored: StoredEventInvokeConfig, expected_last_modified: float) -> bool:
        """Overwrite the row if it is still the one last modified at ``expected_last_modified``.

        False when it was changed or deleted meanwhile (the caller re-reads and decides).
        """
        with self._engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    self._key(stored.function_name, stored.qualifier),
                    table.c.last_modified == expected_last_modified,
                )
                .values(config=stored.config, last_modified=stored.last_modified)
            )
        return result.rowcount == 1

    def delete(self, function_name: str, qualifier: str) -> bool:
        """Delete one config; False if there was none."""
        with self._engine.begin() as conn:
            result = conn.execute(table.delete().where(self._key(function_name, qualifier)))
        return result.rowcount > 0

    def page(
        self, function_name: str, after: str | None, limit: int
    ) -> list[StoredEventInvokeConfig]:
        """Up to ``limit`` configs of a function ordered by qualifier, starting after ``after``."""
        query = sa.select(*_COLUMNS).where(self._scope, table.c.function_name == function_name)
        if after is not None:
            query = query.where(table.c.qualifier > after)
        query = query.order_by(table.c.qualifier).limit(limit)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def drop_function(self, function_name: str, conn: sa.Connection | None = None) -> int:
        """Delete every config of a deleted function (all qualifiers); returns how many.

        Pass ``conn`` to do it inside the transaction that deletes the function.
        """
        statement = table.delete().where(self._scope, table.c.function_name == function_name)
        if conn is not None:
            return conn.execute(statement).rowcount
        with self._engine.begin() as own:
            return own.execute(statement).rowcount
