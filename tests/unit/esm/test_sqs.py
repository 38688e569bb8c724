"""The SQS poller against an in-memory queue: batching, deletes, failures, concurrency."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lambdaplane.esm.metrics import EsmMetrics, MappingRecorder
from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.poller import Blocking, InvokeOutcome, PollerContext, Throttled
from lambdaplane.esm.sqs import SqsPoller, fifo_failures, sqs_record

ARN = "arn:aws:sqs:us-east-1:123456789012:orders"


class FakeQueue:
    """Enough of an SQS client for the poller: messages, receipts, deletes (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.visible: list[dict[str, Any]] = []
        self.in_flight: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.released: list[str] = []
        self.receives = 0
        self._n = 0

    def send(self, *bodies: str, group: str | None = None) -> list[str]:
        ids = []
        with self._lock:
            for body in bodies:
                self._n += 1
                attributes = {
                    "ApproximateReceiveCount": "0",
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AIDA",
                    "ApproximateFirstReceiveTimestamp": "1700000000001",
                }
                if group is not None:
                    attributes |= {
                        "MessageGroupId": group,
                        "SequenceNumber": str(self._n),
                        "MessageDeduplicationId": f"d{self._n}",
                    }
                message = {
                    "MessageId": f"m{self._n}",
                    "Body": body,
                    "MD5OfBody": "md5",
                    "Attributes": attributes,
                }
                self.visible.append(message)
                ids.append(message["MessageId"])
            self._lock.notify_all()
        return ids

    # -- the client ------------------------------------------------------------------

    def get_queue_url(self, **_: Any) -> dict[str, Any]:
        return {"QueueUrl": "http://sqs/orders"}

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return {"Attributes": {"VisibilityTimeout": "30"}}

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        deadline = time.monotonic() + kwargs.get("WaitTimeSeconds", 0)
        with self._lock:
            self.receives += 1
            while not self.visible and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
            taken = self.visible[: kwargs["MaxNumberOfMessages"]]
            del self.visible[: len(taken)]
            out = []
            for message in taken:
                count = int(message["Attributes"]["ApproximateReceiveCount"]) + 1
                message["Attributes"]["ApproximateReceiveCount"] = str(count)
                receipt = f"r-{message['MessageId']}-{count}"
                self.in_flight[receipt] = message
                out.append({**message, "ReceiptHandle": receipt})
        return {"Messages": out} if out else {}

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            for entry in kwargs["Entries"]:
                message = self.in_flight.pop(entry["ReceiptHandle"])
                self.deleted.append(message["MessageId"])
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]]}

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            for entry in kwargs["Entries"]:
                message = self.in_flight.pop(entry["ReceiptHandle"])
                self.released.append(message["MessageId"])
                self.visible.insert(0, message)
            self._lock.notify_all()
        return {}


Invoke = Callable[[bytes], Awaitable[InvokeOutcome]]


def sync(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no async pytest plugin here)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class Harness:
    def __init__(self, config: dict[str, Any], queue: FakeQueue) -> None:
        self.mapping = MappingConfig(
            uuid="u-1", function_name="fn", qualifier=None, source_kind="sqs",
            config={"EventSourceArn": ARN, "BatchSize": 10, **config},
        )  # fmt: skip
        self.queue = queue
        self.batches: list[list[dict[str, Any]]] = []
        self.reports: list[str] = []
        self.respond: Callable[[list[dict[str, Any]]], InvokeOutcome] = lambda _: ok(b"{}")
        self.delay = 0.0
        self.running = 0
        self.most_running = 0
        self.metrics: MappingRecorder = EsmMetrics().for_mapping("u-1", "fn", "sqs")
        self.stopping = asyncio.Event()

    async def invoke(self, payload: bytes) -> InvokeOutcome:
        records = json.loads(payload)["Records"]
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.delay)
            outcome = self.respond(records)
            self.batches.append(records)
            return outcome
        finally:
            self.running -= 1

    async def report(self, result: str) -> None:
        self.reports.append(result)

    def context(self) -> PollerContext:
        async def send(record: dict[str, Any], arn: str) -> bool:
            return True

        return PollerContext(
            mapping=self.mapping,
            invoke=self.invoke,
            checkpoints=None,  # type: ignore[arg-type]  # SQS keeps no checkpoints
            metrics=self.metrics,
            endpoint=lambda service: "http://sqs",
            client=lambda service: self.queue,
            blocking=Blocking(),
            send_to_destination=send,
            report=self.report,
            stopping=self.stopping,
        )

    async def run_until(self, done: Callable[[], bool], timeout: float = 5) -> None:
        task = asyncio.create_task(SqsPoller(self.mapping, long_poll=1).run(self.context()))
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "timed out"
            assert not task.done(), task.exception()
            await asyncio.sleep(0.01)
        self.stopping.set()
        await asyncio.wait_for(task, 3)


def ok(payload: bytes) -> InvokeOutcome:
    return InvokeOutcome(200, payload, None, "$LATEST", "req")


