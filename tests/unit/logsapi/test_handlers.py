"""The operations over a real (SQLite) store with a fake clock: paging tokens,
GetLogEvents' forward/backward semantics, FilterLogEvents, retention on reads."""

from __future__ import annotations

import re
from typing import Any

import pytest

from lambdaplane.logsapi import handlers
from lambdaplane.logsapi.errors import (
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from lambdaplane.logsapi.service import DAY_MS
from lambdaplane.store.logs import LogEvent
from tests.unit.logsapi.conftest import Logs

GROUP = "/aws/lambda/fn"
STREAM = "2026/11/26/[$LATEST]abc"


def exact(text: str) -> str:
    return f"^{re.escape(text)}$"


def call(logs: Logs, operation: str, **params: Any) -> dict[str, Any]:
    return handlers.HANDLERS[operation](logs.service, params)


def write(logs: Logs, *stamps: int, stream: str = STREAM, prefix: str = "line") -> None:
    logs.writer.append([LogEvent(GROUP, stream, ts, f"{prefix} {ts}") for ts in stamps], 10**12)


def messages(page: dict[str, Any]) -> list[str]:
    return [e["message"] for e in page["events"]]


def test_groups_lifecycle(logs: Logs) -> None:
    call(logs, "CreateLogGroup", logGroupName="/app/one")
    with pytest.raises(
        ResourceAlreadyExistsException, match=exact("The specified log group already exists")
    ):
        call(logs, "CreateLogGroup", logGroupName="/app/one")
    call(logs, "CreateLogGroup", logGroupName="/app/two", logGroupClass="INFREQUENT_ACCESS")
    listed = call(logs, "DescribeLogGroups", logGroupNamePrefix="/app/")["logGroups"]
    assert listed[0] == {
        "logGroupName": "/app/one",
        "creationTime": int(logs.clock.now * 1000),
        "metricFilterCount": 0,
        "arn": "arn:aws:logs:us-east-1:000000000000:log-group:/app/one:*",
        "storedBytes": 0,
        "logGroupClass": "STANDARD",
        "logGroupArn": "arn:aws:logs:us-east-1:000000000000:log-group:/app/one",
    }
    assert listed[1]["logGroupClass"] == "INFREQUENT_ACCESS"
    page = call(logs, "DescribeLogGroups", limit=1)
    assert [g["logGroupName"] for g in page["logGroups"]] == ["/app/one"]
    rest = call(logs, "DescribeLogGroups", limit=1, nextToken=page["nextToken"])
    assert [g["logGroupName"] for g in rest["logGroups"]] == [
        "/app/two"
    ] and "nextToken" not in rest
    call(logs, "PutRetentionPolicy", logGroupName="/app/one", retentionInDays=7)
    assert logs.nudges == [1]
    assert (
        call(logs, "DescribeLogGroups", logGroupNamePattern="ONE")["logGroups"][0][
            "retentionInDays"
        ]
        == 7
    )
    call(logs, "DeleteRetentionPolicy", logGroupName="/app/one")
    assert "retentionInDays" not in call(logs, "DescribeLogGroups")["logGroups"][0]
    call(logs, "DeleteLogGroup", logGroupName="/app/one")
    for operation, params in [
        ("DeleteLogGroup", {}),
        ("PutRetentionPolicy", {"retentionInDays": 1}),
        ("DeleteRetentionPolicy", {}),
        ("DescribeLogStreams", {}),
        ("FilterLogEvents", {}),
        ("CreateLogStream", {"logStreamName": "x"}),
    ]:
        with pytest.raises(
            ResourceNotFoundException, match=exact("The specified log group does not exist.")
        ):
            call(logs, operation, logGroupName="/app/one", **params)


@pytest.mark.parametrize("days", [0, 2, 4000, -1])
def test_retention_values_are_aws_s(logs: Logs, days: int) -> None:
    call(logs, "CreateLogGroup", logGroupName="g")
    with pytest.raises(InvalidParameterException) as err:
        call(logs, "PutRetentionPolicy", logGroupName="g", retentionInDays=days)
    assert err.value.message == (
        f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy "
        "constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, "
        "180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]"
    )


def test_group_identifiers(logs: Logs) -> None:
    write(logs, 1)
    arn = "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/fn"
    for identifier in (GROUP, arn, arn + ":*"):
        page = call(logs, "FilterLogEvents", logGroupIdentifier=identifier)
        assert messages(page) == ["line 1"]
    with pytest.raises(ResourceNotFoundException):
        call(logs, "FilterLogEvents", logGroupIdentifier=arn.replace("us-east-1", "eu-west-1"))
    with pytest.raises(InvalidParameterException, match="mutually exclusive"):
        call(logs, "FilterLogEvents", logGroupName=GROUP, logGroupIdentifier=arn)
    with pytest.raises(InvalidParameterException):
        call(logs, "GetLogEvents", logStreamName=STREAM)


def test_streams(logs: Logs) -> None:
    write(logs, 300, 100, stream="b")
    write(logs, 200, stream="a")
    call(logs, "CreateLogStream", logGroupName=GROUP, logStreamName="c")
    with pytest.raises(
        ResourceAlreadyExistsException, match=exact("The specified log stream already exists")
    ):
        call(logs, "CreateLogStream", logGroupName=GROUP, logStreamName="c")
    streams = call(logs, "DescribeLogStreams", logGroupName=GROUP)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["a", "b", "c"]
    assert streams[1] == {
        "logStreamName": "b",
        "creationTime": 10**12,
        "firstEventTimestamp": 100,
        "lastEventTimestamp": 300,
        "lastIngestionTime": 10**12,
        "arn": f"arn:aws:logs:us-east-1:000000000000:log-group:{GROUP}:log-stream:b",
        "storedBytes": 0,
    }
    assert set(streams[2]) == {"logStreamName", "creationTime", "arn", "storedBytes"}
    newest = call(
        logs, "DescribeLogStreams", logGroupName=GROUP, orderBy="LastEventTime", descending=True
    )
    assert [s["logStreamName"] for s in newest["logStreams"]] == ["b", "a", "c"]
    seen: list[str] = []
    params: dict[str, Any] = {"logGroupName": GROUP, "orderBy": "LastEventTime", "limit": 1}
    while True:
        page = call(logs, "DescribeLogStreams", **params)
        seen += [s["logStreamName"] for s in page["logStreams"]]
        if "nextToken" not in page:
            break
        params["nextToken"] = page["nextToken"]
    assert seen == ["c", "a", "b"]
    assert [
        s["logStreamName"]
        for s in call(logs, "DescribeLogStreams", logGroupName=GROUP, logStreamNamePrefix="b")[
            "logStreams"
        ]
    ] == ["b"]
    with pytest.raises(
        InvalidParameterException,
        match=exact("Cannot order by LastEventTime with a logStreamNamePrefix."),
    ):
        call(
            logs,
            "DescribeLogStreams",
            logGroupName=GROUP,
            orderBy="LastEventTime",
            logStreamNamePrefix="b",
        )
    with pytest.raises(
        InvalidParameterException, match=exact("The specified nextToken is invalid.")
    ):
        call(logs, "DescribeLogStreams", logGroupName=GROUP, nextToken="garbage!")
    call(logs, "DeleteLogStream", logGroupName=GROUP, logStreamName="b")
    with pytest.raises(
        ResourceNotFoundException, match=exact("The specified log stream does not exist.")
    ):
        call(logs, "DeleteLogStream", logGroupName=GROUP, logStreamName="b")
    with pytest.raises(
        ResourceNotFoundException, match=exact("The specified log stream does not exist.")
    ):
        call(logs, "GetLogEvents", logGroupName=GROUP, logStreamName="b")


def test_get_log_events_tail_then_forward_and_backward(logs: Logs) -> None:
    write(logs, *range(1, 11))  # line 1 .. line 10
    tail = call(logs, "GetLogEvents", logGroupName=GROUP, logStreamName=STREAM, limit=3)
    assert messages(tail) == ["line 8", "line 9", "line 10"]
    assert tail["events"][0] == {"timestamp": 8, "message": "line 8", "ingestionTime": 10**12}
    assert tail["nextForwardToken"].startswith("f/") and tail["nextForwardToken"].endswith("/s")
    assert len(tail["nextForwardToken"]) == 2 + 56 + 2

    # Nothing newer: the same forward token comes back (how clients know to stop).
    ahead = call(
        logs,
        "GetLogEvents",
        logGroupName=GROUP,
        logStreamName=STREAM,
        nextToken=tail["nextForwardToken"],
        startFromHead=True,
    )
    assert ahead["events"] == [] and ahead["nextForwardToken"] == tail["nextForwardToken"]
    write(logs, 11, 12)
    ahead = call(
        logs,
        "GetLogEvents",
        logGroupName=GROUP,
        logStreamName=STREAM,
        nextToken=ahead["nextForwardToken"],
        startFromHead=True,
    )
    assert messages(ahead) == ["line 11", "line 12"]

    back = call(
        logs,
        "GetLogEvents",
        logGroupName=GROUP,
        logStreamName=STREAM,
        nextToken=tail["nextBackwardToken"],
        limit=4,
    )
    assert messages(back) == ["line 4", "line 5", "line 6", "line 7"]
    back = call(
        logs,
        "GetLogEvents",
        logGroupName=GROUP,
        logStreamName=STREAM,
        nextToken=back["nextBackwardToken"],
        limit=4,
    )
    assert messages(back) == ["line 1", "line 2", "line 3"]
    end = call(
        logs,
        "GetLogEvents",
        logGroupName=GROUP,
        logStreamName=STREAM,
        nextToken=back["nextBackwardToken"],
        limit=4,
    )
    assert end["events"] == [] and end["nextBackwardToken"] == back["nextBackwardToken"]
    # ... and going forward again from the start's edge reads the first events.
    again = call(
        logs,
        "GetLogEvents",
        logGroupName=GROUP,
        logStreamName=STREAM,
        nextToken=end["nextForwardToken"],
        limit=2,
    )
    assert messages(again) == ["line 1", "line 2"]


def test_get_log_events_from_head_with_time_bounds(logs: Logs) -> None:
    write(logs, *range(1, 11))
    head = call(
        logs, "GetLogEvents", logGroupName=GROUP, logStreamName=STREAM, startFromHead=True, limit=2
    )
    assert messages(head) == ["line 1", "line 2"]
    seen = messages(head)
    token = head["nextForwardToken"]
    while True:
        page = call(
            logs,
            "GetLogEvents",
            logGroupName=GROUP,
            logStreamName=STREAM,
            startFromHead=True,
            nextToken=token,
            limit=3,
        )
        if page["nextForwardToken"] == token:
            break
        seen += messages(page)
        token = page["nextForwardToken"]
    assert seen == [f"line {i}" for i in range(1, 11)]
    bounded = call(
        logs,
        "GetLogEvents",
        logGroupName=GROUP,
        logStreamName=STREAM,
        startTime=3,
        endTime=6,
        startFromHead=True,
    )
    assert messages(bounded) == ["line 3", "line 4", "line 5"]  # endTime is exclusive
    empty = call(logs, "GetLogEvents", logGroupName=GROUP, logStreamName=STREAM, startTime=100)
    assert empty["events"] == []
    for bad in ("x", "f/123/s", "c/" + "0" * 56 + "/s"):
        with pytest.raises(
            InvalidParameterException, match=exact("The specified nextToken is invalid.")
        ):
            call(logs, "GetLogEvents", logGroupName=GROUP, logStreamName=STREAM, nextToken=bad)


def test_filter_log_events_across_streams_with_paging(logs: Logs) -> None:
    write(logs, 1, 3, 5, stream="a", prefix="ERROR")
    write(logs, 2, 4, 6, stream="b", prefix="INFO")
    everything = call(logs, "FilterLogEvents", logGroupName=GROUP)
    assert [(e["logStreamName"], e["timestamp"]) for e in everything["events"]] == [
        ("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5), ("b", 6),
    ]  # fmt: skip
    assert "nextToken" not in everything and everything["searchedLogStreams"] == []
    first = everything["events"][0]
    assert set(first) == {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}
    assert len(first["eventId"]) == 56 and first["eventId"].isdigit()
    assert len({e["eventId"] for e in everything["events"]}) == 6

    errors = call(logs, "FilterLogEvents", logGroupName=GROUP, filterPattern="ERROR")
    assert messages(errors) == ["ERROR 1", "ERROR 3", "ERROR 5"]
    assert messages(call(logs, "FilterLogEvents", logGroupName=GROUP, logStreamNames=["b"])) == [
        "INFO 2",
        "INFO 4",
        "INFO 6",
    ]
    assert messages(
        call(
            logs,
            "FilterLogEvents",
            logGroupName=GROUP,
            logStreamNamePrefix="a",
            startTime=2,
            endTime=5,
        )
    ) == ["ERROR 3"]
    seen: list[str] = []
    params: dict[str, Any] = {"logGroupName": GROUP, "limit": 4}
    while True:
        page = call(logs, "FilterLogEvents", **params)
        seen += messages(page)
        if "nextToken" not in page:
            break
        params["nextToken"] = page["nextToken"]
    assert seen == messages(everything)
    with pytest.raises(InvalidParameterException, match="Invalid character"):
        call(logs, "FilterLogEvents", logGroupName=GROUP, filterPattern="a.b")
    with pytest.raises(InvalidParameterException, match="mutually exclusive"):
        call(
            logs,
            "FilterLogEvents",
            logGroupName=GROUP,
            logStreamNames=["a"],
            logStreamNamePrefix="a",
        )


def test_reads_hide_events_past_retention(logs: Logs) -> None:
    now_ms = int(logs.clock.now * 1000)
    write(logs, now_ms - 3 * DAY_MS, now_ms - 2 * DAY_MS, now_ms - 1000)
    call(logs, "PutRetentionPolicy", logGroupName=GROUP, retentionInDays=1)
    assert len(call(logs, "FilterLogEvents", logGroupName=GROUP)["events"]) == 1
    assert len(call(logs, "GetLogEvents", logGroupName=GROUP, logStreamName=STREAM)["events"]) == 1
    logs.clock.now += DAY_MS / 1000
    assert call(logs, "FilterLogEvents", logGroupName=GROUP)["events"] == []
    call(logs, "PutRetentionPolicy", logGroupName=GROUP, retentionInDays=5)
    assert len(call(logs, "FilterLogEvents", logGroupName=GROUP)["events"]) == 3
