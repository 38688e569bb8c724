"""EventSourceMappingService: defaults per source, validation, states, listing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.errors import (
    InvalidParameterValueException,
    LambdaError,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdaplane.service.event_source_mappings import EventSourceMappingService, classify
from lambdaplane.service.names import Scope
from lambdaplane.store import TagRepository, open_engine, upgrade
from lambdaplane.store.event_source_mappings import EventSourceMappingRepository

SCOPE = Scope(region="us-east-1", account_id="000000000000")
QUEUE = "arn:aws:sqs:us-east-1:000000000000:orders"
FIFO = "arn:aws:sqs:us-east-1:000000000000:orders.fifo"
STREAM = "arn:aws:kinesis:us-east-1:000000000000:stream/clicks"
TABLE = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2024-01-01T00:00:00.000"
BROKER = "arn:aws:mq:us-east-1:000000000000:broker:b:b-1234"
SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:creds"


class _Stored:
    def __init__(self, timeout: int) -> None:
        self.config = {"Timeout": timeout}


class FakeFunctions:
    """``load`` of FunctionService: known (name, qualifier) pairs only."""

    known = {("fn", None), ("fn", "$LATEST"), ("fn", "1"), ("fn", "live"), ("other", None)}

    def load(self, name: str, qualifier: str | None = None) -> _Stored:
        if (name, qualifier) not in self.known:
            raise ResourceNotFoundException(f"Function not found: {name}")
        return _Stored(3)


@pytest.fixture
def service(tmp_path: Path) -> EventSourceMappingService:
    engine = open_engine(f"sqlite:///{tmp_path / 'esm.db'}")
    upgrade(engine)
    self_notified: list[int] = []
    return EventSourceMappingService(
        SCOPE,
        FakeFunctions(),  # type: ignore[arg-type]
        EventSourceMappingRepository(engine, SCOPE.account_id, SCOPE.region),
        TagRepository(engine),
        notify=lambda: self_notified.append(1),
        brokers={BROKER: "amqp://127.0.0.1:5672"},
    )


def message(call: Any) -> str:
    with pytest.raises(LambdaError) as info:
        call()
    return f"{info.value.code}: {info.value.message}"


def test_sqs_defaults(service: EventSourceMappingService) -> None:
    created = service.create({"FunctionName": "fn", "EventSourceArn": QUEUE}, 100.0)
    assert {k: v for k, v in created.items() if k not in ("UUID", "LastModified")} == {
        "BatchSize": 10,
        "MaximumBatchingWindowInSeconds": 0,
        "FunctionResponseTypes": [],
        "EventSourceArn": QUEUE,
        "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:fn",
        "State": "Creating",
        "StateTransitionReason": "USER_INITIATED",
        "EventSourceMappingArn": (
            f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{created['UUID']}"
        ),
    }
    assert created["LastModified"].timestamp() == 100.0


def test_stream_defaults(service: EventSourceMappingService) -> None:
    created = service.create(
        {"FunctionName": "fn", "EventSourceArn": STREAM, "StartingPosition": "LATEST"}, 1.0
    )
    assert created["BatchSize"] == 100
    assert created["DestinationConfig"] == {"OnFailure": {}}
    assert created["MaximumRetryAttempts"] == -1 and created["MaximumRecordAgeInSeconds"] == -1
    assert created["ParallelizationFactor"] == 1 and created["TumblingWindowInSeconds"] == 0
    assert created["BisectBatchOnFunctionError"] is False
    assert created["LastProcessingResult"] == "No records processed"
    assert created["StateTransitionReason"] == "User action"


def test_rabbitmq_and_kafka_defaults(service: EventSourceMappingService) -> None:
    access = [{"Type": "BASIC_AUTH", "URI": SECRET}]
    mq = service.create(
        {
            "FunctionName": "fn",
            "EventSourceArn": BROKER,
            "Queues": ["jobs"],
            "SourceAccessConfigurations": access,
        },
        1.0,
    )
    assert mq["BatchSize"] == 100 and mq["Queues"] == ["jobs"]
    assert service._repo.get(mq["UUID"]).source_kind == "rabbitmq"  # type: ignore[union-attr]
    kafka = service.create(
        {
            "FunctionName": "fn",
            "Topics": ["t"],
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["k:9092"]}},
            "SourceAccessConfigurations": access,
        },
        1.0,
    )
    assert kafka["StartingPosition"] == "TRIM_HORIZON"
    assert kafka["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": kafka["UUID"]}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"FunctionName": "fn"}, "InvalidParameterValueException: Unrecognized event source."),
        (
            {"FunctionName": "fn", "EventSourceArn": "arn:aws:s3:::bucket"},
            "InvalidParameterValueException: Unrecognized event source.",
        ),
        (
            {"FunctionName": "nope", "EventSourceArn": QUEUE},
            "InvalidParameterValueException: Function does not exist",
        ),
        (
            {"FunctionName": "fn:2", "EventSourceArn": QUEUE},
            "InvalidParameterValueException: Function does not exist",
        ),
        (
            {"FunctionName": "fn", "EventSourceArn": QUEUE, "BatchSize": 11},
            "InvalidParameterValueException: Maximum batch window in seconds must be greater "
            "than 0 if maximum batch size is greater than 10",
        ),
        (
            {
                "FunctionName": "fn",
                "EventSourceArn": FIFO,
                "BatchSize": 11,
                "MaximumBatchingWindowInSeconds": 1,
            },
            "InvalidParameterValueException: Batch size must be at most 10 for FIFO queues.",
        ),
        (
            {"FunctionName": "fn", "EventSourceArn": QUEUE, "MaximumRetryAttempts": 1},
            "InvalidParameterValueException: Unsupported MaximumRetryAttempts parameter for "
            "given event source mapping type.",
        ),
        (
            {"FunctionName": "fn", "EventSourceArn": STREAM},
            "InvalidParameterValueException: 1 validation error detected: Value null at "
            "'startingPosition' failed to satisfy constraint: Member must not be null.",
        ),
        (
            {
                "FunctionName": "fn",
                "EventSourceArn": STREAM,
                "StartingPosition": "LATEST",
                "ScalingConfig": {"MaximumConcurrency": 2},
            },
            "InvalidParameterValueException: Unsupported ScalingConfig parameter for given "
            "event source mapping type.",
        ),
        (
            {
                "FunctionName": "fn",
                "EventSourceArn": QUEUE,
                "FilterCriteria": {"Filters": [{"Pattern": "not json"}]},
            },
            "InvalidParameterValueException: Invalid filter pattern definition.",
        ),
        (
            {"FunctionName": "fn", "EventSourceArn": BROKER, "Queues": ["q"]},
            "InvalidParameterValueException: Required 'sourceAccessConfigurations' parameter "
            "is missing.",
        ),
    ],
)
def test_create_refusals(
    service: EventSourceMappingService, request_: dict[str, Any], expected: str
) -> None:
    assert message(lambda: service.create(request_, 1.0)) == expected


def test_filters_are_kept_and_empty_ones_not_shown(service: EventSourceMappingService) -> None:
    criteria = {"Filters": [{"Pattern": json.dumps({"body": {"a": [1]}})}]}
    kept = service.create(
        {"FunctionName": "fn", "EventSourceArn": QUEUE, "FilterCriteria": criteria}, 1.0
    )
    assert kept["FilterCriteria"] == criteria
    empty = service.create(
        {"FunctionName": "other", "EventSourceArn": QUEUE, "FilterCriteria": {"Filters": []}}, 1.0
    )
    assert "FilterCriteria" not in empty


def test_duplicates_are_per_function_and_qualifier(service: EventSourceMappingService) -> None:
    first = service.create({"FunctionName": "fn", "EventSourceArn": QUEUE}, 1.0)
    assert message(lambda: service.create({"FunctionName": "fn", "EventSourceArn": QUEUE}, 2.0))
    with pytest.raises(ResourceConflictException) as info:
        service.create({"FunctionName": "fn", "EventSourceArn": QUEUE}, 2.0)
    assert first["UUID"] in (info.value.message or "")
    aliased = service.create({"FunctionName": "fn:live", "EventSourceArn": QUEUE}, 3.0)
    assert aliased["FunctionArn"].endswith(":function:fn:live")


def test_update_states_and_last_modified(service: EventSourceMappingService) -> None:
    created = service.create({"FunctionName": "fn", "EventSourceArn": QUEUE}, 1.0)
    uuid = created["UUID"]
    same = service.update(uuid, {"UUID": uuid}, 5.0)
    assert same["State"] == "Creating" and same["LastModified"].timestamp() == 1.0
    disabling = service.update(uuid, {"UUID": uuid, "Enabled": False}, 6.0)
    assert disabling["State"] == "Disabling"
    updating = service.update(uuid, {"UUID": uuid, "BatchSize": 5}, 7.0)
    assert updating["State"] == "Updating" and updating["BatchSize"] == 5
    assert updating["LastModified"].timestamp() == 7.0
    assert message(lambda: service.update(uuid, {"UUID": uuid, "BatchSize": 50}, 8.0)).endswith(
        "if maximum batch size is greater than 10"
    )
    cleared = service.update(uuid, {"UUID": uuid, "FilterCriteria": {}}, 9.0)
    assert "FilterCriteria" not in cleared


def test_delete_then_not_found(service: EventSourceMappingService) -> None:
    created = service.create({"FunctionName": "fn", "EventSourceArn": QUEUE}, 1.0)
    assert service.delete(created["UUID"])["State"] == "Deleting"
    assert not service.exists(created["UUID"])
    assert message(lambda: service.update(created["UUID"], {"BatchSize": 1}, 2.0)).startswith(
        "ResourceConflictException"
    )
    service._repo.delete(created["UUID"])  # what the manager does next
    assert message(lambda: service.get(created["UUID"])) == (
        "ResourceNotFoundException: The resource you requested does not exist."
    )


def test_list_by_function_source_and_pages(service: EventSourceMappingService) -> None:
    queues = [f"{QUEUE}-{n}" for n in range(5)]
    mine = [
        service.create({"FunctionName": "fn", "EventSourceArn": q}, float(n))
        for n, q in enumerate(queues)
    ]
    other = service.create({"FunctionName": "other", "EventSourceArn": queues[0]}, 9.0)
    assert [m["UUID"] for m in service.list("fn", None, None, None)["EventSourceMappings"]] == [
        m["UUID"] for m in mine
    ]
    by_source = service.list(None, queues[0], None, None)["EventSourceMappings"]
    assert [m["UUID"] for m in by_source] == [mine[0]["UUID"], other["UUID"]]
    page = service.list("fn", None, None, 2)
    assert len(page["EventSourceMappings"]) == 2 and page["NextMarker"] == mine[1]["UUID"]
    rest = service.list("fn", None, page["NextMarker"], 10)
    assert [m["UUID"] for m in rest["EventSourceMappings"]] == [m["UUID"] for m in mine[2:]]
    assert "NextMarker" not in rest
    assert service.list("fn:live", None, None, None)["EventSourceMappings"] == []


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        (QUEUE, "sqs"),
        (STREAM, "kinesis"),
        (TABLE, "dynamodb"),
        ("arn:aws:mq:us-east-1:000000000000:broker:other:b-9", "mq"),
        (BROKER, "rabbitmq"),
        ("arn:aws:kafka:us-east-1:000000000000:cluster/c/abc", "kafka"),
    ],
)
def test_classify(arn: str, kind: str) -> None:
    assert classify(arn, {}, {BROKER: "amqps://broker:5671"}) == kind


def test_classify_refuses_other_services() -> None:
    with pytest.raises(InvalidParameterValueException):
        classify("arn:aws:dynamodb:us-east-1:000000000000:table/t", {}, {})
