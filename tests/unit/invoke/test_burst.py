"""The per-function scaling rate (invoke/burst.py), on a fake clock."""

from __future__ import annotations

import pytest

from lambdaplane.invoke.burst import BurstLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_limit_new_environments_per_window_then_refill_continuously() -> None:
    clock = Clock()
    burst = BurstLimiter(limit=3, window=10, clock=clock)
    assert [burst.take("f") for _ in range(4)] == [True, True, True, False]
    clock.now += 3.3  # 3 per 10 s: one back after 3.33 s
    assert not burst.take("f")
    clock.now += 0.1
    assert burst.take("f")
    assert not burst.take("f")


def test_each_function_has_its_own_allowance() -> None:
    burst = BurstLimiter(limit=1, window=10, clock=Clock())
    assert burst.take("f")
    assert not burst.take("f")
    assert burst.take("g")


def test_unused_allowance_is_not_banked_beyond_the_limit() -> None:
    clock = Clock()
    burst = BurstLimiter(limit=2, window=10, clock=clock)
    assert burst.take("f")
    clock.now += 3600
    assert burst.available("f") == 2
    assert [burst.take("f") for _ in range(3)] == [True, True, False]


def test_refund_gives_back_an_unused_allowance() -> None:
    burst = BurstLimiter(limit=1, window=10, clock=Clock())
    assert burst.take("f")
    burst.refund("f")
    assert burst.take("f")
    burst.refund("f")
    burst.refund("f")  # never above the limit
    assert burst.available("f") == 1


def test_many_functions_are_forgotten_once_full_again() -> None:
    clock = Clock()
    burst = BurstLimiter(limit=1, window=1, clock=clock)
    for i in range(2000):
        assert burst.take(f"f{i}")
    clock.now += 10
    assert burst.take("last")
    assert len(burst._buckets) < 2000


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        BurstLimiter(limit=0)
