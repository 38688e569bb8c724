"""The Lambda metrics: names, labels, what each call records, and deploy-alias's reading."""

from __future__ import annotations

import pytest

from lambdaplane.deploy.health import Tally, parse_invocations
from lambdaplane.metrics import DropReason, EnvironmentCensus, LambdaMetrics

MB = 1024 * 1024


def samples(text: str) -> dict[str, float]:
    """Sample line -> value, for the lines that are not comments."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_invocations_errors_throttles_and_histograms() -> None:
    metrics = LambdaMetrics()
    metrics.invoked("f", "$LATEST", 0.0004, False, 0.05, 30 * MB)  # a cold start
    metrics.invoked("f", "$LATEST", 0.002, True, None, 31 * MB)
    metrics.invoked("f", "2", 1.5, False, None, None)  # no cgroup: no memory sample
    metrics.throttled("f", "$LATEST")
    got = samples(metrics.render())
    latest = 'function="f",version="$LATEST"'
    assert got[f"lambda_invocations_total{{{latest}}}"] == 2
    assert got[f"lambda_errors_total{{{latest}}}"] == 1
    assert got[f"lambda_throttles_total{{{latest}}}"] == 1
    assert got['lambda_invocations_total{function="f",version="2"}'] == 1
    assert got[f'lambda_duration_seconds_bucket{{{latest},le="0.0005"}}'] == 1
    assert got[f'lambda_duration_seconds_bucket{{{latest},le="0.0025"}}'] == 2
    assert got[f"lambda_duration_seconds_sum{{{latest}}}"] == pytest.approx(0.0024)
    assert got['lambda_duration_seconds_bucket{function="f",version="2",le="1"}'] == 0
    assert got['lambda_duration_seconds_bucket{function="f",version="2",le="2.5"}'] == 1
    assert got[f"lambda_init_duration_seconds_count{{{latest}}}"] == 1
    assert got[f'lambda_init_duration_seconds_bucket{{{latest},le="0.05"}}'] == 1
    assert got[f"lambda_max_memory_used_bytes_count{{{latest}}}"] == 2
    assert got[f'lambda_max_memory_used_bytes_bucket{{{latest},le="33554432"}}'] == 2
    assert got['lambda_max_memory_used_bytes_count{function="f",version="2"}'] == 0
    # deploy-alias reads the same exposition.
    assert parse_invocations(metrics.render(), "f") == {"$LATEST": Tally(1, 1), "2": Tally(1, 0)}


def test_asynchronous_metrics() -> None:
    metrics = LambdaMetrics()
    metrics.event_received("f", "live")
    metrics.event_received("f", "live")
    metrics.event_attempted("f", "live", 0.2)
    metrics.event_dropped("f", "live", DropReason.RETRIES_EXHAUSTED)
    metrics.dead_letter_failed("f", "live")
    metrics.destination_failed("f", "live")
    metrics.observe_queue(3)
    got = samples(metrics.render())
    fq = 'function="f",qualifier="live"'
    assert got[f"lambda_async_events_received_total{{{fq}}}"] == 2
    assert got[f'lambda_async_event_age_seconds_bucket{{{fq},le="0.5"}}'] == 1
    assert got[f'lambda_async_events_dropped_total{{{fq},reason="retries_exhausted"}}'] == 1
    assert got[f"lambda_dead_letter_errors_total{{{fq}}}"] == 1
    assert got[f"lambda_destination_delivery_failures_total{{{fq}}}"] == 1
    assert got["lambdaplane_async_queue_depth"] == 3


def test_environment_gauges_follow_each_census() -> None:
    metrics = LambdaMetrics()
    metrics.observe_environments(
        EnvironmentCensus(
            {"initializing": 1, "busy": 2, "idle": 4, "prewarmed": 2},
            {("f", "1"): 2, ("g", "$LATEST"): 1},
            10,
        )
    )
    got = samples(metrics.render())
    assert got['lambda_concurrent_executions{function="f",version="1"}'] == 2
    assert got["lambda_account_concurrent_executions"] == 3
    assert got["lambda_unreserved_concurrent_executions"] == 3
    assert got["lambda_account_concurrency_limit"] == 10
    assert got['lambdaplane_environments{state="busy"}'] == 2
    assert got['lambdaplane_environments{state="prewarmed"}'] == 2
    metrics.observe_environments(
        EnvironmentCensus(
            {"busy": 3}, {("f", "1"): 2, ("g", "$LATEST"): 1}, 10, reserved=frozenset({"f"})
        )
    )
    assert samples(metrics.render())["lambda_unreserved_concurrent_executions"] == 1
    metrics.observe_environments(EnvironmentCensus({"idle": 7}, {}, 10))
    got = samples(metrics.render())
    assert got['lambda_concurrent_executions{function="f",version="1"}'] == 0
    assert got["lambda_account_concurrent_executions"] == 0
    assert got['lambdaplane_environments{state="busy"}'] == 0
    assert got['lambdaplane_environments{state="idle"}'] == 7


def test_every_metric_has_help_and_type() -> None:
    text = LambdaMetrics().render()
    helps = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP")}
    types = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert helps == types
    assert {
        "lambda_invocations_total",
        "lambda_errors_total",
        "lambda_throttles_total",
        "lambda_duration_seconds",
        "lambda_init_duration_seconds",
        "lambda_max_memory_used_bytes",
        "lambda_concurrent_executions",
        "lambda_account_concurrent_executions",
        "lambda_async_events_received_total",
        "lambda_async_event_age_seconds",
        "lambda_async_events_dropped_total",
        "lambda_dead_letter_errors_total",
        "lambda_destination_delivery_failures_total",
        "lambdaplane_environments",
    } <= helps


def test_provisioned_concurrency_metrics() -> None:
    metrics = LambdaMetrics()
    metrics.provisioned_invocation("f", "1", spillover=False)
    metrics.provisioned_invocation("f", "1", spillover=False)
    metrics.provisioned_invocation("f", "1", spillover=True)
    metrics.observe_environments(
        EnvironmentCensus(
            {"busy": 3, "idle": 1}, {("f", "1"): 3}, 10, {("f", "1"): 4}, {("f", "1"): 3}
        )
    )
    got = samples(metrics.render())
    fv = 'function="f",version="1"'
    assert got[f"lambda_provisioned_concurrency_invocations_total{{{fv}}}"] == 2
    assert got[f"lambda_provisioned_concurrency_spillover_invocations_total{{{fv}}}"] == 1
    assert got[f"lambda_provisioned_concurrent_executions{{{fv}}}"] == 3
    assert got[f"lambda_provisioned_concurrency_utilization{{{fv}}}"] == 0.75
    metrics.observe_environments(EnvironmentCensus({"idle": 1}, {}, 10))
    got = samples(metrics.render())
    assert got[f"lambda_provisioned_concurrent_executions{{{fv}}}"] == 0
    assert got[f"lambda_provisioned_concurrency_utilization{{{fv}}}"] == 0
