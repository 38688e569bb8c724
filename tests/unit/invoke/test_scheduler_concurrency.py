"""Reserved and unreserved concurrency in placement (scheduler.place)."""

from __future__ import annotations

from lambdaplane.invoke.scheduler import (
    CONCURRENCY_REASON,
    RESERVED_REASON,
    ColdStart,
    EnvView,
    Limits,
    Throttle,
    UseIdle,
    place,
    reap,
)

LIMITS = Limits(account_concurrency=10, memory_budget_mb=100_000)


def env(
    env_id: str,
    fn: str = "f",
    version: str = "1",
    busy: bool = False,
    used: float = 0.0,
    provisioned: bool = False,
) -> EnvView:
    return EnvView(env_id, f"{fn}:{version}", 128, busy, used, fn, provisioned)


def test_reserved_zero_throttles_always_and_says_so() -> None:
    decision = place("f:1", 128, [env("idle")], LIMITS, function_name="f", reservations={"f": 0})
    assert decision == Throttle(RESERVED_REASON, disabled=True)


def test_reserved_caps_busy_environments_over_all_versions() -> None:
    envs = [env("a", version="1", busy=True), env("b", version="$LATEST", busy=True)]
    reservations = {"f": 2}
    assert place(
        "f:2", 128, envs, LIMITS, function_name="f", reservations=reservations, total_reserved=2
    ) == Throttle(RESERVED_REASON)
    # One below the cap: a cold start.
    assert (
        place(
            "f:2",
            128,
            envs[:1],
            LIMITS,
            function_name="f",
            reservations=reservations,
            total_reserved=2,
        )
        == ColdStart()
    )


def test_reserved_cap_applies_to_idle_environments_too() -> None:
    # Lowered from 3 to 1 while environments exist: an idle one may not be used.
    envs = [env("busy", busy=True), env("idle")]
    decision = place("f:1", 128, envs, LIMITS, function_name="f", reservations={"f": 1})
    assert decision == Throttle(RESERVED_REASON)


def test_other_functions_do_not_count_against_a_reservation() -> None:
    envs = [env(str(i), fn="g", busy=True) for i in range(5)]
    decision = place("f:1", 128, envs, LIMITS, function_name="f", reservations={"f": 1})
    assert decision == ColdStart()


def test_unreserved_functions_share_what_reservations_leave() -> None:
    reservations = {"r": 7}  # leaves 3 of 10
    envs = [env("g1", fn="g", busy=True), env("g2", fn="g", busy=True)]
    envs_full = [*envs, env("h1", fn="h", busy=True)]
    # Busy environments of the reserved function do not use the unreserved pool.
    reserved_busy = [env(f"r{i}", fn="r", busy=True) for i in range(7)]
    assert (
        place(
            "u:1",
            128,
            envs + reserved_busy,
            LIMITS,
            function_name="u",
            reservations=reservations,
            total_reserved=7,
        )
        == ColdStart()
    )
    assert place(
        "u:1",
        128,
        envs_full,
        LIMITS,
        function_name="u",
        reservations=reservations,
        total_reserved=7,
    ) == Throttle(CONCURRENCY_REASON)
    # The reserved function still has its share.
    assert (
        place(
            "r:1",
            128,
            envs_full,
            LIMITS,
            function_name="r",
            reservations=reservations,
            total_reserved=7,
        )
        == ColdStart()
    )


def test_provisioned_environments_count_and_are_used_first() -> None:
    prov_idle = env("p", provisioned=True, used=1)
    warm = env("w", used=5)
    # An idle provisioned one goes before a more recently used on-demand one.
    assert place("f:1", 128, [prov_idle, warm], LIMITS, function_name="f") == UseIdle("p")
    # Reserved 2, two provisioned (one busy, one idle): the idle provisioned one is
    # already counted, so it may be used ...
    prov_busy = env("pb", provisioned=True, busy=True)
    reservations = {"f": 2}
    assert place(
        "f:1", 128, [prov_busy, prov_idle], LIMITS, function_name="f", reservations=reservations
    ) == UseIdle("p")
    # ... but another version (here $LATEST) is throttled: both are held for version 1.
    assert place(
        "f:$LATEST",
        128,
        [prov_busy, prov_idle],
        LIMITS,
        function_name="f",
        reservations=reservations,
    ) == Throttle(RESERVED_REASON)


def test_provisioned_environments_are_neither_reaped_nor_evicted() -> None:
    envs = [env("p", provisioned=True, used=0), env("old", used=0)]
    assert reap(envs, now=1000, keep_alive=60, live_keys=frozenset()) == ["old"]
    tight = Limits(account_concurrency=10, memory_budget_mb=256)
    assert place("g:1", 128, envs, tight, function_name="g") == ColdStart(("old",))
    assert place("g:1", 256, envs, tight, function_name="g") == Throttle()
