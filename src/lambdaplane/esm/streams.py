"""What the Kinesis and DynamoDB Streams pollers share: records, shards, positions, and
the pure bookkeeping of one shard's records.

A stream is a set of shards; a shard is an ordered sequence of records, each with a
numeric sequence number, and it may close (resharding) and have children, which are read
only once their parents are done. ``StreamSource`` is what differs between Kinesis and
DynamoDB Streams (how shards are listed and read, and each record's event shape); the
rest (``lambdaplane.esm.stream_poller`` and ``lambdaplane.esm.shard_processor``) is one
engine for both.

Pure parts, here:

- ``SequenceTracker``: the checkpoint of a shard is the last record before which every
  record read is done (invoked successfully, filtered out, or discarded after its
  retries), however many batches of the shard are in flight.
- ``lane_of``: with ``ParallelizationFactor`` N a shard has N lanes, and a record's
  partition key picks its lane, so each key stays in order.
- ``take_batch``: the next batch of a lane, within ``BatchSize``, 6 MB and (with tumbling
  windows) one window.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lambdaplane.esm.batching import payload
from lambdaplane.esm.model import MAX_BATCH_PAYLOAD_BYTES
from lambdaplane.esm.poller import PollerContext

TRIM_HORIZON = "TRIM_HORIZON"
LATEST = "LATEST"
AT_TIMESTAMP = "AT_TIMESTAMP"
AFTER_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER"

# The checkpoint of a closed shard whose every record is done: its children may start.
SHARD_END = "SHARD_END"


@dataclass(frozen=True)
class StreamRecord:
    """One record as the function will see it, with what the engine needs to order it."""

    sequence: str  # the sequence number: a decimal string, increasing within a shard
    key: str  # what must stay in order: the partition key (Kinesis), the item key (DynamoDB)
    arrival: float  # approximate arrival in the stream, epoch seconds
    event: dict[str, Any]  # the event record (``Records[i]``)
    encoded: bytes  # ``event`` as compact JSON


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parents: tuple[str, ...] = ()  # ParentShardId, AdjacentParentShardId
    ending_sequence: str | None = None  # set once the shard is closed

    @property
    def closed(self) -> bool:
        return self.ending_sequence is not None


@dataclass(frozen=True)
class Position:
    """Where a shard iterator starts: ``kind`` is a ShardIteratorType."""

    kind: str
    sequence: str | None = None  # AFTER_SEQUENCE_NUMBER
    timestamp: float | None = None  # AT_TIMESTAMP, epoch seconds

    @classmethod
    def after(cls, sequence: str) -> Position:
        return cls(AFTER_SEQUENCE_NUMBER, sequence=sequence)

    @classmethod
    def at(cls, timestamp: float) -> Position:
        return cls(AT_TIMESTAMP, timestamp=timestamp)

    def encode(self) -> str:
        """The stored form (``TRIM_HORIZON``, ``AT_TIMESTAMP:<epoch>``) of a start position."""
        return f"{AT_TIMESTAMP}:{self.timestamp!r}" if self.kind == AT_TIMESTAMP else self.kind

    @classmethod
    def decode(cls, text: str) -> Position:
        kind, _, stamp = text.partition(":")
        return cls.at(float(stamp)) if kind == AT_TIMESTAMP else cls(kind)


@dataclass(frozen=True)
class Page:
    """One GetRecords answer: raw records, and the next iterator (None: the shard ended)."""

    records: list[dict[str, Any]]
    next_iterator: str | None
    behind_ms: int | None = None  # MillisBehindLatest, when the source tells


class IteratorExpired(Exception):
    """The shard iterator expired (5 minutes unused): get a new one where reading stopped."""


class PositionTrimmed(Exception):
    """The position is older than the stream's retention: its records are gone."""


class StreamNotFound(Exception):
    """The stream (or the shard) does not exist."""


class ReadThrottled(Exception):
    """The shard's read throughput is exceeded (other consumers share it): read later."""


