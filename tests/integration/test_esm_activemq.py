"""ActiveMQ event source mappings end to end: a real server consuming a real ActiveMQ
(Debian's package, an instance of this module's own on a loopback STOMP port).

The function prints what it received (see ``esm_mq.py``); the tests read it back from the
server's log store, and the queues (and ``ActiveMQ.DLQ``) over STOMP.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stomp

from lambdaplane.testing import ServerProcess, start_server
from lambdaplane.testing.activemq import ActiveMqBroker, start_activemq
from tests.integration.esm_mq import (
    broker_arn,
    deploy,
    invocations,
    map_queue,
    processed,
    secret_arn,
    wait_for,
    wait_processed,
)
from tests.integration.helpers import unique_name

BROKER = broker_arn("active")
SECRET = secret_arn("active-lambda")
WRONG = secret_arn("active-wrong")
USER, PASSWORD = "lambda", "s3cret-pw"


class Stomp:
    """A producer and inspector of the test broker's queues."""

    def __init__(self, port: int) -> None:
        self.port = port

    def _connection(self) -> Any:
        connection = stomp.Connection12([("127.0.0.1", self.port)], auto_content_length=False)
        connection.connect(USER, PASSWORD, wait=True)
        return connection

    def send(self, queue: str, bodies: list[Any], **headers: str) -> None:
        connection = self._connection()
        try:
            for body in bodies:
                text = body if isinstance(body, str) else json.dumps(body)
                connection.send(f"/queue/{queue}", text, headers={"persistent": "true", **headers})
        finally:
            connection.disconnect()

    def send_bytes(self, queue: str, body: bytes) -> None:
        connection = self._connection()
        try:  # a content-length makes ActiveMQ keep it as a bytes message
            connection.send(f"/queue/{queue}", body, headers={"content-length": str(len(body))})
        finally:
            connection.disconnect()

    def take(self, queue: str, wait: float = 1.0) -> list[tuple[dict[str, str], bytes]]:
        """Consume (and acknowledge) whatever arrives from ``queue`` within ``wait`` s."""
        got: list[tuple[dict[str, str], bytes]] = []
        lock = threading.Lock()

        class Listener(stomp.ConnectionListener):  # type: ignore[misc]
            def on_message(self, frame: Any) -> None:
                with lock:
                    got.append((frame.headers, frame.body))

        connection = stomp.Connection12([("127.0.0.1", self.port)], auto_decode=False)
        connection.set_listener("take", Listener())
        connection.connect(USER, PASSWORD, wait=True)
        try:
            connection.subscribe(f"/queue/{queue}", id="take", ack="auto")
            time.sleep(wait)
        finally:
            connection.disconnect()
        with lock:
            return list(got)


@pytest.fixture(scope="module")
def activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActiveMqBroker]:
    broker = start_activemq(tmp_path_factory.mktemp("activemq"), {USER: PASSWORD})
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def queues(activemq: ActiveMqBroker) -> Stomp:
    return Stomp(activemq.port)


def serve(data: Path, broker: ActiveMqBroker) -> ServerProcess:
    return start_server(
        data,
        "--mq-broker",
        f"{BROKER}={broker.url}",
        "--esm-secret",
        f"{SECRET}={USER}:{PASSWORD}",
        "--esm-secret",
        f"{WRONG}={USER}:not-the-password",
    )


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, activemq: ActiveMqBroker
) -> Iterator[ServerProcess]:
    server = serve(tmp_path_factory.mktemp("esm-activemq"), activemq)
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def lam(srv: ServerProcess) -> Iterator[Any]:
    client = srv.client()
    yield client
    client.close()


def test_batches_follow_size_and_window(srv: ServerProcess, lam: Any, queues: Stomp) -> None:
    function = deploy(lam)
    queue = unique_name("esm-amq")
    queues.send(queue, [{"n": n} for n in range(12)])
    started = time.monotonic()
    map_queue(lam, function, BROKER, queue, SECRET, BatchSize=5, MaximumBatchingWindowInSeconds=1)
    done = wait_processed(srv, function, 12)
    assert done == [{"n": n} for n in range(12)]  # in the queue's order, each once
    assert [len(call["seen"]) for call in invocations(srv, function)] == [5, 5, 2]
    assert time.monotonic() - started >= 1  # the last two waited for their window
    lam.delete_event_source_mapping(
        UUID=lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"][0]["UUID"]
    )
    assert not queues.take(queue, 0.5)  # all acknowledged


def test_event_shape_matches_aws(srv: ServerProcess, lam: Any, queues: Stomp) -> None:
    function = deploy(lam)
    queue = unique_name("esm-amq")
    queues.send(
        queue,
        ["ABC:AAAA"],
        **{
            "correlation-id": "myJMSCoID",
            "priority": "1",
            "index": "1",
            "doAlarm": "false",
            "myCustomProperty": "value",
        },
    )
    queues.send_bytes(queue, b"\x00\xffbytes")
    map_queue(lam, function, BROKER, queue, SECRET, BatchSize=2)
    [call] = wait_for(lambda: invocations(srv, function), what="an invocation")
    event = call["event"]
    assert list(event) == ["eventSource", "eventSourceArn", "messages"]
    assert event["eventSource"] == "aws:mq" and event["eventSourceArn"] == BROKER
    text, raw = event["messages"]
    assert list(text) == [
        "messageID",
        "messageType",
        "deliveryMode",
        "replyTo",
        "type",
        "expiration",
        "priority",
        "correlationId",
        "redelivered",
        "destination",
        "data",
        "timestamp",
        "brokerInTime",
        "brokerOutTime",
        "properties",
    ]
    assert text["messageID"].startswith("ID:")
    assert text["messageType"] == "jms/text-message" and raw["messageType"] == "jms/bytes-message"
    assert text["deliveryMode"] == 2 and raw["deliveryMode"] == 1  # persistent or not
    assert (text["replyTo"], text["type"], text["expiration"]) == (None, None, 0)
    assert (text["priority"], text["correlationId"]) == (1, "myJMSCoID")
    assert text["redelivered"] is False
    assert text["destination"] == {"physicalName": queue}
    assert base64.b64decode(text["data"]) == b"ABC:AAAA"
    assert base64.b64decode(raw["data"]) == b"\x00\xffbytes"
    assert text["brokerInTime"] == text["timestamp"] <= text["brokerOutTime"]
    assert text["properties"] == {"index": "1", "doAlarm": "false", "myCustomProperty": "value"}
    assert raw["properties"] is None


