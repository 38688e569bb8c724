from __future__ import annotations

import pytest

from lambdaplane.deploy.health import (
    MetricsError,
    Tally,
    Thresholds,
    Watch,
    judge,
    parse_invocations,
    since,
)

RULE = Thresholds(max_error_rate=0.1, min_invocations=10)


def test_too_few_invocations_are_not_judged() -> None:
    assert judge(Tally(0, 9), RULE) is None


def test_error_rate_at_the_limit_passes_above_it_fails() -> None:
    assert judge(Tally(9, 1), RULE) is None  # exactly 10%
    reason = judge(Tally(9, 2), RULE)
    assert reason == "2 of 11 invocations failed (18.2%, more than the 10.0% allowed)"


def test_zero_tolerance() -> None:
    assert judge(Tally(10, 1), Thresholds(0.0, 1)) is not None
    assert judge(Tally(10, 0), Thresholds(0.0, 1)) is None


@pytest.mark.parametrize(("rate", "minimum"), [(-0.1, 1), (1.5, 1), (0.1, 0)])
def test_thresholds_checked(rate: float, minimum: int) -> None:
    with pytest.raises(ValueError):
        Thresholds(rate, minimum)


def test_since_subtracts_a_baseline() -> None:
    assert since(Tally(5, 2), Tally(8, 3)) == Tally(3, 1)
    # A server restart resets counters: never negative.
    assert since(Tally(5, 2), Tally(1, 0)) == Tally(0, 0)


EXPOSITION = """\
# HELP lambdaplane_async_queue_depth Asynchronous events accepted and not yet finished.
# TYPE lambdaplane_async_queue_depth gauge
lambdaplane_async_queue_depth 4
# TYPE lambda_invocations_total counter
lambda_invocations_total{function="hello",version="1"} 7
lambda_invocations_total{function="hello",version="2"} 5
lambda_invocations_total{function="hello-other",version="2"} 50
lambda_invocations_total{ function="we\\"ird\\\\", version="$LATEST" } 1.0 1700000000000
# TYPE lambda_errors_total counter
lambda_errors_total{function="hello",version="1"} 0
lambda_errors_total{function="hello",version="2"} 2
lambda_errors_total{function="hello-other",version="2"} 50
lambda_errors_total{function="we\\"ird\\\\",version="$LATEST"} 0
# TYPE lambda_duration_seconds histogram
lambda_duration_seconds_bucket{function="hello",version="2",le="+Inf"} 5
lambda_duration_seconds_count{function="hello",version="2"} 5
"""


def test_parse_invocations_of_one_function() -> None:
    assert parse_invocations(EXPOSITION, "hello") == {"1": Tally(7, 0), "2": Tally(3, 2)}
    assert parse_invocations(EXPOSITION, 'we"ird\\') == {"$LATEST": Tally(1, 0)}
    assert parse_invocations(EXPOSITION, "absent") == {}


def test_malformed_samples_are_errors() -> None:
    with pytest.raises(MetricsError):
        parse_invocations("lambda_invocations_total{function=hello} 1\n", "hello")
    with pytest.raises(MetricsError):
        parse_invocations(
            'lambda_errors_total{function="hello",version="1"} x\n',
            "hello",
        )


def test_watch_counts_since_the_baseline() -> None:
    watch = Watch(Tally(10, 2)).read(Tally(15, 3))
    assert watch.observed == Tally(5, 1)


def test_watch_carries_counts_over_a_server_restart() -> None:
    watch = Watch(Tally(10, 2)).read(Tally(15, 3))
    # The server restarted: its counters start again from zero.
    watch = watch.read(Tally(1, 4))
    assert watch.observed == Tally(5 + 1, 1 + 4)
    watch = watch.read(Tally(3, 4))
    assert watch.observed == Tally(8, 5)


def test_watch_reset_right_after_the_baseline() -> None:
    assert Watch(Tally(10, 2)).read(Tally(0, 1)).observed == Tally(0, 1)