@sync
async def test_batches_by_size_then_window_and_deletes_them() -> None:
    queue = FakeQueue()
    harness = Harness({"BatchSize": 10, "MaximumBatchingWindowInSeconds": 1}, queue)
    sent = queue.send(*[f"b{n}" for n in range(25)])
    started = time.monotonic()
    await harness.run_until(lambda: len(queue.deleted) == 25)
    assert [len(b) for b in harness.batches] == [10, 10, 5]
    assert time.monotonic() - started >= 0.9  # the last 5 waited for the window
    assert sorted(queue.deleted) == sorted(sent)
    counts = harness.metrics.counts
    assert (counts.polled, counts.invoked_records, counts.invocations) == (25, 25, 3)
    assert harness.reports[-1] == "OK"


@sync
async def test_without_a_window_the_first_receive_is_the_batch() -> None:
    queue = FakeQueue()
    harness = Harness({"BatchSize": 10}, queue)
    queue.send("a", "b", "c")
    await harness.run_until(lambda: len(queue.deleted) == 3)
    assert [len(b) for b in harness.batches] == [3]


@sync
async def test_messages_received_together_still_make_batches_of_batch_size() -> None:
    queue = FakeQueue()
    harness = Harness({"BatchSize": 2}, queue)
    harness.delay = 0.02
    queue.send(*[f"b{n}" for n in range(9)])
    await harness.run_until(lambda: len(queue.deleted) == 9)
    assert sorted(len(b) for b in harness.batches) == [1, 2, 2, 2, 2]
    assert queue.receives >= 1


