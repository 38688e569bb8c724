"""The deployment state machine against a fake alias, fake counters and a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from lambdaplane.deploy.deployment import (
    AliasChanged,
    AliasError,
    AliasState,
    Deployment,
    Phase,
    Progress,
    check_start,
)
from lambdaplane.deploy.health import MetricsError, Tally, Thresholds
from lambdaplane.deploy.strategy import Kind, Strategy, plan

RULE = Thresholds(max_error_rate=0.1, min_invocations=10)


@dataclass
class FakeAlias:
    """An alias with Lambda's RevisionId precondition; records every UpdateAlias."""

    version: str = "1"
    weights: dict[str, float] = field(default_factory=dict)
    revision: int = 1
    calls: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    fail_on_call: int | None = None  # the n-th route call (1-based) fails with AliasError

    def get(self) -> AliasState:
        return AliasState("fn", self.version, dict(self.weights), f"r{self.revision}")

    def route(self, version: str, weights: dict[str, float], revision_id: str) -> str:
        if revision_id != f"r{self.revision}":
            raise AliasChanged("The Revision Id provided does not match the latest Revision Id.")
        self.calls.append((version, dict(weights)))
        if self.fail_on_call == len(self.calls):
            raise AliasError("UpdateAlias: ServiceException: boom")
        self.version, self.weights = version, dict(weights)
        self.revision += 1
        return f"r{self.revision}"

    def change_behind_our_back(self) -> None:
        self.revision += 1


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.on_sleep: Callable[[float], None] = lambda now: None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds
        self.on_sleep(self.now)


def deployment(
    alias: FakeAlias,
    strategy: Strategy,
    counts: Callable[[float], Tally],
    time: FakeTime,
    *,
    poll: float = 1.0,
    progress: list[Progress] | None = None,
) -> Deployment:
    seen = progress if progress is not None else []

    def read(function: str, version: str) -> Tally:
        assert (function, version) == ("fn", "2")
        return counts(time.now)

    return Deployment(
        alias,
        "2",
        plan(strategy),
        RULE,
        read_counts=read,
        clock=time.clock,
        sleep=time.sleep,
        poll=poll,
        report=seen.append,
    )


def healthy(now: float) -> Tally:
    return Tally(int(now - 1000) * 5, 0)


def test_canary_shifts_watches_and_promotes() -> None:
    alias, time, progress = FakeAlias(), FakeTime(), []
    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), healthy, time, progress=progress).run()
    assert result.phase is Phase.PROMOTED
    assert alias.calls == [("1", {"2": 0.1}), ("2", {})]
    assert (alias.version, alias.weights) == ("2", {})
    assert time.now == 1005.0  # held exactly the interval
    assert result.observed == Tally(25, 0)
    steps = [p for p in progress if p.step]
    assert [(p.step, p.steps) for p in steps] == [(1, 2), (2, 2)]
    assert steps[0].message == "version 1: 90%, version 2: 10%, watching 5s"
    assert steps[1].message == "version 2: 100%"
    assert len([p for p in progress if not p.step]) == 5  # one reading per poll


def test_linear_walks_every_share() -> None:
    alias, time = FakeAlias(), FakeTime()
    result = deployment(alias, Strategy(Kind.LINEAR, 25, 2), healthy, time, poll=0.5).run()
    assert result.phase is Phase.PROMOTED
    assert alias.calls == [
        ("1", {"2": 0.25}),
        ("1", {"2": 0.5}),
        ("1", {"2": 0.75}),
        ("2", {}),
    ]
    assert time.now == 1006.0


def test_all_at_once_neither_waits_nor_reads_more_than_the_baseline() -> None:
    alias, time = FakeAlias(), FakeTime()
    reads: list[float] = []

    def counts(now: float) -> Tally:
        reads.append(now)
        return Tally()

    result = deployment(alias, Strategy(Kind.ALL_AT_ONCE), counts, time).run()
    assert result.phase is Phase.PROMOTED
    assert alias.calls == [("2", {})]
    assert time.now == 1000.0 and len(reads) == 1


def test_errors_above_the_rate_roll_back_mid_step() -> None:
    alias, time = FakeAlias(), FakeTime()

    def failing(now: float) -> Tally:  # from t+2: half of the invocations fail
        seconds = int(now - 1000)
        return Tally(seconds * 5, max(0, seconds - 1) * 5)

    result = deployment(alias, Strategy(Kind.CANARY, 10, 60), failing, time).run()
    assert result.phase is Phase.ROLLED_BACK
    assert alias.calls == [("1", {"2": 0.1}), ("1", {})]
    assert (alias.version, alias.weights) == ("1", {})
    assert time.now == 1002.0  # did not wait out the step
    assert "version 2: 5 of 15 invocations failed (33.3%" in result.reason
    assert result.reason.endswith("the alias points at version 1 again")


def test_counts_from_before_the_deployment_do_not_count() -> None:
    alias, time = FakeAlias(), FakeTime()

    def old_failures(now: float) -> Tally:  # 100 failures before it started, none since
        return Tally(int(now - 1000) * 5, 100)

    result = deployment(alias, Strategy(Kind.CANARY, 10, 3), old_failures, time).run()
    assert result.phase is Phase.PROMOTED