class StreamSource(Protocol):
    """One stream service: Kinesis or DynamoDB Streams, for one stream ARN.

    Calls go through ``ctx.client(...)`` and ``ctx.blocking``; they raise
    ``IteratorExpired``, ``PositionTrimmed``, ``StreamNotFound`` or ``ReadThrottled``
    where those apply, and anything else for errors worth a retry.
    """

    kind: str  # "kinesis" / "dynamodb"
    batch_info_key: str  # "KinesisBatchInfo" / "DDBStreamBatchInfo" in on-failure records
    max_records: int  # GetRecords' Limit ceiling
    poll_interval: float  # seconds between reads of a shard that had nothing new
    native_timestamps: bool  # whether AT_TIMESTAMP iterators exist (else: read and skip)

    async def shards(self, ctx: PollerContext) -> list[Shard]: ...

    async def iterator(self, ctx: PollerContext, shard_id: str, position: Position) -> str: ...

    async def read(self, ctx: PollerContext, iterator: str, limit: int) -> Page: ...

    def record(self, raw: dict[str, Any], shard_id: str, role: str) -> StreamRecord: ...

    def view(self, event: dict[str, Any]) -> dict[str, Any]:
        """The record as filters see it (``kinesis_view``, ``dynamodb_view``)."""
        ...

    def arrival_text(self, epoch: float) -> str:
        """An arrival time as the on-failure record's batch info writes it."""
        ...


@dataclass(frozen=True)
class StreamSettings:
    """Timings of the stream engine (AWS's where it has them)."""

    discover_interval: float = 10.0  # seconds between shard listings
    retry_delays: tuple[float, float] = (0.1, 10.0)  # a failed batch's first retry, ceiling
    error_delays: tuple[float, float] = (1.0, 30.0)  # after a source or invoke error
    max_pause: float = 1.0  # longest sleep of a shard's loop


# -- one shard's bookkeeping ---------------------------------------------------------------


class SequenceTracker:
    """The records read from one shard, in order, until everything before them is done.

    ``read`` each record as it is read, ``done`` records in any order; ``advance`` pops the
    done prefix and returns its last sequence number, the new checkpoint (None: no change).
    ``done_ahead`` lists what is done beyond it.
    """

    def __init__(self) -> None:
        self._order: deque[str] = deque()
        self._done: set[str] = set()

    def __len__(self) -> int:
        return len(self._order)

    def read(self, sequence: str) -> None:
        self._order.append(sequence)

    def done(self, sequences: Iterable[str]) -> None:
        self._done.update(sequences)

    def done_ahead(self) -> list[str]:
        """Records done past the checkpoint (another lane ran ahead of a slower one)."""
        return [sequence for sequence in self._order if sequence in self._done]

    def advance(self) -> str | None:
        last = None
        while self._order and self._order[0] in self._done:
            last = self._order.popleft()
            self._done.discard(last)
        return last


def lane_of(key: str, lanes: int) -> int:
    """The lane (0..lanes-1) of a partition key: stable across runs and processes."""
    return zlib.crc32(key.encode()) % lanes if lanes > 1 else 0


def take_batch(
    pending: deque[StreamRecord],
    size: int,
    *,
    max_bytes: int = MAX_BATCH_PAYLOAD_BYTES,
    reserve: int = 0,
    window_of: Callable[[StreamRecord], float] | None = None,
) -> list[StreamRecord]:
    """Pop the next batch off the front of ``pending``: at most ``size`` records whose
    payload (plus ``reserve`` bytes for extra members) stays within ``max_bytes``, all in
    the first record's window when ``window_of`` is given. The first record is always
    taken: one record past 6 MB fails at Invoke, as it does on AWS."""
    batch: list[StreamRecord] = []
    used = len(payload([])) + reserve
    window = window_of(pending[0]) if window_of is not None and pending else None
    while pending and len(batch) < size:
        record = pending[0]
        extra = len(record.encoded) + (1 if batch else 0)
        if batch and used + extra > max_bytes:
            break
        if window_of is not None and window_of(record) != window:
            break
        batch.append(pending.popleft())
        used += extra
    return batch


def batch_bytes(records: Sequence[StreamRecord]) -> int:
    """The size of the ``{"Records": [...]}`` payload of ``records``."""
    return len(payload([])) + sum(len(r.encoded) for r in records) + max(0, len(records) - 1)
