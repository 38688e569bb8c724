from __future__ import annotations

import pytest

from lambdaplane.deploy.strategy import (
    PREDEFINED,
    Kind,
    Step,
    Strategy,
    StrategyError,
    format_duration,
    parse_duration,
    plan,
    predefined,
)


def test_all_at_once_is_one_step() -> None:
    assert plan(Strategy(Kind.ALL_AT_ONCE)) == (Step(100, 0.0),)


def test_canary_holds_its_share_then_promotes() -> None:
    assert plan(Strategy(Kind.CANARY, 10, 300)) == (Step(10, 300), Step(100, 0.0))


def test_linear_adds_equal_shares_until_everything() -> None:
    steps = plan(Strategy(Kind.LINEAR, 10, 60))
    assert [s.percent for s in steps] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert all(s.hold == 60 for s in steps[:-1]) and steps[-1].hold == 0
    # A share that does not divide 100: the last increment is what is left.
    assert [s.percent for s in plan(Strategy(Kind.LINEAR, 30, 1))] == [30, 60, 90, 100]
    assert [s.percent for s in plan(Strategy(Kind.LINEAR, 50, 1))] == [50, 100]


def test_weights_are_exact_fractions() -> None:
    assert [s.weight for s in plan(Strategy(Kind.LINEAR, 10, 1))][:3] == [0.1, 0.2, 0.3]
    assert Step(100, 0).final and not Step(99, 1).final


@pytest.mark.parametrize(("percent", "interval"), [(0, 60), (100, 60), (10, 0), (10, -1)], ids=str)
def test_strategy_checks_its_numbers(percent: int, interval: float) -> None:
    with pytest.raises(StrategyError):
        Strategy(Kind.CANARY, percent, interval)


@pytest.mark.parametrize(
    "name",
    [
        "LambdaCanary10Percent5Minutes",
        "CodeDeployDefault.LambdaCanary10Percent5Minutes",
        "Canary10Percent5Minutes",  # SAM's spelling
        "lambdacanary10percent5minutes",
    ],
)
def test_predefined_names_in_every_spelling(name: str) -> None:
    strategy = predefined(name)
    assert (strategy.kind, strategy.percent, strategy.interval) == (Kind.CANARY, 10, 300)
    assert strategy.name == "LambdaCanary10Percent5Minutes"


def test_codedeploy_predefined_configurations() -> None:
    assert set(PREDEFINED) == {
        "LambdaAllAtOnce",
        "LambdaCanary10Percent5Minutes",
        "LambdaCanary10Percent10Minutes",
        "LambdaCanary10Percent15Minutes",
        "LambdaCanary10Percent30Minutes",
        "LambdaLinear10PercentEvery1Minute",
        "LambdaLinear10PercentEvery2Minutes",
        "LambdaLinear10PercentEvery3Minutes",
        "LambdaLinear10PercentEvery10Minutes",
    }
    assert predefined("AllAtOnce").kind is Kind.ALL_AT_ONCE
    linear = predefined("LambdaLinear10PercentEvery3Minutes")
    assert (linear.kind, linear.percent, linear.interval) == (Kind.LINEAR, 10, 180)
    assert len(plan(linear)) == 10
    assert predefined("LambdaCanary10Percent30Minutes").interval == 1800


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(StrategyError, match="LambdaLinear10PercentEvery1Minute"):
        predefined("Canary50Percent1Minute")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h", 3600), ("1m30s", 90), ("0.5s", 0.5), (" 2M ", 120)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5 minutes", "-1s", "1s5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(StrategyError, match="not a duration"):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for seconds in (0.5, 3, 59, 60, 90, 300, 3600, 5400):
        assert parse_duration(format_duration(seconds)) == seconds
    assert format_duration(300) == "5m"
    assert format_duration(3) == "3s"


def test_describe() -> None:
    assert Strategy(Kind.CANARY, 30, 3).describe() == "canary: 30% for 3s, then 100%"
    assert predefined("LambdaLinear10PercentEvery1Minute").describe() == (
        "LambdaLinear10PercentEvery1Minute (linear): 10% more every 1m until 100%"
    )
