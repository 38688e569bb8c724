"""The CloudWatch Logs API on the Lambda endpoint, against the lines of real invocations:
boto3's ``logs`` client and the real AWS CLI, every filter-pattern form, retention."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

PRINTER = """
def handler(event, context):
    for line in event["lines"]:
        print(line)
    return len(event["lines"])
"""

ACCESS_404 = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534'
ACCESS_200 = '10.0.0.2 - ann [10/Oct/2000:13:25:16 -0700] "GET /logo.gif HTTP/1.0" 200 500'
JSON_ERROR = json.dumps(
    {"level": "ERROR", "latency": 250, "user": {"id": 7, "email": "ann@example.com"},
     "tags": ["db", "slow"], "retried": True, "note": None}
)  # fmt: skip
JSON_INFO = json.dumps(
    {"level": "INFO", "latency": 50, "user": {"id": 8}, "tags": ["web"], "retried": False}
)
LINES = [
    "ERROR payment failed for order 17",
    "WARN disk almost full",
    "INFO request served",
    "ERROR WARN retrying after timeout",
    "INFO contact user@example.com about the receipt",
    JSON_ERROR,
    JSON_INFO,
    ACCESS_404,
    ACCESS_200,
]
PLATFORM = ("START ", "END ", "REPORT ", "INIT_START ")


@pytest.fixture(scope="module")
def logs_client(server: ServerProcess) -> Iterator[Any]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name=server.region,
    )
    config = Config(retries={"max_attempts": 0, "mode": "standard"})
    client = session.client("logs", endpoint_url=server.endpoint, config=config)
    yield client
    client.close()


@pytest.fixture(scope="module")
def function(server: ServerProcess, logs_client: Any) -> str:
    """A function that printed ``LINES`` once; its log group holds them (and START/END/REPORT)."""
    lam = server.client()
    try:
        name = unique_name("logs")
        lam.create_function(
            FunctionName=name,
            Runtime=RUNTIME,
            Role="arn:aws:iam::000000000000:role/r",
            Handler="handler.handler",
            Code={"ZipFile": make_zip({"handler.py": PRINTER})},
        )
        wait_settled(lam, name)
        reply = lam.invoke(FunctionName=name, Payload=json.dumps({"lines": LINES}).encode())
        assert json.loads(reply["Payload"].read()) == len(LINES)
    finally:
        lam.close()
    wait_for_line(logs_client, f"/aws/lambda/{name}", "REPORT RequestId")
    return name


def wait_for_line(logs_client: Any, group: str, text: str, timeout: float = 10) -> None:
    """The sink writes in batches (every 0.2 s): wait until ``text`` is queryable."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            page = logs_client.filter_log_events(logGroupName=group)
        except logs_client.exceptions.ResourceNotFoundException:
            page = {"events": []}
        if any(text in e["message"] for e in page["events"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never reached {group}")


def ours(events: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in events if not e["message"].startswith(PLATFORM)]


def _aws(server: ServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"
    return subprocess.run(
        [aws, "logs", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        capture_output=True,
        text=True,
        env=server.cli_env(),
        timeout=60,
        check=check,
    )


# ---------------------------------------------------------------------------- boto3


def test_function_log_group_and_stream_exist_after_first_write(
    logs_client: Any, function: str, server: ServerProcess
) -> None:
    group = f"/aws/lambda/{function}"
    groups = logs_client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert len(groups) == 1
    found = groups[0]
    assert found["logGroupName"] == group
    assert found["arn"] == f"arn:aws:logs:{server.region}:000000000000:log-group:{group}:*"
    assert found["logGroupArn"] == found["arn"][:-2]
    assert found["storedBytes"] > sum(len(line) for line in LINES)
    assert found["metricFilterCount"] == 0 and found["logGroupClass"] == "STANDARD"
    assert abs(found["creationTime"] / 1000 - time.time()) < 120
    assert "retentionInDays" not in found

    streams = logs_client.describe_log_streams(logGroupName=group)["logStreams"]
    assert len(streams) == 1
    stream = streams[0]
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", stream["logStreamName"])
    assert (
        stream["firstEventTimestamp"] <= stream["lastEventTimestamp"] <= stream["lastIngestionTime"]
    )
    assert stream["arn"].endswith(f":log-group:{group}:log-stream:{stream['logStreamName']}")
    by_time = logs_client.describe_log_streams(
        logGroupIdentifier=found["logGroupArn"], orderBy="LastEventTime", descending=True
    )
    assert [s["logStreamName"] for s in by_time["logStreams"]] == [stream["logStreamName"]]


def test_get_log_events_reads_the_stream_and_its_tokens_end(
    logs_client: Any, function: str
) -> None:
    group = f"/aws/lambda/{function}"
    stream = logs_client.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]
    head = logs_client.get_log_events(
        logGroupName=group, logStreamName=stream, startFromHead=True, limit=3
    )
    assert head["events"][0]["message"].startswith(("INIT_START", "START RequestId"))
    messages = [e["message"] for e in head["events"]]
    token = head["nextForwardToken"]
    while True:  # the standard loop: stop when the same forward token comes back
        page = logs_client.get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=True, nextToken=token, limit=3
        )
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        messages += [e["message"] for e in page["events"]]
        token = page["nextForwardToken"]
    assert [m for m in messages if not m.startswith(PLATFORM)] == LINES
    assert messages[-1].startswith("REPORT RequestId")

    tail = logs_client.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    assert [e["message"].split()[0] for e in tail["events"]] == ["END", "REPORT"]
    before = logs_client.get_log_events(
        logGroupName=group, logStreamName=stream, nextToken=tail["nextBackwardToken"], limit=2
    )
    assert [e["message"] for e in before["events"]] == LINES[-2:]


# Every form of the filter pattern syntax, against LINES: (pattern, indexes of LINES).
FORMS = [
    ("ERROR", [0, 3, 5]),
    ("ERROR payment", [0]),
    ('"payment failed"', [0]),
    ('"user@example.com"', [4]),
    ("?WARN ?served", [1, 2, 3]),
    ("ERROR -WARN", [0, 5]),
    ("?ERROR ?WARN -retrying", [0, 1, 5]),
    ("%^INFO .*receipt$%", [4]),
    ('{ $.level = "ERROR" }', [5]),
    ("{ $.level = ERR* }", [5]),
    ("{ $.level != ERROR }", [6]),
    ("{ $.latency > 100 }", [5]),
    ("{ $.latency < 100 }", [6]),
    ("{ $.latency >= 250 && $.latency <= 250 }", [5]),
    ("{ $.user.id = 8 }", [6]),
    ('{ $.user.email = "*@example.com" }', [5]),
    ("{ $.tags[0] = db }", [5]),
    ("{ $.tags[1] = slow || $.tags[0] = web }", [5, 6]),
    ("{ ($.latency > 100 || $.user.id = 8) && $.level = INFO }", [6]),
    ("{ $.note IS NULL }", [5]),
    ("{ $.note NOT EXISTS }", [6]),
    ("{ $.retried IS TRUE }", [5]),
    ("{ $.retried IS FALSE }", [6]),
    ("{ $.level = %^E.*R$% }", [5]),
    ("[ip, user, username, timestamp, request, status_code, bytes]", [7, 8]),
    ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", [7]),
    ("[ip, ..., status_code, size > 1000]", [7]),
    ("[..., status_code = 200 || status_code = 404, bytes]", [7, 8]),
    ("[ip, user, username = ann, ...]", [8]),
    ("[ip, user, username, timestamp, request = *.gif*, status_code != 404, bytes < 1000]", [8]),
    ("[ip = %^10\\.%, ...]", [8]),
    ("[w1 = ERROR, w2 = WARN, ...]", [3]),
]


@pytest.mark.parametrize(("pattern", "indexes"), FORMS)
def test_filter_log_events_forms(
    logs_client: Any, function: str, pattern: str, indexes: list[int]
) -> None:
    page = logs_client.filter_log_events(
        logGroupName=f"/aws/lambda/{function}", filterPattern=pattern
    )
    assert ours(page["events"]) == [LINES[i] for i in indexes]


def test_filter_log_events_fields_paging_and_errors(logs_client: Any, function: str) -> None:
    group = f"/aws/lambda/{function}"
    everything = logs_client.filter_log_events(logGroupName=group)["events"]
    assert ours(everything) == LINES
    first = everything[0]
    assert first["logStreamName"].endswith("]" + first["logStreamName"].split("]")[1])
    assert set(first) == {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}
    paged = [
        e
        for page in logs_client.get_paginator("filter_log_events").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 2}
        )
        for e in page["events"]
    ]
    assert [e["eventId"] for e in paged] == [e["eventId"] for e in everything]
    later = logs_client.filter_log_events(
        logGroupName=group, startTime=everything[-1]["timestamp"] + 1
    )
    assert later["events"] == []
    with pytest.raises(ClientError) as err:
        logs_client.filter_log_events(logGroupName=group, filterPattern="user@example.com")
    assert err.value.response["Error"] == {
        "Code": "InvalidParameterException",
        "Message": "Invalid character(s) in term 'user@example.com'",
    }
    with pytest.raises(logs_client.exceptions.ResourceNotFoundException) as missing:
        logs_client.filter_log_events(logGroupName="/aws/lambda/never-logged")
    assert missing.value.response["Error"]["Message"] == "The specified log group does not exist."
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert missing.value.response["ResponseMetadata"]["RequestId"]


