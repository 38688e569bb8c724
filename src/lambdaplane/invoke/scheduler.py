"""Placement and reaping decisions: pure functions over a snapshot of pool state.

No I/O and no clock reads here: the caller passes ``now`` and the snapshot, and
applies the decision. That keeps the rules unit-testable with a fake clock, as
OpenWhisk's container pool does.

Rules (AWS's, scaled to one host):
- reuse the most recently used idle environment of the same version (warm start);
- otherwise cold-start one if the account's concurrency limit allows and the sum of
  live environments' memory fits the host budget, evicting least recently used idle
  environments of *other* versions to make room;
- otherwise throttle with AWS's reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CONCURRENCY_REASON = "ConcurrentInvocationLimitExceeded"


@dataclass(frozen=True)
class EnvView:
    """What the scheduler needs to know of one live environment."""

    env_id: str
    pool_key: str
    memory_mb: int
    busy: bool  # starting or invoking
    last_used: float  # monotonic seconds; when it last finished an invocation


@dataclass(frozen=True)
class Limits:
    account_concurrency: int  # concurrent executions across all functions
    memory_budget_mb: int  # the sum of live environments' MemorySize stays under this


@dataclass(frozen=True)
class UseIdle:
    env_id: str


@dataclass(frozen=True)
class ColdStart:
    evict: tuple[str, ...] = ()  # idle environments to destroy first, to free memory


@dataclass(frozen=True)
class Throttle:
    reason: str = CONCURRENCY_REASON


Decision = UseIdle | ColdStart | Throttle


def place(pool_key: str, memory_mb: int, envs: Sequence[EnvView], limits: Limits) -> Decision:
    """Where an invocation of ``pool_key`` (needing ``memory_mb``) runs."""
    idle = [e for e in envs if e.pool_key == pool_key and not e.busy]
    if idle:
        return UseIdle(max(idle, key=lambda e: e.last_used).env_id)
    busy = sum(1 for e in envs if e.busy)
    if busy >= limits.account_concurrency:
        return Throttle()
    used = sum(e.memory_mb for e in envs)
    if used + memory_mb <= limits.memory_budget_mb:
        return ColdStart()
    # Free memory by evicting idle environments of other versions, oldest first.
    evict: list[str] = []
    for env in sorted((e for e in envs if not e.busy), key=lambda e: e.last_used):
        if used + memory_mb <= limits.memory_budget_mb:
            break
        evict.append(env.env_id)
        used -= env.memory_mb
    if used + memory_mb <= limits.memory_budget_mb:
        return ColdStart(tuple(evict))
    return Throttle()


def reap(
    envs: Iterable[EnvView], now: float, keep_alive: float, live_keys: frozenset[str]
) -> list[str]:
    """Idle environments to destroy: idle longer than ``keep_alive``, or of a superseded version.

    ``live_keys`` are the pool keys still current (a code or configuration update
    makes the old key stale: its idle environments go at once, busy ones drain).
    """
    return [
        e.env_id
        for e in envs
        if not e.busy and (now - e.last_used >= keep_alive or e.pool_key not in live_keys)
    ]
