"""Collects a usage row per invocation and writes them to the store in batches.

``add`` only appends a tuple, so the invoke path pays well under a microsecond; a task
owned by the server's lifespan writes what is pending every ``interval`` seconds (or
sooner when many are waiting) in a worker thread, and writes the rest at shutdown.
A failed write keeps its rows for the next attempt (up to ``max_pending`` rows, then
the oldest are dropped, loudly): a bill should not silently lose invocations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from lambdaplane.store.usage import UsageRepository, UsageRow

log = logging.getLogger("lambdaplane.usage")


class UsageRecorder:
    def __init__(
        self,
        repository: UsageRepository,
        interval: float = 1.0,
        batch: int = 5000,
        max_pending: int = 1_000_000,
    ) -> None:
        self._repository = repository
        self._interval = interval
        self._batch = batch
        self._max_pending = max_pending
        self._pending: list[UsageRow] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def add(self, row: UsageRow) -> None:
        """One invocation's usage; see ``UsageRow`` for the fields."""
        pending = self._pending
        pending.append(row)
        if len(pending) >= self._batch and self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="lambdaplane-usage")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write everything pending so far (the async workers call this before deleting
        an event, so an event's usage is stored before the event is gone)."""
        rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            await asyncio.to_thread(self._repository.append, rows)
        except Exception:
            log.exception(
                "could not store %d usage records; keeping them for the next try", len(rows)
            )
            self._pending[:0] = rows
            excess = len(self._pending) - self._max_pending
            if excess > 0:
                del self._pending[:excess]
                log.error("dropped the %d oldest unstored usage records", excess)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()
