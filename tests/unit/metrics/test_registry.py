"""The registry's exposition, exactly as Prometheus's text format wants it."""

from __future__ import annotations

import threading

import pytest

from lambdaplane.metrics.registry import Registry


def test_counter_and_gauge_render_sorted_with_escaped_labels() -> None:
    registry = Registry()
    calls = registry.counter("calls_total", "Calls.", ("function", "version"))
    calls.labels("b", "1").inc()
    calls.labels("a", "$LATEST").inc(2)
    calls.labels('we"ird\\\n', "1").inc()
    depth = registry.gauge("depth", "Queue depth.")
    depth.labels().set(7)
    depth.labels().dec(2)
    assert registry.render() == (
        "# HELP calls_total Calls.\n"
        "# TYPE calls_total counter\n"
        'calls_total{function="a",version="$LATEST"} 2\n'
        'calls_total{function="b",version="1"} 1\n'
        'calls_total{function="we\\"ird\\\\\\n",version="1"} 1\n'
        "# HELP depth Queue depth.\n"
        "# TYPE depth gauge\n"
        "depth 5\n"
    )


def test_unlabelled_metrics_are_exported_from_the_start() -> None:
    registry = Registry()
    registry.counter("dropped_total", "Dropped.")
    registry.gauge("labelled", "Only once used.", ("state",))
    assert "dropped_total 0\n" in registry.render()
    assert "labelled{" not in registry.render()


def test_histogram_buckets_are_cumulative_and_upper_bounds_inclusive() -> None:
    registry = Registry()
    seconds = registry.histogram("d_seconds", "Durations.", ("f",), (0.001, 0.01, 0.1))
    series = seconds.labels("x")
    for value in (0.0005, 0.001, 0.002, 0.01, 0.5, 3.0):
        series.observe(value)
    assert registry.render().splitlines()[2:] == [
        'd_seconds_bucket{f="x",le="0.001"} 2',
        'd_seconds_bucket{f="x",le="0.01"} 4',
        'd_seconds_bucket{f="x",le="0.1"} 4',
        'd_seconds_bucket{f="x",le="+Inf"} 6',
        'd_seconds_sum{f="x"} 3.5135',
        'd_seconds_count{f="x"} 6',
    ]


def test_a_series_is_created_once_and_kept() -> None:
    registry = Registry()
    family = registry.counter("c_total", "C.", ("a",))
    assert family.labels("x") is family.labels("x")


def test_gauge_replace_zeroes_the_series_it_does_not_name() -> None:
    registry = Registry()
    running = registry.gauge("running", "Running.", ("function",))
    running.replace({("a",): 2, ("b",): 1})
    running.replace({("b",): 3})
    assert 'running{function="a"} 0\n' in registry.render()
    assert 'running{function="b"} 3\n' in registry.render()


def test_misuse_is_refused() -> None:
    registry = Registry()
    family = registry.counter("c_total", "C.", ("a", "b"))
    with pytest.raises(ValueError, match="takes labels"):
        family.labels("only-one")
    with pytest.raises(ValueError, match="already registered"):
        registry.gauge("c_total", "Again.")
    for bad in ((), (1.0, 0.5), (1.0, 1.0), (1.0, float("inf"))):
        with pytest.raises(ValueError, match="buckets"):
            registry.histogram(f"h{len(bad)}_{bad}", "H.", (), bad)


def test_concurrent_updates_and_scrapes_lose_nothing() -> None:
    registry = Registry()
    counter = registry.counter("n_total", "N.", ("k",))
    histogram = registry.histogram("h", "H.", ("k",), (1.0, 2.0))
    stop = threading.Event()

    def work(key: str) -> None:
        count = counter.labels(key)
        observe = histogram.labels(key)
        for i in range(20_000):
            count.inc()
            observe.observe(float(i % 3))

    def scrape() -> None:
        while not stop.is_set():
            text = registry.render()
            for line in text.splitlines():  # a scrape is consistent: count == +Inf bucket
                if line.startswith('h_count{k="a"}'):
                    count = line.split()[-1]
                    assert f'h_bucket{{k="a",le="+Inf"}} {count}' in text

    scraper = threading.Thread(target=scrape)
    scraper.start()
    workers = [threading.Thread(target=work, args=(key,)) for key in "aabb"]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    stop.set()
    scraper.join()
    text = registry.render()
    assert 'n_total{k="a"} 40000' in text and 'n_total{k="b"} 40000' in text
    assert 'h_count{k="a"} 40000' in text
    assert 'h_bucket{k="a",le="1"} 26668' in text  # i % 3 in (0, 1): 2 of every 3
