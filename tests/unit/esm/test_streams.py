"""The pure bookkeeping of a shard: checkpoints, lanes, batches, positions."""

from __future__ import annotations

import json
from collections import deque

from lambdaplane.esm.batching import record_bytes
from lambdaplane.esm.streams import (
    AT_TIMESTAMP,
    TRIM_HORIZON,
    Position,
    SequenceTracker,
    StreamRecord,
    batch_bytes,
    lane_of,
    take_batch,
)


def rec(seq: int, *, key: str = "k", arrival: float = 0.0, size: int = 0) -> StreamRecord:
    event = {"sequence": str(seq), "data": "x" * size}
    return StreamRecord(str(seq), key, arrival, event, record_bytes(event))


def test_checkpoint_advances_over_the_done_prefix_only() -> None:
    tracker = SequenceTracker()
    for seq in ("1", "2", "3", "4"):
        tracker.read(seq)
    tracker.done(["2", "3"])
    assert tracker.advance() is None  # 1 is not done: nothing before 2 may be skipped
    assert tracker.done_ahead() == ["2", "3"]
    tracker.done(["1"])
    assert tracker.advance() == "3"
    assert tracker.done_ahead() == []
    assert len(tracker) == 1
    assert tracker.advance() is None
    tracker.done(["4"])
    assert tracker.advance() == "4"
    assert len(tracker) == 0


def test_lanes_keep_a_key_in_one_lane() -> None:
    assert {lane_of("user-1", 1), lane_of("user-2", 1)} == {0}
    lanes = {lane_of(f"key-{n}", 4) for n in range(100)}
    assert lanes == {0, 1, 2, 3}
    assert all(lane_of(f"key-{n}", 4) == lane_of(f"key-{n}", 4) for n in range(100))


def test_batch_stops_at_batch_size() -> None:
    pending = deque(rec(n) for n in range(1, 8))
    assert [r.sequence for r in take_batch(pending, 3)] == ["1", "2", "3"]
    assert [r.sequence for r in take_batch(pending, 3)] == ["4", "5", "6"]
    assert [r.sequence for r in take_batch(pending, 3)] == ["7"]
    assert not pending


def test_batch_stops_before_the_payload_limit() -> None:
    pending = deque(rec(n, size=400) for n in range(1, 6))
    one = len(pending[0].encoded)
    limit = batch_bytes(list(pending)[:2]) + one // 2  # room for two and a half records
    batch = take_batch(pending, 10, max_bytes=limit)
    assert [r.sequence for r in batch] == ["1", "2"]
    assert batch_bytes(batch) <= limit
    assert len(take_batch(pending, 10, max_bytes=limit, reserve=one)) == 1  # reserve counts


def test_an_oversized_record_still_goes_alone() -> None:
    pending = deque([rec(1, size=2000), rec(2)])
    assert [r.sequence for r in take_batch(pending, 10, max_bytes=100)] == ["1"]


def test_batch_stays_within_one_window() -> None:
    pending = deque(
        [rec(1, arrival=10), rec(2, arrival=59), rec(3, arrival=60), rec(4, arrival=61)]
    )
    window = lambda r: r.arrival // 60 * 60  # noqa: E731
    assert [r.sequence for r in take_batch(pending, 10, window_of=window)] == ["1", "2"]
    assert [r.sequence for r in take_batch(pending, 10, window_of=window)] == ["3", "4"]


def test_payload_size_is_what_is_sent() -> None:
    records = [rec(n, size=n) for n in range(1, 5)]
    sent = json.dumps({"Records": [r.event for r in records]}, separators=(",", ":")).encode()
    assert batch_bytes(records) == len(sent)


def test_positions_round_trip() -> None:
    assert Position.decode(Position(TRIM_HORIZON).encode()) == Position(TRIM_HORIZON)
    stamp = Position.at(1700000000.123)
    assert stamp.encode().startswith(AT_TIMESTAMP + ":")
    assert Position.decode(stamp.encode()) == stamp
