"""``lambdaplane logs``: a function's log lines from the server's CloudWatch Logs API.

The command is a plain Logs API client (FilterLogEvents through botocore), so it shows
exactly what ``aws logs filter-log-events`` would. ``--follow`` polls about twice a
second from the newest timestamp seen, skipping the events it has already shown there
(event ids), so a line appears within about a second and never twice.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from lambdaplane import clients

POLL_SECONDS = 0.5
_SINCE = re.compile(r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d|w)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class LogsError(Exception):
    """The command cannot go on (no such function, no credentials, the server refused)."""


def parse_since(text: str, now: float) -> int:
    """``10m``, ``2h``, ``1d`` ago, or an ISO 8601 time, as epoch milliseconds."""
    match = _SINCE.fullmatch(text.strip())
    if match is not None:
        seconds = float(match.group("amount")) * _UNIT_SECONDS[match.group("unit")]
        return int((now - seconds) * 1000)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since takes a duration such as 30s, 10m, 2h, 1d or an ISO 8601 time, not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Style:
    """ANSI colours on a terminal, nothing when piped."""

    color: bool

    def paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def line(self, event: dict[str, Any]) -> str:
        stamp = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
        when = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        message = event["message"].rstrip("\n")
        return f"{self.paint('2', when)} {self.paint('36', event['logStreamName'])} {self._message(message)}"

    def _message(self, message: str) -> str:
        if message.startswith(("START ", "END ", "REPORT ", "INIT_START ", '{"time"')):
            return self.paint("2", message)  # platform lines recede
        if re.search(r"\b(ERROR|Error|Exception|Traceback|FATAL)\b", message):
            return self.paint("31", message)
        if re.search(r"\bWARN(ING)?\b", message):
            return self.paint("33", message)
        return message


class LogSource:
    """New events of one log group, optionally filtered, oldest first, each once."""

    def __init__(self, logs: Any, group: str, pattern: str | None, start_ms: int) -> None:
        self._logs = logs
        self._group = group
        self._pattern = pattern
        self._start = start_ms
        self._seen_at_start: set[str] = set()  # event ids already shown at ``_start``

    def poll(self) -> list[dict[str, Any]]:
        events = [e for e in self._fetch() if e.get("eventId") not in self._seen_at_start]
        events.sort(key=lambda e: (e["timestamp"], e.get("ingestionTime", 0)))
        if events:
            newest = events[-1]["timestamp"]
            if newest > self._start:
                self._start, self._seen_at_start = newest, set()
            self._seen_at_start |= {e["eventId"] for e in events if e["timestamp"] == newest}
        return events

    def _fetch(self) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"logGroupName": self._group, "startTime": self._start}
        if self._pattern:
            params["filterPattern"] = self._pattern
        while True:
            try:
                page = self._logs.filter_log_events(**params)
            except self._logs.exceptions.ResourceNotFoundException:
                return  # nothing logged yet: the group appears with the first line
            yield from page.get("events", [])
            token = page.get("nextToken")
            if not token:
                return
            params["nextToken"] = token


def log_group_of(lam: Any, function: str) -> str:
    """The function's LoggingConfig.LogGroup (AWS's default /aws/lambda/<name>)."""
    try:
        config = lam.get_function_configuration(FunctionName=function)
    except lam.exceptions.ResourceNotFoundException as exc:
        raise LogsError(exc.response["Error"]["Message"]) from exc
    group: str = (config.get("LoggingConfig") or {}).get("LogGroup") or (
        f"/aws/lambda/{config['FunctionName']}"
    )
    return group


@dataclass(frozen=True)
class LogsOptions:
    function: str | None
    log_group: str | None
    since: str
    pattern: str | None
    follow: bool
    color: str  # auto | always | never
    endpoint: str
    region: str | None
    data_dir: Path


def run(
    options: LogsOptions,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print the lines; with ``follow`` keep printing until interrupted. Exit status 0/2."""
    try:
        start = parse_since(options.since, time.time())
        logs = clients.client("logs", options.endpoint, options.region, options.data_dir, retries=2)
        group = options.log_group
        if group is None:
            assert options.function is not None
            lam = clients.client(
                "lambda", options.endpoint, options.region, options.data_dir, retries=2
            )
            try:
                group = log_group_of(lam, options.function)
            finally:
                lam.close()
    except (ValueError, LogsError, clients.NoCredentials) as exc:
        print(f"lambdaplane logs: {exc}", file=err)
        return 2
    color = options.color == "always" or (options.color == "auto" and out.isatty())
    style = Style(color)
    source = LogSource(logs, group, options.pattern, start)
    try:
        while True:
            for event in source.poll():
                out.write(style.line(event) + "\n")
            out.flush()
            if not options.follow:
                return 0
            sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # botocore's ClientError / connection errors
        print(f"lambdaplane logs: {exc}", file=err)
        return 2
    finally:
        logs.close()