@sync
async def test_maximum_concurrency_limits_invocations_in_flight() -> None:
    queue = FakeQueue()
    harness = Harness({"BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 2}}, queue)
    harness.delay = 0.05
    queue.send(*[f"b{n}" for n in range(12)])
    await harness.run_until(lambda: len(queue.deleted) == 12)
    assert harness.most_running == 2


@sync
async def test_non_matching_messages_are_deleted_unseen() -> None:
    queue = FakeQueue()
    pattern = json.dumps({"body": {"kind": ["keep"]}})
    harness = Harness({"FilterCriteria": {"Filters": [{"Pattern": pattern}]}}, queue)
    keep = queue.send(json.dumps({"kind": "keep"}))
    queue.send(json.dumps({"kind": "drop"}), "plain text")
    await harness.run_until(lambda: len(queue.deleted) == 3)
    assert [r["messageId"] for b in harness.batches for r in b] == keep
    assert harness.metrics.counts.filtered_out == 2


@sync
async def test_a_function_error_deletes_nothing() -> None:
    queue = FakeQueue()
    harness = Harness({}, queue)
    harness.respond = lambda _: InvokeOutcome(200, b'{"errorMessage":"x"}', "Unhandled", "1", "r")
    queue.send("a", "b")
    await harness.run_until(lambda: harness.metrics.counts.failed_invocations == 1)
    assert queue.deleted == [] and len(queue.in_flight) == 2
    assert harness.reports[-1] == "PROBLEM: Function call failed"


@sync
async def test_reported_item_failures_are_kept() -> None:
    queue = FakeQueue()
    harness = Harness({"FunctionResponseTypes": ["ReportBatchItemFailures"]}, queue)
    first, second, third = queue.send("a", "b", "c")
    failure = {"batchItemFailures": [{"itemIdentifier": second}]}
    harness.respond = lambda _: ok(json.dumps(failure).encode())
    await harness.run_until(lambda: len(queue.deleted) == 2)
    assert sorted(queue.deleted) == [first, third]
    assert [m["MessageId"] for m in queue.in_flight.values()] == [second]


@sync
async def test_a_malformed_item_failure_response_fails_the_batch() -> None:
    queue = FakeQueue()
    harness = Harness({"FunctionResponseTypes": ["ReportBatchItemFailures"]}, queue)
    queue.send("a", "b")
    harness.respond = lambda _: ok(b'{"batchItemFailures": [{"itemIdentifier": ""}]}')
    await harness.run_until(lambda: harness.metrics.counts.failed_invocations == 1)
    assert queue.deleted == []


@sync
async def test_fifo_failures_hold_back_the_rest_of_the_group() -> None:
    queue = FakeQueue()
    harness = Harness({"FunctionResponseTypes": ["ReportBatchItemFailures"]}, queue)
    harness.mapping = MappingConfig(
        uuid="u-1", function_name="fn", qualifier=None, source_kind="sqs",
        config={**harness.mapping.config, "EventSourceArn": ARN + ".fifo"},
    )  # fmt: skip
    a1, a2, a3 = queue.send("a1", "a2", "a3", group="a")
    (b1,) = queue.send("b1", group="b")
    failure = {"batchItemFailures": [{"itemIdentifier": a2}]}
    harness.respond = lambda _: ok(json.dumps(failure).encode())
    await harness.run_until(lambda: len(queue.deleted) == 2)
    assert sorted(queue.deleted) == sorted([a1, b1])  # a3 may not pass a2
    assert sorted(m["MessageId"] for m in queue.in_flight.values()) == sorted([a2, a3])


@sync
async def test_throttled_invocations_are_retried() -> None:
    queue = FakeQueue()
    harness = Harness({}, queue)
    attempts = []

    async def throttled_twice(payload: bytes) -> InvokeOutcome:
        attempts.append(payload)
        if len(attempts) <= 2:
            raise Throttled("Rate Exceeded.")
        return ok(b"{}")

    harness.invoke = throttled_twice  # type: ignore[method-assign]
    queue.send("a")
    await harness.run_until(lambda: len(queue.deleted) == 1)
    assert len(attempts) == 3


@sync
async def test_a_stop_does_not_wait_for_a_long_poll_and_releases_its_messages() -> None:
    queue = FakeQueue()
    harness = Harness({}, queue)
    poller = SqsPoller(harness.mapping, long_poll=20)
    task = asyncio.create_task(poller.run(harness.context()))
    while queue.receives == 0:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    harness.stopping.set()
    await asyncio.wait_for(task, 1)
    assert time.monotonic() - started < 0.5
    (late,) = queue.send("late")  # the abandoned long poll takes it, and gives it back
    deadline = time.monotonic() + 2
    while not queue.released and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert queue.released == [late] and harness.batches == []


# -- pure parts ------------------------------------------------------------------------


def test_record_shape() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "MD5OfMessageAttributes": "abc",
        "Attributes": {
            "SentTimestamp": "1",
            "ApproximateReceiveCount": "2",
            "SenderId": "AIDA",
            "ApproximateFirstReceiveTimestamp": "3",
            "MessageGroupId": "g",
            "SequenceNumber": "18",
            "MessageDeduplicationId": "d",
        },
        "MessageAttributes": {
            "Title": {"DataType": "String", "StringValue": "The Whistler"},
            "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    }
    record = sqs_record(message, ARN + ".fifo", "eu-west-1")
    assert list(record) == [
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes",
        "md5OfMessageAttributes", "md5OfBody", "eventSource", "eventSourceARN", "awsRegion",
    ]  # fmt: skip
    assert list(record["attributes"]) == [
        "ApproximateReceiveCount", "SentTimestamp", "SenderId",
        "ApproximateFirstReceiveTimestamp", "SequenceNumber", "MessageGroupId",
        "MessageDeduplicationId",
    ]  # fmt: skip
    assert record["messageAttributes"] == {
        "Title": {
            "stringValue": "The Whistler",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "Blob": {
            "binaryValue": "AAE=",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "eu-west-1"


def test_record_without_message_attributes_has_no_md5_of_them() -> None:
    message = {"MessageId": "m", "ReceiptHandle": "r", "Body": "", "MD5OfBody": "x"}
    record = sqs_record(message, ARN, "us-east-1")
    assert record["messageAttributes"] == {} and "md5OfMessageAttributes" not in record


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        ({"a2"}, {"a2", "a3"}),
        ({"a1"}, {"a1", "a2", "a3"}),
        ({"b1"}, {"b1"}),
        (set(), set()),
    ],
)
def test_fifo_failures(failed: set[str], expected: set[str]) -> None:
    records = [
        {"messageId": "a1", "attributes": {"MessageGroupId": "a"}},
        {"messageId": "b1", "attributes": {"MessageGroupId": "b"}},
        {"messageId": "a2", "attributes": {"MessageGroupId": "a"}},
        {"messageId": "a3", "attributes": {"MessageGroupId": "a"}},
    ]
    assert fifo_failures(records, failed) == expected


class RedeliveringQueue(FakeQueue):
    """Gives its first message out again at the second receive (as parallel
    ReceiveMessage calls, or a standard queue's redelivery, may), with a new receipt."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.deleted_receipts: list[str] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 2:
            with self._lock:
                first = next(iter(self.in_flight.values()))
                self.visible.insert(0, first)
        return super().receive_message(**kwargs)

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.deleted_receipts += [e["ReceiptHandle"] for e in kwargs["Entries"]]
        return super().delete_message_batch(**kwargs)


@sync
async def test_a_message_received_twice_is_in_its_batch_once_with_its_newest_receipt() -> None:
    queue = RedeliveringQueue()
    harness = Harness({"BatchSize": 10, "MaximumBatchingWindowInSeconds": 1}, queue)
    sent = queue.send("a", "b", "c")
    await harness.run_until(lambda: len(queue.deleted) == 3)
    (batch,) = harness.batches
    assert sorted(r["messageId"] for r in batch) == sorted(sent)
    assert sorted(queue.deleted_receipts) == ["r-m1-2", "r-m2-1", "r-m3-1"]
    assert next(r for r in batch if r["messageId"] == "m1")["receiptHandle"] == "r-m1-2"
    assert harness.metrics.counts.polled == 3


def test_replacing_a_record_keeps_the_payload_size_right() -> None:
    from lambdaplane.esm.batching import Batch, record_bytes

    batch = Batch(size=10, window=1)
    for record in ({"id": 1, "r": "a"}, {"id": 2, "r": "b"}):
        batch.add(record, record_bytes(record), now=0.0)
    newer = {"id": 1, "r": "a-longer-receipt"}
    batch.replace(0, newer, record_bytes(newer))
    assert batch.items[0] == newer and len(batch) == 2
    assert batch.payload_bytes == len(batch.payload())
