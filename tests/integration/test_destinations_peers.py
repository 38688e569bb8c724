"""DestinationRouter against real SQS, SNS and EventBridge wire protocols.

The peer is moto's server (``moto[server]``), run as a subprocess on loopback with dummy
credentials; the router is driven directly, with no lambdaplane server. What arrives is
read back through the peer's own APIs: a queue's messages, a topic's SQS subscription,
an event bus's rule targeting a queue.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdaplane.asyncinvoke.destinations import DestinationRouter, invocation_record
from lambdaplane.testing import free_port

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "lambdaplane", "aws_secret_access_key": "lambdaplane"}
FN = "arn:aws:lambda:us-east-1:123456789012:function:orders"


@dataclass
class Peer:
    """A running moto server and clients of it for arranging and reading back."""

    url: str
    sqs: Any
    sns: Any
    events: Any
    log: Path

    def queue(self) -> tuple[str, str]:
        """A new queue: (its ARN, its URL)."""
        url = self.sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attributes["Attributes"]["QueueArn"], url

    def received(self, queue_url: str) -> dict[str, Any]:
        """The one message on a queue, waiting a little for it."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = self.sqs.receive_message(
                QueueUrl=queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
            )
            if answer.get("Messages"):
                [message] = answer["Messages"]
                return dict(message)
        tail = self.log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"nothing arrived on {queue_url}; the peer's log ends:\n{tail}")


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not listen: {log.read_text()}")


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    if importlib.util.find_spec("moto") is None:
        pytest.fail('moto is not installed: the test extras need "moto[server]>=5.1,<6"')
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": KEYS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": KEYS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        _wait_listening(port, process, log)
        url = f"http://127.0.0.1:{port}"
        clients = {
            name: boto3.client(name, endpoint_url=url, region_name=REGION, **KEYS)
            for name in ("sqs", "sns", "events")
        }
        yield Peer(url, clients["sqs"], clients["sns"], clients["events"], log)
        for client in clients.values():
            client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Invocations:
    """Stands in for the workers' ``invoke_async``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    async def __call__(self, function_arn: str, payload: bytes) -> None:
        self.calls.append((function_arn, payload))


@pytest.fixture
def invocations() -> Invocations:
    return Invocations()


@pytest.fixture
def router(peer: Peer, invocations: Invocations) -> Iterator[DestinationRouter]:
    endpoints = {"sqs": peer.url, "sns": peer.url, "events": peer.url}
    routes = DestinationRouter(endpoints=endpoints, region=REGION, invoke_async=invocations)
    yield routes
    routes.close()


def record(condition: str = "Success") -> dict[str, Any]:
    failed = condition != "Success"
    response = {"errorMessage": "boom", "errorType": "Exception"} if failed else {"ok": True}
    return invocation_record(
        request_id=str(uuid.uuid4()),
        function_arn=FN,
        condition=condition,
        approximate_invoke_count=3 if failed else 1,
        request_payload=b'{"order": 7}',
        status_code=200,
        executed_version="$LATEST",
        function_error="Unhandled" if failed else None,
        response_payload=json.dumps(response).encode(),
        timestamp="2019-11-14T18:16:05.568Z",
    )


def test_record_to_sqs_queue(peer: Peer, router: DestinationRouter) -> None:
    arn, url = peer.queue()
    sent = record("RetriesExhausted")
    assert asyncio.run(router.deliver(sent, arn)) is True
    assert json.loads(peer.received(url)["Body"]) == sent
    # The queue URL is cached: a second record needs no lookup and still arrives.
    assert asyncio.run(router.deliver(sent, arn)) is True
    assert json.loads(peer.received(url)["Body"]) == sent


def test_record_to_sns_topic(peer: Peer, router: DestinationRouter) -> None:
    arn, url = peer.queue()
    topic = peer.sns.create_topic(Name=f"t-{uuid.uuid4().hex[:10]}")["TopicArn"]
    peer.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    sent = record()
    assert asyncio.run(router.deliver(sent, topic)) is True
    notification = json.loads(peer.received(url)["Body"])
    assert notification["TopicArn"] == topic
    assert json.loads(notification["Message"]) == sent


@pytest.mark.parametrize(
    ("condition", "detail_type"),
    [
        ("Success", "Lambda Function Invocation Result - Success"),
        ("EventAgeExceeded", "Lambda Function Invocation Result - Failure"),
    ],
)
def test_record_to_event_bus(
    peer: Peer, router: DestinationRouter, condition: str, detail_type: str
) -> None:
    arn, url = peer.queue()
    bus_name = f"b-{uuid.uuid4().hex[:10]}"
    bus = peer.events.create_event_bus(Name=bus_name)["EventBusArn"]
    peer.events.put_rule(
        Name="outcomes", EventBusName=bus_name, EventPattern=json.dumps({"source": ["lambda"]})
    )
    peer.events.put_targets(
        Rule="outcomes", EventBusName=bus_name, Targets=[{"Id": "q", "Arn": arn}]
    )
    sent = record(condition)
    assert asyncio.run(router.deliver(sent, bus)) is True
    event = json.loads(peer.received(url)["Body"])
    assert event["source"] == "lambda"
    assert event["detail-type"] == detail_type
    assert event["resources"] == [bus, f"{FN}:$LATEST"]
    assert event["detail"] == sent


def test_dead_letter_to_sqs_queue(peer: Peer, router: DestinationRouter) -> None:
    arn, url = peer.queue()
    event = b'{"raise_error": 1}'
    sent = router.dead_letter(arn, event, "r-dlq", "200", "x" * 2000)
    assert asyncio.run(sent) is True
    message = peer.received(url)
    assert message["Body"] == event.decode()  # the original event, unmodified
    assert message["MessageAttributes"] == {
        "RequestID": {"DataType": "String", "StringValue": "r-dlq"},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "x" * 1024},
    }


def test_dead_letter_to_sns_topic(peer: Peer, router: DestinationRouter) -> None:
    arn, url = peer.queue()
    topic = peer.sns.create_topic(Name=f"t-{uuid.uuid4().hex[:10]}")["TopicArn"]
    peer.sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    sent = router.dead_letter(topic, b'{"a": [1, 2]}', "r-sns", "200", "Test exception")
    assert asyncio.run(sent) is True
    message = peer.received(url)
    assert message["Body"] == '{"a": [1, 2]}'
    assert message["MessageAttributes"] == {
        "RequestID": {"DataType": "String", "StringValue": "r-sns"},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "Test exception"},
    }


def test_missing_queue_returns_false(peer: Peer, router: DestinationRouter) -> None:
    gone = "arn:aws:sqs:us-east-1:123456789012:no-such-queue"
    assert asyncio.run(router.deliver(record(), gone)) is False
    assert asyncio.run(router.dead_letter(gone, b"{}", "r", "200", "m")) is False


def test_unreachable_endpoint_returns_false(invocations: Invocations) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    routes = DestinationRouter(
        endpoints={"sqs": closed, "sns": closed, "events": closed},
        region=REGION,
        invoke_async=invocations,
        connect_timeout=0.5,
    )
    try:
        queue = "arn:aws:sqs:us-east-1:123456789012:q"
        topic = "arn:aws:sns:us-east-1:123456789012:t"
        bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
        for arn in (queue, topic, bus):
            assert asyncio.run(routes.deliver(record(), arn)) is False
        for arn in (queue, topic):
            assert asyncio.run(routes.dead_letter(arn, b"{}", "r", "200", "m")) is False
    finally:
        routes.close()


def test_record_to_function(router: DestinationRouter, invocations: Invocations) -> None:
    target = "arn:aws:lambda:us-east-1:123456789012:function:next:live"
    sent = record()
    assert asyncio.run(router.deliver(sent, target)) is True
    [(arn, payload)] = invocations.calls
    assert arn == target
    assert json.loads(payload) == sent
