"""Kinesis and DynamoDB Streams records as Lambda hands them to a function, compared with
the events recorded on AWS (``esm_kinesis``/``esm_dynamodbstreams`` snapshots)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from lambdaplane.esm.dynamodb import DynamoDBSource, dynamodb_event
from lambdaplane.esm.kinesis import KinesisSource, kinesis_event, stream_name
from lambdaplane.testing.streams import stream_mapping
from tests.unit.esm.test_stream_failures import recorded

ROLE = "arn:aws:iam::111111111111:role/lambda-role"
KINESIS_ARN = "arn:aws:kinesis:us-east-1:111111111111:stream/s"
DDB_ARN = "arn:aws:dynamodb:us-east-1:111111111111:table/t/stream/2024-01-01T00:00:00.000"


def test_kinesis_event_matches_aws() -> None:
    expected = recorded(
        "kinesis",
        "TestKinesisSource::test_kinesis_report_batch_item_failure_scenarios"
        "[invalid_key_foo_failure]",
        "kinesis_events",
    )[0]["Records"][0]
    raw = {
        "SequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "ApproximateArrivalTimestamp": datetime(2018, 12, 17, 22, 10, 50, 987000, UTC),
        "Data": b"hello",
        "PartitionKey": "test",
    }
    event = kinesis_event(
        raw, shard_id="shardId-000000000000", stream_arn=KINESIS_ARN, region="us-east-1", role=ROLE
    )
    assert list(event) == list(expected)
    assert list(event["kinesis"]) == list(expected["kinesis"])
    assert event["kinesis"]["data"] == expected["kinesis"]["data"] == "aGVsbG8="
    assert event["kinesis"]["approximateArrivalTimestamp"] == 1545084650.987
    assert event["eventID"] == f"shardId-000000000000:{raw['SequenceNumber']}"
    for key in ("eventSource", "eventVersion", "eventName"):
        assert event[key] == expected[key]
    assert (event["invokeIdentityArn"], event["eventSourceARN"]) == (ROLE, KINESIS_ARN)


def test_kinesis_source_record_orders_by_partition_key() -> None:
    source = KinesisSource(stream_mapping(EventSourceArn=KINESIS_ARN))
    raw = {
        "SequenceNumber": "7",
        "ApproximateArrivalTimestamp": datetime(2024, 1, 1, tzinfo=UTC),
        "Data": b'{"a": 1}',
        "PartitionKey": "user-1",
    }
    record = source.record(raw, "shardId-000000000001", ROLE)
    assert (record.sequence, record.key) == ("7", "user-1")
    assert record.arrival == datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    assert json.loads(record.encoded) == record.event
    assert source.view(record.event)["data"] == {"a": 1}  # filters see decoded JSON
    assert record.event["awsRegion"] == "us-east-1"


def test_stream_names_of_arns() -> None:
    assert stream_name(KINESIS_ARN) == "s"
    assert stream_name(KINESIS_ARN + "/consumer/c1:1700000000") == "s"


def ddb_raw(**change: Any) -> dict[str, Any]:
    return {
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": "INSERT",
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2024, 1, 1, 0, 0, 5, 750000, UTC),
            "Keys": {"my_partition_key": {"S": "hello world"}},
            "NewImage": {
                "binary_key": {"B": b"foobar"},
                "my_partition_key": {"S": "hello world"},
            },
            "SequenceNumber": "100000000000000000001",
            "SizeBytes": 70,
            "StreamViewType": "NEW_IMAGE",
            **change,
        },
    }


def test_dynamodb_event_matches_aws() -> None:
    expected = recorded(
        "dynamodbstreams",
        "TestDynamoDBEventSourceMapping::test_dynamodb_event_source_mapping",
        "event_logs",
    )[0]["Records"][0]
    event = dynamodb_event(ddb_raw(), stream_arn=DDB_ARN, region="us-east-1")
    assert list(event) == list(expected)
    assert list(event["dynamodb"]) == list(expected["dynamodb"])
    assert event["dynamodb"]["NewImage"] == expected["dynamodb"]["NewImage"]  # B in base64
    assert event["dynamodb"]["Keys"] == expected["dynamodb"]["Keys"]
    for key in ("eventName", "eventVersion", "eventSource"):
        assert event[key] == expected[key]
    assert event["dynamodb"]["ApproximateCreationDateTime"] == 1704067205  # whole seconds
    assert event["eventSourceARN"] == DDB_ARN


def test_dynamodb_source_record_keeps_items_in_one_lane() -> None:
    source = DynamoDBSource(stream_mapping(EventSourceArn=DDB_ARN))
    first = source.record(ddb_raw(), "shardId-1", ROLE)
    again = source.record(ddb_raw(SequenceNumber="100000000000000000002"), "shardId-1", ROLE)
    assert first.key == again.key
    assert first.arrival == datetime(2024, 1, 1, 0, 0, 5, 750000, UTC).timestamp()
    assert "invokeIdentityArn" not in first.event
    assert source.arrival_text(first.arrival) == "2024-01-01T00:00:05Z"


def test_dynamodb_ttl_deletion_keeps_user_identity() -> None:
    raw = ddb_raw()
    raw["eventName"] = "REMOVE"
    raw["userIdentity"] = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
    event = dynamodb_event(raw, stream_arn=DDB_ARN, region="us-east-1")
    assert event["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
