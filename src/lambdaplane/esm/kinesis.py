"""The Kinesis poller: a Kinesis data stream read through botocore (``--kinesis-endpoint``).

``KinesisSource`` lists shards (ListShards), opens iterators (GetShardIterator: LATEST,
TRIM_HORIZON, AT_TIMESTAMP, AFTER_SEQUENCE_NUMBER) and reads (GetRecords, up to 10,000
records a call, each shard polled every half second while it has nothing new: AWS polls
once a second); ``kinesis_event`` gives a record AWS's ``aws:kinesis`` event shape. The
engine is ``lambdaplane.esm.stream_poller``. A consumer ARN (enhanced fan-out) is read as
its stream, with shared throughput.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdaplane.esm.batching import record_bytes
from lambdaplane.esm.filtering import kinesis_view
from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.poller import PollerContext
from lambdaplane.esm.stream_failures import iso_millis
from lambdaplane.esm.stream_poller import StreamPoller
from lambdaplane.esm.streams import (
    AFTER_SEQUENCE_NUMBER,
    AT_TIMESTAMP,
    IteratorExpired,
    Page,
    Position,
    PositionTrimmed,
    ReadThrottled,
    Shard,
    StreamNotFound,
    StreamRecord,
    StreamSettings,
)

MAX_RECORDS = 10_000  # GetRecords' Limit ceiling


def epoch(value: Any) -> float:
    """A botocore timestamp (datetime, or epoch number) as epoch seconds."""
    return value.timestamp() if isinstance(value, datetime) else float(value)


def kinesis_event(
    raw: dict[str, Any], *, shard_id: str, stream_arn: str, region: str, role: str
) -> dict[str, Any]:
    """A GetRecords record as Lambda's ``aws:kinesis`` event record."""
    data = raw.get("Data", b"")
    encoded = base64.b64encode(data).decode() if isinstance(data, bytes) else str(data)
    sequence = str(raw["SequenceNumber"])
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": raw.get("PartitionKey", ""),
            "sequenceNumber": sequence,
            "data": encoded,
            "approximateArrivalTimestamp": round(epoch(raw["ApproximateArrivalTimestamp"]), 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def stream_name(arn: str) -> str:
    """The stream of a stream ARN (``…:stream/name``) or consumer ARN (``…/consumer/c:1``)."""
    return arn.rpartition(":stream/")[2].partition("/consumer/")[0]


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class KinesisSource:
    """One Kinesis stream (``StreamSource``)."""

    kind = "kinesis"
    batch_info_key = "KinesisBatchInfo"
    max_records = MAX_RECORDS
    poll_interval = 0.5
    native_timestamps = True

    def __init__(self, mapping: MappingConfig) -> None:
        self._arn = mapping.event_source_arn or ""
        self._name = stream_name(self._arn)
        parts = self._arn.split(":")
        self._region = parts[3] if len(parts) > 3 and parts[3] else mapping.region

    async def shards(self, ctx: PollerContext) -> list[Shard]:
        client = ctx.client("kinesis")
        shards: list[Shard] = []
        request: dict[str, Any] = {"StreamName": self._name}
        while True:
            try:
                answer = await ctx.blocking(client.list_shards, **request)
            except ClientError as err:
                if _code(err) == "ResourceNotFoundException":
                    raise StreamNotFound(f"Stream not found: {self._arn}") from err
                raise
            for item in answer.get("Shards") or []:
                parents = tuple(
                    p for p in (item.get("ParentShardId"), item.get("AdjacentParentShardId")) if p
                )
                ending = (item.get("SequenceNumberRange") or {}).get("EndingSequenceNumber")
                shards.append(Shard(item["ShardId"], parents, ending))
            token = answer.get("NextToken")
            if not token:
                return shards
            request = {"NextToken": token}

    async def iterator(self, ctx: PollerContext, shard_id: str, position: Position) -> str:
        request: dict[str, Any] = {
            "StreamName": self._name,
            "ShardId": shard_id,
            "ShardIteratorType": position.kind,
        }
        if position.kind == AFTER_SEQUENCE_NUMBER:
            request["StartingSequenceNumber"] = position.sequence
        elif position.kind == AT_TIMESTAMP:
            request["Timestamp"] = position.timestamp
        try:
            answer = await ctx.blocking(ctx.client("kinesis").get_shard_iterator, **request)
        except ClientError as err:
            code = _code(err)
            if code == "ResourceNotFoundException":
                raise StreamNotFound(f"Stream or shard not found: {self._arn} {shard_id}") from err
            if code == "InvalidArgumentException" and position.kind == AFTER_SEQUENCE_NUMBER:
                raise PositionTrimmed(str(err)) from err
            raise
        return str(answer["ShardIterator"])

    async def read(self, ctx: PollerContext, iterator: str, limit: int) -> Page:
        try:
            answer = await ctx.blocking(
                ctx.client("kinesis").get_records, ShardIterator=iterator, Limit=limit
            )
        except ClientError as err:
            code = _code(err)
            if code == "ExpiredIteratorException":
                raise IteratorExpired(str(err)) from err
            if code in ("ProvisionedThroughputExceededException", "KMSThrottlingException"):
                raise ReadThrottled(str(err)) from err
            raise
        behind = answer.get("MillisBehindLatest")
        return Page(
            list(answer.get("Records") or []),
            answer.get("NextShardIterator"),
            None if behind is None else int(behind),
        )

    def record(self, raw: dict[str, Any], shard_id: str, role: str) -> StreamRecord:
        event = kinesis_event(
            raw, shard_id=shard_id, stream_arn=self._arn, region=self._region, role=role
        )
        return StreamRecord(
            sequence=event["kinesis"]["sequenceNumber"],
            key=event["kinesis"]["partitionKey"],
            arrival=epoch(raw["ApproximateArrivalTimestamp"]),
            event=event,
            encoded=record_bytes(event),
        )

    def view(self, event: dict[str, Any]) -> dict[str, Any]:
        return kinesis_view(event)

    def arrival_text(self, epoch: float) -> str:
        return iso_millis(epoch)


class KinesisPoller(StreamPoller):
    """Polls one Kinesis stream for one mapping (``POLLERS["kinesis"]``)."""

    def __init__(self, mapping: MappingConfig, settings: StreamSettings | None = None) -> None:
        super().__init__(mapping, KinesisSource(mapping), settings)
