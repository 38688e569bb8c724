"""RabbitMQ event source mappings end to end: a real server consuming the machine's real
RabbitMQ (127.0.0.1:5672, guest/guest) on queues of each test's own.

The function prints what it received (see ``esm_mq.py``); the tests read it back from the
server's log store, and the queues through AMQP.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiormq
import pytest

from lambdaplane.esm.rabbitmq import amqp_url
from lambdaplane.testing import ServerProcess, start_server
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

BROKER = broker_arn("rabbit")
SECRET = secret_arn("rabbit-guest")
WRONG = secret_arn("rabbit-wrong")


class Rabbit:
    """Queues of this module on the local broker; deleted when the module ends."""

    def __init__(self, virtual_host: str = "/") -> None:
        self.url = amqp_url("amqp://127.0.0.1:5672", "guest", "guest", virtual_host)
        self.queues: list[str] = []

    def _run(self, work: Any) -> Any:
        async def session() -> Any:
            connection = await aiormq.connect(self.url)
            try:
                return await work(await connection.channel())
            finally:
                await connection.close()

        return asyncio.run(session())

    def queue(self) -> str:
        name = unique_name("esm-rmq")

        async def declare(channel: Any) -> None:
            await channel.queue_declare(name, durable=True)

        self._run(declare)
        self.queues.append(name)
        return name

    def publish(self, queue: str, bodies: list[Any], **properties: Any) -> None:
        async def send(channel: Any) -> None:
            for body in bodies:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                await channel.basic_publish(
                    data,
                    routing_key=queue,
                    properties=aiormq.spec.Basic.Properties(**properties),
                )

        self._run(send)

    def ready(self, queue: str) -> int:
        async def count(channel: Any) -> int:
            declared = await channel.queue_declare(queue, passive=True)
            return int(declared.message_count)

        return int(self._run(count))

    def delete_all(self) -> None:
        async def delete(channel: Any) -> None:
            for name in self.queues:
                await channel.queue_delete(name)

        self._run(delete)


@pytest.fixture(scope="module")
def rabbit() -> Iterator[Rabbit]:
    broker = Rabbit()
    yield broker
    broker.delete_all()


def serve(data: Path) -> ServerProcess:
    return start_server(
        data,
        "--mq-broker",
        f"{BROKER}=amqp://127.0.0.1:5672",
        "--esm-secret",
        f"{SECRET}=guest:guest",
        "--esm-secret",
        f"{WRONG}=guest:not-the-password",
    )


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = serve(tmp_path_factory.mktemp("esm-rabbitmq"))
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def lam(srv: ServerProcess) -> Iterator[Any]:
    client = srv.client()
    yield client
    client.close()


def test_batches_follow_size_and_window(srv: ServerProcess, lam: Any, rabbit: Rabbit) -> None:
    function = deploy(lam)
    queue = rabbit.queue()
    rabbit.publish(queue, [{"n": n} for n in range(12)])
    started = time.monotonic()
    mapping = map_queue(
        lam, function, BROKER, queue, SECRET, BatchSize=5, MaximumBatchingWindowInSeconds=1
    )
    done = wait_processed(srv, function, 12)
    assert done == [{"n": n} for n in range(12)]  # in the queue's order, each once
    sizes = [len(call["seen"]) for call in invocations(srv, function)]
    assert sizes == [5, 5, 2]
    assert time.monotonic() - started >= 1  # the last two waited for their window
    assert rabbit.ready(queue) == 0
    with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    labels = f'uuid="{mapping}",function="{function}",source="rabbitmq"'
    assert f"lambda_esm_polled_records_total{{{labels}}} 12\n" in metrics
    assert f"lambda_esm_invoked_records_total{{{labels}}} 12\n" in metrics


def test_event_shape_matches_aws(srv: ServerProcess, lam: Any, rabbit: Rabbit) -> None:
    function = deploy(lam)
    queue = rabbit.queue()
    map_queue(lam, function, BROKER, queue, SECRET)
    body = b'{"timeout":0,"data":"CZrmf0Gw8Ov4bqLQxD4E"}'
    rabbit.publish(
        queue,
        [body],
        content_type="text/plain",
        headers={"header1": "value1", "header2": "value2", "numberInHeader": 10},
        delivery_mode=1,
        priority=34,
        expiration="60000",
        timestamp=datetime.datetime(1970, 1, 1, 0, 33, 41, tzinfo=datetime.UTC),
        user_id="guest",
    )
    [call] = wait_for(lambda: invocations(srv, function), what="an invocation")
    event = call["event"]
    assert list(event) == ["eventSource", "eventSourceArn", "rmqMessagesByQueue"]
    assert event["eventSource"] == "aws:rmq" and event["eventSourceArn"] == BROKER
    [message] = event["rmqMessagesByQueue"][f"{queue}::/"]
    properties = message.pop("basicProperties")
    assert properties.pop("messageId")  # the publishing client names its messages
    assert properties == {
        "contentType": "text/plain",
        "contentEncoding": None,
        "headers": {
            "header1": {"bytes": [118, 97, 108, 117, 101, 49]},
            "header2": {"bytes": [118, 97, 108, 117, 101, 50]},
            "numberInHeader": 10,
        },
        "deliveryMode": 1,
        "priority": 34,
        "correlationId": None,
        "replyTo": None,
        "expiration": "60000",
        "timestamp": "Jan 1, 1970, 12:33:41 AM",
        "type": None,
        "userId": "guest",
        "appId": None,
        "clusterId": None,
        "bodySize": len(body),
    }
    assert message == {"redelivered": False, "data": base64.b64encode(body).decode()}


def test_failing_batch_is_redelivered_not_lost(
    srv: ServerProcess, lam: Any, rabbit: Rabbit
) -> None:
    function = deploy(lam)
    queue = rabbit.queue()
    rabbit.publish(queue, [{"n": 0}, {"n": 1, "fail": True}, {"n": 2}])
    map_queue(lam, function, BROKER, queue, SECRET, BatchSize=10, MaximumBatchingWindowInSeconds=1)
    wait_processed(srv, function, 3)
    first, second = invocations(srv, function)
    assert first["raised"] and not second["raised"]
    assert [s["redelivered"] for s in first["seen"]] == [False] * 3
    assert [s["redelivered"] for s in second["seen"]] == [True] * 3
    assert [json.loads(s["data"])["n"] for s in second["seen"]] == [0, 1, 2]  # in order
    assert rabbit.ready(queue) == 0
    uuid = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"][0]["UUID"]
    assert lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] == "OK"


def test_filtering_acknowledges_what_does_not_match(
    srv: ServerProcess, lam: Any, rabbit: Rabbit
) -> None:
    function = deploy(lam)
    queue = rabbit.queue()
    criteria = {"Filters": [{"Pattern": json.dumps({"data": {"kind": ["keep"]}})}]}
    rabbit.publish(queue, [{"kind": "drop"}, {"kind": "keep", "n": 1}, b"plain", {"kind": "keep"}])
    map_queue(lam, function, BROKER, queue, SECRET, FilterCriteria=criteria)
    wait_processed(srv, function, 2)
    wait_for(lambda: rabbit.ready(queue) == 0, what="the dropped messages acknowledged")
    time.sleep(1)
    assert processed(srv, function) == [{"kind": "keep", "n": 1}, {"kind": "keep"}]


def test_wrong_credentials_are_reported(srv: ServerProcess, lam: Any, rabbit: Rabbit) -> None:
    function = deploy(lam)
    queue = rabbit.queue()
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
    assert "ACCESS_REFUSED" in result
    missing = map_queue(lam, function, BROKER, unique_name("no-such-queue"), SECRET)
    result = wait_for(
        lambda: (
            lam.get_event_source_mapping(UUID=missing)["LastProcessingResult"].startswith("PROBLEM")
            and lam.get_event_source_mapping(UUID=missing)["LastProcessingResult"]
        ),
        what="a problem",
    )
    assert "does not exist" in result
    rabbit.publish(queue, [{"n": 1}])
    time.sleep(1)
    assert rabbit.ready(queue) == 1 and not invocations(srv, function)


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
def test_virtual_host_names_the_queue(srv: ServerProcess, lam: Any) -> None:
    vhost = unique_name("lambdaplane-test")
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        rabbit = Rabbit(vhost)
        queue = rabbit.queue()
        function = deploy(lam)
        access = [{"Type": "VIRTUAL_HOST", "URI": vhost}]
        mapping = map_queue(lam, function, BROKER, queue, SECRET, access=access)
        rabbit.publish(queue, [{"n": 1}])
        [call] = wait_for(lambda: invocations(srv, function), what="an invocation")
        assert list(call["event"]["rmqMessagesByQueue"]) == [f"{queue}::{vhost}"]
        lam.delete_event_source_mapping(UUID=mapping)
        wait_for(
            lambda: (
                not lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
            ),
            what="the mapping deleted",
        )
    finally:
        rabbitmqctl("delete_vhost", vhost)


def close_connection(mapping: str) -> None:
    """Have the broker close the mapping's connection (its name carries the UUID)."""
    listed = rabbitmqctl("list_connections", "pid", "client_properties", "--quiet")
    [pid] = [
        line.split("\t")[0]
        for line in listed.splitlines()
        if f"lambdaplane event source mapping {mapping}" in line
    ]
    rabbitmqctl("close_connection", pid, "closed by a test")


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
def test_a_dropped_connection_is_reported_and_reopened(
    srv: ServerProcess, lam: Any, rabbit: Rabbit
) -> None:
    function = deploy(lam)
    queue = rabbit.queue()
    mapping = map_queue(lam, function, BROKER, queue, SECRET, BatchSize=1)
    rabbit.publish(queue, [{"n": 0}])
    wait_processed(srv, function, 1)
    close_connection(mapping)
    result = wait_for(
        lambda: (
            "CONNECTION_FORCED"
            in (r := lam.get_event_source_mapping(UUID=mapping)["LastProcessingResult"])
            and r
        ),
        what="the dropped connection reported",
    )
    assert result.startswith("PROBLEM: Connection error.") and "closed by a test" in result
    rabbit.publish(queue, [{"n": 1}])
    assert wait_processed(srv, function, 2) == [{"n": 0}, {"n": 1}]


def test_restart_loses_nothing_and_repeats_nothing(tmp_path: Path, rabbit: Rabbit) -> None:
    data = tmp_path / "data"
    queue = rabbit.queue()
    first = serve(data)
    try:
        client = first.client()
        function = deploy(client)
        map_queue(
            client, function, BROKER, queue, SECRET, BatchSize=5, MaximumBatchingWindowInSeconds=1
        )
        rabbit.publish(queue, [{"n": n} for n in range(20)])
        wait_processed(first, function, 20)
        client.close()
    finally:
        assert first.stop() == 0, first.log()
    rabbit.publish(queue, [{"n": n} for n in range(20, 40)])  # while nothing consumes
    assert rabbit.ready(queue) == 20
    second = serve(data)
    try:
        rabbit.publish(queue, [{"n": n} for n in range(40, 50)])
        wait_processed(second, function, 50)
        time.sleep(1.5)  # a duplicate would show up by now
        done = processed(second, function)
        assert done == [{"n": n} for n in range(50)]
        assert rabbit.ready(queue) == 0
    finally:
        assert second.stop() == 0, second.log()