def test_failing_batch_is_redelivered_not_lost(srv: ServerProcess, lam: Any, queues: Stomp) -> None:
    function = deploy(lam)
    queue = unique_name("esm-amq")
    queues.send(queue, [{"n": 0}, {"n": 1, "fail": True}, {"n": 2}])
    map_queue(lam, function, BROKER, queue, SECRET, BatchSize=10, MaximumBatchingWindowInSeconds=1)
    wait_processed(srv, function, 3)
    first, second = invocations(srv, function)
    assert first["raised"] and not second["raised"]
    assert [s["redelivered"] for s in first["seen"]] == [False] * 3
    assert [s["redelivered"] for s in second["seen"]] == [True] * 3
    assert [json.loads(s["data"])["n"] for s in second["seen"]] == [0, 1, 2]  # in order


@pytest.mark.slow  # seven deliveries, a second apart (AWS's redelivery delay)
def test_a_message_failing_7_times_is_dead_lettered(
    srv: ServerProcess, lam: Any, queues: Stomp
) -> None:
    function = deploy(lam)
    queue = unique_name("esm-amq")
    poison = unique_name("poison")
    queues.send(queue, [{"boom": poison}])
    map_queue(lam, function, BROKER, queue, SECRET, BatchSize=1)
    dead = wait_for(
        lambda: [m for m in queues.take("ActiveMQ.DLQ", 0.5) if poison.encode() in m[1]],
        timeout=30,
        what="the poison message in ActiveMQ.DLQ",
    )
    assert dead[0][0]["original-destination"] == f"/queue/{queue}"
    # Delivered once, then redelivered 6 times (the last log lines may still be on their way).
    tries = wait_for(lambda: (c := invocations(srv, function)) and len(c) >= 7 and c, 5)
    assert [c["seen"][0]["redelivered"] for c in tries] == [False] + [True] * 6
    queues.send(queue, [{"n": 1}])  # the queue goes on
    assert wait_processed(srv, function, 1) == [{"n": 1}]


def test_filtering_acknowledges_what_does_not_match(
    srv: ServerProcess, lam: Any, queues: Stomp
) -> None:
    function = deploy(lam)
    queue = unique_name("esm-amq")
    criteria = {"Filters": [{"Pattern": json.dumps({"data": {"kind": ["keep"]}})}]}
    queues.send(queue, [{"kind": "drop"}, {"kind": "keep", "n": 1}, "plain", {"kind": "keep"}])
    uuid = map_queue(lam, function, BROKER, queue, SECRET, FilterCriteria=criteria)
    wait_processed(srv, function, 2)
    time.sleep(1)
    assert processed(srv, function) == [{"kind": "keep", "n": 1}, {"kind": "keep"}]
    lam.delete_event_source_mapping(UUID=uuid)
    wait_for(
        lambda: not lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"],
        what="the mapping deleted",
    )
    assert not queues.take(queue, 0.5)  # the dropped ones were acknowledged too


def test_wrong_credentials_are_reported(srv: ServerProcess, lam: Any, queues: Stomp) -> None:
    function = deploy(lam)
    queue = unique_name("esm-amq")
    uuid = map_queue(lam, function, BROKER, queue, WRONG)
    result = wait_for(
        lambda: (
            (r := lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"]).startswith(
                "PROBLEM"
            )
            and r
        ),
        what="a problem",
    )
    assert result.startswith("PROBLEM: Connection error.")
    assert "password is invalid" in result
    queues.send(queue, [{"n": 1}])
    time.sleep(1)
    assert not invocations(srv, function)


def test_restart_loses_nothing_and_repeats_nothing(
    tmp_path: Path, activemq: ActiveMqBroker, queues: Stomp
) -> None:
    data = tmp_path / "data"
    queue = unique_name("esm-amq")
    first = serve(data, activemq)
    try:
        client = first.client()
        function = deploy(client)
        map_queue(
            client, function, BROKER, queue, SECRET, BatchSize=5, MaximumBatchingWindowInSeconds=1
        )
        queues.send(queue, [{"n": n} for n in range(20)])
        wait_processed(first, function, 20)
        client.close()
    finally:
        assert first.stop() == 0, first.log()
    queues.send(queue, [{"n": n} for n in range(20, 40)])  # while nothing consumes
    second = serve(data, activemq)
    try:
        queues.send(queue, [{"n": n} for n in range(40, 50)])
        wait_processed(second, function, 50)
        time.sleep(1.5)  # a duplicate would show up by now
        assert processed(second, function) == [{"n": n} for n in range(50)]
    finally:
        assert second.stop() == 0, second.log()
    assert not queues.take(queue, 0.5)
