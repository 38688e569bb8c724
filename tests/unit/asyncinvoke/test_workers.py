"""Delivery rules with a fake clock, a real SQLite queue and fake invoke/router."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lambdaplane.asyncinvoke.queue import AsyncQueue
from lambdaplane.asyncinvoke.settings import AsyncSettings
from lambdaplane.asyncinvoke.workers import AsyncDelivery, DeliverySettings
from lambdaplane.errors import TooManyRequestsException
from lambdaplane.invoke.service import InvokeResult
from lambdaplane.store import open_engine, upgrade


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeInvoke:
    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.calls: list[str] = []

    async def invoke(
        self, name: str, qualifier: str | None, payload: bytes, **kwargs: Any
    ) -> InvokeResult:
        self.calls.append(kwargs["request_id"])
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def resolve(self, name: str, qualifier: str | None) -> Any:
        class Stored:
            config: dict[str, Any] = {
                "DeadLetterConfig": {"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"}
            }

        return Stored()

    def qualified_arn(self, name: str, qualifier: str) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{name}:{qualifier}"


class FakeConfigs:
    def __init__(self, settings: AsyncSettings) -> None:
        self.settings = settings

    def effective(self, name: str, qualifier: str) -> AsyncSettings:
        return self.settings


class FakeRouter:
    def __init__(self) -> None:
        self.delivered: list[tuple[dict[str, Any], str]] = []
        self.dead: list[tuple[str, bytes, str]] = []

    async def deliver(self, record: dict[str, Any], arn: str) -> bool:
        self.delivered.append((record, arn))
        return True

    async def dead_letter(
        self, arn: str, payload: bytes, request_id: str, code: str, message: str
    ) -> bool:
        self.dead.append((arn, payload, request_id))
        return True


OK = InvokeResult(200, b'"ok"', "$LATEST")
ERROR = InvokeResult(
    200, b'{"errorMessage": "boom", "errorType": "Exception"}', "$LATEST", "Unhandled"
)


def make(
    tmp_path: Path, outcomes: list[Any], settings: AsyncSettings
) -> tuple[AsyncDelivery, AsyncQueue, Clock, FakeInvoke, FakeRouter]:
    engine = open_engine(f"sqlite:///{tmp_path / 'q.db'}")
    upgrade(engine)
    queue = AsyncQueue(engine, "000000000000", "us-east-1")
    clock = Clock()
    invoke = FakeInvoke(outcomes)
    router = FakeRouter()
    delivery = AsyncDelivery(
        queue=queue,
        invoke=invoke,  # type: ignore[arg-type]
        configs=FakeConfigs(settings),  # type: ignore[arg-type]
        router=router,  # type: ignore[arg-type]
        settings=DeliverySettings(
            workers=0, retry_delays=(60.0, 120.0), throttle_backoff=(1.0, 300.0)
        ),
        clock=clock,
    )
    return delivery, queue, clock, invoke, router


def run_due(delivery: AsyncDelivery, queue: AsyncQueue, clock: Clock) -> int:
    events = queue.claim(clock.now, 10, 960)
    for event in events:
        asyncio.run(delivery.deliver(event))
    return len(events)


def test_errors_retried_twice_after_aws_delays_then_failure_destination_and_dlq(
    tmp_path: Path,
) -> None:
    settings = AsyncSettings(on_failure="arn:aws:sqs:us-east-1:000000000000:failures")
    delivery, queue, clock, invoke, router = make(tmp_path, [ERROR, ERROR, ERROR], settings)
    queue.enqueue("fn", "$LATEST", "req-1", b'{"a": 1}', clock.now)
    assert run_due(delivery, queue, clock) == 1
    clock.now += 59
    assert run_due(delivery, queue, clock) == 0  # not due before the 1-minute delay
    clock.now += 1
    assert run_due(delivery, queue, clock) == 1
    clock.now += 119
    assert run_due(delivery, queue, clock) == 0
    clock.now += 1
    assert run_due(delivery, queue, clock) == 1
    assert invoke.calls == ["req-1"] * 3
    assert queue.depth() == 0
    ((record, arn),) = router.delivered
    assert arn.endswith(":failures")
    assert record is not None
    assert router.dead == [("arn:aws:sqs:us-east-1:000000000000:dlq", b'{"a": 1}', "req-1")]
    assert delivery.counters.failed == 1


def test_success_goes_to_the_success_destination(tmp_path: Path) -> None:
    settings = AsyncSettings(on_success="arn:aws:lambda:us-east-1:000000000000:function:next")
    delivery, queue, clock, _, router = make(tmp_path, [OK], settings)
    queue.enqueue("fn", "$LATEST", "req-2", b"{}", clock.now)
    run_due(delivery, queue, clock)
    assert [arn for _, arn in router.delivered] == [
        "arn:aws:lambda:us-east-1:000000000000:function:next"
    ]
    assert router.dead == [] and queue.depth() == 0


def test_throttles_back_off_and_expire_at_the_maximum_age(tmp_path: Path) -> None:
    settings = AsyncSettings(
        max_event_age_seconds=120, on_failure="arn:aws:sqs:us-east-1:000000000000:f"
    )
    throttle = TooManyRequestsException(
        "Rate Exceeded.", Reason="ConcurrentInvocationLimitExceeded"
    )
    delivery, queue, clock, _, router = make(tmp_path, [throttle] * 50, settings)
    queue.enqueue("fn", "$LATEST", "req-3", b"{}", clock.now)
    for _ in range(60):
        run_due(delivery, queue, clock)
        clock.now += 5
        if queue.depth() == 0:
            break
    assert queue.depth() == 0  # never dropped silently: expired with EventAgeExceeded
    assert delivery.counters.throttled >= 2 and delivery.counters.expired == 1
    assert delivery.counters.by_condition == {"EventAgeExceeded": 1}
    assert len(router.delivered) == 1


def test_zero_retries(tmp_path: Path) -> None:
    delivery, queue, clock, invoke, _ = make(tmp_path, [ERROR], AsyncSettings(max_retry_attempts=0))
    queue.enqueue("fn", "$LATEST", "req-4", b"{}", clock.now)
    run_due(delivery, queue, clock)
    assert invoke.calls == ["req-4"] and queue.depth() == 0


def test_a_crashed_workers_lease_is_released_at_start(tmp_path: Path) -> None:
    _, queue, clock, _, _ = make(tmp_path, [], AsyncSettings())
    queue.enqueue("fn", "$LATEST", "req-5", b"{}", clock.now)
    assert len(queue.claim(clock.now, 10, 960)) == 1
    assert queue.claim(clock.now, 10, 960) == []  # leased
    assert queue.release_all_leases() == 1
    assert len(queue.claim(clock.now, 10, 960)) == 1
