"""Placement and reaping decisions: pure functions over a snapshot of pool state.

No I/O and no clock reads here: the caller passes ``now`` and the snapshot, and
applies the decision. That keeps the rules unit-testable with a fake clock, as
OpenWhisk's container pool does.

Rules (AWS's, scaled to one host):
- a function with reserved concurrency 0 is throttled, always;
- an idle provisioned environment of the same version is used first: it is already
  counted against the function's concurrency;
- otherwise the invocation needs one more concurrent execution: a function with a
  reservation may have at most that many environments busy or provisioned (all its
  versions together); the others share what the reservations leave of the account's
  limit. Beyond that: throttle, with the reason AWS gives for each case;
- then reuse the most recently used idle environment of the same version (warm start);
- otherwise cold-start one if the sum of live environments' memory fits the host
  budget, evicting least recently used idle environments of *other* versions to make
  room; otherwise throttle.

How fast a function may add environments (AWS's scaling rate) is ``burst.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

# AWS's TooManyRequestsException Reasons (botocore's ThrottleReason).
CONCURRENCY_REASON = "ConcurrentInvocationLimitExceeded"
RESERVED_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"
RATE_REASON = "FunctionInvocationRateLimitExceeded"
RESERVED_RATE_REASON = "ReservedFunctionInvocationRateLimitExceeded"
NO_RESERVATIONS: Mapping[str, int] = {}


class EnvView(NamedTuple):
    """What the scheduler needs to know of one live environment.

    A named tuple, not a dataclass: a snapshot of every live environment is built on
    each placement, and a tuple is three times cheaper to make (0.3 µs against 0.9 µs).
    """

    env_id: str
    pool_key: str
    memory_mb: int
    busy: bool  # starting or invoking
    last_used: float  # monotonic seconds; when it last finished an invocation
    function_name: str = ""
    provisioned: bool = False  # kept initialised for provisioned concurrency

    @property
    def counted(self) -> bool:
        """Whether it takes one of the concurrency: busy, or provisioned (held for it)."""
        return self.busy or self.provisioned


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
    disabled: bool = False  # reserved concurrency 0: the function is turned off


Decision = UseIdle | ColdStart | Throttle


def place(
    pool_key: str,
    memory_mb: int,
    envs: Sequence[EnvView],
    limits: Limits,
    *,
    function_name: str = "",
    reservations: Mapping[str, int] = NO_RESERVATIONS,
    total_reserved: int = 0,
) -> Decision:
    """Where an invocation of ``pool_key`` (a version of ``function_name``, needing
    ``memory_mb``) runs; ``reservations`` are the account's reserved concurrency by
    function, ``total_reserved`` their sum."""
    reserved = reservations.get(function_name)
    if reserved == 0:
        return Throttle(RESERVED_REASON, disabled=True)
    idle = [e for e in envs if e.pool_key == pool_key and not e.busy]
    provisioned = [e for e in idle if e.provisioned]
    if provisioned:
        return UseIdle(max(provisioned, key=lambda e: e.last_used).env_id)
    if reserved is not None:
        in_use = sum(1 for e in envs if e.function_name == function_name and e.counted)
        if in_use >= reserved:
            return Throttle(RESERVED_REASON)
    else:
        in_use = sum(1 for e in envs if e.counted and e.function_name not in reservations)
        if in_use >= limits.account_concurrency - total_reserved:
            return Throttle()
    if idle:
        return UseIdle(max(idle, key=lambda e: e.last_used).env_id)
    used = sum(e.memory_mb for e in envs)
    if used + memory_mb <= limits.memory_budget_mb:
        return ColdStart()
    # Free memory by evicting idle environments of other versions, oldest first.
    evict: list[str] = []
    evictable = (e for e in envs if not e.busy and not e.provisioned)
    for env in sorted(evictable, key=lambda e: e.last_used):
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
        if not e.busy
        and not e.provisioned
        and (now - e.last_used >= keep_alive or e.pool_key not in live_keys)
    ]
