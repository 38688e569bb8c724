from __future__ import annotations

import threading

from lambdaplane.invoke.counters import InvocationCounters, Tally


def test_counts_by_function_version_and_outcome() -> None:
    counters = InvocationCounters()
    assert counters.snapshot() == {}
    counters.record("f", "1", error=False)
    counters.record("f", "1", error=True)
    counters.record("f", "2", error=False)
    counters.record("g", "$LATEST", error=True)
    snapshot = counters.snapshot()
    assert snapshot == {
        ("f", "1"): Tally(1, 1),
        ("f", "2"): Tally(1, 0),
        ("g", "$LATEST"): Tally(0, 1),
    }
    assert snapshot[("f", "1")].invocations == 2
    counters.record("f", "1", error=False)
    assert snapshot[("f", "1")] == Tally(1, 1)  # a snapshot is a copy


def test_concurrent_records_are_all_counted() -> None:
    counters = InvocationCounters()

    def work(error: bool) -> None:
        for _ in range(5000):
            counters.record("f", "1", error)

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.snapshot()[("f", "1")] == Tally(20000, 20000)
