"""The durable queue of accepted asynchronous invocations.

``enqueue`` commits before Invoke answers 202. A worker ``claim``s due events by
writing a lease (compare-and-set per row, portable to PostgreSQL); ``complete`` deletes
an event once its outcome is handled; ``retry_at`` makes it due again later. A lease
that expires (its worker died) makes the event due again: delivery is at least once.
At start, a single node clears every lease (the workers that held them are gone).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from lambdaplane.store.schema import async_events


@dataclass(frozen=True)
class QueuedEvent:
    id: int
    function_name: str
    qualifier: str
    request_id: str
    payload: bytes
    received_at: float
    attempts: int
    trace_header: str | None = None  # the caller's X-Amzn-Trace-Id


class AsyncQueue:
    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._account_id = account_id
        self._region = region
        self._scope = sa.and_(
            async_events.c.account_id == account_id, async_events.c.region == region
        )

    def enqueue(
        self,
        function_name: str,
        qualifier: str,
        request_id: str,
        payload: bytes,
        now: float,
        trace_header: str | None = None,
    ) -> None:
        """Store an accepted event durably (committed when this returns)."""
        with self._engine.begin() as conn:
            conn.execute(
                async_events.insert().values(
                    account_id=self._account_id,
                    region=self._region,
                    function_name=function_name,
                    qualifier=qualifier,
                    request_id=request_id,
                    payload=payload,
                    received_at=now,
                    attempts=0,
                    next_attempt_at=now,
                    lease_until=None,
                    trace_header=trace_header,
                )
            )

    def claim(self, now: float, limit: int, lease_seconds: float) -> list[QueuedEvent]:
        """Up to ``limit`` due events, leased to the caller until ``now + lease_seconds``."""
        free = sa.or_(async_events.c.lease_until.is_(None), async_events.c.lease_until < now)
        query = (
            sa.select(
                async_events.c.id,
                async_events.c.function_name,
                async_events.c.qualifier,
                async_events.c.request_id,
                async_events.c.payload,
                async_events.c.received_at,
                async_events.c.attempts,
                async_events.c.trace_header,
            )
            .where(self._scope, async_events.c.next_attempt_at <= now, free)
            .order_by(async_events.c.next_attempt_at, async_events.c.id)
            .limit(limit)
        )
        claimed: list[QueuedEvent] = []
        with self._engine.begin() as conn:
            for row in conn.execute(query).all():
                won = conn.execute(
                    async_events.update()
                    .where(async_events.c.id == row.id, free)
                    .values(lease_until=now + lease_seconds)
                ).rowcount
                if won:
                    claimed.append(
                        QueuedEvent(
                            row.id,
                            row.function_name,
                            row.qualifier,
                            row.request_id,
                            bytes(row.payload),
                            row.received_at,
                            row.attempts,
                            row.trace_header,
                        )
                    )
        return claimed

    def complete(self, event_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(async_events.delete().where(async_events.c.id == event_id))

    def complete_many(self, event_ids: list[int]) -> None:
        """Delete finished events in one transaction."""
        with self._engine.begin() as conn:
            conn.execute(async_events.delete().where(async_events.c.id.in_(event_ids)))

    def retry_at(self, event_id: int, attempts: int, when: float, error: str | None) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                async_events.update()
                .where(async_events.c.id == event_id)
                .values(attempts=attempts, next_attempt_at=when, lease_until=None, last_error=error)
            )

    def release_all_leases(self) -> int:
        """At start on a single node: leases of the previous process's workers are void."""
        with self._engine.begin() as conn:
            return int(
                conn.execute(
                    async_events.update()
                    .where(self._scope, async_events.c.lease_until.is_not(None))
                    .values(lease_until=None)
                ).rowcount
            )

    def depth(self) -> int:
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(async_events).where(self._scope)
                ).scalar_one()
            )

    def next_due(self) -> float | None:
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.min(async_events.c.next_attempt_at)).where(self._scope)
            ).scalar()
        return None if value is None else float(value)
