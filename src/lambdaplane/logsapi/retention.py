"""Retention: a background sweep deletes events older than their group's retention.

The sweep runs every ``interval`` seconds, and soon after a PutRetentionPolicy
(``nudge``, callable from any thread). It is a task owned by the server's lifespan:
``start`` and ``stop`` bracket it, and ``stop`` waits for a sweep in progress. Reads
do not depend on it: they hide expired events themselves (``LogsService.cutoff``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from lambdaplane.logsapi.service import DAY_MS
from lambdaplane.store.log_groups import LogGroupRepository

log = logging.getLogger("lambdaplane.logs")


class RetentionSweeper:
    def __init__(
        self,
        repository: LogGroupRepository,
        clock: Callable[[], float],
        interval: float = 600.0,
    ) -> None:
        self._repo = repository
        self._clock = clock
        self._interval = interval
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def sweep(self) -> int:
        """Delete every expired event now (blocking); how many were deleted."""
        now_ms = int(self._clock() * 1000)
        deleted = 0
        for group in self._repo.with_retention():
            assert group.retention_days is not None
            deleted += self._repo.expire(group.name, now_ms - group.retention_days * DAY_MS)
        return deleted

    def nudge(self) -> None:
        """Ask for a sweep soon; safe from worker threads, a no-op before ``start``."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="lambdaplane-log-retention")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            try:
                deleted = await asyncio.to_thread(self.sweep)
                if deleted:
                    log.info("retention deleted %d expired log events", deleted)
            except Exception:
                log.exception("log retention sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._loop = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
