"""One environment's log stream: the runtime's output cut into lines, AWS's platform
lines (INIT_START, START, END, REPORT, …) or, with ``LogFormat: JSON``, their JSON
records filtered by the function's levels; the store; and the invocation's tail for
LogType=Tail."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from lambdaplane.invoke import logformat
from lambdaplane.invoke.logformat import TEXT, LogFormat
from lambdaplane.invoke.logsink import LogSink
from lambdaplane.invoke.tracing import xray_report_fields
from lambdaplane.store.logs import LogEvent

TAIL_BYTES = 4096


class LogStream:
    def __init__(
        self,
        group: str,
        name: str,
        sink: LogSink,
        wall: Callable[[], float],
        fmt: LogFormat = TEXT,
    ) -> None:
        self.group = group
        self.name = name
        self.format = fmt
        self._sink = sink
        self._wall = wall
        self._partial = b""
        self._lines: list[str] = []  # since the last invocation began (for Tail)

    def output(self, data: bytes, ts: int | None) -> None:
        """Bytes the runtime wrote; complete lines are stored, a trailing part waits."""
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        stamp = ts if isinstance(ts, int) else int(self._wall() * 1000)
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if self.format.keeps_application(line):
                self._emit(line, stamp)

    def flush_partial(self) -> None:
        if self._partial:
            partial, self._partial = self._partial, b""
            line = partial.decode("utf-8", "replace")
            if self.format.keeps_application(line):
                self._emit(line, int(self._wall() * 1000))

    def platform(self, line: str) -> None:
        """A line of the platform's own, in either format (agent errors and the like)."""
        self._emit(line, int(self._wall() * 1000))

    def _record(self, type: str, record: dict[str, Any]) -> None:
        if self.format.keeps_system(type, record):
            now = self._wall()
            self._emit(logformat.encode(now, type, record), int(now * 1000))

    # -- the platform's lines -----------------------------------------------------------

    def init_start(
        self,
        runtime_version: str,
        runtime_version_arn: str,
        function_name: str,
        version: str,
        init_type: str = "on-demand",
    ) -> None:
        if self.format.json:
            record = logformat.init_start(
                runtime_version, runtime_version_arn, function_name, version, init_type
            )
            self._record("platform.initStart", record)
        else:
            self.platform(
                f"INIT_START Runtime Version: {runtime_version}\t"
                f"Runtime Version ARN: {runtime_version_arn}"
            )

    def init_done(
        self,
        status: str,
        duration_ms: float,
        error_type: str | None = None,
        init_type: str = "on-demand",
    ) -> None:
        """The init phase ended (JSON only: Text has no line for it)."""
        if self.format.json:
            self._record(
                "platform.initRuntimeDone",
                logformat.init_runtime_done(status, error_type, init_type),
            )
            self._record(
                "platform.initReport",
                logformat.init_report(status, duration_ms, error_type, init_type),
            )

    def restore_start(
        self, runtime_version: str, runtime_version_arn: str, function_name: str, version: str
    ) -> None:
        """SnapStart: an environment is being restored from its version's snapshot."""
        if self.format.json:
            self._record(
                "platform.restoreStart",
                {
                    "runtimeVersion": runtime_version,
                    "runtimeVersionArn": runtime_version_arn,
                    "functionName": function_name,
                    "functionVersion": version,
                },
            )
        else:
            self.platform(
                f"RESTORE_START Runtime Version: {runtime_version}\t"
                f"Runtime Version ARN: {runtime_version_arn}"
            )

    def restore_done(self, status: str, duration_ms: float, error_type: str | None = None) -> None:
        """SnapStart: the restore (after-restore hooks included) ended."""
        if self.format.json:
            record: dict[str, Any] = {
                "status": status,
                "metrics": {"durationMs": round(duration_ms, 3)},
            }
            if error_type:
                record["errorType"] = error_type
            self._record("platform.restoreReport", record)
        elif status == "success":
            self.platform(f"RESTORE_REPORT Restore Duration: {duration_ms:.2f} ms")

    def start(self, request_id: str, version: str, trace_id: str | None = None) -> None:
        if self.format.json:
            self._record("platform.start", logformat.start(request_id, version, trace_id))
        else:
            self.platform(f"START RequestId: {request_id} Version: {version}")

    def timed_out(self, request_id: str, timeout_s: int) -> None:
        """AWS's "Task timed out" line (Text; in JSON the records' status says it)."""
        if not self.format.json:
            now = self._wall()
            message = f"Task timed out after {timeout_s:.2f} seconds"
            self._emit(f"{logformat.iso_ms(now)} {request_id} {message}", int(now * 1000))

    def new_invocation(self) -> None:
        """Start the next invocation's tail."""
        self._lines = []

    def tail(self) -> bytes:
        """The last 4 KB of the current invocation's lines (what LogType=Tail returns)."""
        return "".join(line + "\n" for line in self._lines).encode()[-TAIL_BYTES:]

    def report(
        self,
        request_id: str,
        duration_ms: float,
        memory_mb: int,
        peak_bytes: int | None,
        init_duration_ms: float | None,
        status: str | None,
        error_type: str | None,
        *,
        produced_bytes: int = 0,
        trace_id: str | None = None,
        restore_duration_ms: float | None = None,
    ) -> None:
        """AWS's END and REPORT lines, or runtimeDone and report records.

        ``restore_duration_ms``: the first invocation of an environment restored from a
        SnapStart snapshot (REPORT's Restore Duration and Billed Restore Duration).

        ``trace_id`` (the invocation's X-Ray header) is given when tracing is Active:
        REPORT then names the trace, as AWS's does.
        """
        self.flush_partial()
        if self.format.json:
            state = logformat.status_of(status)
            if self.format.keeps_system("platform.runtimeDone", {"status": state}):  # DEBUG if ok
                self._record(
                    "platform.runtimeDone",
                    logformat.runtime_done(
                        request_id, state, duration_ms, produced_bytes, error_type, trace_id
                    ),
                )
            record = logformat.report(
                request_id,
                state,
                duration_ms,
                memory_mb,
                peak_bytes,
                init_duration_ms,
                error_type,
                trace_id,
            )
            if restore_duration_ms is not None:
                metrics = record["metrics"]
                metrics["restoreDurationMs"] = round(restore_duration_ms, 3)
                metrics["billedRestoreDurationMs"] = math.ceil(restore_duration_ms)
                metrics["billedDurationMs"] += math.ceil(restore_duration_ms)
            self._record("platform.report", record)
            return
        self.platform(f"END RequestId: {request_id}")
        billed_restore = math.ceil(restore_duration_ms) if restore_duration_ms is not None else 0
        fields = [
            f"REPORT RequestId: {request_id}",
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {logformat.billed_ms(duration_ms, init_duration_ms) + billed_restore} ms",
            f"Memory Size: {memory_mb} MB",
            f"Max Memory Used: {logformat.memory_used_mb(peak_bytes)} MB",
        ]
        if restore_duration_ms is not None:  # AWS's SnapStart fields, in this place
            fields.append(f"Restore Duration: {restore_duration_ms:.2f} ms")
            fields.append(f"Billed Restore Duration: {billed_restore} ms")
        if init_duration_ms is not None:
            fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
        if trace_id:
            fields.append(xray_report_fields(trace_id))
        if status is not None:
            fields.append(f"Status: {status}")
            if error_type:
                fields.append(f"Error Type: {error_type}")
        self.platform("\t".join(fields) + "\t")

    def _emit(self, line: str, timestamp: int) -> None:
        self._lines.append(line)
        self._sink.add(LogEvent(self.group, self.name, timestamp, line))
