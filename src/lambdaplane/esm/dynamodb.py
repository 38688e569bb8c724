"""The DynamoDB Streams poller: a table's stream read through botocore
(``--dynamodbstreams-endpoint``).

``DynamoDBSource`` lists shards (DescribeStream), opens iterators (GetShardIterator: LATEST,
TRIM_HORIZON, AFTER_SEQUENCE_NUMBER; DynamoDB Streams has no AT_TIMESTAMP, so a restart
that must resume at a moment reads from the start and skips what is older) and reads
(GetRecords, up to 1,000 records a call, each shard polled four times a second as AWS
does); ``dynamodb_event`` gives a record AWS's ``aws:dynamodb`` event shape. Records of
one item (same ``Keys``) stay in order under ``ParallelizationFactor``. The engine is
``lambdaplane.esm.stream_poller``.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdaplane.esm.batching import record_bytes
from lambdaplane.esm.filtering import dynamodb_view
from lambdaplane.esm.kinesis import epoch
from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.poller import PollerContext
from lambdaplane.esm.stream_failures import iso_seconds
from lambdaplane.esm.stream_poller import StreamPoller
from lambdaplane.esm.streams import (
    AFTER_SEQUENCE_NUMBER,
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

MAX_RECORDS = 1_000  # GetRecords' Limit ceiling


def _jsonable(value: Any) -> Any:
    """Attribute values as the event's JSON has them: binary (B, BS) in base64."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def dynamodb_event(raw: dict[str, Any], *, stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record as Lambda's ``aws:dynamodb`` event record (``eventVersion``
    1.1, ``ApproximateCreationDateTime`` in whole epoch seconds)."""
    stream = raw.get("dynamodb") or {}
    change: dict[str, Any] = {}
    for key, value in stream.items():
        if key == "ApproximateCreationDateTime":
            change[key] = math.floor(epoch(value))
        else:
            change[key] = _jsonable(value)
    event: dict[str, Any] = {
        "eventID": raw.get("eventID", ""),
        "eventName": raw.get("eventName", ""),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion") or region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }
    identity = raw.get("userIdentity")
    if isinstance(identity, dict):  # TTL deletions, in the event's camelCase
        event["userIdentity"] = {
            "type": identity.get("Type", identity.get("type")),
            "principalId": identity.get("PrincipalId", identity.get("principalId")),
        }
    return event


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class DynamoDBSource:
    """One DynamoDB stream (``StreamSource``)."""

    kind = "dynamodb"
    batch_info_key = "DDBStreamBatchInfo"
    max_records = MAX_RECORDS
    poll_interval = 0.25
    native_timestamps = False

    def __init__(self, mapping: MappingConfig) -> None:
        self._arn = mapping.event_source_arn or ""
        parts = self._arn.split(":")
        self._region = parts[3] if len(parts) > 3 and parts[3] else mapping.region

    async def shards(self, ctx: PollerContext) -> list[Shard]:
        client = ctx.client("dynamodbstreams")
        shards: list[Shard] = []
        request: dict[str, Any] = {"StreamArn": self._arn}
        while True:
            try:
                answer = await ctx.blocking(client.describe_stream, **request)
            except ClientError as err:
                if _code(err) == "ResourceNotFoundException":
                    raise StreamNotFound(f"Stream not found: {self._arn}") from err
                raise
            description = answer.get("StreamDescription") or {}
            for item in description.get("Shards") or []:
                parent = item.get("ParentShardId")
                ending = (item.get("SequenceNumberRange") or {}).get("EndingSequenceNumber")
                shards.append(Shard(item["ShardId"], (parent,) if parent else (), ending))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            request = {"StreamArn": self._arn, "ExclusiveStartShardId": last}

    async def iterator(self, ctx: PollerContext, shard_id: str, position: Position) -> str:
        request: dict[str, Any] = {
            "StreamArn": self._arn,
            "ShardId": shard_id,
            "ShardIteratorType": position.kind,
        }
        if position.kind == AFTER_SEQUENCE_NUMBER:
            request["SequenceNumber"] = position.sequence
        try:
            answer = await ctx.blocking(ctx.client("dynamodbstreams").get_shard_iterator, **request)
        except ClientError as err:
            code = _code(err)
            if code == "TrimmedDataAccessException":
                raise PositionTrimmed(str(err)) from err
            if code == "ResourceNotFoundException":
                raise StreamNotFound(f"Stream or shard not found: {self._arn} {shard_id}") from err
            raise
        return str(answer["ShardIterator"])

    async def read(self, ctx: PollerContext, iterator: str, limit: int) -> Page:
        try:
            answer = await ctx.blocking(
                ctx.client("dynamodbstreams").get_records, ShardIterator=iterator, Limit=limit
            )
        except ClientError as err:
            code = _code(err)
            if code == "ExpiredIteratorException":
                raise IteratorExpired(str(err)) from err
            if code in ("LimitExceededException", "ThrottlingException"):
                raise ReadThrottled(str(err)) from err
            if code == "TrimmedDataAccessException":
                raise PositionTrimmed(str(err)) from err
            raise
        return Page(list(answer.get("Records") or []), answer.get("NextShardIterator"))

    def record(self, raw: dict[str, Any], shard_id: str, role: str) -> StreamRecord:
        event = dynamodb_event(raw, stream_arn=self._arn, region=self._region)
        change = raw.get("dynamodb") or {}
        return StreamRecord(
            sequence=str(change["SequenceNumber"]),
            key=json.dumps(event["dynamodb"].get("Keys") or {}, sort_keys=True),
            arrival=epoch(change.get("ApproximateCreationDateTime") or 0.0),
            event=event,
            encoded=record_bytes(event),
        )

    def view(self, event: dict[str, Any]) -> dict[str, Any]:
        return dynamodb_view(event)

    def arrival_text(self, epoch: float) -> str:
        return iso_seconds(epoch)


class DynamoDBPoller(StreamPoller):
    """Polls one DynamoDB stream for one mapping (``POLLERS["dynamodb"]``)."""

    def __init__(self, mapping: MappingConfig, settings: StreamSettings | None = None) -> None:
        super().__init__(mapping, DynamoDBSource(mapping), settings)
