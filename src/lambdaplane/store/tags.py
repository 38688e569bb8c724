"""Tags of any taggable resource, keyed by its unqualified ARN."""

from __future__ import annotations

import sqlalchemy as sa

from lambdaplane.store.schema import resource_tags

_GET = sa.select(resource_tags.c.key, resource_tags.c.value).where(
    resource_tags.c.resource_arn == sa.bindparam("arn")
)


class TagRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def get(self, arn: str, conn: sa.Connection | None = None) -> dict[str, str]:
        """The tags of ``arn``; reuses ``conn`` when the caller already holds one."""
        if conn is not None:
            return {k: v for k, v in conn.execute(_GET, {"arn": arn})}
        with self._engine.connect() as own:
            return {k: v for k, v in own.execute(_GET, {"arn": arn})}

    def put(self, arn: str, tags: dict[str, str]) -> None:
        """Add or overwrite ``tags`` on ``arn``."""
        if not tags:
            return
        with self._engine.begin() as conn:
            conn.execute(
                resource_tags.delete().where(
                    resource_tags.c.resource_arn == arn, resource_tags.c.key.in_(list(tags))
                )
            )
            conn.execute(
                resource_tags.insert(),
                [{"resource_arn": arn, "key": k, "value": v} for k, v in tags.items()],
            )

    def remove(self, arn: str, keys: list[str]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                resource_tags.delete().where(
                    resource_tags.c.resource_arn == arn, resource_tags.c.key.in_(keys)
                )
            )

    def drop(self, arn: str) -> None:
        """Forget every tag of a deleted resource."""
        with self._engine.begin() as conn:
            conn.execute(resource_tags.delete().where(resource_tags.c.resource_arn == arn))
