"""One shard's batches through the function: retries, bisection, partial failures,
discards to the OnFailure destination, and tumbling windows' state and final invocations.

``ShardDelivery.deliver`` works one batch with ``BatchRetry``
(``lambdaplane.esm.stream_failures``) until every record is done or discarded: retried
after a back-off (0.1 s doubling), bisected at once, partly done. A throttled or
unavailable function retries the same batch and is no retry attempt (the function was
not reached) until the records pass ``MaximumRecordAgeInSeconds``. It reports records as
they finish through ``on_done``; the shard's reader owns their order and checkpoints.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambdaplane.esm.batching import failed_items, payload
from lambdaplane.esm.poller import InvokeOutcome, InvokeUnavailable, PollerContext, Throttled
from lambdaplane.esm.stream_failures import BatchRetry, Discard, on_failure_record
from lambdaplane.esm.streams import StreamRecord, StreamSettings, StreamSource
from lambdaplane.esm.tumbling import Window, response_state, window_payload

log = logging.getLogger("lambdaplane.esm.streams")


@dataclass(frozen=True)
class _Verdict:
    """What an invocation's answer means for its batch."""

    ok: bool
    first_failed: int | None = None  # ReportBatchItemFailures: index of the lowest failure
    state: dict[str, Any] | None = None  # tumbling windows: the returned state


class ShardDelivery:
    """Invokes the mapped function with one shard's batches (see the module docstring).

    ``window`` is the shard's open tumbling window (None: none open, or no windows);
    ``window_dirty`` says it changed since the reader last stored it.
    """

    def __init__(
        self,
        ctx: PollerContext,
        source: StreamSource,
        shard_id: str,
        settings: StreamSettings,
        on_done: Callable[[tuple[StreamRecord, ...]], None],
    ) -> None:
        self._ctx = ctx
        self._source = source
        self.shard_id = shard_id
        self._settings = settings
        self._on_done = on_done
        self._stream_arn = ctx.mapping.event_source_arn or ""
        self.window: Window | None = None
        self.window_dirty = False

    def _payload(self, records: tuple[StreamRecord, ...]) -> bytes:
        encoded = [r.encoded for r in records]
        if self.window is None:
            return payload(encoded)
        fields = self.window.fields(
            shard_id=self.shard_id, stream_arn=self._stream_arn, final=False
        )
        return window_payload(encoded, fields)

    async def deliver(self, batch: list[StreamRecord]) -> None:
        """Work one batch until every record is done or discarded (or the poller stops)."""
        ctx, mapping = self._ctx, self._ctx.mapping
        retry = BatchRetry(
            batch,
            maximum_retry_attempts=mapping.maximum_retry_attempts,
            bisect=mapping.bisect_batch_on_function_error,
            maximum_record_age=mapping.maximum_record_age,
        )
        unavailable = self._settings.error_delays[0]
        while (attempt := retry.current) is not None and not ctx.stopping.is_set():
            expired = retry.expire(ctx.clock())
            if expired is not None:
                await self._discard(expired, None)
                continue
            records = attempt.records
            try:
                outcome = await ctx.invoke(self._payload(records))
            except InvokeUnavailable as err:
                if not isinstance(err, Throttled):
                    await ctx.report(f"PROBLEM: {err.message}"[:1024])
                if await ctx.sleep(unavailable):
                    return
                unavailable = min(self._settings.error_delays[1], unavailable * 2)
                continue
            retry.invoked()
            verdict = self._judge(records, outcome)
            if verdict.ok:
                ctx.metrics.invoked(len(records))
                if verdict.first_failed is None:
                    self._done(retry.succeeded(), verdict.state)
                    await ctx.report("OK")
                    continue
                done, discard = retry.partially_failed(verdict.first_failed)
                self._done(done, verdict.state)
            else:
                ctx.metrics.failed(len(records))
                await ctx.report("PROBLEM: Function call failed")
                discard = retry.failed()
            if discard is not None:
                await self._discard(discard, outcome)
            elif retry.current is not None and retry.current.records is records:
                # The same records again: a retry, after a back-off (a split goes at once).
                first, ceiling = self._settings.retry_delays
                delay = min(ceiling, first * 2 ** max(0, retry.current.retries - 1))
                if await ctx.sleep(delay):
                    return

    def _judge(self, records: tuple[StreamRecord, ...], outcome: InvokeOutcome) -> _Verdict:
        if not outcome.ok:
            return _Verdict(False)
        state = None
        if self.window is not None:
            state = response_state(outcome.payload)
            if state is None:
                return _Verdict(False)  # a window's answer must carry its state
        if not self._ctx.mapping.report_batch_item_failures:
            return _Verdict(True, state=state)
        failed = failed_items(outcome.payload, [r.sequence for r in records])
        if failed is None:
            return _Verdict(False)
        for index, record in enumerate(records):
            if record.sequence in failed:
                return _Verdict(True, index, state)
        return _Verdict(True, state=state)

    def _done(self, records: tuple[StreamRecord, ...], state: dict[str, Any] | None) -> None:
        if state is not None and self.window is not None:
            self.window.update(state)
            self.window_dirty = True
        if records:
            self._ctx.metrics.iterator_age(self._ctx.clock() - records[-1].arrival)
        self._on_done(records)

    async def _discard(self, discard: Discard, outcome: InvokeOutcome | None) -> None:
        ctx, mapping = self._ctx, self._ctx.mapping
        destination = mapping.on_failure_destination
        log.warning(
            "mapping %s: shard %s: discarding %d records (%s, %d invocations)",
            mapping.uuid,
            self.shard_id,
            len(discard.records),
            discard.condition,
            discard.invocations,
        )
        if destination:
            record = on_failure_record(
                discard,
                batch_info_key=self._source.batch_info_key,
                shard_id=self.shard_id,
                stream_arn=self._stream_arn,
                function_arn=mapping.function_arn,
                request_id=outcome.request_id if outcome is not None else str(uuid.uuid4()),
                outcome=outcome,
                now=ctx.clock(),
                arrival_text=self._source.arrival_text,
            )
            await ctx.send_to_destination(record, destination)
        self._done(discard.records, None)

    async def close_window(self) -> None:
        """The window's final invocation, retried until it succeeds (Lambda holds the shard
        meanwhile); then its state is dropped."""
        ctx, window = self._ctx, self.window
        assert window is not None
        early = window.terminate_early
        fields = window.fields(
            shard_id=self.shard_id, stream_arn=self._stream_arn, final=True, early=early
        )
        body = window_payload([], fields)
        first, ceiling = self._settings.retry_delays
        delay = first
        while not ctx.stopping.is_set():
            try:
                outcome = await ctx.invoke(body)
            except InvokeUnavailable as err:
                await ctx.report(f"PROBLEM: {err.message}"[:1024])
            else:
                if outcome.ok:
                    ctx.metrics.invoked(0)
                    self.window = Window(window.start, window.seconds) if early else None
                    self.window_dirty = True
                    return
                ctx.metrics.failed(0)
                await ctx.report("PROBLEM: Function call failed")
            if await ctx.sleep(delay):
                return
            delay = min(ceiling, delay * 2)