def test_few_invocations_are_not_judged() -> None:
    alias, time = FakeAlias(), FakeTime()
    result = deployment(alias, Strategy(Kind.CANARY, 10, 3), lambda now: Tally(1, 8), time).run()
    assert result.phase is Phase.PROMOTED


def test_a_concurrent_change_aborts_and_leaves_the_alias() -> None:
    alias, time = FakeAlias(), FakeTime()
    time.on_sleep = lambda now: alias.change_behind_our_back() if now == 1001.0 else None
    result = deployment(alias, Strategy(Kind.LINEAR, 50, 2), healthy, time).run()
    assert result.phase is Phase.ABORTED
    assert "changed by someone else" in result.reason
    assert alias.calls == [("1", {"2": 0.5})]  # nothing after the conflict


def test_a_concurrent_change_blocks_the_rollback_too() -> None:
    alias, time = FakeAlias(), FakeTime()
    time.on_sleep = lambda now: alias.change_behind_our_back() if now == 1001.0 else None

    def failing(now: float) -> Tally:
        return Tally(0, 20) if now >= 1002 else Tally()

    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), failing, time).run()
    assert result.phase is Phase.ABORTED
    assert "invocations failed" in result.reason and "not rolled back" in result.reason


def test_a_failed_first_change_changes_nothing() -> None:
    alias, time = FakeAlias(fail_on_call=1), FakeTime()
    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), healthy, time).run()
    assert result.phase is Phase.ABORTED
    assert result.reason == "changing the alias failed: UpdateAlias: ServiceException: boom"
    assert len(alias.calls) == 1


def test_a_failed_later_change_rolls_back() -> None:
    alias, time = FakeAlias(fail_on_call=2), FakeTime()
    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), healthy, time).run()
    assert result.phase is Phase.ROLLED_BACK
    assert alias.calls[-1] == ("1", {})


def test_one_unreadable_read_is_tried_again() -> None:
    alias, time = FakeAlias(), FakeTime()
    failed: list[float] = []

    def counts(now: float) -> Tally:
        if now > 1000 and not failed:
            failed.append(now)
            raise MetricsError("cannot read http://x/_lambdaplane/metrics: refused")
        return Tally()

    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), counts, time).run()
    assert failed and result.phase is Phase.PROMOTED


def test_unreadable_metrics_roll_back() -> None:
    alias, time = FakeAlias(), FakeTime()

    def counts(now: float) -> Tally:
        if now > 1000:
            raise MetricsError("cannot read http://x/_lambdaplane/metrics: refused")
        return Tally()

    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), counts, time).run()
    assert result.phase is Phase.ROLLED_BACK
    assert result.reason.startswith("cannot watch the new version: cannot read")


def test_unreadable_metrics_at_the_start_change_nothing() -> None:
    alias, time = FakeAlias(), FakeTime()

    def counts(now: float) -> Tally:
        raise MetricsError("refused")

    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), counts, time).run()
    assert result.phase is Phase.ABORTED and alias.calls == []


def test_an_interrupt_while_split_rolls_back() -> None:
    alias, time = FakeAlias(), FakeTime()

    def interrupt(now: float) -> None:
        if now >= 1002:
            raise KeyboardInterrupt

    time.on_sleep = interrupt
    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), healthy, time).run()
    assert result.phase is Phase.ROLLED_BACK
    assert result.reason == "interrupted; the alias points at version 1 again"


def test_an_alias_with_routing_is_refused() -> None:
    alias, time = FakeAlias(weights={"3": 0.2}), FakeTime()
    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), healthy, time).run()
    assert result.phase is Phase.ABORTED
    assert result.reason.startswith("the alias already routes 20% to version 3")
    assert alias.calls == []


def test_already_on_the_version_is_done() -> None:
    alias, time = FakeAlias(version="2"), FakeTime()
    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), healthy, time).run()
    assert result.phase is Phase.PROMOTED and alias.calls == []


def test_check_start() -> None:
    assert check_start(AliasState("fn", "1", {}, "r"), "1", "2") is None
    assert check_start(AliasState("fn", "2", {}, "r"), "2", "2") is not None


def test_unreadable_alias_aborts() -> None:
    class Broken(FakeAlias):
        def get(self) -> AliasState:
            raise AliasError("GetAlias: ResourceNotFoundException: Alias not found")

    result = deployment(Broken(), Strategy(Kind.CANARY, 10, 5), healthy, FakeTime()).run()
    assert result.phase is Phase.ABORTED
    assert (
        result.reason
        == "cannot read the alias: GetAlias: ResourceNotFoundException: Alias not found"
    )


def test_a_plan_must_end_at_100_percent() -> None:
    with pytest.raises(ValueError):
        Deployment(
            FakeAlias(),
            "2",
            (),
            RULE,
            read_counts=lambda f, v: Tally(),
            clock=lambda: 0.0,
            sleep=lambda s: None,
            poll=1,
        )


def test_errors_after_a_server_restart_still_roll_back() -> None:
    """The server's counters restart from zero: errors counted after that are not hidden
    behind the higher reading taken before it."""
    alias, time = FakeAlias(), FakeTime()

    def counts(now: float) -> Tally:
        return Tally(500, 0) if now <= 1000 else Tally(0, 20)

    result = deployment(alias, Strategy(Kind.CANARY, 10, 5), counts, time).run()
    assert result.phase is Phase.ROLLED_BACK
    assert result.reason.startswith("version 2: 20 of 20 invocations failed")
