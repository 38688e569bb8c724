"""The stream engine (``StreamPoller`` + ``ShardProcessor``) against an in-memory stream:
batching, order, checkpoints and restarts, retries and destinations, partial failures,
filtering, parallelization, resharding, starting positions and tumbling windows."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.poller import InvokeOutcome, Throttled
from lambdaplane.esm.stream_poller import POSITION_KEY, StreamPoller
from lambdaplane.esm.streams import SHARD_END, StreamSettings, lane_of
from lambdaplane.testing.streams import (
    FakeStream,
    MemoryCheckpoints,
    ScriptedFunction,
    StreamHarness,
    stream_harness,
    stream_mapping,
)

FAST = StreamSettings(
    discover_interval=0.05,
    retry_delays=(0.001, 0.01),
    error_delays=(0.01, 0.05),
    max_pause=0.05,
)
SHARD0 = FakeStream.shard_id(0)
DESTINATION = "arn:aws:sqs:us-east-1:000000000000:failures"


def run_until(
    harness: StreamHarness,
    stream: FakeStream,
    done: Callable[[], Any],
    *,
    during: Callable[[], None] | None = None,
    timeout: float = 5.0,
) -> None:
    """Run a poller until ``done()`` holds (``during`` called once it started), then stop it."""

    async def main() -> None:
        poller = StreamPoller(harness.ctx.mapping, stream, FAST)
        task = asyncio.create_task(poller.run(harness.ctx))
        await asyncio.sleep(0.02)
        if during is not None:
            during()
        deadline = time.monotonic() + timeout
        try:
            while not done():
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, "timed out"
                await asyncio.sleep(0.005)
        finally:
            harness.ctx.stopping.set()
            await asyncio.wait_for(task, 5)

    asyncio.run(main())


def delivered(harness: StreamHarness) -> list[str]:
    """The data of every record the function succeeded with, in invocation order."""
    return [r["data"] for e in harness.function.events for r in e["Records"]]


def test_batches_in_order_and_checkpoint_after_success() -> None:
    stream = FakeStream(shards=2)
    for n in range(7):
        stream.put(f"a{n}", shard=0)
    for n in range(3):
        stream.put(f"b{n}", shard=1)
    harness = stream_harness(stream_mapping(BatchSize=3))
    run_until(harness, stream, lambda: len(delivered(harness)) == 10)
    per_shard: dict[str, list[str]] = {}
    for event in harness.function.events:
        shards = {r["shard"] for r in event["Records"]}
        assert len(shards) == 1  # a batch holds records of one shard
        per_shard.setdefault(shards.pop(), []).extend(r["data"] for r in event["Records"])
    assert per_shard == {
        SHARD0: [f"a{n}" for n in range(7)],
        FakeStream.shard_id(1): ["b0", "b1", "b2"],
    }
    assert sorted(len(e["Records"]) for e in harness.function.events) == [1, 3, 3, 3]
    assert harness.checkpoints.values[SHARD0] == "7"
    assert harness.checkpoints.values[FakeStream.shard_id(1)] == "3"
    assert harness.checkpoints.values[POSITION_KEY] == "TRIM_HORIZON"
    assert harness.metrics.polled_records == 10
    assert sum(harness.metrics.invocations) == 10
    assert harness.reports[-1] == "OK"


def test_batching_window_gathers_records() -> None:
    stream = FakeStream()
    stream.put("early")
    harness = stream_harness(stream_mapping(BatchSize=10, MaximumBatchingWindowInSeconds=1))

    def more() -> None:
        stream.put("late-1")
        stream.put("late-2")

    run_until(harness, stream, lambda: len(delivered(harness)) == 3, during=more)
    assert harness.function.sequences() == [["1", "2", "3"]]


def test_without_window_each_read_is_a_batch() -> None:
    stream = FakeStream()
    stream.put("first")
    harness = stream_harness(stream_mapping(BatchSize=10))
    run_until(harness, stream, lambda: len(delivered(harness)) == 1)
    assert harness.function.sequences() == [["1"]]


def test_restart_resumes_after_the_checkpoint() -> None:
    stream = FakeStream()
    for n in range(5):
        stream.put(n)
    checkpoints = MemoryCheckpoints()
    first = stream_harness(stream_mapping(BatchSize=2), checkpoints=checkpoints)
    run_until(first, stream, lambda: checkpoints.values.get(SHARD0) == "5")
    for n in range(5, 8):
        stream.put(n)
    second = stream_harness(stream_mapping(BatchSize=2), checkpoints=checkpoints)
    run_until(second, stream, lambda: checkpoints.values.get(SHARD0) == "8")
    assert delivered(first) == [0, 1, 2, 3, 4]
    assert delivered(second) == [5, 6, 7]  # nothing twice, nothing lost


def test_failed_batch_retries_then_goes_to_the_destination() -> None:
    stream = FakeStream()
    stream.put("bad")
    stream.put("good")
    function = ScriptedFunction(
        lambda e: (
            ("Unhandled", {"errorMessage": "boom"})
            if any(r["data"] == "bad" for r in e["Records"])
            else (None, None)
        )
    )
    harness = stream_harness(
        stream_mapping(
            BatchSize=1,
            MaximumRetryAttempts=2,
            DestinationConfig={"OnFailure": {"Destination": DESTINATION}},
        ),
        function,
    )
    run_until(harness, stream, lambda: "good" in delivered(harness))
    assert delivered(harness) == ["bad", "bad", "bad", "good"]
    [(record, destination)] = harness.sent
    assert destination == DESTINATION
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    info = record["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["batchSize"]) == (SHARD0, "1", 1)
    assert harness.metrics.failures == [1, 1, 1]
    assert "PROBLEM: Function call failed" in harness.reports
    assert harness.checkpoints.values[SHARD0] == "2"


def test_bisect_on_function_error_isolates_the_bad_record() -> None:
    stream = FakeStream()
    for n in range(4):
        stream.put("bad" if n == 2 else n)
    function = ScriptedFunction(
        lambda e: (
            ("Unhandled", None) if any(r["data"] == "bad" for r in e["Records"]) else (None, None)
        )
    )
    harness = stream_harness(
        stream_mapping(
            BatchSize=4,
            MaximumRetryAttempts=0,
            BisectBatchOnFunctionError=True,
            DestinationConfig={"OnFailure": {"Destination": DESTINATION}},
        ),
        function,
    )
    run_until(harness, stream, lambda: harness.checkpoints.values.get(SHARD0) == "4")
    assert harness.function.sequences() == [
        ["1", "2", "3", "4"],
        ["1", "2"],
        ["3", "4"],
        ["3"],
        ["4"],
    ]
    [(record, _)] = harness.sent
    assert record["KinesisBatchInfo"]["startSequenceNumber"] == "3"
    assert record["KinesisBatchInfo"]["batchSize"] == 1


def test_partial_batch_failure_retries_from_the_lowest_failure() -> None:
    stream = FakeStream()
    for n in range(5):
        stream.put(n)
    attempts: dict[str, int] = {}

    def answer(event: dict[str, Any]) -> tuple[str | None, Any]:
        failed = []
        for r in event["Records"]:
            attempts[r["sequence"]] = attempts.get(r["sequence"], 0) + 1
            if attempts[r["sequence"]] <= {"3": 1, "5": 2}.get(r["sequence"], 0):
                failed.append({"itemIdentifier": r["sequence"]})
        return None, {"batchItemFailures": failed}

    harness = stream_harness(
        stream_mapping(BatchSize=5, FunctionResponseTypes=["ReportBatchItemFailures"]),
        ScriptedFunction(answer),
    )
    run_until(harness, stream, lambda: harness.checkpoints.values.get(SHARD0) == "5")
    # 3 and 5 fail: 1-2 are done and 3-5 retried; then 5 fails again and is retried alone.
    assert harness.function.sequences() == [["1", "2", "3", "4", "5"], ["3", "4", "5"], ["5"]]
    assert not harness.sent


def test_malformed_item_failures_fail_the_whole_batch() -> None:
    stream = FakeStream()
    stream.put(0)
    harness = stream_harness(
        stream_mapping(
            BatchSize=5,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": DESTINATION}},
        ),
        ScriptedFunction(lambda e: (None, {"batchItemFailures": [{"itemIdentifier": ""}]})),
    )
    run_until(harness, stream, lambda: harness.sent)
    record = harness.sent[0][0]
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": None,
    }


def test_filtered_records_are_skipped_and_checkpointed_past() -> None:
    stream = FakeStream()
    for n in range(6):
        stream.put({"n": n, "kind": "keep" if n % 2 else "drop"})
    pattern = json.dumps({"data": {"kind": ["keep"]}})
    harness = stream_harness(
        stream_mapping(BatchSize=10, FilterCriteria={"Filters": [{"Pattern": pattern}]})
    )
    run_until(harness, stream, lambda: harness.checkpoints.values.get(SHARD0) == "6")
    assert [d["n"] for d in delivered(harness)] == [1, 3, 5]
    assert harness.metrics.filtered_records == 3


def test_everything_filtered_still_advances_the_checkpoint() -> None:
    stream = FakeStream()
    stream.put({"kind": "drop"})
    pattern = json.dumps({"data": {"kind": ["keep"]}})
    harness = stream_harness(stream_mapping(FilterCriteria={"Filters": [{"Pattern": pattern}]}))
    run_until(harness, stream, lambda: harness.checkpoints.values.get(SHARD0) == "1")
    assert harness.function.events == []


def test_parallelization_keeps_each_key_in_order() -> None:
    stream = FakeStream()
    keys = [f"key-{n % 5}" for n in range(60)]
    for n, key in enumerate(keys):
        stream.put(n, key=key)
    in_flight = 0
    most = 0

    class Slow(ScriptedFunction):
        async def __call__(self, payload: bytes) -> InvokeOutcome:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return await super().__call__(payload)

    harness = stream_harness(stream_mapping(BatchSize=3, ParallelizationFactor=4), Slow())
    run_until(harness, stream, lambda: harness.checkpoints.values.get(SHARD0) == "60")
    assert most > 1  # batches of one shard ran at once
    for key in set(keys):
        seen = [r["data"] for e in harness.function.events for r in e["Records"] if r["key"] == key]
        assert seen == [n for n, k in enumerate(keys) if k == key]


def test_parallel_lanes_checkpoint_only_the_done_prefix() -> None:
    stream = FakeStream()
    stream.put("stuck", key="a")  # a lane that keeps failing
    others = [k for k in (f"other-{n}" for n in range(100)) if lane_of(k, 10) != lane_of("a", 10)]
    for n in range(20):
        stream.put(n, key=others[n])
    function = ScriptedFunction(
        lambda e: (
            ("Unhandled", None) if any(r["data"] == "stuck" for r in e["Records"]) else (None, None)
        )
    )
    harness = stream_harness(stream_mapping(BatchSize=2, ParallelizationFactor=10), function)
    run_until(harness, stream, lambda: set(range(20)) <= set(delivered(harness)))
    assert harness.checkpoints.values.get(SHARD0) is None  # record 1 never succeeded


@pytest.mark.parametrize("ends_iterators", [True, False], ids=["aws", "moto"])
def test_children_are_read_after_their_parent(ends_iterators: bool) -> None:
    # AWS ends a closed shard's iterator; moto keeps answering empty pages.
    stream = FakeStream(ends_iterators=ends_iterators)
    stream.put("p1")
    stream.put("p2")
    harness = stream_harness(stream_mapping(BatchSize=10))

    def reshard() -> None:
        children = stream.split(0)
        stream.put("c1", shard=children[0])
        stream.put("c2", shard=children[1])

    run_until(harness, stream, lambda: len(delivered(harness)) == 4, during=reshard)
    order = delivered(harness)
    assert order[:2] == ["p1", "p2"] and set(order[2:]) == {"c1", "c2"}
    assert harness.checkpoints.values[SHARD0] == SHARD_END


def test_finished_parent_is_not_read_again_after_restart() -> None:
    stream = FakeStream()
    stream.put("p")
    [child, _] = stream.split(0)
    stream.put("c", shard=child)
    checkpoints = MemoryCheckpoints()
    first = stream_harness(stream_mapping(), checkpoints=checkpoints)
    run_until(first, stream, lambda: checkpoints.values.get(child) == "1")
    stream.put("c2", shard=child)
    second = stream_harness(stream_mapping(), checkpoints=checkpoints)
    run_until(second, stream, lambda: checkpoints.values.get(child) == "2")
    assert delivered(first) == ["p", "c"]
    assert delivered(second) == ["c2"]


def test_latest_skips_what_came_before_and_survives_a_restart() -> None:
    stream = FakeStream()
    stream.put("old", arrival=time.time() - 60)
    checkpoints = MemoryCheckpoints()
    first = stream_harness(stream_mapping(StartingPosition="LATEST"), checkpoints=checkpoints)
    run_until(first, stream, lambda: POSITION_KEY in checkpoints.values)
    assert checkpoints.values[POSITION_KEY].startswith("AT_TIMESTAMP:")
    stream.put("while-down")  # nothing processed yet: no shard checkpoint
    second = stream_harness(stream_mapping(StartingPosition="LATEST"), checkpoints=checkpoints)
    run_until(second, stream, lambda: delivered(second))
    assert delivered(first) == []
    assert delivered(second) == ["while-down"]


def test_at_timestamp_without_native_iterators_skips_older_records() -> None:
    stream = FakeStream(native_timestamps=False)  # DynamoDB Streams: no AT_TIMESTAMP
    stream.put("before", arrival=1000.0)
    stream.put("after", arrival=2000.5)
    harness = stream_harness(
        stream_mapping(StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=2000.7)
    )
    run_until(harness, stream, lambda: harness.checkpoints.values.get(SHARD0) == "2")
    assert delivered(harness) == ["after"]  # whole seconds: never skip a record at t


def test_old_records_go_to_the_destination_without_invoking() -> None:
    stream = FakeStream()
    stream.put("ancient", arrival=time.time() - 120)
    stream.put("fresh")
    harness = stream_harness(
        stream_mapping(
            BatchSize=10,
            MaximumRecordAgeInSeconds=60,
            DestinationConfig={"OnFailure": {"Destination": DESTINATION}},
        )
    )
    run_until(harness, stream, lambda: harness.checkpoints.values.get(SHARD0) == "2")
    assert delivered(harness) == ["fresh"]
    [(record, _)] = harness.sent
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert "responseContext" not in record


def test_throttles_are_retried_without_counting() -> None:
    stream = FakeStream()
    stream.put("x")
    throttles = 3
    function = ScriptedFunction()

    async def invoke(payload: bytes) -> InvokeOutcome:
        nonlocal throttles
        if throttles:
            throttles -= 1
            raise Throttled("Rate Exceeded.")
        return await function(payload)

    harness = stream_harness(stream_mapping(MaximumRetryAttempts=0), function)
    harness.ctx.invoke = invoke
    run_until(harness, stream, lambda: harness.checkpoints.values.get(SHARD0) == "1")
    assert delivered(harness) == ["x"]
    assert not harness.metrics.failures


def test_expired_iterator_resumes_where_reading_stopped() -> None:
    stream = FakeStream()
    stream.put(0)
    harness = stream_harness(stream_mapping())

    def expire_then_put() -> None:
        stream.expire_next = True
        stream.put(1)

    run_until(harness, stream, lambda: len(delivered(harness)) == 2, during=expire_then_put)
    assert delivered(harness) == [0, 1]


def tumbling_function(event: dict[str, Any]) -> tuple[str | None, Any]:
    state = dict(event["state"])
    state["count"] = state.get("count", 0) + len(event["Records"])
    return None, {"state": state}


def test_tumbling_window_carries_state_and_ends_with_a_final_invoke() -> None:
    now = time.time()
    start = now // 60 * 60 - 120  # two windows ago, all in the past
    stream = FakeStream()
    stream.put("a", arrival=start + 1)
    stream.put("b", arrival=start + 2)
    stream.put("c", arrival=start + 61)  # the next window
    harness = stream_harness(
        stream_mapping(BatchSize=1, TumblingWindowInSeconds=60), ScriptedFunction(tumbling_function)
    )
    run_until(
        harness,
        stream,
        lambda: sum(e["isFinalInvokeForWindow"] for e in harness.function.events) == 2,
    )
    events = harness.function.events
    summary = [
        ([r["data"] for r in e["Records"]], e["state"], e["isFinalInvokeForWindow"]) for e in events
    ]
    assert summary == [
        (["a"], {}, False),
        (["b"], {"count": 1}, False),
        ([], {"count": 2}, True),
        (["c"], {}, False),
        ([], {"count": 1}, True),
    ]
    assert events[0]["shardId"] == SHARD0
    assert events[0]["window"]["end"] > events[0]["window"]["start"]
    assert harness.checkpoints.values[SHARD0 + "#window"] == ""


def test_tumbling_state_survives_a_restart() -> None:
    start = time.time() // 60 * 60 + 60 * 10  # a window that is still open for a while
    stream = FakeStream()
    stream.put("a", arrival=start + 1)
    checkpoints = MemoryCheckpoints()
    mapping: MappingConfig = stream_mapping(TumblingWindowInSeconds=60)
    first = stream_harness(mapping, ScriptedFunction(tumbling_function), checkpoints=checkpoints)
    run_until(first, stream, lambda: checkpoints.values.get(SHARD0) == "1")
    stream.put("b", arrival=start + 2)
    second = stream_harness(mapping, ScriptedFunction(tumbling_function), checkpoints=checkpoints)
    run_until(second, stream, lambda: checkpoints.values.get(SHARD0) == "2")
    assert second.function.events[0]["state"] == {"count": 1}


def test_tumbling_answer_without_state_is_a_failure() -> None:
    stream = FakeStream()
    stream.put("a", arrival=time.time() - 30)
    harness = stream_harness(
        stream_mapping(
            TumblingWindowInSeconds=900,
            MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": DESTINATION}},
        ),
        ScriptedFunction(lambda e: (None, {"no": "state"})),
    )
    run_until(harness, stream, lambda: harness.sent)
    assert harness.sent[0][0]["requestContext"]["approximateInvokeCount"] == 2


def test_stopping_remembers_what_other_lanes_finished() -> None:
    stream = FakeStream()
    slow_key, fast_key = (
        "slow",
        next(k for k in (f"fast-{n}" for n in range(100)) if lane_of(k, 2) != lane_of("slow", 2)),
    )
    stream.put("s1", key=slow_key)
    stream.put("s2", key=slow_key)
    stream.put("f1", key=fast_key)
    stream.put("f2", key=fast_key)

    class SlowLane(ScriptedFunction):
        async def __call__(self, payload: bytes) -> InvokeOutcome:
            if b'"slow"' in payload:
                await asyncio.sleep(0.3)
            return await super().__call__(payload)

    checkpoints = MemoryCheckpoints()
    mapping = stream_mapping(BatchSize=1, ParallelizationFactor=2)
    first = stream_harness(mapping, SlowLane(), checkpoints=checkpoints)
    run_until(first, stream, lambda: {"f1", "f2"} <= set(delivered(first)))
    assert delivered(first) == ["f1", "f2", "s1"]  # s1 finished while stopping; s2 never ran
    assert checkpoints.values[SHARD0] == "1"
    assert checkpoints.values[SHARD0 + "#done"] == "3,4"
    second = stream_harness(mapping, SlowLane(), checkpoints=checkpoints)
    run_until(second, stream, lambda: checkpoints.values.get(SHARD0) == "4")
    assert delivered(second) == ["s2"]  # f1 and f2 were not invoked again
