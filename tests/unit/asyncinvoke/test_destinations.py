"""DestinationRouter without peers: Lambda targets, and every way a delivery is refused."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest

from lambdaplane.asyncinvoke.destinations import DestinationRouter, invocation_record

FN = "arn:aws:lambda:us-east-1:000000000000:function:orders"
NEXT = "arn:aws:lambda:us-east-1:000000000000:function:next:live"
QUEUE = "arn:aws:sqs:us-east-1:000000000000:failures"
TOPIC = "arn:aws:sns:us-east-1:000000000000:alerts"
BUS = "arn:aws:events:us-east-1:000000000000:event-bus/outcomes"

RECORD = invocation_record(
    request_id="r-1",
    function_arn=FN,
    condition="Success",
    approximate_invoke_count=1,
    request_payload=b"{}",
    status_code=200,
    executed_version="$LATEST",
    function_error=None,
    response_payload=b'"ok"',
    timestamp="2019-11-14T18:16:05.568Z",
)


class Invocations:
    """Stands in for the workers' ``invoke_async``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.error = error

    async def __call__(self, function_arn: str, payload: bytes) -> None:
        self.calls.append((function_arn, payload))
        if self.error is not None:
            raise self.error


def router(invocations: Invocations, endpoints: dict[str, str] | None = None) -> DestinationRouter:
    return DestinationRouter(
        endpoints=endpoints or {}, region="us-east-1", invoke_async=invocations
    )


@pytest.fixture
def invocations() -> Iterator[Invocations]:
    yield Invocations()


def test_function_destination_is_invoked_with_the_record(invocations: Invocations) -> None:
    assert asyncio.run(router(invocations).deliver(RECORD, NEXT)) is True
    [(arn, payload)] = invocations.calls
    assert arn == NEXT
    assert json.loads(payload) == RECORD


def test_a_failing_function_destination_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    invocations = Invocations(RuntimeError("queue full"))
    with caplog.at_level(logging.WARNING, "lambdaplane.destinations"):
        assert asyncio.run(router(invocations).deliver(RECORD, NEXT)) is False
    assert "queue full" in caplog.text


@pytest.mark.parametrize(("arn", "service"), [(QUEUE, "sqs"), (TOPIC, "sns"), (BUS, "events")])
def test_a_service_without_endpoint_returns_false(
    invocations: Invocations, arn: str, service: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "lambdaplane.destinations"):
        assert asyncio.run(router(invocations).deliver(RECORD, arn)) is False
    assert f"no {service} endpoint is configured" in caplog.text


def test_dead_letter_without_endpoint_returns_false(invocations: Invocations) -> None:
    sent = router(invocations).dead_letter(QUEUE, b"{}", "r-1", "200", "boom")
    assert asyncio.run(sent) is False


@pytest.mark.parametrize("arn", ["not-an-arn", "arn:aws:s3:::bucket"])
def test_an_unusable_destination_returns_false(invocations: Invocations, arn: str) -> None:
    assert asyncio.run(router(invocations).deliver(RECORD, arn)) is False
    assert invocations.calls == []


@pytest.mark.parametrize("arn", [NEXT, BUS, "garbage"])
def test_dead_letters_go_only_to_queues_and_topics(invocations: Invocations, arn: str) -> None:
    sent = router(invocations).dead_letter(arn, b"{}", "r-1", "200", "boom")
    assert asyncio.run(sent) is False
    assert invocations.calls == []


def test_unknown_endpoint_names_are_refused(invocations: Invocations) -> None:
    with pytest.raises(ValueError, match="eventbridge"):
        router(invocations, {"eventbridge": "http://127.0.0.1:1"})


def test_close_before_use_is_harmless(invocations: Invocations) -> None:
    router(invocations).close()
