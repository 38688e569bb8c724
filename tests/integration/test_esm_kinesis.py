"""Kinesis event source mappings end to end: a real server polling a real moto Kinesis.

The function prints one ``ESM {...}`` line per invocation (the records it saw, whether it
raised, which it reported failed); the tests read those lines from the server's log
store, and on-failure records from an SQS queue on the same moto.
"""

from __future__ import annotations

import base64
import json
import textwrap
import time
import urllib.request
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
from tests.integration.test_esm_sqs import invocations, wait_for

ROLE = "arn:aws:iam::000000000000:role/lambda-role"

HANDLER = textwrap.dedent(
    """
    import base64
    import json

    def handler(event, context):
        records = event["Records"]
        seen, failed, boom = [], [], False
        for record in records:
            data = json.loads(base64.b64decode(record["kinesis"]["data"]))
            seen.append({
                "seq": record["kinesis"]["sequenceNumber"],
                "shard": record["eventID"].split(":")[0],
                "key": record["kinesis"]["partitionKey"],
                "data": data,
            })
            boom = boom or bool(data.get("boom"))
            if data.get("fail"):
                failed.append(record["kinesis"]["sequenceNumber"])
        print("ESM " + json.dumps({"seen": seen, "raised": boom, "failed": failed,
                                   "sample": records[0] if records else None}))
        if boom:
            raise RuntimeError("boom")
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}
    """
)

TUMBLING_HANDLER = textwrap.dedent(
    """
    import json

    def handler(event, context):
        state = dict(event["state"])
        state["count"] = state.get("count", 0) + len(event["Records"])
        print("ESM " + json.dumps({key: event[key] for key in (
            "window", "state", "shardId", "eventSourceARN",
            "isFinalInvokeForWindow", "isWindowTerminatedEarly")} | {"records": len(event["Records"])}))
        return {"state": state}
    """
)


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    peer = start_moto(tmp_path_factory.mktemp("moto"))
    yield peer
    peer.stop()


def endpoints(moto: MotoServer) -> tuple[str, ...]:
    return ("--kinesis-endpoint", moto.url, "--sqs-endpoint", moto.url)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto: MotoServer) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("esm-kinesis"), *endpoints(moto))
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def lam(server: ServerProcess) -> Iterator[Any]:
    client = server.client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def kinesis(moto: MotoServer) -> Any:
    return moto.client("kinesis")


@pytest.fixture(scope="module")
def sqs(moto: MotoServer) -> Any:
    return moto.client("sqs")


def deploy(lam: Any, handler: str = HANDLER) -> str:
    name = unique_name("esm-kinesis")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": handler})},
        Timeout=3,
    )
    wait_settled(lam, name)
    return name


def new_stream(kinesis: Any, shards: int = 1) -> tuple[str, str]:
    name = f"s-{uuid.uuid4().hex[:10]}"
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    arn: str = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    return name, arn


def put(kinesis: Any, stream: str, items: list[dict[str, Any]], key: str = "k") -> list[str]:
    """Put records one by one (so their order is known); their sequence numbers."""
    return [
        kinesis.put_record(
            StreamName=stream, Data=json.dumps(item).encode(), PartitionKey=item.get("key", key)
        )["SequenceNumber"]
        for item in items
    ]


def new_queue(sqs: Any) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"fail-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def received(sqs: Any, url: str, expected: int, timeout: float = 20) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < expected and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies += [json.loads(m["Body"]) for m in answer.get("Messages") or []]
    return bodies


