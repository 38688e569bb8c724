"""The settler: finishes function creations and updates in the background.

CreateFunction and Update* answer at once with ``Pending`` / ``InProgress``, as AWS
does; the settler then unpacks the code and marks the function ``Active`` /
``Successful``. It is one task owned by the server's lifespan, fed through a queue
that handler threads may write to, and stopped (with a timeout) on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

log = logging.getLogger("lambdaplane.settler")

STOP_TIMEOUT_SECONDS = 10.0


class Settler:
    def __init__(self) -> None:
        self._settle: Callable[[str], None] | None = None
        self._queue: asyncio.Queue[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._backlog: list[str] = []

    def bind(self, settle: Callable[[str], None]) -> None:
        self._settle = settle

    def schedule(self, name: str) -> None:
        """Queue ``name`` to be settled; safe to call from any thread."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            self._backlog.append(name)  # Not started (e.g. used without a server): run at start.
            return
        loop.call_soon_threadsafe(queue.put_nowait, name)

    async def start(self, pending: Iterable[str]) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        for name in [*self._backlog, *pending]:
            self._queue.put_nowait(name)
        self._backlog.clear()
        self._task = asyncio.create_task(self._run(), name="lambdaplane-settler")

    async def _run(self) -> None:
        assert self._queue is not None and self._settle is not None
        while True:
            name = await self._queue.get()
            try:
                await asyncio.to_thread(self._settle, name)
            except Exception:
                log.exception("could not settle function %s", name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, STOP_TIMEOUT_SECONDS)
        self._loop = None
        self._queue = None
