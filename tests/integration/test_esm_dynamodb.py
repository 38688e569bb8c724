"""DynamoDB Streams event source mappings end to end: a real server polling the stream of a
real moto table.

The function prints one ``ESM {...}`` line per invocation (the changes it saw, whether it
raised, which it reported failed); the tests read those lines from the server's log
store, and on-failure records from an SQS queue on the same moto.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.testing import ServerProcess, make_zip, start_server
from lambdaplane.testing.moto import MotoServer, start_moto
from tests.integration.helpers import RUNTIME, shape, unique_name, wait_settled
from tests.integration.test_esm_api import recorded
from tests.integration.test_esm_kinesis import new_queue, received
from tests.integration.test_esm_sqs import invocations, wait_for

ROLE = "arn:aws:iam::000000000000:role/lambda-role"

HANDLER = textwrap.dedent(
    """
    import json

    def handler(event, context):
        records = event["Records"]
        seen, failed, boom = [], [], False
        for record in records:
            change = record["dynamodb"]
            image = change.get("NewImage") or change.get("OldImage") or {}
            seen.append({
                "seq": change["SequenceNumber"],
                "event": record["eventName"],
                "id": change["Keys"]["id"]["S"],
                "n": int(image["n"]["N"]) if "n" in image else None,
            })
            boom = boom or "boom" in image
            if "fail" in image:
                failed.append(change["SequenceNumber"])
        print("ESM " + json.dumps({"seen": seen, "raised": boom, "failed": failed,
                                   "sample": records[0]}))
        if boom:
            raise RuntimeError("boom")
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}
    """
)


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    peer = start_moto(tmp_path_factory.mktemp("moto"))
    yield peer
    peer.stop()


def endpoints(moto: MotoServer) -> tuple[str, ...]:
    return ("--dynamodbstreams-endpoint", moto.url, "--sqs-endpoint", moto.url)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto: MotoServer) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("esm-dynamodb"), *endpoints(moto))
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def lam(server: ServerProcess) -> Iterator[Any]:
    client = server.client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def dynamodb(moto: MotoServer) -> Any:
    return moto.client("dynamodb")


@pytest.fixture(scope="module")
def sqs(moto: MotoServer) -> Any:
    return moto.client("sqs")


def deploy(lam: Any) -> str:
    name = unique_name("esm-ddb")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": HANDLER})},
        Timeout=3,
    )
    wait_settled(lam, name)
    return name


class Table:
    def __init__(self, dynamodb: Any, view: str = "NEW_IMAGE") -> None:
        self.dynamodb = dynamodb
        self.name = f"t-{uuid.uuid4().hex[:10]}"
        answer = dynamodb.create_table(
            TableName=self.name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
        )
        self.stream_arn: str = answer["TableDescription"]["LatestStreamArn"]

    def put(self, item_id: str, n: int, **extra: str) -> None:
        item = {"id": {"S": item_id}, "n": {"N": str(n)}}
        item |= {k: {"S": v} for k, v in extra.items()}
        self.dynamodb.put_item(TableName=self.name, Item=item)

    def delete(self, item_id: str) -> None:
        self.dynamodb.delete_item(TableName=self.name, Key={"id": {"S": item_id}})


def map_stream(lam: Any, function: str, table: Table, **extra: Any) -> str:
    extra.setdefault("StartingPosition", "TRIM_HORIZON")
    uuid_: str = lam.create_event_source_mapping(
        FunctionName=function, EventSourceArn=table.stream_arn, **extra
    )["UUID"]
    wait_for(lambda: lam.get_event_source_mapping(UUID=uuid_)["State"] == "Enabled", 10)
    return uuid_


def done_items(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each successful invocation handled (reported failures excluded), in order."""
    out = []
    for call in calls:
        if call["raised"]:
            continue
        out += [s for s in call["seen"] if s["seq"] not in set(call["failed"])]
    return out


def done_count(server: ServerProcess, function: str, count: int) -> Any:
    return wait_for(
        lambda: (c := invocations(server, function)) and len(done_items(c)) >= count and c,
        what=f"{count} records",
    )


# -- tests -------------------------------------------------------------------------------


def test_batches_order_and_event_shape(server: ServerProcess, lam: Any, dynamodb: Any) -> None:
    function = deploy(lam)
    table = Table(dynamodb)
    for n in range(7):
        table.put(f"item-{n}", n)
    table.put("item-0", 100)  # MODIFY
    table.delete("item-1")  # REMOVE
    map_stream(lam, function, table, BatchSize=4, MaximumBatchingWindowInSeconds=1)
    calls = done_count(server, function, 9)
    assert [len(c["seen"]) for c in calls] == [4, 4, 1]
    changes = [(s["event"], s["id"]) for s in done_items(calls)]
    assert changes == [
        *[("INSERT", f"item-{n}") for n in range(7)],
        ("MODIFY", "item-0"),
        ("REMOVE", "item-1"),
    ]
    sequences = [int(s["seq"]) for s in done_items(calls)]
    assert sequences == sorted(sequences)
    record = calls[0]["sample"]
    aws = recorded(
        "dynamodbstreams",
        "TestDynamoDBEventSourceMapping::test_dynamodb_event_source_mapping",
        "event_logs",
    )[0]["Records"][0]
    assert list(record) == list(aws) and list(record["dynamodb"]) == list(aws["dynamodb"])
    assert shape(record) == shape(aws) | {"dynamodb": shape(record["dynamodb"])}
    assert (record["eventVersion"], record["eventSource"]) == ("1.1", "aws:dynamodb")
    assert record["eventSourceARN"] == table.stream_arn and record["awsRegion"] == "us-east-1"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["Keys"] == {"id": {"S": "item-0"}}
    assert record["dynamodb"]["NewImage"] == {"id": {"S": "item-0"}, "n": {"N": "0"}}
    assert record["dynamodb"]["StreamViewType"] == "NEW_IMAGE"


