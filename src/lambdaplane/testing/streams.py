"""Fakes for the stream pollers' unit tests: an in-memory stream, a scripted function, and
a ``PollerContext`` wired to them (checkpoints, metrics and destinations in memory)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdaplane.esm.batching import record_bytes
from lambdaplane.esm.model import KINESIS, MappingConfig
from lambdaplane.esm.poller import Blocking, InvokeOutcome, PollerContext
from lambdaplane.esm.stream_failures import iso_millis
from lambdaplane.esm.streams import (
    AFTER_SEQUENCE_NUMBER,
    AT_TIMESTAMP,
    LATEST,
    IteratorExpired,
    Page,
    Position,
    Shard,
    StreamRecord,
)

STREAM_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/fake"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"

# Stream defaults as the API stores them (``service.event_source_mappings._defaults``).
STREAM_DEFAULTS: dict[str, Any] = {
    "BatchSize": 100,
    "MaximumBatchingWindowInSeconds": 0,
    "FunctionResponseTypes": [],
    "BisectBatchOnFunctionError": False,
    "DestinationConfig": {"OnFailure": {}},
    "MaximumRecordAgeInSeconds": -1,
    "MaximumRetryAttempts": -1,
    "ParallelizationFactor": 1,
    "TumblingWindowInSeconds": 0,
    "StartingPosition": "TRIM_HORIZON",
}


def stream_mapping(**config: Any) -> MappingConfig:
    """A Kinesis mapping of ``STREAM_ARN`` with AWS's defaults and ``config`` over them."""
    return MappingConfig(
        uuid="00000000-0000-0000-0000-000000000001",
        function_name="fn",
        qualifier=None,
        source_kind=KINESIS,
        config={
            **STREAM_DEFAULTS,
            "EventSourceArn": STREAM_ARN,
            "FunctionArn": FUNCTION_ARN,
            **config,
        },
    )


@dataclass
class _FakeShard:
    parents: tuple[str, ...] = ()
    records: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