def map_stream(lam: Any, function: str, arn: str, **extra: Any) -> str:
    extra.setdefault("StartingPosition", "TRIM_HORIZON")
    uuid_: str = lam.create_event_source_mapping(
        FunctionName=function, EventSourceArn=arn, **extra
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


# -- tests -------------------------------------------------------------------------------


def test_batches_follow_size_and_window(server: ServerProcess, lam: Any, kinesis: Any) -> None:
    function = deploy(lam)
    stream, arn = new_stream(kinesis)
    put(kinesis, stream, [{"n": n} for n in range(12)])  # waiting before the mapping starts
    mapping = map_stream(lam, function, arn, BatchSize=5, MaximumBatchingWindowInSeconds=1)
    calls = wait_for(
        lambda: (c := invocations(server, function)) and len(done_items(c)) >= 12 and c,
        what="12 records",
    )
    assert [len(c["seen"]) for c in calls] == [5, 5, 2]
    assert [s["data"]["n"] for s in done_items(calls)] == list(range(12))
    # A trickle within the window is one batch.
    put(kinesis, stream, [{"n": 12}])
    time.sleep(0.3)
    put(kinesis, stream, [{"n": 13}, {"n": 14}])
    calls = wait_for(
        lambda: (c := invocations(server, function)) and len(done_items(c)) >= 15 and c,
        what="3 more records",
    )
    assert [len(c["seen"]) for c in calls] == [5, 5, 2, 3]
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    labels = f'uuid="{mapping}",function="{function}",source="kinesis"'
    assert f"lambda_esm_polled_records_total{{{labels}}} 15\n" in metrics
    assert f'lambda_esm_invocations_total{{{labels},outcome="ok"}} 4\n' in metrics
    assert f"lambda_esm_iterator_age_seconds{{{labels}}}" in metrics


def test_event_shape_matches_aws(server: ServerProcess, lam: Any, kinesis: Any) -> None:
    function = deploy(lam)
    stream, arn = new_stream(kinesis)
    map_stream(lam, function, arn, StartingPosition="LATEST")
    time.sleep(1)  # LATEST: the mapping must be reading before the record arrives
    [sequence] = put(kinesis, stream, [{"hello": "world"}], key="test_0")
    [call] = wait_for(lambda: invocations(server, function), what="an invocation")
    record = call["sample"]
    aws = recorded(
        "kinesis",
        "TestKinesisSource::test_kinesis_report_batch_item_failure_scenarios"
        "[invalid_key_foo_failure]",
        "kinesis_events",
    )[0]["Records"][0]
    assert shape(record) == shape(aws)
    assert list(record) == list(aws) and list(record["kinesis"]) == list(aws["kinesis"])
    assert record["kinesis"]["sequenceNumber"] == sequence
    assert record["kinesis"]["partitionKey"] == "test_0"
    assert json.loads(base64.b64decode(record["kinesis"]["data"])) == {"hello": "world"}
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    assert record["eventID"] == f"shardId-000000000000:{sequence}"
    assert (record["eventSourceARN"], record["awsRegion"]) == (arn, "us-east-1")
    assert record["invokeIdentityArn"] == ROLE


def test_order_per_shard(server: ServerProcess, lam: Any, kinesis: Any) -> None:
    function = deploy(lam)
    stream, arn = new_stream(kinesis, shards=3)
    items = [{"n": n, "key": f"user-{n % 7}"} for n in range(60)]
    put(kinesis, stream, items)
    map_stream(lam, function, arn, BatchSize=4, ParallelizationFactor=3)
    calls = wait_for(
        lambda: (c := invocations(server, function)) and len(done_items(c)) >= 60 and c,
        what="60 records",
    )
    done = done_items(calls)
    assert sorted(s["data"]["n"] for s in done) == list(range(60))  # each exactly once
    assert all(len({s["shard"] for s in c["seen"]}) == 1 for c in calls)  # one shard a batch
    for shard in {s["shard"] for s in done}:
        for key in {s["key"] for s in done if s["shard"] == shard}:
            numbers = [s["data"]["n"] for s in done if s["shard"] == shard and s["key"] == key]
            assert numbers == sorted(numbers), (shard, key)


def test_failing_batch_retries_then_goes_to_the_destination(
    server: ServerProcess, lam: Any, kinesis: Any, sqs: Any
) -> None:
    function = deploy(lam)
    stream, arn = new_stream(kinesis)
    url, queue_arn = new_queue(sqs)
    [bad, good] = put(kinesis, stream, [{"boom": True}, {"n": 1}])
    map_stream(
        lam,
        function,
        arn,
        BatchSize=1,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    [body] = received(sqs, url, 1)
    aws = recorded(
        "kinesis",
        "TestKinesisSource::test_kinesis_event_source_mapping_with_on_failure_destination_config",
        "sqs_payload",
    )["Messages"][0]["Body"]
    assert shape(body) == shape(aws) and list(body) == list(aws)
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["requestContext"]["approximateInvokeCount"] == 2
    assert body["requestContext"]["functionArn"].endswith(f":function:{function}")
    assert body["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    info = body["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"]) == (
        "shardId-000000000000",
        bad,
        bad,
    )
    assert (info["batchSize"], info["streamArn"]) == (1, arn)
    calls = wait_for(
        lambda: (c := invocations(server, function)) and done_items(c) and c, what="the next"
    )
    assert [c["seen"][0]["seq"] for c in calls] == [bad, bad, good]  # then it moved on


def test_bisect_isolates_the_bad_record(
    server: ServerProcess, lam: Any, kinesis: Any, sqs: Any
) -> None:
    function = deploy(lam)
    stream, arn = new_stream(kinesis)
    url, queue_arn = new_queue(sqs)
    sequences = put(kinesis, stream, [{"n": 0}, {"n": 1}, {"boom": True}, {"n": 3}])
    map_stream(
        lam,
        function,
        arn,
        BatchSize=4,
        MaximumBatchingWindowInSeconds=1,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    [body] = received(sqs, url, 1)
    assert body["KinesisBatchInfo"]["startSequenceNumber"] == sequences[2]
    assert body["KinesisBatchInfo"]["batchSize"] == 1
    calls = wait_for(
        lambda: (c := invocations(server, function)) and len(done_items(c)) >= 3 and c,
        what="the good records",
    )
    assert [len(c["seen"]) for c in calls] == [4, 2, 2, 1, 1]
    assert [s["data"]["n"] for s in done_items(calls)] == [0, 1, 3]


def test_partial_batch_failure(server: ServerProcess, lam: Any, kinesis: Any, sqs: Any) -> None:
    function = deploy(lam)
    stream, arn = new_stream(kinesis)
    url, queue_arn = new_queue(sqs)
    items = [{"n": n} for n in range(5)] + [{"n": 5, "fail": True}]
    sequences = put(kinesis, stream, items)
    map_stream(
        lam,
        function,
        arn,
        BatchSize=3,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=3,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    [body] = received(sqs, url, 1)
    # As recorded on AWS: the failed record alone, 1 + 3 retries after the batch it failed in.
    aws = recorded(
        "kinesis", "TestKinesisSource::test_kinesis_report_batch_item_failures", "sqs_payload"
    )["Messages"][0]["Body"]
    assert shape(body) == shape(aws)
    assert body["requestContext"]["approximateInvokeCount"] == 4
    assert body["responseContext"]["functionError"] is None
    assert body["KinesisBatchInfo"]["startSequenceNumber"] == sequences[5]
    assert body["KinesisBatchInfo"]["batchSize"] == 1
    calls = wait_for(  # the last invocation's lines may reach the log store after the record
        lambda: (c := invocations(server, function)) and sum(len(x["seen"]) for x in c) >= 10 and c,
        what="10 records seen",
    )
    seen = Counter(s["data"]["n"] for c in calls for s in c["seen"])
    assert seen == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 5}  # successes once; the failure 1 + 4


def test_filtering_skips_what_does_not_match(server: ServerProcess, lam: Any, kinesis: Any) -> None:
    function = deploy(lam)
    stream, arn = new_stream(kinesis)
    criteria = {"Filters": [{"Pattern": json.dumps({"data": {"kind": ["keep"]}})}]}
    mapping = map_stream(
        lam, function, arn, BatchSize=10, MaximumBatchingWindowInSeconds=1, FilterCriteria=criteria
    )
    put(kinesis, stream, [{"kind": "drop", "n": 0}, {"kind": "keep", "n": 1}, {"n": 2}])
    kinesis.put_record(StreamName=stream, Data=b"not json", PartitionKey="k")
    put(kinesis, stream, [{"kind": "keep", "n": 4}])
    calls = wait_for(
        lambda: (c := invocations(server, function)) and len(done_items(c)) >= 2 and c,
        what="the kept records",
    )
    time.sleep(1)  # nothing else arrives
    calls = invocations(server, function)
    assert [s["data"]["n"] for s in done_items(calls)] == [1, 4]
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    labels = f'uuid="{mapping}",function="{function}",source="kinesis"'
    assert f"lambda_esm_filtered_out_records_total{{{labels}}} 3\n" in metrics


def test_tumbling_window_state_and_final_invoke(
    server: ServerProcess, lam: Any, kinesis: Any
) -> None:
    function = deploy(lam, TUMBLING_HANDLER)
    stream, arn = new_stream(kinesis)
    map_stream(lam, function, arn, BatchSize=2, TumblingWindowInSeconds=1)
    put(kinesis, stream, [{"n": n} for n in range(5)])
    calls = wait_for(
        lambda: (
            (c := invocations(server, function))
            and sum(x["state"].get("count", 0) for x in c if x["isFinalInvokeForWindow"]) >= 5
            and c
        ),
        what="the windows' final invocations",
    )
    count = 0
    for call in calls:  # every invocation gets what the window's previous one returned
        assert call["state"].get("count", 0) == count
        assert (call["shardId"], call["eventSourceARN"]) == ("shardId-000000000000", arn)
        assert call["window"]["end"] > call["window"]["start"]
        assert not call["isWindowTerminatedEarly"]
        if call["isFinalInvokeForWindow"]:
            assert call["records"] == 0
            count = 0
        else:
            assert 1 <= call["records"] <= 2
            count += call["records"]
    assert calls[-1]["isFinalInvokeForWindow"]


def test_restart_resumes_from_the_checkpoint(
    tmp_path: Path, moto: MotoServer, kinesis: Any
) -> None:
    data = tmp_path / "data"
    stream, arn = new_stream(kinesis, shards=2)
    first = start_server(data, *endpoints(moto))
    try:
        client = first.client()
        function = deploy(client)
        mapping = map_stream(client, function, arn, BatchSize=5)
        put(kinesis, stream, [{"n": n, "key": f"k{n}"} for n in range(20)])
        wait_for(lambda: len(done_items(invocations(first, function))) >= 20, what="20 records")
        client.close()
    finally:
        assert first.stop() == 0, first.log()
    put(kinesis, stream, [{"n": n, "key": f"k{n}"} for n in range(20, 30)])  # while down
    second = start_server(data, *endpoints(moto))
    try:
        client = second.client()
        assert client.get_event_source_mapping(UUID=mapping)["State"] == "Enabled"
        put(kinesis, stream, [{"n": n, "key": f"k{n}"} for n in range(30, 35)])
        wait_for(lambda: len(done_items(invocations(second, function))) >= 35, what="35 records")
        time.sleep(1.5)  # a duplicate would show up by now
        numbers = [s["data"]["n"] for s in done_items(invocations(second, function))]
        assert sorted(numbers) == list(range(35))  # same log store: both servers' invocations
        client.close()
    finally:
        assert second.stop() == 0, second.log()