def test_custom_log_group(server: ServerProcess, logs_client: Any) -> None:
    lam = server.client()
    try:
        name = unique_name("custom")
        lam.create_function(
            FunctionName=name,
            Runtime=RUNTIME,
            Role="arn:aws:iam::000000000000:role/r",
            Handler="handler.handler",
            Code={"ZipFile": make_zip({"handler.py": PRINTER})},
            LoggingConfig={"LogFormat": "Text", "LogGroup": f"/shared/{name}"},
        )
        wait_settled(lam, name)
        lam.invoke(
            FunctionName=name, Payload=json.dumps({"lines": ["to the shared group"]}).encode()
        )
    finally:
        lam.close()
    wait_for_line(logs_client, f"/shared/{name}", "to the shared group")
    with pytest.raises(logs_client.exceptions.ResourceNotFoundException):
        logs_client.describe_log_streams(logGroupName=f"/aws/lambda/{name}")


def test_groups_streams_and_retention_lifecycle(server: ServerProcess, logs_client: Any) -> None:
    group = f"/app/{unique_name('life')}"
    logs_client.create_log_group(logGroupName=group)
    with pytest.raises(logs_client.exceptions.ResourceAlreadyExistsException):
        logs_client.create_log_group(logGroupName=group)
    logs_client.create_log_stream(logGroupName=group, logStreamName="manual")
    with pytest.raises(ClientError) as bad:
        logs_client.put_retention_policy(logGroupName=group, retentionInDays=2)
    assert bad.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "Member must satisfy enum value set: [1, 3, 5, 7, 14, 30" in str(bad.value)

    # Events from 10 and 2 days ago and from now, stored as the sink stores them.
    now_ms = int(time.time() * 1000)
    stamps = [now_ms - 10 * 86_400_000, now_ms - 2 * 86_400_000, now_ms]
    with sqlite3.connect(server.data_dir / "lambdaplane.db", timeout=10) as db:
        db.executemany(
            "INSERT INTO log_events (log_group, log_stream, timestamp, ingestion_time, message) "
            "VALUES (?, 'manual', ?, ?, ?)",
            [(group, ts, now_ms, f"event at {ts}") for ts in stamps],
        )
    db.close()
    assert len(logs_client.filter_log_events(logGroupName=group)["events"]) == 3

    logs_client.put_retention_policy(logGroupName=group, retentionInDays=7)
    described = logs_client.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert described["retentionInDays"] == 7
    assert [
        e["timestamp"] for e in logs_client.filter_log_events(logGroupName=group)["events"]
    ] == stamps[1:]

    # The sweep runs soon after PutRetentionPolicy and really deletes the expired rows.
    def stored() -> list[int]:
        with sqlite3.connect(f"file:{server.data_dir / 'lambdaplane.db'}?mode=ro", uri=True) as ro:
            rows = ro.execute(
                "SELECT timestamp FROM log_events WHERE log_group = ? ORDER BY timestamp", (group,)
            ).fetchall()
        ro.close()
        return [row[0] for row in rows]

    deadline = time.monotonic() + 10
    while stored() != stamps[1:] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored() == stamps[1:]
    logs_client.put_retention_policy(logGroupName=group, retentionInDays=1)
    deadline = time.monotonic() + 10
    while stored() != stamps[2:] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored() == stamps[2:]
    logs_client.delete_retention_policy(logGroupName=group)
    assert (
        "retentionInDays"
        not in logs_client.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    )

    logs_client.delete_log_stream(logGroupName=group, logStreamName="manual")
    with pytest.raises(logs_client.exceptions.ResourceNotFoundException) as gone:
        logs_client.get_log_events(logGroupName=group, logStreamName="manual")
    assert gone.value.response["Error"]["Message"] == "The specified log stream does not exist."
    logs_client.delete_log_group(logGroupName=group)
    with pytest.raises(logs_client.exceptions.ResourceNotFoundException):
        logs_client.delete_log_group(logGroupName=group)
    assert stored() == []


