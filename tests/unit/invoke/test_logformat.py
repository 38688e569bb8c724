"""LogFormat JSON: AWS's platform records, their levels, and application-level filtering."""

from __future__ import annotations

import json

import pytest

from lambdaplane.invoke import logformat
from lambdaplane.invoke.logformat import DEBUG, INFO, TEXT, WARN, LogFormat

NOON = 1_798_372_800.5  # 2026-12-27T12:00:00.500Z


def test_records_are_compact_json_with_millisecond_time() -> None:
    line = logformat.encode(NOON, "platform.start", logformat.start("r-1", "$LATEST"))
    assert line == (
        '{"time":"2026-12-27T12:00:00.500Z","type":"platform.start",'
        '"record":{"requestId":"r-1","version":"$LATEST"}}'
    )


def test_init_start_record() -> None:
    record = logformat.init_start("python3.12", "arn:aws:lambda:us-east-1::runtime:ab", "fn", "3")
    assert record == {
        "initializationType": "on-demand",
        "phase": "init",
        "runtimeVersion": "python3.12",
        "runtimeVersionArn": "arn:aws:lambda:us-east-1::runtime:ab",
        "functionName": "fn",
        "functionVersion": "3",
    }


def test_report_record_as_cloudwatch_shows_it() -> None:
    record = logformat.report("r-1", "success", 18.5934, 2048, 246 * 1024 * 1024)
    # Key order as CloudWatch shows it: requestId, metrics, status.
    assert json.dumps(record, separators=(",", ":")) == (
        '{"requestId":"r-1","metrics":{"durationMs":18.593,"billedDurationMs":19,'
        '"memorySizeMB":2048,"maxMemoryUsedMB":246},"status":"success"}'
    )
    cold = logformat.report("r-2", "timeout", 3000.0, 128, None, 120.25, "Sandbox.Timedout")
    assert cold["metrics"]["initDurationMs"] == 120.25
    assert cold["metrics"]["billedDurationMs"] == 3121  # init is billed too
    assert cold["status"] == "timeout" and cold["errorType"] == "Sandbox.Timedout"


def test_tracing_member_only_with_a_trace() -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert "tracing" not in logformat.start("r", "$LATEST")
    assert logformat.start("r", "$LATEST", header)["tracing"] == {
        "type": "X-Amzn-Trace-Id",
        "value": header,
    }
    done = logformat.runtime_done("r", "error", 2.0, 0, "Runtime.ExitError", header)
    assert done["errorType"] == "Runtime.ExitError" and done["tracing"]["value"] == header
    assert done["metrics"] == {"durationMs": 2.0, "producedBytes": 0}


@pytest.mark.parametrize(
    ("type", "record", "level"),
    [
        ("platform.initStart", {"runtimeVersion": "python3.12"}, INFO),
        ("platform.initStart", {}, DEBUG),
        ("platform.initRuntimeDone", {"status": "success"}, DEBUG),
        ("platform.initRuntimeDone", {"status": "error"}, WARN),
        ("platform.initReport", {"status": "success", "initializationType": "on-demand"}, DEBUG),
        (
            "platform.initReport",
            {"status": "success", "initializationType": "provisioned-concurrency"},
            INFO,
        ),
        ("platform.initReport", {"status": "timeout", "initializationType": "on-demand"}, WARN),
        ("platform.start", {"requestId": "r"}, INFO),
        ("platform.runtimeDone", {"status": "success"}, DEBUG),
        ("platform.runtimeDone", {"status": "timeout"}, WARN),
        ("platform.report", {"status": "success"}, INFO),
        ("platform.report", {"status": "error"}, WARN),
        ("platform.logsDropped", {}, WARN),
    ],
)
def test_system_log_level_mapping(type: str, record: dict[str, str], level: int) -> None:
    assert logformat.system_level(type, record) == level


def test_application_level_of_a_line() -> None:
    assert logformat.application_level('{"level": "debug", "msg": "x"}') == DEBUG
    assert logformat.application_level('{"timestamp": "t", "level": "WARNING"}') == WARN
    assert logformat.application_level('{"level": "NOTICE"}') == INFO  # invalid: INFO
    assert logformat.application_level('{"level": 3}') == INFO
    assert logformat.application_level('{"msg": "no level"}') == INFO
    assert logformat.application_level("plain text") == INFO
    assert logformat.application_level('{"level": "ERROR"') == INFO  # not JSON
    assert logformat.application_level('["level", "ERROR"]') == INFO


def test_filtering_applies_in_json_only() -> None:
    debug, plain = '{"level":"DEBUG","message":"d"}', "printed"
    assert TEXT.keeps_application(debug) and TEXT.keeps_application(plain)
    at_info = LogFormat.of("JSON", "INFO", "INFO")
    assert not at_info.keeps_application(debug) and at_info.keeps_application(plain)
    at_trace = LogFormat.of("JSON", "TRACE", "INFO")
    assert at_trace.keeps_application(debug)
    at_warn = LogFormat.of("JSON", "WARN", "WARN")
    # A line without a level is INFO (AWS's rule), so WARN drops plain output too.
    assert not at_warn.keeps_application(plain)
    assert at_warn.keeps_application('{"level":"ERROR","message":"e"}')
    assert not at_warn.keeps_system("platform.start", {"requestId": "r"})
    assert at_warn.keeps_system("platform.report", {"status": "timeout"})
    assert LogFormat.of("Text", "ERROR", "WARN") is TEXT  # levels apply to JSON only
