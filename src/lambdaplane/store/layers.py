"""Layer and layer-version rows: publish (numbering), read, list, soft delete, policy CAS.

A deleted version keeps its row, flagged ``deleted``: Get and List skip it, but the
functions that already use it still find its code (``get(..., include_deleted=True)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from lambdaplane.store.schema import layer_versions, layers


@dataclass(frozen=True)
class StoredLayerVersion:
    """One published version of a layer, as stored."""

    name: str
    version: int
    code_sha256: str  # hex
    code_size: int  # bytes of the zip
    unzipped_size: int
    description: str
    license_info: str | None
    compatible_runtimes: list[str] | None  # None: not given at publish
    compatible_architectures: list[str] | None
    created_at: float  # epoch seconds
    policy: list[dict[str, Any]] = field(default_factory=list)  # permission statements
    policy_revision: str | None = None
    deleted: bool = False


_SELECT = sa.select(
    layers.c.name,
    layer_versions.c.version,
    layer_versions.c.code_sha256,
    layer_versions.c.code_size,
    layer_versions.c.unzipped_size,
    layer_versions.c.description,
    layer_versions.c.license_info,
    layer_versions.c.compatible_runtimes,
    layer_versions.c.compatible_architectures,
    layer_versions.c.created_at,
    layer_versions.c.policy,
    layer_versions.c.policy_revision,
    layer_versions.c.deleted,
).select_from(layers.join(layer_versions))


def _row(row: Any) -> StoredLayerVersion:
    (name, version, sha, size, unzipped, description, license_info, runtimes, archs) = row[:9]
    created_at, policy, policy_revision, deleted = row[9:]
    return StoredLayerVersion(
        name=name,
        version=int(version),
        code_sha256=sha,
        code_size=int(size),
        unzipped_size=int(unzipped),
        description=description,
        license_info=license_info,
        compatible_runtimes=runtimes,
        compatible_architectures=archs,
        created_at=float(created_at),
        policy=list(policy or []),
        policy_revision=policy_revision,
        deleted=bool(deleted),
    )


class LayerRepository:
    """Layers of one account and region."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._account_id = account_id
        self._region = region
        self._scope = sa.and_(layers.c.account_id == account_id, layers.c.region == region)

    def publish(self, name: str, build: Callable[[int], StoredLayerVersion]) -> StoredLayerVersion:
        """Add the version ``build`` makes from the layer's next version number (1 for a
        new layer; numbers are never reused), in one transaction."""
        for _ in range(3):
            try:
                with self._engine.begin() as conn:
                    return self._publish(conn, name, build)
            except IntegrityError:
                continue  # Another writer created the layer first: count on its row.
        raise RuntimeError(f"could not publish a version of layer {name}")

    def _publish(
        self, conn: sa.Connection, name: str, build: Callable[[int], StoredLayerVersion]
    ) -> StoredLayerVersion:
        layer_id = conn.execute(
            sa.select(layers.c.id).where(self._scope, layers.c.name == name)
        ).scalar()
        if layer_id is None:
            inserted = conn.execute(
                layers.insert().values(
                    account_id=self._account_id, region=self._region, name=name, last_version=0
                )
            ).inserted_primary_key
            assert inserted is not None
            layer_id = inserted[0]
        # The increment takes the row's write lock: concurrent publishers queue here.
        conn.execute(
            layers.update()
            .where(layers.c.id == layer_id)
            .values(last_version=layers.c.last_version + 1)
        )
        number = conn.execute(
            sa.select(layers.c.last_version).where(layers.c.id == layer_id)
        ).scalar_one()
        version = build(int(number))
        conn.execute(
            layer_versions.insert().values(
                layer_id=layer_id,
                version=version.version,
                code_sha256=version.code_sha256,
                code_size=version.code_size,
                unzipped_size=version.unzipped_size,
                description=version.description,
                license_info=version.license_info,
                compatible_runtimes=version.compatible_runtimes,
                compatible_architectures=version.compatible_architectures,
                created_at=version.created_at,
                policy=version.policy,
                policy_revision=version.policy_revision,
                deleted=False,
            )
        )
        return version

    def get(
        self, name: str, version: int, include_deleted: bool = False
    ) -> StoredLayerVersion | None:
        """One version; a deleted one only with ``include_deleted``."""
        query = _SELECT.where(
            self._scope, layers.c.name == name, layer_versions.c.version == version
        )
        if not include_deleted:
            query = query.where(layer_versions.c.deleted == sa.false())
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _row(row)

    def versions(self, name: str, below: int | None = None) -> list[StoredLayerVersion]:
        """The layer's live versions, newest first (only those numbered below ``below``)."""
        query = _SELECT.where(
            self._scope, layers.c.name == name, layer_versions.c.deleted == sa.false()
        )
        if below is not None:
            query = query.where(layer_versions.c.version < below)
        query = query.order_by(layer_versions.c.version.desc())
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def all_versions(self, after: str | None = None) -> list[StoredLayerVersion]:
        """Every live version of every layer named after ``after``: by name, newest first."""
        query = _SELECT.where(self._scope, layer_versions.c.deleted == sa.false())
        if after is not None:
            query = query.where(layers.c.name > after)
        query = query.order_by(layers.c.name, layer_versions.c.version.desc())
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def delete(self, name: str, version: int) -> bool:
        """Hide a version from Get and List (its row stays); False if it was not live."""
        with self._engine.begin() as conn:
            result = conn.execute(
                layer_versions.update()
                .where(
                    layer_versions.c.layer_id == self._layer_id(name),
                    layer_versions.c.version == version,
                    layer_versions.c.deleted == sa.false(),
                )
                .values(deleted=True, policy=[], policy_revision=None)
            )
        return result.rowcount == 1

    def set_policy(
        self,
        name: str,
        version: int,
        policy: list[dict[str, Any]],
        revision: str | None,
        expected_revision: str | None,
    ) -> bool:
        """Replace a live version's statements if its policy revision is still
        ``expected_revision`` (None: no policy yet); False when someone got there first."""
        current = (
            layer_versions.c.policy_revision.is_(None)
            if expected_revision is None
            else layer_versions.c.policy_revision == expected_revision
        )
        with self._engine.begin() as conn:
            result = conn.execute(
                layer_versions.update()
                .where(
                    layer_versions.c.layer_id == self._layer_id(name),
                    layer_versions.c.version == version,
                    layer_versions.c.deleted == sa.false(),
                    current,
                )
                .values(policy=policy, policy_revision=revision)
            )
        return result.rowcount == 1

    def _layer_id(self, name: str) -> sa.ScalarSelect[Any]:
        return sa.select(layers.c.id).where(self._scope, layers.c.name == name).scalar_subquery()
