"""One alias deployment: shift traffic step by step, watch the new version, promote or roll back.

The deployment is an explicit state machine (``Phase`` and ``_MOVES``). Every change
to the alias carries the RevisionId of the alias as this deployment last left it, so
anyone else changing the alias meanwhile makes the next change fail; the deployment
then stops without touching the alias again (it is no longer ours to move).

Everything outside is injected: the alias (``AliasTarget``), the cumulative
invocation counts of a function version (``read_counts``), the monotonic clock, ``sleep`` and
where progress goes (``report``). Unit tests drive it with fakes and a fake clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lambdaplane.deploy.health import MetricsError, Tally, Thresholds, Watch, judge
from lambdaplane.deploy.strategy import Step, format_duration

__all__ = [
    "AliasChanged",
    "AliasError",
    "AliasState",
    "AliasTarget",
    "Deployment",
    "Phase",
    "Progress",
    "Result",
    "check_start",
]


# Failed metric reads in a row that roll a deployment back.
MAX_MISSED_READS = 3


class AliasError(Exception):
    """The Lambda API refused or failed a call about the alias."""


class AliasChanged(AliasError):
    """The alias's RevisionId is not the one the deployment last saw: someone else moved it."""


@dataclass(frozen=True)
class AliasState:
    """What GetAlias says: the primary version, its RoutingConfig weights, the RevisionId."""

    function_name: str
    version: str
    weights: dict[str, float]
    revision_id: str


class AliasTarget(Protocol):
    """The alias being deployed (the Lambda API behind it)."""

    def get(self) -> AliasState:
        """GetAlias; raises AliasError."""
        ...

    def route(self, version: str, weights: dict[str, float], revision_id: str) -> str:
        """UpdateAlias on condition of ``revision_id``; the new RevisionId.

        Raises AliasChanged when the precondition fails, AliasError otherwise.
        """
        ...


class Phase(enum.Enum):
    READY = "ready"  # checked; the alias is as we found it
    SHIFTING = "shifting"  # part of the traffic goes to the new version, which is watched
    PROMOTED = "promoted"  # the alias points at the new version alone
    ROLLED_BACK = "rolled back"  # the alias points at the old version alone again
    ABORTED = "aborted"  # stopped; the alias was left as it was (see the reason)


_MOVES: dict[Phase, frozenset[Phase]] = {
    Phase.READY: frozenset({Phase.SHIFTING, Phase.PROMOTED, Phase.ABORTED}),
    Phase.SHIFTING: frozenset({Phase.SHIFTING, Phase.PROMOTED, Phase.ROLLED_BACK, Phase.ABORTED}),
    Phase.PROMOTED: frozenset(),
    Phase.ROLLED_BACK: frozenset(),
    Phase.ABORTED: frozenset(),
}


@dataclass(frozen=True)
class Progress:
    """A moment worth telling: a step applied (``step`` > 0) or a reading taken."""

    phase: Phase
    message: str
    step: int = 0  # 1-based; 0 when not about a step
    steps: int = 0
    observed: Tally | None = None  # the new version since the deployment started


@dataclass(frozen=True)
class Result:
    phase: Phase
    reason: str
    observed: Tally = field(default_factory=Tally)


def check_start(state: AliasState, old: str, new: str) -> str | None:
    """Why a deployment from ``old`` to ``new`` cannot start from ``state``, or None."""
    if state.weights:
        routes = ", ".join(f"{w:.0%} to version {v}" for v, w in sorted(state.weights.items()))
        return (
            f"the alias already routes {routes} (an unfinished deployment?); "
            "finish or undo that first"
        )
    if old == new:
        return f"the alias already points at version {new}"
    return None