def test_signatures_are_scoped_per_api(server: ServerProcess) -> None:
    """A Logs request signed for ``lambda`` fails, and a Lambda request signed for ``logs``."""
    import http.client

    def send(path: str, body: bytes, headers: dict[str, str], service: str) -> tuple[int, bytes]:
        request = AWSRequest(
            method="POST" if body else "GET", url=server.endpoint + path, data=body, headers=headers
        )
        credentials = Credentials(server.access_key_id, server.secret_access_key)
        SigV4Auth(credentials, service, server.region).add_auth(request)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request(
                request.method, path, body=body or None, headers=dict(request.headers.items())
            )
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    target = {
        "X-Amz-Target": "Logs_20140328.DescribeLogGroups",
        "Content-Type": "application/x-amz-json-1.1",
    }
    status, body = send("/", b"{}", target, "lambda")
    assert status == 403
    assert json.loads(body) == {
        "__type": "InvalidSignatureException",
        "message": "Credential should be scoped to correct service: 'logs'. ",
    }
    assert send("/", b"{}", target, "logs")[0] == 200
    status, body = send("/2015-03-31/functions/", b"", {}, "logs")
    assert status == 403 and b"scoped to correct service: 'lambda'" in body
    assert send("/2015-03-31/functions/", b"", {}, "lambda")[0] == 200


