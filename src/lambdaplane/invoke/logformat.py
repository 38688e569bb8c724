"""LoggingConfig's JSON format: AWS's platform records and the levels that filter them.

With ``LogFormat: JSON`` Lambda writes its own lines (INIT_START, START, END, REPORT)
as Telemetry-API-shaped records, ``{"time", "type", "record"}``, and drops those below
``SystemLogLevel``; it drops application lines that are JSON objects whose ``"level"``
is below ``ApplicationLogLevel`` (a line without one counts as INFO). In Text format
nothing is filtered. Shapes follow the Telemetry API Event schema reference and
records captured from CloudWatch; each record's level is a row of AWS's "System log
level event mapping" (see ``system_level``). Everything here is pure.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
TRACE, DEBUG, INFO, WARN, ERROR, FATAL = range(6)
_ALIASES = {"WARNING": WARN, "CRITICAL": FATAL}  # Python's logging names
TRACE_TYPE = "X-Amzn-Trace-Id"


def parse_level(name: object, default: int = INFO) -> int:
    """A level name (any case; Python's WARNING/CRITICAL too) as its rank, else ``default``."""
    if not isinstance(name, str):
        return default
    upper = name.upper()
    if upper in LEVELS:
        return LEVELS.index(upper)
    return _ALIASES.get(upper, default)


@dataclass(frozen=True)
class LogFormat:
    """How an environment's log stream is written: Text, or JSON with its two levels."""

    json: bool = False
    application_level: int = INFO
    system_level: int = INFO

    @classmethod
    def of(
        cls, log_format: str, application_level: str | None, system_level: str | None
    ) -> LogFormat:
        if log_format != "JSON":
            return TEXT
        return cls(True, parse_level(application_level), parse_level(system_level))

    def keeps_application(self, line: str) -> bool:
        """Whether an application line passes ApplicationLogLevel (always, in Text)."""
        if not self.json or self.application_level == TRACE:
            return True
        if self.application_level <= INFO and (not line.startswith("{") or '"level"' not in line):
            return True  # a line without a level is INFO: no need to parse it
        return application_level(line) >= self.application_level

    def keeps_system(self, type: str, record: dict[str, Any]) -> bool:
        return system_level(type, record) >= self.system_level


TEXT = LogFormat()


def application_level(line: str) -> int:
    """The level Lambda gives an application line: its JSON ``"level"``, else INFO."""
    if not line.startswith("{"):
        return INFO
    try:
        document = json.loads(line)
    except ValueError:
        return INFO
    if not isinstance(document, dict):
        return INFO
    return parse_level(document.get("level"))


def iso_ms(epoch: float) -> str:
    """AWS's record time: UTC, millisecond precision, ``Z``."""
    seconds = int(epoch)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (
        f".{int((epoch - seconds) * 1000):03d}Z"
    )


_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode(epoch: float, type: str, record: dict[str, Any]) -> str:
    """One system log line: ``{"time","type","record"}``, compact as AWS writes it."""
    return _compact({"time": iso_ms(epoch), "type": type, "record": record})


def status_of(report_status: str | None) -> str:
    """An outcome's REPORT status (None for success) as a record's ``status``."""
    return report_status or "success"


def billed_ms(duration_ms: float, init_duration_ms: float | None = None) -> int:
    """Billed Duration: whole milliseconds, rounded up. Since 2025-08-01 AWS bills the
    init phase of on-demand cold starts for every runtime, so it is included."""
    return max(1, math.ceil(duration_ms + (init_duration_ms or 0.0)))


def memory_used_mb(peak_bytes: int | None) -> int:
    return math.ceil(peak_bytes / (1024 * 1024)) if peak_bytes else 0


def _tracing(trace_id: str | None) -> dict[str, str] | None:
    return {"type": TRACE_TYPE, "value": trace_id} if trace_id else None


def init_start(
    runtime_version: str,
    runtime_version_arn: str,
    function_name: str,
    function_version: str,
    initialization_type: str = "on-demand",
) -> dict[str, Any]:
    return {
        "initializationType": initialization_type,
        "phase": "init",
        "runtimeVersion": runtime_version,
        "runtimeVersionArn": runtime_version_arn,
        "functionName": function_name,
        "functionVersion": function_version,
    }


def init_runtime_done(
    status: str, error_type: str | None = None, initialization_type: str = "on-demand"
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "initializationType": initialization_type,
        "phase": "init",
        "status": status,
    }
    if status != "success" and error_type:
        record["errorType"] = error_type
    return record


def init_report(
    status: str,
    duration_ms: float,
    error_type: str | None = None,
    initialization_type: str = "on-demand",
) -> dict[str, Any]:
    record = init_runtime_done(status, error_type, initialization_type)
    record["metrics"] = {"durationMs": round(duration_ms, 3)}
    return record


def start(request_id: str, version: str, trace_id: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"requestId": request_id, "version": version}
    tracing = _tracing(trace_id)
    if tracing:
        record["tracing"] = tracing
    return record


def runtime_done(
    request_id: str,
    status: str,
    duration_ms: float,
    produced_bytes: int,
    error_type: str | None = None,
    trace_id: str | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {"requestId": request_id, "status": status}
    if status != "success" and error_type:
        record["errorType"] = error_type
    tracing = _tracing(trace_id)
    if tracing:
        record["tracing"] = tracing
    record["metrics"] = {"durationMs": round(duration_ms, 3), "producedBytes": produced_bytes}
    return record


def report(
    request_id: str,
    status: str,
    duration_ms: float,
    memory_mb: int,
    peak_bytes: int | None,
    init_duration_ms: float | None = None,
    error_type: str | None = None,
    trace_id: str | None = None,
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "durationMs": round(duration_ms, 3),
        "billedDurationMs": billed_ms(duration_ms, init_duration_ms),
        "memorySizeMB": memory_mb,
        "maxMemoryUsedMB": memory_used_mb(peak_bytes),
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = round(init_duration_ms, 3)
    record: dict[str, Any] = {"requestId": request_id, "metrics": metrics, "status": status}
    if status != "success" and error_type:
        record["errorType"] = error_type
    tracing = _tracing(trace_id)
    if tracing:
        record["tracing"] = tracing
    return record


def system_level(type: str, record: dict[str, Any]) -> int:
    """The level AWS's "System log level event mapping" gives a platform record."""
    ok = record.get("status", "success") == "success"
    if type == "platform.initStart":
        return INFO if record.get("runtimeVersion") else DEBUG
    if type == "platform.initReport":
        if not ok:
            return WARN
        return DEBUG if record.get("initializationType") == "on-demand" else INFO
    if type in ("platform.initRuntimeDone", "platform.runtimeDone"):
        return DEBUG if ok else WARN
    if type == "platform.report":
        return INFO if ok else WARN
    if type == "platform.logsDropped":
        return WARN
    return INFO  # platform.start, subscriptions
