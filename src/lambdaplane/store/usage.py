"""Usage records: one row per invocation, appended in batches, summed for a bill."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from lambdaplane.store.schema import provisioned_usage, usage_records

# AWS bills provisioned concurrency "rounded up to the nearest 5 minutes", and a SnapStart
# snapshot's cache for at least 3 hours.
BILLING_STEP_MS = 5 * 60 * 1000
SNAPSHOT_MINIMUM_MS = 3 * 3600 * 1000

# 12 placeholders a row: 12,000 a statement, under SQLite's limit since 3.32 (32,766) and
# PostgreSQL's (65,535); an older SQLite allows 999.
ROWS_PER_STATEMENT = 1000
ROWS_PER_STATEMENT_OLD_SQLITE = 90

# What the invoke path hands over per invocation, as a plain tuple (no object per call):
# (timestamp ms, function name, version, request id, billed ms, memory MB, architecture,
#  ephemeral storage MB, ran on a provisioned environment, a SnapStart restore's first)
UsageRow = tuple[int, str, str, str, int, int, str, int, bool, bool]


@dataclass(frozen=True)
class UsageTotal:
    """Invocations of one function billed at one configuration, summed over a time range."""

    account_id: str
    region: str
    function_name: str
    architecture: str
    memory_mb: int
    ephemeral_mb: int
    requests: int
    billed_ms: int
    provisioned: bool = False  # run by provisioned environments (another duration price)
    restores: int = 0  # of them, first invocations of environments restored from a snapshot


@dataclass(frozen=True)
class ProvisionedPeriod:
    """A provisioned concurrency configuration, for as long as it lasted (``end_ms`` None:
    it still does)."""

    account_id: str
    region: str
    function_name: str
    qualifier: str
    concurrency: int
    memory_mb: int
    architecture: str
    start_ms: int
    end_ms: int | None
    kind: str = "provisioned"  # or "snapstart": a cached snapshot (``concurrency`` is 1)


class UsageRepository:
    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._account_id = account_id
        self._region = region
        old_sqlite = engine.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32)
        self._rows_per_statement = (
            ROWS_PER_STATEMENT_OLD_SQLITE if old_sqlite else ROWS_PER_STATEMENT
        )

    def append(self, rows: Sequence[UsageRow]) -> None:
        """Store ``rows`` in one transaction, up to ``ROWS_PER_STATEMENT`` rows an INSERT.

        Multi-row VALUES rather than executemany: the sqlite3 driver releases and retakes
        the GIL around every statement it steps, and while the event loop is saturated
        each retake waits for the interpreter's switch interval (5 ms): executemany of a
        second's rows took about a second of wall time beside a busy loop (228 us a row,
        measured), a few statements take milliseconds. The SQL is portable; only the
        placeholder differs, and the dialect names it.
        """
        if not rows:
            return
        mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
        one = f"({', '.join([mark] * 12)})"
        head = (
            "INSERT INTO usage_records (account_id, region, timestamp, function_name, version, "
            "request_id, billed_ms, memory_mb, architecture, ephemeral_mb, provisioned, restored) "
            "VALUES "
        )
        scope = (self._account_id, self._region)
        size = self._rows_per_statement
        with self._engine.begin() as conn:
            for start in range(0, len(rows), size):
                chunk = rows[start : start + size]
                values = tuple(value for row in chunk for value in scope + row)
                conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), values)

    def totals(
        self,
        since_ms: int,
        until_ms: int,
        function_name: str | None = None,
        region: str | None = None,
    ) -> list[UsageTotal]:
        """Requests and billed milliseconds in [since, until), per function and configuration.

        Reads every account and region of the store unless ``region`` narrows it.
        """
        u = usage_records.c
        keys = (
            u.account_id,
            u.region,
            u.function_name,
            u.architecture,
            u.memory_mb,
            u.ephemeral_mb,
            u.provisioned,
        )
        query = (
            sa.select(
                *keys,
                sa.func.count(),
                sa.func.sum(u.billed_ms),
                sa.func.sum(sa.case((u.restored, 1), else_=0)),
            )
            .where(u.timestamp >= since_ms, u.timestamp < until_ms)
            .group_by(*keys)
            .order_by(*keys)
        )
        if function_name is not None:
            query = query.where(u.function_name == function_name)
        if region is not None:
            query = query.where(u.region == region)
        with self._engine.connect() as conn:
            return [
                UsageTotal(
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    int(row[4]),
                    int(row[5]),
                    int(row[7]),
                    int(row[8]),
                    bool(row[6]),
                    int(row[9]),
                )
                for row in conn.execute(query)
            ]

    def provisioned_periods(
        self,
        since_ms: int,
        until_ms: int,
        function_name: str | None = None,
        region: str | None = None,
    ) -> list[ProvisionedPeriod]:
        """Provisioned concurrency periods that may bill time in [since, until): those that
        started before ``until`` and had not ended before ``since``."""
        p = provisioned_usage.c
        query = (
            sa.select(provisioned_usage)
            .where(
                p.start_ms < until_ms,
                sa.or_(p.end_ms.is_(None), p.end_ms >= since_ms),
            )
            .order_by(p.start_ms, p.id)
        )
        if function_name is not None:
            query = query.where(p.function_name == function_name)
        if region is not None:
            query = query.where(p.region == region)
        with self._engine.connect() as conn:
            return [
                ProvisionedPeriod(
                    r.account_id,
                    r.region,
                    r.function_name,
                    r.qualifier,
                    int(r.concurrency),
                    int(r.memory_mb),
                    r.architecture,
                    int(r.start_ms),
                    None if r.end_ms is None else int(r.end_ms),
                    r.kind,
                )
                for r in conn.execute(query)
            ]

    def records(self, function_name: str | None = None) -> list[dict[str, object]]:
        """Every record, oldest first (for tests and exports)."""
        query = sa.select(usage_records).order_by(usage_records.c.timestamp, usage_records.c.id)
        if function_name is not None:
            query = query.where(usage_records.c.function_name == function_name)
        with self._engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
