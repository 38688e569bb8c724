from __future__ import annotations

from lambdaplane.invoke.scheduler import (
    ColdStart,
    EnvView,
    Limits,
    Throttle,
    UseIdle,
    place,
    reap,
)

LIMITS = Limits(account_concurrency=3, memory_budget_mb=1024)


def env(
    env_id: str, key: str = "f", mem: int = 128, busy: bool = False, used: float = 0.0
) -> EnvView:
    return EnvView(env_id, key, mem, busy, used)


def test_warm_reuse_prefers_most_recent() -> None:
    envs = [env("a", used=1), env("b", used=5), env("c", busy=True), env("d", key="g", used=9)]
    assert place("f", 128, envs, LIMITS) == UseIdle("b")


def test_cold_start_when_no_idle() -> None:
    assert place("f", 128, [env("c", busy=True)], LIMITS) == ColdStart()
    assert place("f", 128, [], LIMITS) == ColdStart()


def test_throttle_at_account_concurrency() -> None:
    envs = [env(str(i), key=f"k{i}", busy=True) for i in range(3)]
    assert place("f", 128, envs, LIMITS) == Throttle("ConcurrentInvocationLimitExceeded")


def test_memory_budget_evicts_oldest_idle_of_other_versions() -> None:
    envs = [
        env("old", key="g", mem=512, used=1),
        env("newer", key="h", mem=256, used=2),
        env("busy", key="i", mem=256, busy=True),
    ]
    # 1024 used; a 512 MB start needs 512 freed: the oldest idle goes first.
    assert place("f", 512, envs, LIMITS) == ColdStart(("old",))
    # Nothing idle to evict: throttle.
    assert place("f", 512, [env("b1", mem=1024, busy=True)], LIMITS) == Throttle()
    # Larger than the whole budget.
    assert place("f", 2048, [], LIMITS) == Throttle()


def test_reap_idle_after_keep_alive_and_stale_versions() -> None:
    envs = [
        env("fresh", used=95),
        env("stale-idle", used=10),
        env("busy-old", used=0, busy=True),
        env("old-version", key="f-old", used=99),
        env("old-version-busy", key="f-old", busy=True, used=0),
    ]
    assert reap(envs, now=100, keep_alive=60, live_keys=frozenset({"f"})) == [
        "stale-idle",
        "old-version",
    ]
    assert reap(envs, now=60, keep_alive=60, live_keys=frozenset({"f", "f-old"})) == []
    assert reap(envs, now=70, keep_alive=60, live_keys=frozenset({"f", "f-old"})) == ["stale-idle"]
