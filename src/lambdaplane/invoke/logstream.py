"""One environment's log stream: the runtime's output cut into lines, AWS's platform
lines (START, END, REPORT, …), the store, and the invocation's tail for LogType=Tail."""

from __future__ import annotations

import math
from collections.abc import Callable

from lambdaplane.invoke.logsink import LogSink
from lambdaplane.store.logs import LogEvent

TAIL_BYTES = 4096


class LogStream:
    def __init__(self, group: str, name: str, sink: LogSink, wall: Callable[[], float]) -> None:
        self.group = group
        self.name = name
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
            self._emit(raw.decode("utf-8", "replace").rstrip("\r"), stamp)

    def flush_partial(self) -> None:
        if self._partial:
            partial, self._partial = self._partial, b""
            self._emit(partial.decode("utf-8", "replace"), int(self._wall() * 1000))

    def platform(self, line: str) -> None:
        self._emit(line, int(self._wall() * 1000))

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
    ) -> None:
        """AWS's END and REPORT lines."""
        self.flush_partial()
        self.platform(f"END RequestId: {request_id}")
        fields = [
            f"REPORT RequestId: {request_id}",
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
            f"Memory Size: {memory_mb} MB",
            f"Max Memory Used: {math.ceil(peak_bytes / (1024 * 1024)) if peak_bytes else 0} MB",
        ]
        if init_duration_ms is not None:
            fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
        if status is not None:
            fields.append(f"Status: {status}")
            if error_type:
                fields.append(f"Error Type: {error_type}")
        self.platform("\t".join(fields) + "\t")

    def _emit(self, line: str, timestamp: int) -> None:
        self._lines.append(line)
        self._sink.add(LogEvent(self.group, self.name, timestamp, line))
