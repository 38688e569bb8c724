"""Log groups, log streams and their events, as the CloudWatch Logs API reads them.

Contract: names are exact (case-sensitive) everywhere, prefixes included. Event reads
take a ``not_before`` bound (ms) so a group's retention hides expired events even
before the retention sweep has deleted them. Events are ordered by (timestamp, id);
``EventKey`` is a position in that order, used by the API's paging tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from lambdaplane.store.logs import STANDARD_CLASS
from lambdaplane.store.schema import log_events, log_groups, log_streams


@dataclass(frozen=True)
class StoredLogGroup:
    name: str
    created_at: int  # ms since the epoch
    retention_days: int | None
    log_group_class: str
    stored_bytes: int


@dataclass(frozen=True)
class StoredLogStream:
    name: str
    created_at: int
    first_event: int | None
    last_event: int | None
    last_ingestion: int | None


@dataclass(frozen=True, order=True)
class EventKey:
    """A position between events: (timestamp, id) of the event just before it."""

    timestamp: int
    id: int


@dataclass(frozen=True)
class StoredEvent:
    key: EventKey
    log_stream: str
    ingestion_time: int
    message: str


@dataclass(frozen=True)
class EventRange:
    """Events with ``start <= timestamp < end`` and ``not_before <= timestamp``."""

    start: int | None = None
    end: int | None = None
    not_before: int | None = None


def _starts_with(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    # substr rather than LIKE: SQLite's LIKE ignores case, and names may hold '%' or '_'.
    return sa.func.substr(column, 1, len(prefix)) == prefix


class LogGroupRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    # ------------------------------------------------------------------ groups

    def create_group(self, name: str, created_at: int, log_group_class: str | None) -> bool:
        """Create an empty group; False when it already exists."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    log_groups.insert().values(
                        name=name,
                        created_at=created_at,
                        retention_days=None,
                        log_group_class=log_group_class or STANDARD_CLASS,
                        stored_bytes=0,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def group(self, name: str) -> StoredLogGroup | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(log_groups).where(log_groups.c.name == name)).first()
        return None if row is None else StoredLogGroup(*row)

    def groups(
        self,
        *,
        prefix: str | None = None,
        contains: str | None = None,
        names: Sequence[str] | None = None,
        log_group_class: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[StoredLogGroup]:
        """Groups by name, after ``after``; ``contains`` matches ignoring case."""
        query = sa.select(log_groups).order_by(log_groups.c.name).limit(limit)
        if prefix:
            query = query.where(_starts_with(log_groups.c.name, prefix))
        if contains:
            query = query.where(sa.func.lower(log_groups.c.name).contains(contains.lower()))
        if names is not None:
            query = query.where(log_groups.c.name.in_(list(names)))
        if log_group_class:
            query = query.where(log_groups.c.log_group_class == log_group_class)
        if after is not None:
            query = query.where(log_groups.c.name > after)
        with self._engine.connect() as conn:
            return [StoredLogGroup(*row) for row in conn.execute(query)]

    def delete_group(self, name: str) -> bool:
        """Delete a group with its streams and events; False when there was none."""
        with self._engine.begin() as conn:
            deleted = conn.execute(log_groups.delete().where(log_groups.c.name == name)).rowcount
            conn.execute(log_streams.delete().where(log_streams.c.log_group == name))
            conn.execute(log_events.delete().where(log_events.c.log_group == name))
        return bool(deleted)

    def set_retention(self, name: str, days: int | None) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                log_groups.update().where(log_groups.c.name == name).values(retention_days=days)
            )
        return bool(result.rowcount)

    def with_retention(self) -> list[StoredLogGroup]:
        query = sa.select(log_groups).where(log_groups.c.retention_days.is_not(None))
        with self._engine.connect() as conn:
            return [StoredLogGroup(*row) for row in conn.execute(query)]

    def expire(self, group: str, before: int) -> int:
        """Delete the group's events older than ``before`` (ms); how many were deleted."""
        where = sa.and_(log_events.c.log_group == group, log_events.c.timestamp < before)
        with self._engine.begin() as conn:
            count, size = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(sa.func.length(log_events.c.message)), 0),
                ).where(where)
            ).one()
            if not count:
                return 0
            conn.execute(log_events.delete().where(where))
            conn.execute(
                log_groups.update()
                .where(log_groups.c.name == group)
                .values(stored_bytes=_shrunk(int(size)))
            )
        return int(count)

    # ----------------------------------------------------------------- streams

    def create_stream(self, group: str, name: str, created_at: int) -> bool:
        """Create an empty stream in an existing group; False when it already exists."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    log_streams.insert().values(log_group=group, name=name, created_at=created_at)
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def stream(self, group: str, name: str) -> StoredLogStream | None:
        query = sa.select(*_STREAM_COLUMNS).where(
            log_streams.c.log_group == group, log_streams.c.name == name
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else StoredLogStream(*row)

    def streams(
        self,
        group: str,
        *,
        prefix: str | None = None,
        by_last_event: bool = False,
        descending: bool = False,
        after: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> list[StoredLogStream]:
        """A page of a group's streams, by name or by (last event time, name).

        ``after`` is the (sort value, name) of the previous page's last stream; the sort
        value is 0 when ordering by name, and a stream without events sorts as time 0.
        """
        sort = sa.func.coalesce(log_streams.c.last_event, 0) if by_last_event else sa.literal(0)
        name = log_streams.c.name
        query = sa.select(*_STREAM_COLUMNS).where(log_streams.c.log_group == group)
        if prefix:
            query = query.where(_starts_with(name, prefix))
        if after is not None:
            value, last = after
            if descending:
                query = query.where(sa.or_(sort < value, sa.and_(sort == value, name < last)))
            else:
                query = query.where(sa.or_(sort > value, sa.and_(sort == value, name > last)))
        order = (sort.desc(), name.desc()) if descending else (sort.asc(), name.asc())
        query = query.order_by(*order).limit(limit)
        with self._engine.connect() as conn:
            return [StoredLogStream(*row) for row in conn.execute(query)]

    def delete_stream(self, group: str, name: str) -> bool:
        where = sa.and_(log_events.c.log_group == group, log_events.c.log_stream == name)
        with self._engine.begin() as conn:
            deleted = conn.execute(
                log_streams.delete().where(
                    log_streams.c.log_group == group, log_streams.c.name == name
                )
            ).rowcount
            if not deleted:
                return False
            size = conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(sa.func.length(log_events.c.message)), 0)
                ).where(where)
            ).scalar_one()
            conn.execute(log_events.delete().where(where))
            conn.execute(
                log_groups.update()
                .where(log_groups.c.name == group)
                .values(stored_bytes=_shrunk(int(size)))
            )
        return True

    # ------------------------------------------------------------------ events

    def stream_events(
        self,
        group: str,
        stream: str,
        window: EventRange,
        *,
        after: EventKey | None = None,
        before: EventKey | None = None,
        newest_first: bool = False,
        limit: int = 10_000,
    ) -> list[StoredEvent]:
        """Up to ``limit`` events of one stream strictly between ``after`` and ``before``,
        the oldest (or with ``newest_first`` the newest) first."""
        query = _events(window).where(
            log_events.c.log_group == group, log_events.c.log_stream == stream
        )
        if after is not None:
            query = query.where(_past(after))
        if before is not None:
            query = query.where(_short_of(before))
        ts, ident = log_events.c.timestamp, log_events.c.id
        order = (ts.desc(), ident.desc()) if newest_first else (ts.asc(), ident.asc())
        return self._events(query.order_by(*order).limit(limit))

    def group_events(
        self,
        group: str,
        window: EventRange,
        *,
        streams: Sequence[str] | None = None,
        stream_prefix: str | None = None,
        after: EventKey | None = None,
        limit: int = 10_000,
    ) -> list[StoredEvent]:
        """Up to ``limit`` events of a group (or some of its streams) past ``after``, oldest first."""
        query = _events(window).where(log_events.c.log_group == group)
        if streams is not None:
            query = query.where(log_events.c.log_stream.in_(list(streams)))
        if stream_prefix:
            query = query.where(_starts_with(log_events.c.log_stream, stream_prefix))
        if after is not None:
            query = query.where(_past(after))
        query = query.order_by(log_events.c.timestamp, log_events.c.id).limit(limit)
        return self._events(query)

    def _events(self, query: sa.Select[Any]) -> list[StoredEvent]:
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [StoredEvent(EventKey(r[1], r[0]), r[2], r[3], r[4]) for r in rows]


_STREAM_COLUMNS = (
    log_streams.c.name,
    log_streams.c.created_at,
    log_streams.c.first_event,
    log_streams.c.last_event,
    log_streams.c.last_ingestion,
)


def _events(window: EventRange) -> sa.Select[Any]:
    ts = log_events.c.timestamp
    query = sa.select(
        log_events.c.id,
        ts,
        log_events.c.log_stream,
        log_events.c.ingestion_time,
        log_events.c.message,
    )
    if window.start is not None:
        query = query.where(ts >= window.start)
    if window.end is not None:
        query = query.where(ts < window.end)
    if window.not_before is not None:
        query = query.where(ts >= window.not_before)
    return query


def _past(key: EventKey) -> sa.ColumnElement[bool]:
    ts, ident = log_events.c.timestamp, log_events.c.id
    return sa.or_(ts > key.timestamp, sa.and_(ts == key.timestamp, ident > key.id))


def _short_of(key: EventKey) -> sa.ColumnElement[bool]:
    ts, ident = log_events.c.timestamp, log_events.c.id
    return sa.or_(ts < key.timestamp, sa.and_(ts == key.timestamp, ident < key.id))


def _shrunk(size: int) -> sa.ColumnElement[int]:
    """``stored_bytes`` less ``size``, never below zero (portable: no GREATEST in SQLite)."""
    left = log_groups.c.stored_bytes - size
    return sa.case((left < 0, 0), else_=left)
