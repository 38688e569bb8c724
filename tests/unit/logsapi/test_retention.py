"""The retention sweep: deletes what is older than each group's retention, on its
interval and when nudged, as a task that stops with the server."""

from __future__ import annotations

import asyncio

from lambdaplane.logsapi.retention import RetentionSweeper
from lambdaplane.logsapi.service import DAY_MS
from lambdaplane.store.log_groups import EventRange
from lambdaplane.store.logs import LogEvent
from tests.unit.logsapi.conftest import Logs


def test_sweep_deletes_only_expired_events_of_groups_with_retention(logs: Logs) -> None:
    now_ms = int(logs.clock.now * 1000)
    old, fresh = now_ms - 8 * DAY_MS, now_ms - DAY_MS
    logs.writer.append(
        [LogEvent(g, "s", ts, "m") for g in ("/kept", "/expiring") for ts in (old, fresh)], now_ms
    )
    sweeper = RetentionSweeper(logs.catalog, logs.clock)
    assert sweeper.sweep() == 0
    logs.catalog.set_retention("/expiring", 7)
    assert sweeper.sweep() == 1
    assert [e.key.timestamp for e in logs.catalog.group_events("/expiring", EventRange())] == [
        fresh
    ]
    assert len(logs.catalog.group_events("/kept", EventRange())) == 2
    logs.clock.now += 7 * DAY_MS / 1000
    assert sweeper.sweep() == 1 and logs.catalog.group_events("/expiring", EventRange()) == []


def test_nudge_runs_a_sweep_and_stop_ends_the_task(logs: Logs) -> None:
    now_ms = int(logs.clock.now * 1000)
    logs.writer.append([LogEvent("/g", "s", now_ms - 2 * DAY_MS, "old")], now_ms)
    sweeper = RetentionSweeper(logs.catalog, logs.clock, interval=3600)

    async def scenario() -> None:
        sweeper.nudge()  # before start: nothing to wake, no error
        await sweeper.start()
        await asyncio.sleep(0.05)  # the first sweep at start found nothing to delete
        logs.catalog.set_retention("/g", 1)
        await asyncio.to_thread(sweeper.nudge)  # as PutRetentionPolicy does, from a worker thread
        for _ in range(100):
            if not logs.catalog.group_events("/g", EventRange()):
                break
            await asyncio.sleep(0.01)
        await sweeper.stop()

    asyncio.run(scenario())
    assert logs.catalog.group_events("/g", EventRange()) == []
