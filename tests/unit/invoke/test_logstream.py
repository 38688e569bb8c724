"""An environment's log stream in Text and JSON formats."""

from __future__ import annotations

import json
from typing import Any, cast

from lambdaplane.invoke.logformat import TEXT, LogFormat
from lambdaplane.invoke.logsink import LogSink
from lambdaplane.invoke.logstream import LogStream
from lambdaplane.store.logs import LogEvent

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


class ListSink:
    def __init__(self) -> None:
        self.events: list[LogEvent] = []

    def add(self, event: LogEvent) -> None:
        self.events.append(event)


def stream(fmt: LogFormat = TEXT) -> tuple[LogStream, ListSink]:
    sink = ListSink()
    return LogStream("/g", "s", cast(LogSink, sink), lambda: 1_798_372_800.0, fmt), sink


def records(sink: ListSink) -> list[dict[str, Any]]:
    """The JSON lines (plain application lines left out)."""
    return [json.loads(e.message) for e in sink.events if e.message.startswith("{")]


def invocation(log: LogStream, trace: str | None = None) -> None:
    log.init_start("python3.12", "arn:aws:lambda:us-east-1::runtime:ab", "fn", "$LATEST")
    log.init_done("success", 12.0)
    log.start("r-1", "$LATEST", trace)
    log.output(b'{"level": "DEBUG", "message": "d"}\nprinted\n', None)
    log.report(
        "r-1", 1.5, 128, 40 * 1024 * 1024, 12.0, None, None, produced_bytes=2, trace_id=trace
    )


def test_text_lines_are_awss() -> None:
    log, sink = stream()
    invocation(log)
    lines = [e.message for e in sink.events]
    assert lines[0].startswith("INIT_START Runtime Version: python3.12\tRuntime Version ARN: ")
    assert lines[1:5] == [
        "START RequestId: r-1 Version: $LATEST",
        '{"level": "DEBUG", "message": "d"}',
        "printed",
        "END RequestId: r-1",
    ]
    assert lines[5] == (
        # A cold start bills its init too (AWS, since 2025-08-01): 1.5 + 12 ms -> 14 ms.
        "REPORT RequestId: r-1\tDuration: 1.50 ms\tBilled Duration: 14 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 40 MB\tInit Duration: 12.00 ms\t"
    )


def test_text_report_names_the_xray_trace_when_active() -> None:
    log, sink = stream()
    invocation(log, TRACE)
    assert sink.events[-1].message.endswith(
        "Init Duration: 12.00 ms\tXRAY TraceId: 1-5759e988-bd862e3fe1be46a994272793\t"
        "SegmentId: 53995c3f42cd8ad8\tSampled: true\t"
    )


def test_json_at_info_keeps_initstart_start_report_and_info_lines() -> None:
    log, sink = stream(LogFormat.of("JSON", "INFO", "INFO"))
    invocation(log)
    assert [e.message for e in sink.events][2] == "printed"
    shown = [json.loads(e.message) for e in sink.events if e.message.startswith('{"time"')]
    assert [r["type"] for r in shown] == ["platform.initStart", "platform.start", "platform.report"]
    assert shown[1]["record"] == {"requestId": "r-1", "version": "$LATEST"}
    assert shown[2]["record"] == {
        "requestId": "r-1",
        "metrics": {
            "durationMs": 1.5,
            "billedDurationMs": 14,
            "memorySizeMB": 128,
            "maxMemoryUsedMB": 40,
            "initDurationMs": 12.0,
        },
        "status": "success",
    }
    assert all(r["time"] == "2026-12-27T12:00:00.000Z" for r in shown)


def test_json_at_debug_adds_init_and_runtime_done_records() -> None:
    log, sink = stream(LogFormat.of("JSON", "DEBUG", "DEBUG"))
    invocation(log, TRACE)
    types = [r.get("type") or r.get("level") for r in records(sink)[:-2]]
    assert types == [
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.start",
        "DEBUG",
    ]
    done, report = records(sink)[-2:]
    assert done["type"] == "platform.runtimeDone"
    assert done["record"]["metrics"] == {"durationMs": 1.5, "producedBytes": 2}
    assert report["record"]["tracing"] == {"type": "X-Amzn-Trace-Id", "value": TRACE}


def test_json_at_warn_keeps_only_failures() -> None:
    log, sink = stream(LogFormat.of("JSON", "ERROR", "WARN"))
    invocation(log)
    assert sink.events == []  # success records are INFO/DEBUG; plain and DEBUG lines dropped
    log.start("r-2", "$LATEST")
    log.output(b'{"level": "ERROR", "message": "bad"}\n', None)
    log.timed_out("r-2", 3)  # Text only: the records say it
    log.report("r-2", 3000.0, 128, None, None, "timeout", "Sandbox.Timedout")
    messages = [e.message for e in sink.events]
    assert messages[0] == '{"level": "ERROR", "message": "bad"}'
    done, report = (json.loads(m) for m in messages[1:])
    assert done["record"]["status"] == "timeout" and report["record"]["status"] == "timeout"
    assert report["record"]["errorType"] == "Sandbox.Timedout"
