"""Event source mapping rows and their pollers' checkpoints.

Every write of a mapping is a compare-and-swap on ``revision``, so the API (an update,
a delete) and the manager (finishing a state transition) never overwrite each other:
the loser re-reads and decides again.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from lambdaplane.store.schema import esm_checkpoints as checkpoints
from lambdaplane.store.schema import event_source_mappings as table


@dataclass(frozen=True)
class StoredMapping:
    """One mapping as stored. ``config`` is the API's shape (defaults filled in) without
    the fields kept in columns (State, StateTransitionReason, LastProcessingResult,
    LastModified)."""

    uuid: str
    function_name: str
    qualifier: str | None
    source_kind: str
    source_key: str
    config: dict[str, Any]
    enabled: bool  # what the user asked for; the state follows it
    state: str
    state_reason: str
    last_processing_result: str | None
    last_modified: float
    created_at: float
    revision: str

    def with_changes(self, **changes: Any) -> StoredMapping:
        return replace(self, **changes)


_COLUMNS = (
    table.c.uuid,
    table.c.function_name,
    table.c.qualifier,
    table.c.source_kind,
    table.c.source_key,
    table.c.config,
    table.c.enabled,
    table.c.state,
    table.c.state_reason,
    table.c.last_processing_result,
    table.c.last_modified,
    table.c.created_at,
    table.c.revision,
)


def _row(row: Any) -> StoredMapping:
    return StoredMapping(
        row.uuid,
        row.function_name,
        row.qualifier,
        row.source_kind,
        row.source_key,
        dict(row.config),
        bool(row.enabled),
        row.state,
        row.state_reason,
        row.last_processing_result,
        float(row.last_modified),
        float(row.created_at),
        row.revision,
    )


def new_revision() -> str:
    return str(uuidlib.uuid4())


class EventSourceMappingRepository:
    """Mappings of one account and region, and their checkpoints."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._account_id = account_id
        self._region = region
        self._scope = sa.and_(table.c.account_id == account_id, table.c.region == region)

    def get(self, uuid: str) -> StoredMapping | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(*_COLUMNS).where(self._scope, table.c.uuid == uuid)
            ).first()
        return None if row is None else _row(row)

    def insert(self, stored: StoredMapping) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                table.insert().values(
                    account_id=self._account_id,
                    region=self._region,
                    **_values(stored),
                    uuid=stored.uuid,
                    created_at=stored.created_at,
                )
            )

    def replace(self, stored: StoredMapping, expected_revision: str) -> bool:
        """Write ``stored`` if the row still has ``expected_revision``; False otherwise."""
        with self._engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    self._scope, table.c.uuid == stored.uuid, table.c.revision == expected_revision
                )
                .values(**_values(stored))
            )
        return result.rowcount == 1

    def set_last_processing_result(self, uuid: str, result: str) -> None:
        """Record a poller's latest outcome; not a configuration change (no new revision)."""
        with self._engine.begin() as conn:
            conn.execute(
                table.update()
                .where(self._scope, table.c.uuid == uuid)
                .values(last_processing_result=result)
            )

    def delete(self, uuid: str, expected_revision: str | None = None) -> bool:
        """Delete a mapping and its checkpoints; False if it was gone (or changed)."""
        condition = sa.and_(self._scope, table.c.uuid == uuid)
        if expected_revision is not None:
            condition = sa.and_(condition, table.c.revision == expected_revision)
        with self._engine.begin() as conn:
            deleted = conn.execute(table.delete().where(condition)).rowcount
            if deleted:
                conn.execute(checkpoints.delete().where(checkpoints.c.mapping_uuid == uuid))
        return deleted > 0

    def all(self) -> list[StoredMapping]:
        """Every mapping, oldest first (the manager's reconcile reads this)."""
        query = sa.select(*_COLUMNS).where(self._scope).order_by(table.c.created_at, table.c.uuid)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def find(
        self,
        *,
        function_name: str | None = None,
        source_key: str | None = None,
    ) -> list[StoredMapping]:
        """Mappings of a function and/or a source, oldest first."""
        query = sa.select(*_COLUMNS).where(self._scope)
        if function_name is not None:
            query = query.where(table.c.function_name == function_name)
        if source_key is not None:
            query = query.where(table.c.source_key == source_key)
        query = query.order_by(table.c.created_at, table.c.uuid)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    # -- checkpoints -------------------------------------------------------------------

    def checkpoint(self, uuid: str, key: str) -> str | None:
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(checkpoints.c.value).where(
                    checkpoints.c.mapping_uuid == uuid, checkpoints.c.key == key
                )
            ).scalar()
        return None if value is None else str(value)

    def checkpoints(self, uuid: str) -> dict[str, str]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(checkpoints.c.key, checkpoints.c.value).where(
                    checkpoints.c.mapping_uuid == uuid
                )
            )
            return {str(k): str(v) for k, v in rows}

    def put_checkpoints(self, uuid: str, values: Mapping[str, str], now: float) -> None:
        """Upsert checkpoints in one transaction (update, then insert what was missing)."""
        if not values:
            return
        for _ in range(2):  # a concurrent insert of the same key: the second round updates
            try:
                with self._engine.begin() as conn:
                    for key, value in values.items():
                        updated = conn.execute(
                            checkpoints.update()
                            .where(checkpoints.c.mapping_uuid == uuid, checkpoints.c.key == key)
                            .values(value=value, updated_at=now)
                        ).rowcount
                        if not updated:
                            conn.execute(
                                checkpoints.insert().values(
                                    mapping_uuid=uuid, key=key, value=value, updated_at=now
                                )
                            )
                return
            except IntegrityError:
                continue
        raise RuntimeError(f"could not write the checkpoints of mapping {uuid}")

    def delete_checkpoint(self, uuid: str, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                checkpoints.delete().where(
                    checkpoints.c.mapping_uuid == uuid, checkpoints.c.key == key
                )
            )


def _values(stored: StoredMapping) -> dict[str, Any]:
    return {
        "function_name": stored.function_name,
        "qualifier": stored.qualifier,
        "source_kind": stored.source_kind,
        "source_key": stored.source_key,
        "config": stored.config,
        "enabled": stored.enabled,
        "state": stored.state,
        "state_reason": stored.state_reason,
        "last_processing_result": stored.last_processing_result,
        "last_modified": stored.last_modified,
        "revision": stored.revision,
    }