# -------------------------------------------------------------------------- AWS CLI


def test_aws_cli_logs_commands(server: ServerProcess, function: str) -> None:
    group = f"/aws/lambda/{function}"
    groups = json.loads(
        _aws(server, "describe-log-groups", "--log-group-name-prefix", group).stdout
    )
    assert [g["logGroupName"] for g in groups["logGroups"]] == [group]

    streams = json.loads(
        _aws(
            server, "describe-log-streams", "--log-group-name", group,
            "--order-by", "LastEventTime", "--descending",
        ).stdout
    )["logStreams"]  # fmt: skip
    assert len(streams) == 1
    stream = streams[0]["logStreamName"]

    events = json.loads(
        _aws(
            server, "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
            "--start-from-head",
        ).stdout
    )  # fmt: skip
    assert ours(events["events"]) == LINES
    assert events["nextForwardToken"].startswith("f/")

    filtered = json.loads(
        _aws(
            server,
            "filter-log-events",
            "--log-group-name",
            group,
            "--filter-pattern",
            "ERROR -WARN",
        ).stdout
    )
    assert ours(filtered["events"]) == [LINES[0], JSON_ERROR]
    json_filtered = json.loads(
        _aws(
            server, "filter-log-events", "--log-group-name", group,
            "--filter-pattern", '{ $.level = "ERROR" && $.latency > 100 }',
        ).stdout
    )  # fmt: skip
    assert ours(json_filtered["events"]) == [JSON_ERROR]
    # The CLI follows nextToken itself: a page size of 1 still returns everything.
    paged = json.loads(
        _aws(server, "filter-log-events", "--log-group-name", group, "--page-size", "1").stdout
    )
    assert ours(paged["events"]) == LINES

    missing = _aws(
        server,
        "get-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        "nope",
        check=False,
    )
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr
    assert "The specified log stream does not exist." in missing.stderr
