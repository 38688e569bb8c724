"""A burst of first invocations on a few start slots (EnvironmentPools.acquire): queued
cold starts take environments that go idle instead of starting more; reserved
concurrency and the burst limit refuse with AWS's reasons. Sandboxes are faked: an
environment's start is a short await, its invocation is the test's."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from lambdaplane.errors import TooManyRequestsException
from lambdaplane.invoke.burst import BurstLimiter
from lambdaplane.invoke.environment import Environment, EnvState
from lambdaplane.invoke.pools import EnvironmentPools, FunctionDisabled
from lambdaplane.invoke.scheduler import Limits
from lambdaplane.service.concurrency import Reservations

IMAGE: Any = SimpleNamespace(
    pool_key="f:1:abc",
    function_name="f",
    version="1",
    memory_mb=128,
    log_group="/aws/lambda/f",
    log_settings=None,
    runtime=SimpleNamespace(family="python", id="python3.11"),
    extensions=(),
    snapstart=False,
)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ids of environments whose (fake) sandbox was started."""
    ids: list[str] = []

    async def start(self: Environment, init_timeout: float) -> None:
        ids.append(self.id)
        for _ in range(5):  # a start takes a few loop turns; no wall-clock time is involved
            await asyncio.sleep(0)
        self._move(EnvState.INITIALIZING)
        self._move(EnvState.READY)

    async def destroy(self: Environment) -> None:
        self.state = EnvState.SHUT_DOWN

    monkeypatch.setattr(Environment, "start", start)
    monkeypatch.setattr(Environment, "destroy", destroy)
    return ids


def make_pools(slots: int, **extra: Any) -> EnvironmentPools:
    fake: Any = None
    return EnvironmentPools(
        sandbox=fake,
        agent=fake,
        sink=fake,
        region="us-east-1",
        limits=Limits(account_concurrency=1000, memory_budget_mb=1_000_000),
        keep_alive=600,
        init_timeout=10,
        cpu=fake,
        max_parallel_starts=slots,
        **extra,
    )


async def run_one(pools: EnvironmentPools, hold: asyncio.Event | None = None) -> str:
    env, failure = await pools.acquire(IMAGE)
    assert failure is None
    env._move(EnvState.INVOKING)  # what Environment.invoke does first, without awaiting
    if hold is not None:
        await hold.wait()
    else:
        await asyncio.sleep(0)
    env._move(EnvState.READY)
    await pools.release(env)
    return env.id


def test_queued_cold_starts_take_environments_that_go_idle(started: list[str]) -> None:
    async def scenario() -> None:
        pools = make_pools(2)
        used = await asyncio.gather(*(run_one(pools) for _ in range(50)))
        # Not 50: queued cold starts took the environments that freed first (10 here; a
        # new one starts only when a slot frees while every environment is busy).
        assert len(started) < 25
        assert set(used) == set(started)
        assert len(pools.live) == len(started)

    asyncio.run(scenario())


def test_held_invocations_each_get_their_own_environment(started: list[str]) -> None:
    async def scenario() -> None:
        pools = make_pools(2)
        hold = asyncio.Event()
        tasks = [asyncio.create_task(run_one(pools, hold)) for _ in range(5)]
        while len(started) < 5:
            await asyncio.sleep(0.005)
        hold.set()
        assert len(set(await asyncio.gather(*tasks))) == 5

    asyncio.run(scenario())


def test_reserved_concurrency_throttles_with_aws_reasons(started: list[str]) -> None:
    reservations = Reservations({"f": 2}, 2)

    async def scenario() -> None:
        pools = make_pools(4, reservations=lambda: reservations)
        hold = asyncio.Event()
        tasks = [asyncio.create_task(run_one(pools, hold)) for _ in range(2)]
        while len(started) < 2:
            await asyncio.sleep(0.005)
        with pytest.raises(TooManyRequestsException) as info:
            await pools.acquire(IMAGE)
        assert info.value.extra == {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}
        assert info.value.message == "Rate Exceeded."
        assert not isinstance(info.value, FunctionDisabled)
        hold.set()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())


def test_reserved_zero_is_the_disabled_throttle(started: list[str]) -> None:
    async def scenario() -> None:
        pools = make_pools(4, reservations=lambda: Reservations({"f": 0}, 0))
        with pytest.raises(FunctionDisabled) as info:
            await pools.acquire(IMAGE)
        assert info.value.extra == {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}
        assert started == []

    asyncio.run(scenario())


def test_burst_limit_refuses_new_environments_not_warm_ones(started: list[str]) -> None:
    async def scenario() -> None:
        pools = make_pools(4, burst=BurstLimiter(limit=2, window=3600))
        hold = asyncio.Event()
        tasks = [asyncio.create_task(run_one(pools, hold)) for _ in range(2)]
        while len(started) < 2:
            await asyncio.sleep(0.005)
        with pytest.raises(TooManyRequestsException) as info:
            await pools.acquire(IMAGE)
        assert info.value.extra == {"Reason": "FunctionInvocationRateLimitExceeded"}
        hold.set()
        await asyncio.gather(*tasks)
        for _ in range(5):  # warm: no allowance needed
            await run_one(pools)
        assert len(started) == 2

    asyncio.run(scenario())


def test_a_cancelled_queued_cold_start_holds_no_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = asyncio.Event()

    async def start(self: Environment, init_timeout: float) -> None:
        await gate.wait()
        self._move(EnvState.INITIALIZING)
        self._move(EnvState.READY)

    async def destroy(self: Environment) -> None:
        self.state = EnvState.SHUT_DOWN

    monkeypatch.setattr(Environment, "start", start)
    monkeypatch.setattr(Environment, "destroy", destroy)

    async def scenario() -> None:
        pools = make_pools(1)
        first = asyncio.create_task(pools.acquire(IMAGE))
        queued = asyncio.create_task(pools.acquire(IMAGE))
        for _ in range(5):
            await asyncio.sleep(0)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        gate.set()
        await first
        assert len(pools.live) == 1  # the cancelled one's placeholder is gone
        assert not pools._starts.locked()  # and it holds no start slot

    asyncio.run(scenario())
