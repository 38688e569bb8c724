"""Collects log lines from environments and writes them to the store in batches.

Lines are appended without blocking the invoke path; a task owned by the server's
lifespan flushes them every ``interval`` seconds (or sooner when many are waiting)
in a worker thread, and flushes what is left on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from lambdaplane.store.logs import LogEvent, LogRepository

log = logging.getLogger("lambdaplane.logs")


class LogSink:
    def __init__(self, repository: LogRepository, interval: float = 0.2, batch: int = 2000) -> None:
        self._repository = repository
        self._interval = interval
        self._batch = batch
        self._pending: list[LogEvent] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def add(self, event: LogEvent) -> None:
        self._pending.append(event)
        if len(self._pending) >= self._batch and self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="lambdaplane-log-sink")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        events, self._pending = self._pending, []
        if not events:
            return
        try:
            await asyncio.to_thread(self._repository.append, events, int(time.time() * 1000))
        except Exception:
            log.exception("could not store %d log events", len(events))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()
