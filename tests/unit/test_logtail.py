"""The pure parts of ``lambdaplane logs``: --since, styling, and showing each event once."""

from __future__ import annotations

from typing import Any

import pytest

from lambdaplane.logtail import LogSource, Style, parse_since

NOW = 1_800_000_000.0


def test_parse_since() -> None:
    assert parse_since("10m", NOW) == int((NOW - 600) * 1000)
    assert parse_since("2h", NOW) == int((NOW - 7200) * 1000)
    assert parse_since("1d", NOW) == int((NOW - 86400) * 1000)
    assert parse_since("1.5s", NOW) == int((NOW - 1.5) * 1000)
    assert parse_since("2026-11-26T22:00:00Z", NOW) == 1795730400000
    assert parse_since("2026-11-26T22:00:00", NOW) == 1795730400000  # UTC when no zone
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday", NOW)


EVENT = {"timestamp": 1795730400123, "logStreamName": "2026/11/26/[$LATEST]abc", "eventId": "1"}


def test_plain_when_piped() -> None:
    line = Style(False).line({**EVENT, "message": "ERROR boom\n"})
    assert line == "2026-11-26T22:00:00.123Z 2026/11/26/[$LATEST]abc ERROR boom"
    assert "\x1b" not in line


def test_colours_on_a_terminal() -> None:
    style = Style(True)
    assert "\x1b[31mERROR boom" in style.line({**EVENT, "message": "ERROR boom"})
    assert "\x1b[2mREPORT RequestId" in style.line({**EVENT, "message": "REPORT RequestId: x"})
    assert style.line({**EVENT, "message": "hello"}).endswith(" hello")


class FakeLogs:
    """Pages of FilterLogEvents answers, as a real server gives them (pure-logic test)."""

    class exceptions:  # botocore names it so
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.missing = False

    def filter_log_events(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        if self.missing:
            raise self.exceptions.ResourceNotFoundException()
        matching = [e for e in self.events if e["timestamp"] >= params["startTime"]]
        start = int(params.get("nextToken", 0))
        page = matching[start : start + 2]
        answer: dict[str, Any] = {"events": page}
        if start + 2 < len(matching):
            answer["nextToken"] = str(start + 2)
        return answer


def _event(ts: int, event_id: str, message: str = "m") -> dict[str, Any]:
    return {"timestamp": ts, "eventId": event_id, "message": message, "logStreamName": "s"}


def test_each_event_is_shown_once_across_polls_and_pages() -> None:
    logs = FakeLogs()
    logs.missing = True
    source = LogSource(logs, "/aws/lambda/f", "ERROR", 1000)
    assert source.poll() == []  # the group does not exist yet
    logs.missing = False
    logs.events = [_event(1000, "a"), _event(1001, "b"), _event(1001, "c")]
    assert [e["eventId"] for e in source.poll()] == ["a", "b", "c"]  # two pages
    assert logs.calls[-1]["filterPattern"] == "ERROR"
    logs.events.append(_event(1001, "d"))  # same millisecond as the last one shown
    logs.events.append(_event(1005, "e"))
    assert [e["eventId"] for e in source.poll()] == ["d", "e"]
    assert logs.calls[-1]["startTime"] == 1001
    assert source.poll() == []
