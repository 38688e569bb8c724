"""What the delivery workers count: event age, drops by reason, DLQ and destination failures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lambdaplane.asyncinvoke.queue import AsyncQueue
from lambdaplane.asyncinvoke.settings import AsyncSettings
from lambdaplane.asyncinvoke.workers import AsyncDelivery, DeliverySettings
from lambdaplane.errors import ResourceNotFoundException, TooManyRequestsException
from lambdaplane.metrics import LambdaMetrics
from lambdaplane.store import open_engine, upgrade
from tests.unit.asyncinvoke.test_workers import (
    ERROR,
    OK,
    Clock,
    FakeConfigs,
    FakeInvoke,
    FakeRouter,
)


class FailingRouter(FakeRouter):
    async def deliver(self, record: dict[str, Any], arn: str) -> bool:
        await super().deliver(record, arn)
        return False

    async def dead_letter(
        self, arn: str, payload: bytes, request_id: str, code: str, message: str
    ) -> bool:
        await super().dead_letter(arn, payload, request_id, code, message)
        return False


def deliver_all(
    tmp_path: Path, outcomes: list[Any], settings: AsyncSettings, router: FakeRouter, wait: float
) -> str:
    """Enqueue one event for "fn" at alias "live", run it to the end; the exposition."""
    tmp_path.mkdir(exist_ok=True)
    engine = open_engine(f"sqlite:///{tmp_path / 'q.db'}")
    upgrade(engine)
    queue = AsyncQueue(engine, "000000000000", "us-east-1")
    clock = Clock()
    metrics = LambdaMetrics()
    delivery = AsyncDelivery(
        queue=queue,
        invoke=FakeInvoke(outcomes),  # type: ignore[arg-type]
        configs=FakeConfigs(settings),  # type: ignore[arg-type]
        router=router,  # type: ignore[arg-type]
        settings=DeliverySettings(workers=0, retry_delays=(1.0,), throttle_backoff=(1.0, 1.0)),
        clock=clock,
        metrics=metrics,
    )
    queue.enqueue("fn", "live", "req", b"{}", clock.now)
    clock.now += wait
    for _ in range(10):
        for event in queue.claim(clock.now, 10, 960):
            asyncio.run(delivery.deliver(event))
        clock.now += 1
    assert queue.depth() == 0
    return metrics.render()


FQ = 'function="fn",qualifier="live"'


def test_retries_exhausted_with_failing_destination_and_dlq(tmp_path: Path) -> None:
    throttle = TooManyRequestsException("Rate Exceeded.", Reason="x")
    text = deliver_all(
        tmp_path,
        [throttle, ERROR, ERROR],
        AsyncSettings(max_retry_attempts=1, on_failure="arn:aws:sqs:us-east-1:000000000000:f"),
        FailingRouter(),
        wait=0.25,
    )
    # Two invocations (the throttled attempt never reached the function), each 0.25 s + later.
    assert f"lambda_async_event_age_seconds_count{{{FQ}}} 2\n" in text
    assert f'lambda_async_event_age_seconds_bucket{{{FQ},le="0.1"}} 0\n' in text
    assert f'lambda_async_event_age_seconds_bucket{{{FQ},le="0.5"}} 0\n' in text
    assert f'lambda_async_event_age_seconds_bucket{{{FQ},le="5"}} 2\n' in text
    assert f'lambda_async_events_dropped_total{{{FQ},reason="retries_exhausted"}} 1\n' in text
    assert f"lambda_destination_delivery_failures_total{{{FQ}}} 1\n" in text
    assert f"lambda_dead_letter_errors_total{{{FQ}}} 1\n" in text


def test_success_drops_nothing(tmp_path: Path) -> None:
    text = deliver_all(tmp_path, [OK], AsyncSettings(), FakeRouter(), wait=0.0)
    assert f"lambda_async_event_age_seconds_count{{{FQ}}} 1\n" in text
    assert "lambda_async_events_dropped_total{" not in text
    assert "lambda_dead_letter_errors_total{" not in text


def test_too_old_and_deleted_functions_are_dropped_by_reason(tmp_path: Path) -> None:
    text = deliver_all(tmp_path, [], AsyncSettings(max_event_age_seconds=60), FakeRouter(), wait=61)
    assert f'lambda_async_events_dropped_total{{{FQ},reason="event_age_exceeded"}} 1\n' in text
    gone = ResourceNotFoundException("Function not found: fn")
    text = deliver_all(tmp_path / "2", [gone], AsyncSettings(), FakeRouter(), wait=0)
    assert f'lambda_async_events_dropped_total{{{FQ},reason="function_deleted"}} 1\n' in text
