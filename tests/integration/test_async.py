"""Asynchronous invocation through a real server: 202, retries, throttling, durability."""

from __future__ import annotations

import itertools
import json
import re
import signal
import sqlite3
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.testing import ServerProcess, make_zip, start_server
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
RETRY_DELAYS = (0.4, 0.8)


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose retry delays are fractions of a second (AWS: 1 and 2 minutes)."""
    srv = start_server(
        tmp_path_factory.mktemp("async"),
        "--async-retry-delays", ",".join(str(d) for d in RETRY_DELAYS),
        "--async-throttle-backoff", "0.2,1",
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, srv.log()


def send_event(lam: Any, name: str, payload: Any = b"{}") -> Any:
    """InvocationType=Event, with the (empty) body read so the connection is released."""
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=payload)
    assert response["Payload"].read() == b""
    return response


def deploy(lam: Any, source: str, **extra: Any) -> str:
    name = unique_name("async")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(source)})},
        Timeout=extra.pop("Timeout", 10),
        **extra,
    )
    wait_settled(lam, name)
    return name


def starts(server: ServerProcess, name: str) -> list[tuple[int, str]]:
    """(timestamp ms, line) of the START lines stored for a function."""
    db = sqlite3.connect(f"file:{server.data_dir / 'lambdaplane.db'}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT timestamp, message FROM log_events WHERE log_group = ? AND message LIKE 'START %' "
            "ORDER BY timestamp, id",
            (f"/aws/lambda/{name}",),
        ).fetchall()
    finally:
        db.close()


def messages(server: ServerProcess, name: str) -> list[str]:
    db = sqlite3.connect(f"file:{server.data_dir / 'lambdaplane.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT message FROM log_events WHERE log_group = ? ORDER BY timestamp, id",
            (f"/aws/lambda/{name}",),
        ).fetchall()
    finally:
        db.close()
    return [m for (m,) in rows]


def queue_depth(server: ServerProcess) -> int:
    db = sqlite3.connect(f"file:{server.data_dir / 'lambdaplane.db'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM async_events").fetchone()[0])
    finally:
        db.close()


def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_event_is_accepted_with_202_and_runs(fast: ServerProcess) -> None:
    lam = fast.client()
    name = deploy(lam, "def handler(event, context):\n    print('got', event['n'])\n")
    response = send_event(lam, name, json.dumps({"n": 7}))
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    request_id = response["ResponseMetadata"]["RequestId"]
    wait_for(lambda: "got 7" in messages(fast, name))
    assert any(request_id in line for _, line in starts(fast, name))
    legacy = lam.invoke_async(FunctionName=name, InvokeArgs=json.dumps({"n": 8}))
    assert legacy["Status"] == 202
    wait_for(lambda: "got 8" in messages(fast, name))
    dry = lam.invoke(FunctionName=name, InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    lam.close()


def test_event_errors(fast: ServerProcess) -> None:
    lam = fast.client()
    name = deploy(lam, "def handler(event, context):\n    return 1\n")
    wait_for(lambda: queue_depth(fast) == 0)
    with pytest.raises(ClientError) as exc:
        send_event(lam, name, b"x" * (1024 * 1024 + 1))
    assert exc.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    with pytest.raises(ClientError) as exc:
        send_event(lam, name, b"{not json")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as exc:
        send_event(lam, unique_name("missing"), b"{}")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert queue_depth(fast) == 0  # nothing was queued for the refused events
    lam.close()


def test_function_errors_are_retried_twice_with_delays(fast: ServerProcess) -> None:
    lam = fast.client()
    name = deploy(lam, "def handler(event, context):\n    raise RuntimeError('always')\n")
    response = send_event(lam, name, b"{}")
    request_id = response["ResponseMetadata"]["RequestId"]
    wait_for(lambda: len(starts(fast, name)) >= 3)
    time.sleep(sum(RETRY_DELAYS) + 0.5)
    attempts = starts(fast, name)
    assert len(attempts) == 3, (messages(fast, name), fast.log()[-3000:])
    assert all(request_id in line for _, line in attempts)  # the same request id each time
    gaps = [(b - a) / 1000 for (a, _), (b, _) in itertools.pairwise(attempts)]
    assert gaps[0] >= RETRY_DELAYS[0] and gaps[1] >= RETRY_DELAYS[1], gaps
    lam.close()


def test_throttled_events_are_retried_not_dropped(tmp_path: Path) -> None:
    srv = start_server(
        tmp_path / "data", "--account-concurrency", "1", "--async-throttle-backoff", "0.1,0.5"
    )
    try:
        lam = srv.client()
        name = deploy(
            lam,
            "import time\n"
            "def handler(event, context):\n"
            "    time.sleep(event.get('hold', 0.3))\n"
            "    print('done', event['n'])\n",
        )
        # A synchronous invocation holds the account's only slot, so the events'
        # first attempts are certainly throttled.
        holder = threading.Thread(
            target=lambda: lam.invoke(FunctionName=name, Payload=b'{"n": -1, "hold": 1.5}')[
                "Payload"
            ].read()
        )
        holder.start()
        wait_for(lambda: any(m.startswith("START ") for m in messages(srv, name)))
        for n in range(4):
            send_event(lam, name, json.dumps({"n": n}))
        holder.join()
        wanted = [f"done {n}" for n in range(4)]
        wait_for(
            lambda: (
                sorted(m for m in messages(srv, name) if m.startswith("done ") and m != "done -1")
                == wanted
            ),
            timeout=30,
        )
        wait_for(lambda: queue_depth(srv) == 0)
        import urllib.request

        with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        labels = f'function="{name}",version="$LATEST"'
        assert f"lambda_invocations_total{{{labels}}} 5\n" in metrics  # 4 events + the holder
        assert f"lambda_errors_total{{{labels}}} 0\n" in metrics
        throttles = re.search(rf"lambda_throttles_total{{{re.escape(labels)}}} (\d+)\n", metrics)
        assert throttles and int(throttles.group(1)) >= 1, metrics  # retried, not dropped
        assert "lambdaplane_async_queue_depth 0\n" in metrics
        assert "lambda_async_events_dropped_total{" not in metrics
        lam.close()
    finally:
        assert srv.stop() == 0, srv.log()


@pytest.mark.slow
def test_kill_minus_nine_loses_no_accepted_event(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    lam = first.client()
    name = deploy(
        lam,
        "import time\ndef handler(event, context):\n    time.sleep(0.005)\n    print('processed', event['n'])\n",
    )
    total = 1000
    for n in range(total):
        assert send_event(lam, name, json.dumps({"n": n}))["StatusCode"] == 202
    lam.close()
    # Kill it hard while events are queued and some are mid-invocation.
    wait_for(
        lambda: sum(m.startswith("processed ") for m in messages(first, name)) >= 50, timeout=60
    )
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    first.stop()
    assert queue_depth(first) > 0, "the kill should leave events queued"
    second = start_server(data)
    try:
        wait_for(lambda: queue_depth(second) == 0, timeout=240)
        seen = {int(m.split()[1]) for m in messages(second, name) if m.startswith("processed ")}
        assert seen == set(range(total)), sorted(set(range(total)) - seen)[:20]
    finally:
        assert second.stop() == 0, second.log()


def test_failure_destination_function_gets_aws_record(fast: ServerProcess) -> None:
    lam = fast.client()
    recorder = deploy(
        lam, "import json\ndef handler(event, context):\n    print('RECORD ' + json.dumps(event))\n"
    )
    failing = deploy(lam, "def handler(event, context):\n    raise ValueError('nope')\n")
    recorder_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{recorder}"
    lam.put_function_event_invoke_config(
        FunctionName=failing,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": recorder_arn}},
    )
    response = send_event(lam, failing, json.dumps({"order": 5}))
    request_id = response["ResponseMetadata"]["RequestId"]

    def records() -> list[dict[str, Any]]:
        return [
            json.loads(m[len("RECORD ") :])
            for m in messages(fast, recorder)
            if m.startswith("RECORD ")
        ]

    wait_for(lambda: len(records()) == 1)
    record = records()[0]
    assert record["version"] == "1.0"
    context = record["requestContext"]
    assert context["requestId"] == request_id
    assert context["condition"] == "RetriesExhausted"
    assert context["approximateInvokeCount"] == 2  # MaximumRetryAttempts=1: two attempts
    assert (
        context["functionArn"]
        == f"arn:aws:lambda:us-east-1:000000000000:function:{failing}:$LATEST"
    )
    assert record["requestPayload"] == {"order": 5}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorMessage"] == "nope"
    lam.close()


@pytest.fixture(scope="module")
def moto_peer() -> Iterator[str]:
    """An SQS-compatible server on loopback (moto), for destinations and DLQs."""
    import subprocess
    import sys
    import urllib.request

    from lambdaplane.testing import free_port

    port = free_port()
    env = {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "PATH": "/usr/bin:/bin",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


def test_sqs_sns_eventbridge_destinations_and_dead_letter_queue(
    tmp_path: Path, moto_peer: str
) -> None:
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_peer,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    ok_url = sqs.create_queue(QueueName="successes")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    sns = boto3.client(
        "sns",
        endpoint_url=moto_peer,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    events = boto3.client(
        "events",
        endpoint_url=moto_peer,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    topic_queue = sqs.create_queue(QueueName="from-topic")["QueueUrl"]
    topic = sns.create_topic(Name="outcomes")["TopicArn"]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:from-topic"
    )
    bus_queue = sqs.create_queue(QueueName="from-bus")["QueueUrl"]
    bus = events.create_event_bus(Name="outcomes")["EventBusArn"]
    events.put_rule(
        Name="all", EventBusName="outcomes", EventPattern=json.dumps({"source": ["lambda"]})
    )
    events.put_targets(
        Rule="all",
        EventBusName="outcomes",
        Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:from-bus"}],
    )
    srv = start_server(
        tmp_path / "data",
        "--sqs-endpoint", moto_peer, "--sns-endpoint", moto_peer, "--events-endpoint", moto_peer,
        "--async-retry-delays", "0.1,0.1",
    )  # fmt: skip
    try:
        lam = srv.client()
        ok = deploy(lam, "def handler(event, context):\n    return {'seen': event}\n")
        lam.put_function_event_invoke_config(
            FunctionName=ok,
            DestinationConfig={
                "OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:000000000000:successes"}
            },
        )
        bad = deploy(
            lam,
            "def handler(event, context):\n    raise RuntimeError('dead')\n",
            DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dead-letters"},
        )
        to_topic = deploy(lam, "def handler(event, context):\n    return 'via sns'\n")
        lam.put_function_event_invoke_config(
            FunctionName=to_topic, DestinationConfig={"OnSuccess": {"Destination": topic}}
        )
        to_bus = deploy(lam, "def handler(event, context):\n    raise ValueError('via bus')\n")
        lam.put_function_event_invoke_config(
            FunctionName=to_bus,
            MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": bus}},
        )
        send_event(lam, ok, b'{"a": 1}')
        bad_id = send_event(lam, bad, b'{"b": 2}')["ResponseMetadata"]["RequestId"]
        send_event(lam, to_topic, b'{"c": 3}')
        send_event(lam, to_bus, b'{"d": 4}')

        def receive(url: str) -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            deadline = time.monotonic() + 20
            while not got and time.monotonic() < deadline:
                got = sqs.receive_message(
                    QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1
                ).get("Messages", [])
            return got

        (success,) = receive(ok_url)
        record = json.loads(success["Body"])
        assert record["requestContext"]["condition"] == "Success"
        assert record["responsePayload"] == {"seen": {"a": 1}}
        (dead,) = receive(dlq_url)
        assert json.loads(dead["Body"]) == {"b": 2}
        attributes = dead["MessageAttributes"]
        assert attributes["RequestID"]["StringValue"] == bad_id
        assert attributes["ErrorMessage"]["StringValue"] == "dead"
        assert attributes["ErrorCode"]["DataType"] == "Number"
        (via_sns,) = receive(topic_queue)
        sns_record = json.loads(json.loads(via_sns["Body"])["Message"])
        assert sns_record["requestContext"]["condition"] == "Success"
        assert sns_record["responsePayload"] == "via sns"
        (via_bus,) = receive(bus_queue)
        envelope = json.loads(via_bus["Body"])
        assert envelope["detail-type"] == "Lambda Function Invocation Result - Failure"
        assert envelope["detail"]["requestContext"]["condition"] == "RetriesExhausted"
        assert envelope["detail"]["requestPayload"] == {"d": 4}
        lam.close()
    finally:
        sqs.close()
        sns.close()
        events.close()
        assert srv.stop() == 0, srv.log()


@pytest.mark.slow
def test_event_older_than_maximum_age_is_dropped_to_the_failure_destination(tmp_path: Path) -> None:
    """AWS's smallest MaximumEventAgeInSeconds is 60: the only execution slot is held for
    longer than that, so the event is throttled until it ages out."""
    import threading

    srv = start_server(
        tmp_path / "data", "--account-concurrency", "1", "--async-throttle-backoff", "1,2"
    )
    try:
        lam = srv.client()
        hog = deploy(
            lam,
            "import time\ndef handler(event, context):\n    time.sleep(event['s'])\n",
            Timeout=120,
        )
        recorder = deploy(
            lam,
            "import json\ndef handler(event, context):\n    print('RECORD ' + json.dumps(event))\n",
        )
        target = deploy(lam, "def handler(event, context):\n    print('ran')\n")
        lam.put_function_event_invoke_config(
            FunctionName=target,
            MaximumEventAgeInSeconds=60,
            DestinationConfig={
                "OnFailure": {
                    "Destination": f"arn:aws:lambda:us-east-1:000000000000:function:{recorder}"
                }
            },
        )
        import boto3
        from botocore.config import Config

        holder = boto3.client(
            "lambda",
            endpoint_url=srv.endpoint,
            region_name="us-east-1",
            aws_access_key_id=srv.access_key_id,
            aws_secret_access_key=srv.secret_access_key,
            config=Config(read_timeout=120, retries={"max_attempts": 0}),
        )
        blocker = threading.Thread(
            target=lambda: holder.invoke(FunctionName=hog, Payload=b'{"s": 66}')
        )
        blocker.start()
        time.sleep(1)
        send_event(lam, target, b'{"late": true}')
        blocker.join(120)
        holder.close()

        def records() -> list[dict[str, Any]]:
            return [
                json.loads(m[len("RECORD ") :])
                for m in messages(srv, recorder)
                if m.startswith("RECORD ")
            ]

        wait_for(lambda: len(records()) == 1, timeout=30)
        record = records()[0]
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 0
        assert record["requestPayload"] == {"late": True}
        assert "ran" not in messages(srv, target)
        import urllib.request

        with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10) as response:
            dropped = (
                f'lambda_async_events_dropped_total{{function="{target}",qualifier="$LATEST",'
                'reason="event_age_exceeded"} 1\n'
            )
            assert dropped in response.read().decode()
        lam.close()
    finally:
        assert srv.stop() == 0, srv.log()
