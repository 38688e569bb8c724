"""The pools' warm fast path answers exactly what the scheduler would, or defers to it."""

from __future__ import annotations

import types
from typing import Any

from lambdaplane.invoke import scheduler
from lambdaplane.invoke.pools import EnvironmentPools
from lambdaplane.service.concurrency import NO_RESERVATIONS, Reservations


class FakeEnv:
    def __init__(self, env_id: str, key: str, last_used: float, busy: bool = False) -> None:
        self.id = env_id
        self.image = types.SimpleNamespace(
            pool_key=key, memory_mb=128, function_name=key.split(":")[0], version="1"
        )
        self.busy = busy
        self.last_used = last_used


def pools(envs: list[FakeEnv], provisioned: set[str], limit: int = 1000) -> Any:
    made: Any = EnvironmentPools.__new__(EnvironmentPools)
    made._envs = {e.id: e for e in envs}
    made._provisioned = provisioned
    made._limits = scheduler.Limits(limit, 1 << 30)
    return made


def scheduler_choice(made: Any, key: str, reservations: Reservations) -> scheduler.Decision:
    return scheduler.place(
        key,
        128,
        made._views(),
        made._limits,
        function_name=key.split(":")[0],
        reservations=reservations.by_function,
        total_reserved=reservations.total,
    )


IMAGE = types.SimpleNamespace(pool_key="f:1:k", memory_mb=128, function_name="f")


def test_the_fast_path_picks_what_the_scheduler_picks() -> None:
    cases = [
        ([FakeEnv("a", "f:1:k", 1), FakeEnv("b", "f:1:k", 3), FakeEnv("c", "g:1:k", 9)], set()),
        ([FakeEnv("a", "f:1:k", 5), FakeEnv("b", "f:1:k", 3)], {"b"}),  # provisioned first
        ([FakeEnv("a", "f:1:k", 5, busy=True), FakeEnv("b", "f:1:k", 3)], set()),
        ([FakeEnv("a", "f:1:k", 5, busy=True)], set()),  # nothing idle: cold start
        (
            [FakeEnv("a", "f:1:k", 5), FakeEnv("p", "f:1:k", 1), FakeEnv("q", "f:1:k", 2)],
            {"p", "q"},
        ),
    ]
    for envs, provisioned in cases:
        made = pools(envs, provisioned)
        warm = made._warm(IMAGE, NO_RESERVATIONS)
        decision = scheduler_choice(made, "f:1:k", NO_RESERVATIONS)
        if isinstance(decision, scheduler.UseIdle):
            assert warm is not None and warm.id == decision.env_id
        else:
            assert warm is None


def test_the_scheduler_decides_near_a_limit_or_for_a_reservation() -> None:
    envs = [FakeEnv("a", "f:1:k", 1), FakeEnv("b", "g:1:k", 2, busy=True)]
    assert pools(envs, set(), limit=2)._warm(IMAGE, NO_RESERVATIONS) is None
    reserved = Reservations({"f": 1}, 1)
    assert pools(envs, set())._warm(IMAGE, reserved) is None
    assert pools(envs, set())._warm(IMAGE, Reservations({"g": 1}, 1)) is not None
    assert pools(envs, set(), limit=3)._warm(IMAGE, Reservations({"g": 1}, 1)) is None
