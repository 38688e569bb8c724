"""Log events of execution environments: appended in batches, read back by stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from lambdaplane.store.schema import log_events


@dataclass(frozen=True)
class LogEvent:
    log_group: str
    log_stream: str
    timestamp: int  # ms since the epoch
    message: str


class LogRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def append(self, events: Sequence[LogEvent], ingestion_time: int) -> None:
        """Store ``events`` in one transaction.

        The driver's own executemany with positional rows: thousands of lines a second
        arrive here, and building a dict per row through the ORM-free Core path still
        cost ~4 us a line. The SQL is the same on SQLite and PostgreSQL; only the
        placeholder differs, and the dialect names it.
        """
        if not events:
            return
        mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
        sql = (
            "INSERT INTO log_events (log_group, log_stream, timestamp, ingestion_time, message) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})"
        )
        rows = [(e.log_group, e.log_stream, e.timestamp, ingestion_time, e.message) for e in events]
        with self._engine.begin() as conn:
            conn.exec_driver_sql(sql, rows)

    def stream(self, log_group: str, log_stream: str, limit: int = 10_000) -> list[LogEvent]:
        """The events of one stream in time order (oldest first)."""
        query = (
            sa.select(log_events.c.timestamp, log_events.c.message)
            .where(log_events.c.log_group == log_group, log_events.c.log_stream == log_stream)
            .order_by(log_events.c.timestamp, log_events.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [LogEvent(log_group, log_stream, ts, msg) for ts, msg in conn.execute(query)]

    def streams(self, log_group: str) -> list[str]:
        query = (
            sa.select(log_events.c.log_stream)
            .where(log_events.c.log_group == log_group)
            .group_by(log_events.c.log_stream)
            .order_by(log_events.c.log_stream)
        )
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]