class Deployment:
    """Moves one alias from its current version to ``new_version`` along ``steps``."""

    def __init__(
        self,
        alias: AliasTarget,
        new_version: str,
        steps: tuple[Step, ...],
        thresholds: Thresholds,
        *,
        read_counts: Callable[[str, str], Tally],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        poll: float,
        report: Callable[[Progress], None] = lambda progress: None,
    ) -> None:
        if not steps or not steps[-1].final:
            raise ValueError("a plan ends with the new version at 100%")
        self._alias = alias
        self.new_version = new_version
        self.old_version = ""
        self._steps = steps
        self._thresholds = thresholds
        self._read_counts = read_counts
        self._clock = clock
        self._sleep = sleep
        self._poll = max(poll, 0.01)
        self._report = report
        self.phase = Phase.READY
        self._revision = ""
        self._function = ""
        self._watch_counts = Watch(Tally())
        self._observed = Tally()

    def _move(self, to: Phase) -> None:
        if to not in _MOVES[self.phase]:
            raise RuntimeError(f"a deployment cannot go from {self.phase.value} to {to.value}")
        self.phase = to

    def _end(self, to: Phase, reason: str) -> Result:
        self._move(to)
        return Result(to, reason, self._observed)

    def run(self) -> Result:
        """Run every step; ends promoted, rolled back or aborted (never raises AliasError).

        A KeyboardInterrupt while traffic is split rolls the alias back.
        """
        try:
            state = self._alias.get()
        except AliasError as exc:
            return self._end(Phase.ABORTED, f"cannot read the alias: {exc}")
        self.old_version, self._revision = state.version, state.revision_id
        self._function = state.function_name
        problem = check_start(state, self.old_version, self.new_version)
        if problem is not None:
            already = state.version == self.new_version and not state.weights
            return self._end(Phase.PROMOTED if already else Phase.ABORTED, problem)
        try:
            self._watch_counts = Watch(self._read_counts(self._function, self.new_version))
        except MetricsError as exc:
            return self._end(Phase.ABORTED, f"cannot watch the new version: {exc}")
        try:
            for index, step in enumerate(self._steps, start=1):
                try:
                    self._apply(index, step)
                except AliasChanged as exc:
                    return self._end(
                        Phase.ABORTED,
                        "the alias was changed by someone else during the deployment, "
                        f"so it is left as they set it ({exc})",
                    )
                except AliasError as exc:
                    if self.phase is Phase.READY:
                        return self._end(Phase.ABORTED, f"changing the alias failed: {exc}")
                    return self._roll_back(f"changing the alias failed: {exc}")
                reason = None if step.final else self._watch(step)
                if reason is not None:
                    return self._roll_back(reason)
        except KeyboardInterrupt:
            if self.phase is Phase.READY:
                raise
            return self._roll_back("interrupted")
        return self._end(Phase.PROMOTED, f"the alias points at version {self.new_version}")

    def _apply(self, index: int, step: Step) -> None:
        """Give the new version ``step``'s share of the traffic; raises AliasError."""
        if step.final:
            version, weights = self.new_version, {}
            message = f"version {self.new_version}: 100%"
        else:
            version, weights = self.old_version, {self.new_version: step.weight}
            message = (
                f"version {self.old_version}: {100 - step.percent}%, "
                f"version {self.new_version}: {step.percent}%, "
                f"watching {format_duration(step.hold)}"
            )
        self._revision = self._alias.route(version, weights, self._revision)
        if not step.final:
            self._move(Phase.SHIFTING)
        self._report(
            Progress(self.phase, message, index, len(self._steps), observed=self._observed)
        )

    def _watch(self, step: Step) -> str | None:
        """Poll the new version's counts for ``step.hold`` seconds; a rollback reason or None.

        A read that fails is tried again at the next poll: only ``MAX_MISSED_READS`` failures
        in a row roll back (one dropped scrape must not undo a good deployment), and a step
        ends only after a read that succeeded.
        """
        deadline = self._clock() + step.hold
        missed = 0
        while True:
            self._sleep(max(0.0, min(self._poll, deadline - self._clock())))
            try:
                reading = self._read_counts(self._function, self.new_version)
            except MetricsError as exc:
                missed += 1
                if missed >= MAX_MISSED_READS:
                    return f"cannot watch the new version: {exc}"
                self._report(Progress(self.phase, f"metrics unreadable ({exc}); trying again"))
                if self._clock() >= deadline:
                    self._sleep(self._poll)
                continue
            missed = 0
            self._watch_counts = self._watch_counts.read(reading)
            self._observed = self._watch_counts.observed
            self._report(
                Progress(
                    self.phase,
                    f"version {self.new_version}: {self._observed.invocations} invocations, "
                    f"{self._observed.error} errors",
                    observed=self._observed,
                )
            )
            reason = judge(self._observed, self._thresholds)
            if reason is not None:
                return f"version {self.new_version}: {reason}"
            if self._clock() >= deadline:
                return None

    def _roll_back(self, reason: str) -> Result:
        """Point the alias at the old version alone again; ROLLED_BACK, or ABORTED if refused."""
        try:
            self._revision = self._alias.route(self.old_version, {}, self._revision)
        except AliasChanged as exc:
            return self._end(
                Phase.ABORTED,
                f"{reason}; not rolled back: the alias was changed by someone else ({exc})",
            )
        except AliasError as exc:
            return self._end(Phase.ABORTED, f"{reason}; the rollback failed too: {exc}")
        return self._end(
            Phase.ROLLED_BACK, f"{reason}; the alias points at version {self.old_version} again"
        )
