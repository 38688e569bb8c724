"""The poller of a stream (Kinesis or DynamoDB Streams): its shards, each in order.

``StreamPoller.run`` lists the stream's shards (every ``discover_interval`` seconds, and at
once when a shard ends) and runs a ``ShardProcessor`` per shard that is ready: one whose
parents (``ParentShardId``, ``AdjacentParentShardId``) are done or gone from the stream,
so a resharded stream's children are read only after their parents, as Lambda does.

Checkpoints (``ctx.checkpoints``), which live with the mapping:

- ``<shard id>``: the sequence number of the last record done, or ``SHARD_END`` once a
  closed shard's every record is done; a shard restarts after it.
- ``<shard id>#window``: the shard's tumbling window and state (``shard_processor``).
- ``<shard id>#done``: records done past the checkpoint when the poller last stopped
  (a lane ran ahead of another), skipped when read again.
- ``#position``: where shards without a checkpoint start, fixed on the first run:
  ``TRIM_HORIZON``, or ``AT_TIMESTAMP:<epoch>`` for AT_TIMESTAMP, and for LATEST the
  moment the mapping first ran. The first run reads its shards from LATEST itself; a
  shard that appears later, or is still unread after a restart, starts at that moment,
  so what arrives while the server is down is read when it is back.

Checkpoints of shards gone from the stream (past its retention) are deleted.
"""

from __future__ import annotations

import asyncio
import logging

from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.poller import PollerContext
from lambdaplane.esm.shard_processor import ShardProcessor
from lambdaplane.esm.streams import (
    AT_TIMESTAMP,
    LATEST,
    SHARD_END,
    TRIM_HORIZON,
    Position,
    Shard,
    StreamSettings,
    StreamSource,
)

log = logging.getLogger("lambdaplane.esm.streams")

POSITION_KEY = "#position"


class StreamPoller:
    """Polls every shard of one stream for one mapping (see the module docstring)."""

    def __init__(
        self,
        mapping: MappingConfig,
        source: StreamSource,
        settings: StreamSettings | None = None,
    ) -> None:
        self.mapping = mapping
        self._source = source
        self._settings = settings or StreamSettings()
        self._running: dict[str, tuple[ShardProcessor, asyncio.Task[bool]]] = {}
        self._initial: Position | None = None  # the first run's start, for its first shards
        self._initial_shards: set[str] | None = None
        self._position = Position(TRIM_HORIZON)

    async def run(self, ctx: PollerContext) -> None:
        role = await ctx.function_role() or ""
        await self._load_position(ctx)
        error_delay, ceiling = self._settings.error_delays
        next_listing = 0.0
        try:
            while not ctx.stopping.is_set():
                if ctx.clock() >= next_listing:
                    try:
                        shards = await self._source.shards(ctx)
                    except Exception as err:
                        log.warning("mapping %s: listing shards: %s", self.mapping.uuid, err)
                        await ctx.report(f"PROBLEM: {err}"[:1024])
                        next_listing = ctx.clock() + error_delay
                        error_delay = min(ceiling, error_delay * 2)
                    else:
                        error_delay = self._settings.error_delays[0]
                        await self._start_ready(ctx, shards, role)
                        next_listing = ctx.clock() + self._settings.discover_interval
                if await self._wait(ctx, max(0.0, next_listing - ctx.clock())):
                    next_listing = 0.0  # a shard ended: its children may be ready
                if self._crashed(ctx):
                    next_listing = min(next_listing, ctx.clock() + error_delay)
            tasks = [task for _, task in self._running.values()]
            await asyncio.gather(*tasks, return_exceptions=True)  # they finish their batches
        finally:
            for _, task in self._running.values():
                task.cancel()
            self._running.clear()

    async def _load_position(self, ctx: PollerContext) -> None:
        """Where shards without a checkpoint start (see the module docstring)."""
        stored = await ctx.checkpoints.get(POSITION_KEY)
        if stored:
            self._position = Position.decode(stored)
            return
        start = self.mapping.starting_position or LATEST
        if start == AT_TIMESTAMP:
            self._position = Position.at(self.mapping.starting_position_timestamp or 0.0)
        elif start == TRIM_HORIZON:
            self._position = Position(TRIM_HORIZON)
        else:
            self._initial = Position(LATEST)
            self._position = Position.at(ctx.clock())
        await ctx.checkpoints.put(POSITION_KEY, self._position.encode())

    async def _start_ready(self, ctx: PollerContext, shards: list[Shard], role: str) -> None:
        listed = {shard.shard_id for shard in shards}
        if self._initial_shards is None:
            self._initial_shards = listed
        checkpoints = await ctx.checkpoints.all()
        for shard in shards:
            running = self._running.get(shard.shard_id)
            if running is not None:
                running[0].shard = shard  # it may have closed since
                continue
            done = checkpoints.get(shard.shard_id)
            if done == SHARD_END:
                continue
            if any(p in listed and checkpoints.get(p) != SHARD_END for p in shard.parents):
                continue  # a parent is still being read
            if done:
                start = Position.after(done)
            elif self._initial is not None and shard.shard_id in self._initial_shards:
                start = self._initial
            else:
                start = self._position
            processor = ShardProcessor(
                ctx, self._source, shard, start=start, role=role, settings=self._settings
            )
            task = asyncio.create_task(
                processor.run(), name=f"lambdaplane-esm-{self.mapping.uuid}-{shard.shard_id}"
            )
            self._running[shard.shard_id] = (processor, task)
            log.info(
                "mapping %s: reading shard %s from %s",
                self.mapping.uuid,
                shard.shard_id,
                start.sequence or start.encode(),
            )
        if listed:
            for key in checkpoints:
                if not key.startswith("#") and key.partition("#")[0] not in listed:
                    await ctx.checkpoints.delete(key)

    async def _wait(self, ctx: PollerContext, timeout: float) -> bool:
        """Until a shard's processor returns, the poller stops, or ``timeout``; True when
        a shard ended."""
        stopping = asyncio.ensure_future(ctx.stopping.wait())
        tasks = [task for _, task in self._running.values()]
        try:
            await asyncio.wait(
                [stopping, *tasks], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopping.cancel()
        ended = False
        for shard_id, (_, task) in list(self._running.items()):
            if task.done() and not task.cancelled() and task.exception() is None:
                if task.result():
                    ended = True
                    log.info("mapping %s: shard %s done", self.mapping.uuid, shard_id)
                    del self._running[shard_id]
                elif not ctx.stopping.is_set():  # returned early (its iterator stopped)
                    del self._running[shard_id]
        return ended

    def _crashed(self, ctx: PollerContext) -> bool:
        """Drop processors that failed (logged); the next listing restarts their shards
        from the checkpoint. True if any did."""
        crashed = False
        for shard_id, (_, task) in list(self._running.items()):
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error(
                    "mapping %s: shard %s failed; restarting it from its checkpoint",
                    self.mapping.uuid,
                    shard_id,
                    exc_info=task.exception(),
                )
                del self._running[shard_id]
                crashed = True
        return crashed
