"""The usage recorder: batches off the invoke path, never silently loses a row."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lambdaplane.store.usage import UsageRow
from lambdaplane.usage.recorder import UsageRecorder

ROW: UsageRow = (1, "f", "$LATEST", "req", 1, 128, "x86_64", 512, False, False)


class FakeRepository:
    def __init__(self) -> None:
        self.batches: list[list[UsageRow]] = []
        self.fail = False

    def append(self, rows: list[UsageRow]) -> None:
        if self.fail:
            raise OSError("disk full")
        self.batches.append(list(rows))


def recorder(repo: FakeRepository, **kw: int) -> UsageRecorder:
    return UsageRecorder(repo, interval=0.01, **kw)  # type: ignore[arg-type]


def test_rows_are_written_in_batches_and_at_stop() -> None:
    repo = FakeRepository()

    async def scenario() -> None:
        usage = recorder(repo)
        await usage.start()
        usage.add(ROW)
        usage.add(ROW)
        await asyncio.sleep(0.1)
        usage.add(ROW)
        await usage.stop()

    asyncio.run(scenario())
    assert repo.batches == [[ROW, ROW], [ROW]]


def test_a_failed_write_keeps_its_rows(caplog: pytest.LogCaptureFixture) -> None:
    repo = FakeRepository()
    repo.fail = True
    caplog.set_level(logging.CRITICAL, logger="lambdaplane.usage")

    async def scenario() -> None:
        usage = recorder(repo, max_pending=3)
        for _ in range(2):
            usage.add(ROW)
        await usage.flush()
        usage.add(ROW)
        usage.add(ROW)
        await usage.flush()  # 4 pending, 3 kept
        repo.fail = False
        await usage.flush()

    asyncio.run(scenario())
    assert repo.batches == [[ROW, ROW, ROW]]