def test_failing_batch_retries_then_goes_to_the_destination(
    server: ServerProcess, lam: Any, dynamodb: Any, sqs: Any
) -> None:
    function = deploy(lam)
    table = Table(dynamodb)
    url, queue_arn = new_queue(sqs)
    table.put("bad", 0, boom="yes")
    table.put("good", 1)
    map_stream(
        lam,
        function,
        table,
        BatchSize=1,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    [body] = received(sqs, url, 1)
    aws = recorded(
        "dynamodbstreams",
        "TestDynamoDBEventSourceMapping::"
        "test_dynamodb_event_source_mapping_with_on_failure_destination_config",
        "destination_queue_messages",
    )["Messages"][0]["Body"]
    assert shape(body) == shape(aws) and list(body) == list(aws)
    assert list(body["DDBStreamBatchInfo"]) == list(aws["DDBStreamBatchInfo"])
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["requestContext"]["approximateInvokeCount"] == 2
    assert body["responseContext"]["functionError"] == "Unhandled"
    info = body["DDBStreamBatchInfo"]
    assert info["streamArn"] == table.stream_arn and info["batchSize"] == 1
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert "." not in info["approximateArrivalOfFirstRecord"]  # whole seconds, as on AWS
    calls = done_count(server, function, 1)
    assert [c["seen"][0]["id"] for c in calls] == ["bad", "bad", "good"]
    assert info["startSequenceNumber"] == calls[0]["seen"][0]["seq"]


def test_partial_batch_failure(server: ServerProcess, lam: Any, dynamodb: Any, sqs: Any) -> None:
    function = deploy(lam)
    table = Table(dynamodb)
    url, queue_arn = new_queue(sqs)
    for n in range(5):
        table.put(f"item-{n}", n)
    table.put("item-5", 5, fail="yes")
    map_stream(
        lam,
        function,
        table,
        BatchSize=3,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=3,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    [body] = received(sqs, url, 1)
    aws = recorded(
        "dynamodbstreams",
        "TestDynamoDBEventSourceMapping::test_dynamodb_report_batch_item_failures",
        "destination_queue_messages",
    )["Messages"][0]["Body"]
    assert shape(body) == shape(aws)
    assert body["requestContext"]["approximateInvokeCount"] == 4  # as recorded on AWS
    assert body["responseContext"]["functionError"] is None
    assert body["DDBStreamBatchInfo"]["batchSize"] == 1
    calls = wait_for(
        lambda: (c := invocations(server, function)) and sum(len(x["seen"]) for x in c) >= 10 and c,
        what="10 records seen",
    )
    assert Counter(s["n"] for c in calls for s in c["seen"]) == {
        0: 1,
        1: 1,
        2: 1,
        3: 1,
        4: 1,
        5: 5,
    }


def test_filtering_skips_what_does_not_match(
    server: ServerProcess, lam: Any, dynamodb: Any
) -> None:
    function = deploy(lam)
    table = Table(dynamodb)
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["keep"]}}}}
    map_stream(
        lam,
        function,
        table,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
    )
    table.put("a", 1, kind="keep")
    table.put("b", 2, kind="drop")
    table.put("a", 3, kind="keep")  # a MODIFY: not an INSERT
    table.put("c", 4)
    table.put("d", 5, kind="keep")
    done_count(server, function, 2)
    time.sleep(1)  # nothing else arrives
    assert [s["n"] for s in done_items(invocations(server, function))] == [1, 5]


def test_restart_resumes_from_the_checkpoint(
    tmp_path: Path, moto: MotoServer, dynamodb: Any
) -> None:
    data = tmp_path / "data"
    table = Table(dynamodb)
    first = start_server(data, *endpoints(moto))
    try:
        client = first.client()
        function = deploy(client)
        mapping = map_stream(client, function, table, BatchSize=5)
        for n in range(12):
            table.put(f"item-{n}", n)
        done_count(first, function, 12)
        client.close()
    finally:
        assert first.stop() == 0, first.log()
    for n in range(12, 20):  # while down
        table.put(f"item-{n}", n)
    second = start_server(data, *endpoints(moto))
    try:
        client = second.client()
        assert client.get_event_source_mapping(UUID=mapping)["State"] == "Enabled"
        for n in range(20, 25):
            table.put(f"item-{n}", n)
        done_count(second, function, 25)
        time.sleep(1)  # a duplicate would show up by now
        numbers = [s["n"] for s in done_items(invocations(second, function))]
        assert numbers == list(range(25))  # in order, each once, across both servers
        client.close()
    finally:
        assert second.stop() == 0, second.log()