class FakeStream:
    """An in-memory stream (``StreamSource``): shards of records with sequence numbers
    1, 2, 3 ... per shard. ``ends_iterators``: a closed, fully read shard answers without
    a next iterator (AWS) rather than with an empty page (moto)."""

    kind = "kinesis"
    batch_info_key = "KinesisBatchInfo"
    max_records = 10_000
    poll_interval = 0.005

    def __init__(
        self,
        shards: int = 1,
        *,
        ends_iterators: bool = True,
        native_timestamps: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.shards_by_id: dict[str, _FakeShard] = {
            self.shard_id(n): _FakeShard() for n in range(shards)
        }
        self.ends_iterators = ends_iterators
        self.native_timestamps = native_timestamps
        self.clock = clock
        self.reads = 0
        self.expire_next = False  # the next read raises IteratorExpired

    @staticmethod
    def shard_id(n: int) -> str:
        return f"shardId-{n:012d}"

    def put(
        self, data: Any, *, key: str = "pk", shard: int | str = 0, arrival: float | None = None
    ) -> str:
        """Append a record (``data`` JSON) to a shard; its sequence number."""
        shard_id = self.shard_id(shard) if isinstance(shard, int) else shard
        target = self.shards_by_id[shard_id]
        assert not target.closed, f"{shard_id} is closed"
        sequence = str(len(target.records) + 1)
        target.records.append(
            {
                "sequence": sequence,
                "key": key,
                "data": data,
                "arrival": self.clock() if arrival is None else arrival,
            }
        )
        return sequence

    def split(self, parent: int | str, children: int = 2) -> list[str]:
        """Close ``parent`` and open ``children`` new shards under it."""
        parent_id = self.shard_id(parent) if isinstance(parent, int) else parent
        self.shards_by_id[parent_id].closed = True
        ids = [self.shard_id(len(self.shards_by_id) + n) for n in range(children)]
        for child in ids:
            self.shards_by_id[child] = _FakeShard(parents=(parent_id,))
        return ids

    # -- StreamSource ------------------------------------------------------------------

    async def shards(self, ctx: PollerContext) -> list[Shard]:
        return [
            Shard(shard_id, s.parents, str(len(s.records)) if s.closed else None)
            for shard_id, s in self.shards_by_id.items()
        ]

    async def iterator(self, ctx: PollerContext, shard_id: str, position: Position) -> str:
        records = self.shards_by_id[shard_id].records
        if position.kind == AFTER_SEQUENCE_NUMBER:
            index = int(position.sequence or 0)
        elif position.kind == LATEST:
            index = len(records)
        elif position.kind == AT_TIMESTAMP:
            stamp = position.timestamp or 0.0
            index = next((i for i, r in enumerate(records) if r["arrival"] >= stamp), len(records))
        else:
            index = 0
        return f"{shard_id}|{index}"

    async def read(self, ctx: PollerContext, iterator: str, limit: int) -> Page:
        self.reads += 1
        if self.expire_next:
            self.expire_next = False
            raise IteratorExpired("Iterator expired")
        shard_id, _, start = iterator.partition("|")
        shard = self.shards_by_id[shard_id]
        index = int(start)
        records = shard.records[index : index + limit]
        end = index + len(records)
        if shard.closed and end >= len(shard.records) and self.ends_iterators:
            return Page(records, None)
        return Page(records, f"{shard_id}|{end}", 0)

    def record(self, raw: dict[str, Any], shard_id: str, role: str) -> StreamRecord:
        event = {
            "eventID": f"{shard_id}:{raw['sequence']}",
            "sequence": raw["sequence"],
            "key": raw["key"],
            "data": raw["data"],
            "shard": shard_id,
        }
        return StreamRecord(raw["sequence"], raw["key"], raw["arrival"], event, record_bytes(event))

    def view(self, event: dict[str, Any]) -> dict[str, Any]:
        return event

    def arrival_text(self, epoch: float) -> str:
        return iso_millis(epoch)


Answer = tuple[str | None, Any]  # (function error or None, response body)


class ScriptedFunction:
    """The mapped function: ``answer(event)`` gives ``(function_error, response)``; every
    event it received is kept in ``events``."""

    def __init__(self, answer: Callable[[dict[str, Any]], Answer] | None = None) -> None:
        self.answer = answer or (lambda event: (None, None))
        self.events: list[dict[str, Any]] = []

    async def __call__(self, payload: bytes) -> InvokeOutcome:
        event = json.loads(payload)
        self.events.append(event)
        await asyncio.sleep(0)
        error, response = self.answer(event)
        body = json.dumps(response).encode() if response is not None else b"null"
        return InvokeOutcome(200, body, error, "$LATEST", str(uuid.uuid4()))

    def sequences(self) -> list[list[str]]:
        """The sequence numbers of each invocation's records."""
        return [[r["sequence"] for r in e["Records"]] for e in self.events]


class MemoryCheckpoints:
    """``Checkpoints`` in a dict."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(values or {})

    async def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def put(self, key: str, value: str) -> None:
        self.values[key] = value

    async def put_many(self, values: Mapping[str, str]) -> None:
        self.values.update(values)

    async def all(self) -> dict[str, str]:
        return dict(self.values)

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)


@dataclass
class CountingMetrics:
    """``MappingMetrics`` as plain counters."""

    polled_records: int = 0
    filtered_records: int = 0
    invocations: list[int] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    ages: list[float] = field(default_factory=list)

    def polled(self, records: int) -> None:
        self.polled_records += records

    def filtered_out(self, records: int) -> None:
        self.filtered_records += records

    def invoked(self, batch_size: int) -> None:
        self.invocations.append(batch_size)

    def failed(self, batch_size: int) -> None:
        self.failures.append(batch_size)

    def iterator_age(self, seconds: float) -> None:
        self.ages.append(seconds)


@dataclass
class StreamHarness:
    """A ``PollerContext`` of fakes, and what went through it."""

    ctx: PollerContext
    function: ScriptedFunction
    checkpoints: MemoryCheckpoints
    metrics: CountingMetrics
    sent: list[tuple[dict[str, Any], str]]
    reports: list[str]


def stream_harness(
    mapping: MappingConfig,
    function: ScriptedFunction | None = None,
    *,
    checkpoints: MemoryCheckpoints | None = None,
    clock: Callable[[], float] = time.time,
    role: str = "arn:aws:iam::000000000000:role/lambda-role",
) -> StreamHarness:
    function = function or ScriptedFunction()
    checkpoints = checkpoints or MemoryCheckpoints()
    metrics = CountingMetrics()
    sent: list[tuple[dict[str, Any], str]] = []
    reports: list[str] = []

    async def send(record: dict[str, Any], destination: str) -> bool:
        sent.append((record, destination))
        return True

    async def report(result: str) -> None:
        reports.append(result)

    async def function_role() -> str | None:
        return role

    def no_client(service: str) -> Any:
        raise AssertionError(f"the fake stream needs no {service} client")

    ctx = PollerContext(
        mapping=mapping,
        invoke=function,
        checkpoints=checkpoints,
        metrics=metrics,
        endpoint=lambda service: None,
        client=no_client,
        blocking=Blocking(),
        send_to_destination=send,
        report=report,
        stopping=asyncio.Event(),
        function_role=function_role,
        clock=clock,
    )
    return StreamHarness(ctx, function, checkpoints, metrics, sent, reports)
