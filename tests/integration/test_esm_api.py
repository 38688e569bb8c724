"""Event source mapping API: shapes, defaults, states and errors against AWS's recordings.

A real server whose SQS, Kinesis and DynamoDB Streams endpoints are a real moto server
on loopback (sources must exist, as on AWS). Compared with
``../shared/aws-reference/lambda/esm_*.snapshot.json`` and the event source mapping
entries of ``test_lambda_api.snapshot.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.testing import ServerProcess, make_zip, start_server
from lambdaplane.testing.moto import MotoServer, start_moto
from tests.integration.helpers import (
    RUNTIME,
    reference,
    shape,
    unique_name,
    wait_settled,
)
from tests.integration.helpers import esm_reference as recorded

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = info.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def recorded_error(value: dict[str, Any]) -> tuple[str, str, int]:
    return (
        value["Error"]["Code"],
        value["Error"]["Message"],
        value["ResponseMetadata"]["HTTPStatusCode"],
    )


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    peer = start_moto(tmp_path_factory.mktemp("moto"))
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def esm_server(
    tmp_path_factory: pytest.TempPathFactory, moto: MotoServer
) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory.mktemp("esm-api"),
        "--sqs-endpoint", moto.url,
        "--kinesis-endpoint", moto.url,
        "--dynamodbstreams-endpoint", moto.url,
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture(scope="module")
def client(esm_server: ServerProcess) -> Iterator[Any]:
    lam = esm_server.client()
    yield lam
    lam.close()


@pytest.fixture(scope="module")
def function(client: Any) -> str:
    name = unique_name("esm")
    client.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip()},
    )
    wait_settled(client, name)
    return name


@pytest.fixture(scope="module")
def sqs(moto: MotoServer) -> Any:
    return moto.client("sqs")


def new_queue(sqs: Any, fifo: bool = False) -> str:
    name = f"q-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true"} if fifo else {}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return arn


def new_stream(moto: MotoServer) -> str:
    kinesis = moto.client("kinesis")
    name = f"s-{uuid.uuid4().hex[:10]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn: str = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    return arn


def new_table_stream(moto: MotoServer) -> str:
    dynamodb = moto.client("dynamodb")
    name = f"t-{uuid.uuid4().hex[:10]}"
    answer = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    arn: str = answer["TableDescription"]["LatestStreamArn"]
    return arn


def wait_state(client: Any, uuid_: str, state: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got: dict[str, Any] = client.get_event_source_mapping(UUID=uuid_)
        if got["State"] == state:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"mapping {uuid_} stayed {got['State']}, not {state}")
        time.sleep(0.05)


def wait_gone(client: Any, uuid_: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.get_event_source_mapping(UUID=uuid_)
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ResourceNotFoundException"
            return
        time.sleep(0.05)
    raise AssertionError(f"mapping {uuid_} was not deleted")


# -- SQS ---------------------------------------------------------------------------------


def test_sqs_create_get_delete_shapes(client: Any, function: str, sqs: Any) -> None:
    arn = new_queue(sqs)
    created = client.create_event_source_mapping(FunctionName=function, EventSourceArn=arn)
    expected = recorded(
        "sqs",
        "TestSQSEventSourceMapping::test_event_source_mapping_default_batch_size",
        "create-event-source-mapping",
    )
    assert shape(created) == shape(expected)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    assert created["StateTransitionReason"] == "USER_INITIATED"
    assert created["BatchSize"] == 10 and created["MaximumBatchingWindowInSeconds"] == 0
    assert created["FunctionArn"].endswith(f":function:{function}")
    assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{created['UUID']}")
    assert isinstance(created["LastModified"].timestamp(), float)

    enabled = wait_state(client, created["UUID"], "Enabled")
    assert shape(enabled) == shape(expected)
    assert enabled["ResponseMetadata"]["HTTPStatusCode"] == 200

    deleted = client.delete_event_source_mapping(UUID=created["UUID"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert deleted["State"] == "Deleting"
    wait_gone(client, created["UUID"])


def test_sqs_batch_size_needs_a_window(client: Any, function: str, sqs: Any) -> None:
    test = "TestSQSEventSourceMapping::test_event_source_mapping_default_batch_size"
    arn = new_queue(sqs)
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(FunctionName=function, EventSourceArn=arn, BatchSize=20)
    assert error_of(info) == recorded_error(
        recorded("sqs", test, "invalid-create-event-source-mapping")
    )
    created = client.create_event_source_mapping(FunctionName=function, EventSourceArn=arn)
    with pytest.raises(ClientError) as info:
        client.update_event_source_mapping(UUID=created["UUID"], BatchSize=20)
    assert error_of(info) == recorded_error(
        recorded("sqs", test, "invalid-update-event-source-mapping")
    )
    # With a window, up to 10,000 is fine.
    updated = client.update_event_source_mapping(
        UUID=created["UUID"], BatchSize=10_000, MaximumBatchingWindowInSeconds=1
    )
    assert updated["BatchSize"] == 10_000 and updated["State"] == "Updating"
    wait_state(client, created["UUID"], "Enabled")
    client.delete_event_source_mapping(UUID=created["UUID"])


def test_sqs_duplicate_and_missing_queue(client: Any, function: str, sqs: Any) -> None:
    arn = new_queue(sqs)
    created = client.create_event_source_mapping(FunctionName=function, EventSourceArn=arn)
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(FunctionName=function, EventSourceArn=arn)
    code, message, status = error_of(info)
    expected = recorded(
        "sqs", "TestSQSEventSourceMapping::test_duplicate_event_source_mappings", "error"
    )
    assert (code, status) == recorded_error(expected)[::2]
    assert message == (
        f'An event source mapping with SQS arn (" {arn} ") and function (" {function} ") '
        "already exists. Please update or delete the existing mapping with UUID "
        f"{created['UUID']}"
    )
    client.delete_event_source_mapping(UUID=created["UUID"])

    missing = arn.rsplit(":", 1)[0] + ":no-such-queue"
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(FunctionName=function, EventSourceArn=missing)
    assert error_of(info) == recorded_error(
        recorded("sqs", "test_esm_with_not_existing_sqs_queue", "error")
    )


@pytest.mark.parametrize(
    "criteria",
    [
        {"Filters": [{"Pattern": "simple string"}]},
        {"Filters": [{"Pattern": json.dumps({"body": {"x": "not-a-list"}})}]},
        {"Filters": [{"Pattern": json.dumps({"body": {"x": [{"prefix": 1}]}})}]},
    ],
)
def test_sqs_invalid_filter(client: Any, function: str, sqs: Any, criteria: Any) -> None:
    arn = new_queue(sqs)
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(
            FunctionName=function, EventSourceArn=arn, FilterCriteria=criteria
        )
    expected = recorded(
        "sqs",
        "TestSQSEventSourceMapping::test_sqs_invalid_event_filter[simple string]",
        "create_event_source_mapping_exception",
    )
    assert error_of(info) == recorded_error(expected)


def test_sqs_refuses_stream_settings(client: Any, function: str, sqs: Any) -> None:
    arn = new_queue(sqs)
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(
            FunctionName=function,
            EventSourceArn=arn,
            DestinationConfig={"OnFailure": {"Destination": arn}},
        )
    expected = reference(
        "TestLambdaEventSourceMappings::test_event_source_mapping_exceptions",
        "destination_config_failure",
    )
    assert error_of(info) == recorded_error(expected)
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(
            FunctionName=function, EventSourceArn=arn, StartingPosition="LATEST"
        )
    assert error_of(info) == (
        "InvalidParameterValueException",
        f"Unsupported starting position for arn type: {arn}",
        400,
    )


def test_disable_and_enable(client: Any, function: str, sqs: Any) -> None:
    arn = new_queue(sqs)
    created = client.create_event_source_mapping(
        FunctionName=function, EventSourceArn=arn, BatchSize=1, Enabled=False
    )
    expected = recorded("sqs", "test_fifo_message_group_parallelism", "create_esm_disabled")
    assert shape(created) == shape(expected)
    assert created["State"] == "Disabled"
    enabling = client.update_event_source_mapping(UUID=created["UUID"], Enabled=True)
    assert enabling["State"] == "Enabling"
    assert shape(enabling) == shape(
        recorded("sqs", "test_fifo_message_group_parallelism", "update_esm_enabling")
    )
    wait_state(client, created["UUID"], "Enabled")
    disabling = client.update_event_source_mapping(UUID=created["UUID"], Enabled=False)
    assert disabling["State"] == "Disabling"
    wait_state(client, created["UUID"], "Disabled")
    client.delete_event_source_mapping(UUID=created["UUID"])
    wait_gone(client, created["UUID"])


# -- errors and names --------------------------------------------------------------------


def test_exceptions(client: Any, function: str, sqs: Any) -> None:
    test = "TestLambdaEventSourceMappings::test_event_source_mapping_exceptions"
    unknown = str(uuid.uuid4())
    for call, step in (
        (lambda: client.get_event_source_mapping(UUID=unknown), "get_unknown_uuid"),
        (lambda: client.delete_event_source_mapping(UUID=unknown), "delete_unknown_uuid"),
        (
            lambda: client.update_event_source_mapping(UUID=unknown, BatchSize=1),
            "update_unknown_uuid",
        ),
        (
            lambda: client.create_event_source_mapping(FunctionName=function),
            "create_no_event_source_arn",
        ),
        (
            lambda: client.create_event_source_mapping(
                FunctionName=unique_name("missing"), EventSourceArn=new_queue(sqs)
            ),
            "create_unknown_params",
        ),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == recorded_error(reference(test, step)), step
        body_key = "Message" if "Message" in reference(test, step) else "message"
        assert body_key in info.value.response, step


def test_function_name_variations(client: Any, sqs: Any) -> None:
    name = unique_name("esm-names")
    client.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip()},
    )
    wait_settled(client, name)
    client.publish_version(FunctionName=name)
    client.create_alias(FunctionName=name, Name="myalias", FunctionVersion="1")
    function_arn = client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    partial = function_arn.split(":", 5)[5]  # "function:<name>"
    partial = f"000000000000:{partial}"
    cases = {
        "name_only_create_esm": (name, ""),
        "partial_arn_latest_create_esm": (f"{partial}:$LATEST", ":$LATEST"),
        "partial_arn_version_create_esm": (f"{partial}:1", ":1"),
        "partial_arn_alias_create_esm": (f"{partial}:myalias", ":myalias"),
        "full_arn_latest_create_esm": (function_arn, ""),
        "full_arn_version_create_esm": (f"{function_arn}:1", ":1"),
        "full_arn_alias_create_esm": (f"{function_arn}:myalias", ":myalias"),
    }
    for step, (given, suffix) in cases.items():
        created = client.create_event_source_mapping(
            FunctionName=given, EventSourceArn=new_queue(sqs)
        )
        expected = reference("TestLambdaEventSourceMappings::test_function_name_variations", step)
        assert shape(created) == shape(expected), step
        assert created["FunctionArn"] == function_arn + suffix, step
        client.delete_event_source_mapping(UUID=created["UUID"])


def test_list_filters_and_pages(client: Any, function: str, sqs: Any) -> None:
    other = unique_name("esm-list")
    client.create_function(
        FunctionName=other,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip()},
    )
    wait_settled(client, other)
    queues = [new_queue(sqs) for _ in range(3)]
    mine = [
        client.create_event_source_mapping(FunctionName=other, EventSourceArn=q)["UUID"]
        for q in queues
    ]
    theirs = client.create_event_source_mapping(FunctionName=function, EventSourceArn=queues[0])
    listed = client.list_event_source_mappings(FunctionName=other)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == mine
    by_source = client.list_event_source_mappings(EventSourceArn=queues[0])["EventSourceMappings"]
    assert {m["UUID"] for m in by_source} == {mine[0], theirs["UUID"]}
    both = client.list_event_source_mappings(FunctionName=other, EventSourceArn=queues[1])
    assert [m["UUID"] for m in both["EventSourceMappings"]] == [mine[1]]
    first = client.list_event_source_mappings(FunctionName=other, MaxItems=2)
    assert [m["UUID"] for m in first["EventSourceMappings"]] == mine[:2]
    rest = client.list_event_source_mappings(FunctionName=other, Marker=first["NextMarker"])
    assert [m["UUID"] for m in rest["EventSourceMappings"]] == mine[2:]
    assert "NextMarker" not in rest
    paginated = [
        m["UUID"]
        for page in client.get_paginator("list_event_source_mappings").paginate(
            FunctionName=other, PaginationConfig={"PageSize": 1}
        )
        for m in page["EventSourceMappings"]
    ]
    assert paginated == mine
    for uuid_ in [*mine, theirs["UUID"]]:
        client.delete_event_source_mapping(UUID=uuid_)


def test_mapping_outlives_its_function(client: Any, sqs: Any) -> None:
    name = unique_name("esm-gone")
    client.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip()},
    )
    wait_settled(client, name)
    created = client.create_event_source_mapping(FunctionName=name, EventSourceArn=new_queue(sqs))
    wait_state(client, created["UUID"], "Enabled")
    client.delete_function(FunctionName=name)
    after = client.get_event_source_mapping(UUID=created["UUID"])  # as AWS: still there
    assert after["State"] == "Enabled"
    client.delete_event_source_mapping(UUID=created["UUID"])
    wait_gone(client, created["UUID"])


def test_tags(client: Any, function: str, sqs: Any) -> None:
    created = client.create_event_source_mapping(
        FunctionName=function, EventSourceArn=new_queue(sqs), Tags={"A": "tag-a"}
    )
    arn = created["EventSourceMappingArn"]
    assert client.list_tags(Resource=arn)["Tags"] == {"A": "tag-a"}
    client.tag_resource(Resource=arn, Tags={"B": "tag-b", "C": "tag-c"})
    client.untag_resource(Resource=arn, TagKeys=["A"])
    assert client.list_tags(Resource=arn)["Tags"] == {"B": "tag-b", "C": "tag-c"}
    client.delete_event_source_mapping(UUID=created["UUID"])
    wait_gone(client, created["UUID"])
    test = "TestLambdaTag::test_tag_exceptions[event_source_mapping]"
    with pytest.raises(ClientError) as info:
        client.list_tags(Resource=arn)
    expected = reference(test, "not_found_exception_list")
    assert error_of(info)[::2] == recorded_error(expected)[::2]
    assert error_of(info)[1] == f"Event source mapping not found: {arn}"


# -- streams -----------------------------------------------------------------------------


def test_kinesis_create_shape_and_validation(client: Any, function: str, moto: MotoServer) -> None:
    arn = new_stream(moto)
    validation = "TestLambdaEventSourceMappings::test_create_event_source_validation_kinesis"
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(FunctionName=function, EventSourceArn=arn)
    assert error_of(info) == recorded_error(reference(validation, "no_starting_position"))
    created = client.create_event_source_mapping(
        FunctionName=function, EventSourceArn=arn, StartingPosition="LATEST"
    )
    expected = recorded(
        "kinesis",
        "TestKinesisSource::test_create_kinesis_event_source_mapping",
        "create_event_source_mapping_response",
    )
    assert shape(created) == shape(expected)
    for key in (
        "BatchSize",
        "BisectBatchOnFunctionError",
        "DestinationConfig",
        "LastProcessingResult",
        "MaximumRecordAgeInSeconds",
        "MaximumRetryAttempts",
        "ParallelizationFactor",
        "StartingPosition",
        "State",
        "StateTransitionReason",
        "TumblingWindowInSeconds",
    ):
        assert created[key] == expected[key], key
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(
            FunctionName=function, EventSourceArn=arn, StartingPosition="LATEST"
        )
    assert error_of(info) == (
        "ResourceConflictException",
        f'The event source arn (" {arn} ") and function (" {function} ") provided mapping '
        f"already exists. Please update or delete the existing mapping with UUID {created['UUID']}",
        409,
    )
    client.delete_event_source_mapping(UUID=created["UUID"])
    missing = arn.rsplit("/", 1)[0] + "/no-such-stream"
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(
            FunctionName=function, EventSourceArn=missing, StartingPosition="LATEST"
        )
    assert error_of(info) == ("InvalidParameterValueException", f"Stream not found: {missing}", 400)


def test_invalid_starting_position(raw_client: Any, function: str, moto: MotoServer) -> None:
    arn = new_stream(moto)
    with pytest.raises(ClientError) as info:
        raw_client.create_event_source_mapping(
            FunctionName=function, EventSourceArn=arn, StartingPosition="invalid"
        )
    expected = reference(
        "TestLambdaEventSourceMappings::test_create_event_source_validation_kinesis",
        "invalid_starting_position",
    )
    assert error_of(info) == recorded_error(expected)


def test_dynamodb_lifecycle_shapes(client: Any, function: str, moto: MotoServer, sqs: Any) -> None:
    arn = new_table_stream(moto)
    test = "TestLambdaEventSourceMappings::test_event_source_mapping_lifecycle"
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(
            FunctionName=function,
            EventSourceArn=arn,
            StartingPosition="AT_TIMESTAMP",
            StartingPositionTimestamp=time.time(),
        )
    assert error_of(info) == (
        "InvalidParameterValueException",
        f"Unsupported starting position for arn type: {arn}",
        400,
    )
    destination = new_queue(sqs)
    created = client.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": destination}},
    )
    assert shape(created) == shape(reference(test, "create_response"))
    assert created["DestinationConfig"] == {"OnFailure": {"Destination": destination}}
    assert created["StateTransitionReason"] == "User action"
    got = wait_state(client, created["UUID"], "Enabled")
    assert shape(got) == shape(reference(test, "get_response"))
    deleted = client.delete_event_source_mapping(UUID=created["UUID"])
    assert shape(deleted) == shape(reference(test, "delete_response"))
    assert deleted["State"] == "Deleting"
    wait_gone(client, created["UUID"])

    empty = client.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=arn,
        StartingPosition="LATEST",
        FilterCriteria={"Filters": []},
    )
    assert shape(empty) == shape(
        reference(
            "TestLambdaEventSourceMappings::test_create_event_filter_criteria_validation",
            "response-with-empty-filters",
        )
    )
    client.delete_event_source_mapping(UUID=empty["UUID"])


@pytest.fixture
def raw_client(esm_server: ServerProcess) -> Iterator[Any]:
    lam = esm_server.client(validate=False)
    yield lam
    lam.close()


# -- Kafka (API only) --------------------------------------------------------------------


def test_self_managed_kafka_api(client: Any, function: str) -> None:
    test = "TestLambdaEventSourceMappings::test_create_event_source_self_managed"
    source = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka:1000"]}}
    secret = "arn:aws:secretsmanager:us-east-1:000000000000:secret:kafka-creds"
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(
            FunctionName=function, Topics=["topic"], SelfManagedEventSource=source
        )
    assert error_of(info) == recorded_error(reference(test, "missing-source-access-configuration"))
    access = [{"Type": "BASIC_AUTH", "URI": secret}]
    created = client.create_event_source_mapping(
        FunctionName=function,
        Topics=["topic"],
        SelfManagedEventSource=source,
        SourceAccessConfigurations=access,
        StartingPosition="TRIM_HORIZON",
    )
    expected = reference(test, "event-source-mapping-default")
    assert set(expected) - {"ResponseMetadata"} <= set(created)
    assert created["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": created["UUID"]}
    assert created["BatchSize"] == 100 and created["StateTransitionReason"] == "USER_INITIATED"
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(
            FunctionName=function,
            Topics=["topic"],
            SelfManagedEventSource=source,
            SourceAccessConfigurations=access,
            StartingPosition="TRIM_HORIZON",
        )
    assert error_of(info)[0] == "ResourceConflictException"
    assert error_of(info)[1] == (
        f'An event source mapping with event source ("kafka:1000"), function '
        f'("{created["FunctionArn"]}"), topics ("topic") already exists. Please update or '
        f"delete the existing mapping with UUID {created['UUID']}"
    )
    client.delete_event_source_mapping(UUID=created["UUID"])


# -- the AWS CLI -------------------------------------------------------------------------


def test_aws_cli(esm_server: ServerProcess, client: Any, function: str, sqs: Any) -> None:
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"
    arn = new_queue(sqs)
    done = subprocess.run(
        [
            aws, "lambda", "create-event-source-mapping",
            "--function-name", function, "--event-source-arn", arn, "--batch-size", "5",
            "--endpoint-url", esm_server.endpoint, "--output", "json",
        ],
        capture_output=True,
        text=True,
        env=esm_server.cli_env(),
        timeout=60,
        check=True,
    )  # fmt: skip
    created = json.loads(done.stdout)
    assert created["BatchSize"] == 5 and created["State"] == "Creating"
    assert created["EventSourceArn"] == arn
    client.delete_event_source_mapping(UUID=created["UUID"])
