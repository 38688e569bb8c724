"""One shard of a stream: read in order, invoked in batches, checkpointed after success.

The shard is read ahead (at most one ``BatchSize`` per lane waiting) while batches are
being invoked. Every record read is tracked until it is done (invoked successfully,
filtered out, or discarded after its retries), and the shard's checkpoint advances to the
last record before which everything is done, so a restart re-reads nothing done and
skips nothing undone. ``ParallelizationFactor`` N gives the shard N lanes, one batch in
flight per lane, a record's lane fixed by its partition key: each key stays in order.
Tumbling windows need one state per shard, so they run in one lane.

What happens to a batch in the function (retries, bisection, partial failures, discards,
windows' final invocations) is ``lambdaplane.esm.stream_delivery``'s.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from lambdaplane.esm.poller import PollerContext
from lambdaplane.esm.stream_delivery import ShardDelivery
from lambdaplane.esm.streams import (
    AT_TIMESTAMP,
    SHARD_END,
    TRIM_HORIZON,
    IteratorExpired,
    Position,
    PositionTrimmed,
    ReadThrottled,
    SequenceTracker,
    Shard,
    StreamRecord,
    StreamSettings,
    StreamSource,
    lane_of,
    take_batch,
)
from lambdaplane.esm.tumbling import Window, fields_reserve, window_start

log = logging.getLogger("lambdaplane.esm.streams")

# Checkpoint keys beside a shard's own (<shard id>): its tumbling window, and the records
# done past its checkpoint when the poller stopped (so a restart does not invoke them again).
WINDOW_SUFFIX = "#window"
DONE_AHEAD_SUFFIX = "#done"


@dataclass
class _Lane:
    pending: deque[StreamRecord] = field(default_factory=deque)
    read_at: deque[float] = field(default_factory=deque)  # when each pending record was read
    task: asyncio.Task[None] | None = None


class ShardProcessor:
    """Processes one shard from ``start`` until it ends (``run`` → True) or the poller
    stops (→ False). An unexpected error escapes ``run``; the caller restarts the shard
    from its checkpoint."""

    def __init__(
        self,
        ctx: PollerContext,
        source: StreamSource,
        shard: Shard,
        *,
        start: Position,
        role: str,
        settings: StreamSettings,
    ) -> None:
        mapping = ctx.mapping
        self.shard = shard  # replaced by the poller when a listing says it closed
        self._ctx = ctx
        self._source = source
        self._role = role
        self._settings = settings
        self._stream_arn = mapping.event_source_arn or ""
        self._window_seconds = mapping.tumbling_window
        lanes = 1 if self._window_seconds else max(1, min(10, mapping.parallelization_factor))
        self._lanes = [_Lane() for _ in range(lanes)]
        self._skip_before: float | None = None
        if start.kind == AT_TIMESTAMP and not source.native_timestamps:
            # Read from the start and skip what came before (whole seconds: never lose any).
            self._skip_before = float(math.floor(start.timestamp or 0.0))
            start = Position(TRIM_HORIZON)
        self._start = start
        self._tracker = SequenceTracker()
        self._iterator: str | None = None
        self._last_read: str | None = None
        self._ended = False  # the shard is closed and every record has been read
        self._next_read = 0.0
        self._read_delay = settings.error_delays[0]
        self._caught_up_at: float | None = None  # when a read last found nothing new
        self._delivery = ShardDelivery(ctx, source, shard.shard_id, settings, self._done)
        self._skip: set[str] = set()  # done past the checkpoint before the last stop
        self._wake = asyncio.Event()
        self._crash: BaseException | None = None

    @property
    def shard_id(self) -> str:
        return self.shard.shard_id

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> bool:
        ctx = self._ctx
        if self._window_seconds:
            stored = await ctx.checkpoints.get(self.shard_id + WINDOW_SUFFIX)
            self._delivery.window = Window.decode(stored, self._window_seconds)
        ahead = await ctx.checkpoints.get(self.shard_id + DONE_AHEAD_SUFFIX)
        self._skip = set(filter(None, (ahead or "").split(",")))
        self._iterator = await self._open(self._start)
        if self._iterator is None:
            return False
        try:
            while not ctx.stopping.is_set():
                self._wake.clear()  # what lanes finish from here on ends the next pause
                if self._crash is not None:
                    raise self._crash
                if self._can_read(ctx.clock()):
                    await self._read()
                self._dispatch(ctx.clock())
                await self._checkpoint()
                if self._finished():
                    await self._checkpoint(end=True)
                    return True
                await self._pause(self._timeout(ctx.clock()))
            busy = [lane.task for lane in self._lanes if lane.task is not None]
            await asyncio.gather(*busy, return_exceptions=True)  # each stops at its next step
            await self._checkpoint(stopping=True)
            return False
        finally:
            for lane in self._lanes:
                if lane.task is not None:
                    lane.task.cancel()

    def _finished(self) -> bool:
        return (
            self._ended
            and self._delivery.window is None
            and not len(self._tracker)
            and all(not lane.pending and lane.task is None for lane in self._lanes)
        )

    async def _pause(self, timeout: float) -> None:
        waiters = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._ctx.stopping.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _timeout(self, now: float) -> float:
        deadlines = [now + self._settings.max_pause]
        if self._iterator is not None and not self._ended and self._room() > 0:
            deadlines.append(self._next_read)
        window = self._ctx.mapping.maximum_batching_window
        for lane in self._lanes:
            if lane.task is None and lane.read_at:
                deadlines.append(lane.read_at[0] + window)
        return max(0.0, min(deadlines) - now)

    # -- reading -----------------------------------------------------------------------

    async def _open(self, position: Position) -> str | None:
        """An iterator at ``position``, retried until it is had; None if stopped first."""
        ctx = self._ctx
        delay, ceiling = self._settings.error_delays
        while True:
            try:
                return await self._source.iterator(ctx, self.shard_id, position)
            except PositionTrimmed:
                log.warning(
                    "mapping %s: %s of shard %s is past the stream's retention; "
                    "reading from TRIM_HORIZON",
                    ctx.mapping.uuid,
                    position.encode() if position.sequence is None else position.sequence,
                    self.shard_id,
                )
                position = Position(TRIM_HORIZON)
            except Exception as err:
                log.warning("mapping %s: shard %s: %s", ctx.mapping.uuid, self.shard_id, err)
                await ctx.report(f"PROBLEM: {err}"[:1024])
                if await ctx.sleep(delay):
                    return None
                delay = min(ceiling, delay * 2)

    def _room(self) -> int:
        waiting = sum(len(lane.pending) for lane in self._lanes)
        return len(self._lanes) * self._ctx.mapping.batch_size - waiting

    def _can_read(self, now: float) -> bool:
        return (
            self._iterator is not None
            and not self._ended
            and now >= self._next_read
            and self._room() > 0
        )

    async def _read(self) -> None:
        ctx, source = self._ctx, self._source
        assert self._iterator is not None
        limit = min(source.max_records, self._room())
        try:
            page = await source.read(ctx, self._iterator, limit)
        except (IteratorExpired, PositionTrimmed) as err:
            resume = Position.after(self._last_read) if self._last_read else self._start
            if isinstance(err, PositionTrimmed):
                resume = Position(TRIM_HORIZON)
            self._iterator = await self._open(resume)
            return
        except Exception as err:
            if not isinstance(err, ReadThrottled):  # routine when consumers share a shard
                log.warning(
                    "mapping %s: reading shard %s: %s", ctx.mapping.uuid, self.shard_id, err
                )
                await ctx.report(f"PROBLEM: {err}"[:1024])
            self._next_read = ctx.clock() + self._read_delay
            self._read_delay = min(self._settings.error_delays[1], self._read_delay * 2)
            return
        self._read_delay = self._settings.error_delays[0]
        now = ctx.clock()
        ctx.metrics.polled(len(page.records))
        filtered = 0
        for raw in page.records:
            record = source.record(raw, self.shard_id, self._role)
            self._last_read = record.sequence
            self._tracker.read(record.sequence)
            if record.sequence in self._skip:  # done before the last stop
                self._skip.discard(record.sequence)
                self._tracker.done([record.sequence])
                continue
            if self._skip_before is not None:
                if record.arrival < self._skip_before:
                    self._tracker.done([record.sequence])
                    continue
                self._skip_before = None
            if not ctx.mapping.matcher.matches(source.view(record.event)):
                self._tracker.done([record.sequence])  # skipped: checkpointed past
                filtered += 1
                continue
            lane = self._lanes[lane_of(record.key, len(self._lanes))]
            lane.pending.append(record)
            lane.read_at.append(now)
        if filtered:
            ctx.metrics.filtered_out(filtered)
        self._iterator = page.next_iterator
        caught_up = not page.records and not page.behind_ms
        ending = self.shard.ending_sequence
        if (
            page.next_iterator is None
            or (ending is not None and caught_up)
            or (
                ending is not None
                and self._last_read is not None
                and int(self._last_read) >= int(ending)
            )
        ):
            self._ended = True
        if caught_up:
            self._caught_up_at = now
        self._next_read = now if page.records else now + source.poll_interval

    # -- batches -----------------------------------------------------------------------

    def _window_of(self, record: StreamRecord) -> float:
        return window_start(record.arrival, self._window_seconds)

    def _due(self, lane: _Lane, now: float) -> bool:
        mapping = self._ctx.mapping
        if len(lane.pending) >= mapping.batch_size or self._ended:
            return True
        if self._window_seconds and self._window_of(lane.pending[-1]) != self._window_of(
            lane.pending[0]
        ):
            return True  # the first window's records are all here
        return now - lane.read_at[0] >= mapping.maximum_batching_window

    def _window_over(self, lane: _Lane) -> bool:
        window = self._delivery.window
        if window is None:
            return False
        if window.terminate_early:
            return True
        if lane.pending:
            return self._window_of(lane.pending[0]) != window.start
        return self._ended or (self._caught_up_at is not None and self._caught_up_at >= window.end)

    def _dispatch(self, now: float) -> None:
        for lane in self._lanes:
            if lane.task is not None:
                continue
            if self._window_seconds and self._window_over(lane):
                self._spawn(lane, self._delivery.close_window())
                continue
            if not lane.pending or not self._due(lane, now):
                continue
            reserve = 0
            if self._window_seconds:
                if self._delivery.window is None:
                    self._delivery.window = Window(
                        self._window_of(lane.pending[0]), self._window_seconds
                    )
                reserve = fields_reserve(self._delivery.window, self.shard_id, self._stream_arn)
            batch = take_batch(
                lane.pending,
                self._ctx.mapping.batch_size,
                reserve=reserve,
                window_of=self._window_of if self._window_seconds else None,
            )
            for _ in batch:
                lane.read_at.popleft()
            self._spawn(lane, self._delivery.deliver(batch))

    def _spawn(self, lane: _Lane, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        lane.task = task

        def finished(task: asyncio.Task[None]) -> None:
            lane.task = None
            if not task.cancelled() and task.exception() is not None:
                self._crash = task.exception()
            self._wake.set()

        task.add_done_callback(finished)

    def _done(self, records: tuple[StreamRecord, ...]) -> None:
        """Records the function is through with (succeeded or discarded)."""
        self._tracker.done(r.sequence for r in records)
        self._wake.set()

    # -- checkpoints -------------------------------------------------------------------

    async def _checkpoint(self, *, end: bool = False, stopping: bool = False) -> None:
        """Store the shard's progress (and its window's state) when it moved; when
        ``stopping``, also what is done past the checkpoint."""
        values: dict[str, str] = {}
        last = self._tracker.advance()
        if end:
            values[self.shard_id] = SHARD_END
        elif last is not None:
            values[self.shard_id] = last
        if stopping:
            ahead = self._skip | set(self._tracker.done_ahead())
            values[self.shard_id + DONE_AHEAD_SUFFIX] = ",".join(sorted(ahead, key=int))
        if self._window_seconds and (values or self._delivery.window_dirty):
            values[self.shard_id + WINDOW_SUFFIX] = (
                self._delivery.window.encode() if self._delivery.window else ""
            )
            self._delivery.window_dirty = False
        if values:
            await self._ctx.checkpoints.put_many(values)
