"""Reserved concurrency rows: one per function that has a reservation."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from lambdaplane.store.schema import function_concurrency as table
from lambdaplane.store.schema import functions


class ConcurrencyRepository:
    """The reservations of the functions of one account and region."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._scope = sa.and_(functions.c.account_id == account_id, functions.c.region == region)

    def get(self, function_name: str) -> int | None:
        query = (
            sa.select(table.c.reserved)
            .select_from(functions.join(table))
            .where(self._scope, functions.c.name == function_name)
        )
        with self._engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    def all(self) -> dict[str, int]:
        """Every reservation of the account, by function name."""
        query = (
            sa.select(functions.c.name, table.c.reserved)
            .select_from(functions.join(table))
            .where(self._scope)
        )
        with self._engine.connect() as conn:
            return {name: int(reserved) for name, reserved in conn.execute(query)}

    def put(self, function_name: str, reserved: int, check: Callable[[int], None]) -> bool:
        """Set the function's reservation; False if there is no such function.

        ``check`` gets the sum of the *other* functions' reservations, read in the same
        transaction, and raises to refuse the write.
        """
        with self._engine.begin() as conn:
            function_id = conn.execute(
                sa.select(functions.c.id).where(self._scope, functions.c.name == function_name)
            ).scalar()
            if function_id is None:
                return False
            others = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(table.c.reserved), 0))
                .select_from(functions.join(table))
                .where(self._scope, table.c.function_id != function_id)
            ).scalar_one()
            check(int(others))
            updated = conn.execute(
                table.update().where(table.c.function_id == function_id).values(reserved=reserved)
            )
            if updated.rowcount == 0:
                conn.execute(table.insert().values(function_id=function_id, reserved=reserved))
        return True

    def delete(self, function_name: str) -> None:
        """Drop the function's reservation, if it has one."""
        function_id = (
            sa.select(functions.c.id)
            .where(self._scope, functions.c.name == function_name)
            .scalar_subquery()
        )
        with self._engine.begin() as conn:
            conn.execute(table.delete().where(table.c.function_id == function_id))
