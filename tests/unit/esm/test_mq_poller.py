"""The Amazon MQ batching loop (``lambdaplane.esm.mq.MqPoller``) against a fake session:
batch size, window and 6 MB, filtering, acknowledgement after success only, give-back on
failure, throttles, lost connections and broker problems."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdaplane.esm import mq
from lambdaplane.esm.model import MAX_BATCH_PAYLOAD_BYTES, MappingConfig
from lambdaplane.esm.mq import BrokerProblem, Delivery, MqPoller, SessionLost
from lambdaplane.esm.poller import Blocking, InvokeOutcome, PollerContext, Throttled


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mq, "REDELIVERY_DELAY_SECONDS", 0.01)
    monkeypatch.setattr(mq, "IDLE_WAIT_SECONDS", 0.05)


class FakeSession:
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Delivery | SessionLost] = asyncio.Queue()
        self.settled: list[list[int]] = []
        self.given_back: list[tuple[list[int], list[int]]] = []
        self.rejected: list[int] = []
        self.closed = False

    def send(self, n: int, data: bytes | None = None) -> None:
        raw = data if data is not None else json.dumps({"n": n}).encode()
        record = {"n": n, "data": base64.b64encode(raw).decode()}
        self.inbox.put_nowait(Delivery(record, json.dumps(record).encode(), n))

    async def settle(self, deliveries: Sequence[Delivery]) -> None:
        self.settled.append([d.handle for d in deliveries])

    async def give_back(self, failed: Sequence[Delivery], settled: Sequence[Delivery]) -> None:
        self.given_back.append(([d.handle for d in failed], [d.handle for d in settled]))

    async def reject(self, delivery: Delivery) -> None:
        self.rejected.append(delivery.handle)

    async def close(self) -> None:
        self.closed = True


class FakePoller(MqPoller):
    def __init__(self, mapping: MappingConfig, sessions: list[FakeSession | BrokerProblem]):
        super().__init__(mapping)
        self.sessions = sessions
        self.opened = 0

    def envelope(self) -> tuple[bytes, bytes]:
        return b'{"messages":[', b"]}"

    async def open_session(self, ctx: PollerContext) -> Any:
        item = self.sessions[min(self.opened, len(self.sessions) - 1)]
        self.opened += 1
        if isinstance(item, BrokerProblem):
            raise item
        return item


@dataclass
class Recorder:
    payloads: list[list[int]] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def polled(self, records: int) -> None:
        self.counts["polled"] = self.counts.get("polled", 0) + records

    def filtered_out(self, records: int) -> None:
        self.counts["filtered"] = self.counts.get("filtered", 0) + records

    def invoked(self, batch_size: int) -> None:
        self.counts["invoked"] = self.counts.get("invoked", 0) + batch_size

    def failed(self, batch_size: int) -> None:
        self.counts["failed"] = self.counts.get("failed", 0) + batch_size

    def iterator_age(self, seconds: float) -> None:
        raise AssertionError("queues have no iterator age")


Invoke = Callable[[list[int]], Awaitable[InvokeOutcome]]


async def ok(_: list[int]) -> InvokeOutcome:
    return InvokeOutcome(200, b"null", None, "$LATEST", "r")


def mapping(**config: Any) -> MappingConfig:
    base = {"EventSourceArn": "arn:aws:mq:us-east-1:000000000000:broker:b:b-1", "Queues": ["q"]}
    return MappingConfig("u-1", "fn", None, "mq", {**base, **config})


def context(m: MappingConfig, recorder: Recorder, invoke: Invoke = ok) -> PollerContext:
    async def call(payload: bytes) -> InvokeOutcome:
        numbers = [message["n"] for message in json.loads(payload)["messages"]]
        recorder.payloads.append(numbers)
        return await invoke(numbers)

    async def report(result: str) -> None:
        recorder.reports.append(result)

    async def nothing(*_: Any) -> bool:
        return False

    return PollerContext(
        mapping=m,
        invoke=call,
        checkpoints=None,  # type: ignore[arg-type]  # MQ checkpoints in the broker
        metrics=recorder,
        endpoint=lambda service: None,
        client=lambda service: None,
        blocking=Blocking(),
        send_to_destination=nothing,
        report=report,
        stopping=asyncio.Event(),
    )


async def run_until(
    poller: MqPoller, ctx: PollerContext, done: Callable[[], bool], timeout: float = 5
) -> None:
    task = asyncio.create_task(poller.run(ctx))
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        ctx.stopping.set()
        await asyncio.wait_for(task, 5)


def test_batches_close_at_batch_size_then_at_the_window() -> None:
    async def scenario() -> None:
        session, recorder = FakeSession(), Recorder()
        poller = FakePoller(mapping(BatchSize=3, MaximumBatchingWindowInSeconds=1), [session])
        ctx = context(poller.mapping, recorder)
        for n in range(7):
            session.send(n)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await run_until(poller, ctx, lambda: len(recorder.payloads) == 3)
        assert recorder.payloads == [[0, 1, 2], [3, 4, 5], [6]]
        assert loop.time() - started >= 0.9  # the last one waited for its window
        assert session.settled == [[0, 1, 2], [3, 4, 5], [6]]
        assert recorder.counts == {"polled": 7, "invoked": 7}
        assert set(recorder.reports) == {"OK"} and session.closed

    asyncio.run(scenario())


def test_the_default_window_is_half_a_second() -> None:
    poller = FakePoller(mapping(BatchSize=100, MaximumBatchingWindowInSeconds=0), [])
    assert poller.window == 0.5
    assert FakePoller(mapping(MaximumBatchingWindowInSeconds=2), []).window == 2


def test_a_payload_never_passes_6_mb() -> None:
    async def scenario() -> None:
        session, recorder = FakeSession(), Recorder()
        poller = FakePoller(mapping(BatchSize=10), [session])
        ctx = context(poller.mapping, recorder)
        quarter = MAX_BATCH_PAYLOAD_BYTES // 4  # base64 makes each a third of the limit
        session.send(0, b"a" * quarter)
        session.send(1, b"b" * (MAX_BATCH_PAYLOAD_BYTES))  # alone too large: rejected
        session.send(2, b"c" * quarter)
        session.send(3, b"d" * quarter)
        session.send(4, b"e")
        await run_until(poller, ctx, lambda: len(recorder.payloads) == 2)
        assert session.rejected == [1]
        assert recorder.payloads == [[0, 2], [3, 4]]
        assert session.settled == [[0, 2], [3, 4]]

    asyncio.run(scenario())


def test_filtered_out_messages_are_settled_unseen() -> None:
    async def scenario() -> None:
        session, recorder = FakeSession(), Recorder()
        criteria = {"Filters": [{"Pattern": json.dumps({"data": {"keep": [True]}})}]}
        poller = FakePoller(mapping(BatchSize=4, FilterCriteria=criteria), [session])
        ctx = context(poller.mapping, recorder)
        session.send(0, b'{"keep": true}')
        session.send(1, b'{"keep": false}')
        session.send(2, b"plain text")
        session.send(3, b'{"keep": true}')
        session.send(4, b"nothing kept")
        await run_until(poller, ctx, lambda: len(session.settled) == 2)
        assert recorder.payloads == [[0, 3]]
        assert session.settled == [[0, 1, 2, 3], [4]]
        assert recorder.counts == {"polled": 5, "filtered": 3, "invoked": 2}

    asyncio.run(scenario())


def test_a_failed_batch_is_given_back_and_never_settled() -> None:
    async def scenario() -> None:
        session, recorder = FakeSession(), Recorder()
        criteria = {"Filters": [{"Pattern": json.dumps({"data": {"n": [{"numeric": [">", 0]}]}})}]}
        poller = FakePoller(mapping(BatchSize=3, FilterCriteria=criteria), [session])

        async def fails(numbers: list[int]) -> InvokeOutcome:
            return InvokeOutcome(200, b'{"errorMessage":"boom"}', "Unhandled", "$LATEST", "r")

        ctx = context(poller.mapping, recorder, fails)
        for n in range(3):
            session.send(n)
        await run_until(poller, ctx, lambda: bool(session.given_back))
        assert session.given_back == [([1, 2], [0])]  # 0 was filtered out: settled
        assert not session.settled
        assert recorder.reports == ["PROBLEM: Function call failed"]
        assert recorder.counts == {"polled": 3, "filtered": 1, "failed": 2}

    asyncio.run(scenario())


def test_throttles_retry_the_same_batch() -> None:
    async def scenario() -> None:
        session, recorder = FakeSession(), Recorder()
        poller = FakePoller(mapping(BatchSize=2), [session])
        throttles = [Throttled("Rate Exceeded."), Throttled("Rate Exceeded.")]

        async def busy(numbers: list[int]) -> InvokeOutcome:
            if throttles:
                raise throttles.pop()
            return await ok(numbers)

        ctx = context(poller.mapping, recorder, busy)
        session.send(0)
        session.send(1)
        await run_until(poller, ctx, lambda: bool(session.settled))
        assert recorder.payloads == [[0, 1]] * 3
        assert session.settled == [[0, 1]]

    asyncio.run(scenario())


def test_a_lost_session_is_reported_and_reopened() -> None:
    async def scenario() -> None:
        first, second, recorder = FakeSession(), FakeSession(), Recorder()
        problem = BrokerProblem("The broker refused the connection: bad password")
        poller = FakePoller(mapping(BatchSize=1), [first, problem, second])
        ctx = context(poller.mapping, recorder)
        first.inbox.put_nowait(SessionLost("the broker closed the connection"))
        second.send(7)
        await run_until(poller, ctx, lambda: bool(second.settled))
        assert first.closed and poller.opened == 3
        assert recorder.reports == [
            f"{mq.CONNECTION_ERROR} the broker closed the connection",
            f"{mq.CONNECTION_ERROR} The broker refused the connection: bad password",
            "OK",
        ]
        assert second.settled == [[7]]

    asyncio.run(scenario())
