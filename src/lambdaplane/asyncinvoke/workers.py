"""Delivery workers: take due events from the durable queue and invoke the function.

They run in the server's lifespan, deliver through the same path as a synchronous
invoke (so the function's concurrency applies), and follow AWS's rules:

- a throttled event is retried, not dropped, with back-off growing with its age, until
  MaximumEventAgeInSeconds;
- a function error is retried MaximumRetryAttempts times (default 2) after AWS's delays
  (about 1 and 2 minutes; a setting, so tests run fast);
- an event older than MaximumEventAgeInSeconds is dropped with condition
  EventAgeExceeded; an event out of retries with RetriesExhausted; an event for a
  function whose reserved concurrency is 0 at once, with ZeroReservedConcurrency;
- outcomes go to OnSuccess/OnFailure destinations, failures also to the function's
  DeadLetterConfig; every drop is logged and counted, never silent;
- an event is deleted only after its outcome is handled: a crash re-delivers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lambdaplane.asyncinvoke.destinations import DestinationRouter, invocation_record
from lambdaplane.asyncinvoke.queue import AsyncQueue, QueuedEvent
from lambdaplane.errors import LambdaError, TooManyRequestsException
from lambdaplane.invoke.pools import FunctionDisabled
from lambdaplane.invoke.service import InvokeResult, InvokeService
from lambdaplane.metrics import DropReason, LambdaMetrics
from lambdaplane.service.event_configs import EventInvokeConfigService

log = logging.getLogger("lambdaplane.async")


@dataclass(frozen=True)
class DeliverySettings:
    workers: int = 4
    retry_delays: tuple[float, ...] = (60.0, 120.0)  # after the 1st and 2nd failure
    throttle_backoff: tuple[float, float] = (1.0, 300.0)  # min and max seconds
    lease_seconds: float = 960.0  # longer than any invocation (900 s) can take
    batch: int = 8  # events a worker claims at once (their logs and deletes are batched)
    poll_seconds: float = 0.5


@dataclass
class Counters:
    """What happened to events, for metrics and tests."""

    succeeded: int = 0
    failed: int = 0  # retries exhausted
    expired: int = 0  # MaximumEventAgeInSeconds
    throttled: int = 0
    dropped: int = 0  # the function no longer exists
    by_condition: dict[str, int] = field(default_factory=dict)


class AsyncDelivery:
    def __init__(
        self,
        *,
        queue: AsyncQueue,
        invoke: InvokeService,
        configs: EventInvokeConfigService,
        router: DestinationRouter | None,
        settings: DeliverySettings,
        recorded: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
        metrics: LambdaMetrics | None = None,
    ) -> None:
        self._queue = queue
        self._invoke = invoke
        self._configs = configs
        self._router = router
        self._settings = settings
        self._recorded = recorded  # makes an outcome's logs durable before the event goes
        self._clock = clock
        self._metrics = metrics
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.counters = Counters()

    def notify(self) -> None:
        """An event was enqueued: wake an idle worker."""
        if self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        released = await asyncio.to_thread(self._queue.release_all_leases)
        if released:
            log.warning("re-delivering %d events whose invocation a stop interrupted", released)
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"lambdaplane-async-{i}")
            for i in range(self._settings.workers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._router is not None:
            self._router.close()

    async def _worker(self) -> None:
        assert self._wake is not None
        while True:
            try:
                events = await asyncio.to_thread(
                    self._queue.claim,
                    self._clock(),
                    self._settings.batch,
                    self._settings.lease_seconds,
                )
            except Exception:
                log.exception("claiming async events failed")
                events = []
            if not events:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
                continue
            await self.deliver_batch(events)

    async def deliver_batch(self, events: list[QueuedEvent]) -> None:
        """Deliver claimed events one after the other, then store their logs and delete the
        finished ones in one go (an event is never deleted before its logs are stored)."""
        done: list[int] = []
        for event in events:
            try:
                await self._deliver(event, done)
            except Exception:
                log.exception(
                    "delivering async event %s failed; it will be retried", event.request_id
                )
        if done:
            if self._recorded is not None:
                await self._recorded()
            await asyncio.to_thread(self._queue.complete_many, done)

    async def deliver(self, event: QueuedEvent) -> None:
        """One attempt at one event, and what follows from its outcome."""
        await self.deliver_batch([event])

    async def _deliver(self, event: QueuedEvent, done: list[int]) -> None:
        now = self._clock()
        settings = self._configs.effective(event.function_name, event.qualifier)
        age = now - event.received_at
        if age > settings.max_event_age_seconds:
            self.counters.expired += 1
            self._dropped(event, DropReason.EVENT_AGE_EXCEEDED)
            log.warning(
                "async event %s for %s dropped: older than MaximumEventAgeInSeconds (%d s)",
                event.request_id, event.function_name, settings.max_event_age_seconds,
            )  # fmt: skip
            await self._failure(event, "EventAgeExceeded", None, settings.on_failure)
            done.append(event.id)
            return
        try:
            result = await self._invoke.invoke(
                event.function_name,
                None if event.qualifier == "$LATEST" else event.qualifier,
                event.payload,
                request_id=event.request_id,
                trace_header=event.trace_header,  # each attempt continues the caller's trace
            )
        except FunctionDisabled:
            self.counters.dropped += 1
            self._dropped(event, DropReason.ZERO_RESERVED_CONCURRENCY)
            log.warning(
                "async event %s dropped: %s has reserved concurrency 0",
                event.request_id, event.function_name,
            )  # fmt: skip
            await self._failure(event, "ZeroReservedConcurrency", None, settings.on_failure)
            done.append(event.id)
            return
        except TooManyRequestsException:
            self.counters.throttled += 1
            low, high = self._settings.throttle_backoff
            delay = min(high, max(low, age))
            await asyncio.to_thread(
                self._queue.retry_at, event.id, event.attempts, now + delay, "throttled"
            )
            return
        except LambdaError as err:
            if err.code == "ResourceNotFoundException":
                self.counters.dropped += 1
                self._dropped(event, DropReason.FUNCTION_DELETED)
                log.warning("async event %s dropped: %s", event.request_id, err.message)
                done.append(event.id)
                return
            raise
        if self._metrics is not None:  # AsyncEventAge: queued until the function was invoked
            self._metrics.event_attempted(event.function_name, event.qualifier, age)
        attempts = event.attempts + 1
        if result.function_error is None:
            self.counters.succeeded += 1
            if settings.on_success:
                await self._route(event, attempts, "Success", result, settings.on_success)
            done.append(event.id)
            return
        if attempts <= settings.max_retry_attempts:
            delays = self._settings.retry_delays
            delay = delays[min(attempts - 1, len(delays) - 1)] if delays else 0.0
            if now + delay - event.received_at > settings.max_event_age_seconds:
                # The next attempt would come too late: AWS gives up now.
                self.counters.expired += 1
                self._dropped(event, DropReason.EVENT_AGE_EXCEEDED)
                await self._failure(
                    event, "EventAgeExceeded", result, settings.on_failure, attempts
                )
                done.append(event.id)
                return
            await asyncio.to_thread(
                self._queue.retry_at, event.id, attempts, now + delay, result.function_error
            )
            return
        self.counters.failed += 1
        self._dropped(event, DropReason.RETRIES_EXHAUSTED)
        log.warning(
            "async event %s for %s failed after %d attempts",
            event.request_id,
            event.function_name,
            attempts,
        )
        await self._failure(event, "RetriesExhausted", result, settings.on_failure, attempts)
        done.append(event.id)

    async def _failure(
        self,
        event: QueuedEvent,
        condition: str,
        result: InvokeResult | None,
        destination: str | None,
        attempts: int | None = None,
    ) -> None:
        self.counters.by_condition[condition] = self.counters.by_condition.get(condition, 0) + 1
        count = attempts if attempts is not None else event.attempts
        if destination:
            await self._route(event, count, condition, result, destination)
        dead_letter = self._dead_letter_target(event)
        if dead_letter and self._router is not None:
            message = _error_message(result, condition)
            sent = await self._router.dead_letter(
                dead_letter, event.payload, event.request_id, "200", message
            )
            if not sent and self._metrics is not None:
                self._metrics.dead_letter_failed(event.function_name, event.qualifier)

    def _dropped(self, event: QueuedEvent, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.event_dropped(event.function_name, event.qualifier, reason)

    def _dead_letter_target(self, event: QueuedEvent) -> str | None:
        try:
            stored = self._invoke.resolve(event.function_name, None)
        except LambdaError:
            return None
        target = (stored.config.get("DeadLetterConfig") or {}).get("TargetArn")
        return str(target) if target else None

    async def _route(
        self,
        event: QueuedEvent,
        attempts: int,
        condition: str,
        result: InvokeResult | None,
        destination: str,
    ) -> None:
        if self._router is None:
            if self._metrics is not None:
                self._metrics.destination_failed(event.function_name, event.qualifier)
            log.warning(
                "no destination router: %s outcome of %s not delivered", condition, event.request_id
            )
            return
        record = invocation_record(
            request_id=event.request_id,
            function_arn=self._invoke.qualified_arn(event.function_name, event.qualifier),
            condition=condition,
            approximate_invoke_count=attempts,
            request_payload=event.payload,
            status_code=200 if result is not None else None,
            executed_version=result.executed_version if result is not None else None,
            function_error=result.function_error if result is not None else None,
            response_payload=result.payload if result is not None else None,
            timestamp=_iso(self._clock()),
        )
        if not await self._router.deliver(record, destination):
            if self._metrics is not None:
                self._metrics.destination_failed(event.function_name, event.qualifier)
            log.warning(
                "destination %s did not take the %s record of %s",
                destination,
                condition,
                event.request_id,
            )


def _error_message(result: InvokeResult | None, condition: str) -> str:
    if result is None:
        return condition
    try:
        body: Any = json.loads(result.payload)
    except ValueError:
        return result.payload.decode(errors="replace")[:1024]
    if isinstance(body, dict) and "errorMessage" in body:
        return str(body["errorMessage"])[:1024]
    return condition


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
