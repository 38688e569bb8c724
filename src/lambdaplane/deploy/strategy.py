"""Traffic-shifting strategies and the step plans they produce, as CodeDeploy defines them.

A strategy says how an alias's traffic moves from its current version to a new one:
all at once; a canary (a share for one interval, then everything); or linear (equal
increments, one per interval). ``plan`` turns a strategy into steps, each the share
of traffic the new version gets and how long that share is watched before the next
step. Everything here is pure: no clock, no I/O.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "PREDEFINED",
    "Kind",
    "Step",
    "Strategy",
    "StrategyError",
    "format_duration",
    "parse_duration",
    "plan",
    "predefined",
]


class StrategyError(ValueError):
    """A strategy name, percentage or duration that cannot be used."""


class Kind(enum.Enum):
    ALL_AT_ONCE = "all at once"
    CANARY = "canary"
    LINEAR = "linear"


@dataclass(frozen=True)
class Strategy:
    """How traffic moves; ``percent`` and ``interval`` (seconds) are unused for all at once."""

    kind: Kind
    percent: int = 100
    interval: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind is Kind.ALL_AT_ONCE:
            return
        if not 1 <= self.percent <= 99:
            raise StrategyError(f"the percentage must be 1-99, got {self.percent}")
        if self.interval <= 0:
            raise StrategyError(f"the interval must be longer than 0s, got {self.interval}s")

    def describe(self) -> str:
        """One line for people: ``canary: 10% for 5m, then 100%``."""
        label = f"{self.name} ({self.kind.value})" if self.name else self.kind.value
        interval = format_duration(self.interval)
        if self.kind is Kind.CANARY:
            return f"{label}: {self.percent}% for {interval}, then 100%"
        if self.kind is Kind.LINEAR:
            return f"{label}: {self.percent}% more every {interval} until 100%"
        return f"{label}: 100% at once"


@dataclass(frozen=True)
class Step:
    """The new version gets ``percent`` of the traffic and is watched ``hold`` seconds."""

    percent: int
    hold: float

    @property
    def weight(self) -> float:
        """The new version's weight as Lambda's RoutingConfig wants it (0.0-1.0)."""
        return self.percent / 100

    @property
    def final(self) -> bool:
        return self.percent == 100


def plan(strategy: Strategy) -> tuple[Step, ...]:
    """The steps of ``strategy``; the last gives the new version 100% and holds 0s."""
    if strategy.kind is Kind.ALL_AT_ONCE:
        return (Step(100, 0.0),)
    if strategy.kind is Kind.CANARY:
        return (Step(strategy.percent, strategy.interval), Step(100, 0.0))
    shares = range(strategy.percent, 100, strategy.percent)
    return (*(Step(share, strategy.interval) for share in shares), Step(100, 0.0))


def _minutes(n: int) -> float:
    return n * 60.0


# CodeDeploy's predefined Lambda deployment configurations (minus the
# "CodeDeployDefault." prefix, which is also accepted, as are SAM's names without "Lambda").
PREDEFINED: dict[str, Strategy] = {
    "LambdaAllAtOnce": Strategy(Kind.ALL_AT_ONCE, name="LambdaAllAtOnce"),
    **{
        f"LambdaCanary10Percent{m}Minutes": Strategy(
            Kind.CANARY, 10, _minutes(m), f"LambdaCanary10Percent{m}Minutes"
        )
        for m in (5, 10, 15, 30)
    },
    **{
        name: Strategy(Kind.LINEAR, 10, _minutes(m), name)
        for m, name in (
            (1, "LambdaLinear10PercentEvery1Minute"),
            (2, "LambdaLinear10PercentEvery2Minutes"),
            (3, "LambdaLinear10PercentEvery3Minutes"),
            (10, "LambdaLinear10PercentEvery10Minutes"),
        )
    },
}


def predefined(name: str) -> Strategy:
    """The predefined strategy ``name`` (``LambdaCanary10Percent5Minutes``,
    ``CodeDeployDefault.LambdaCanary10Percent5Minutes`` or SAM's ``Canary10Percent5Minutes``).
    """
    key = name.strip().removeprefix("CodeDeployDefault.")
    folded = {k.lower(): v for k, v in PREDEFINED.items()}
    found = folded.get(key.lower()) or folded.get(f"lambda{key.lower()}")
    if found is None:
        known = ", ".join(PREDEFINED)
        raise StrategyError(f"unknown strategy {name!r}; predefined ones are: {known}")
    return found


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``5m``, ``1h``, ``1m30s`` or ``0.5s``; raises StrategyError."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None:
        raise StrategyError(f"not a duration: {text!r} (use e.g. 90s, 5m or 1h)")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: float) -> str:
    """The shortest of ``1h``, ``5m``, ``1m30s``, ``3s``, ``0.5s`` that says ``seconds``."""
    if seconds >= 60 and float(seconds).is_integer():
        whole = int(seconds)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
        return "".join(f"{n}{unit}" for n, unit in parts if n)
    return f"{seconds:g}s"
