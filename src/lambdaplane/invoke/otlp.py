"""OpenTelemetry export of invocations: a span per invocation over OTLP/HTTP.

Each invocation becomes a SERVER span named after the function, with children for
its phases as X-Ray names them: ``Initialization`` (cold starts only), ``Invocation``
(the REPORT line's Duration) and ``Overhead`` (from the runtime's answer to ours).
The span's trace id is the X-Ray Root's 32 hex digits and its span id the ``Parent``
the function was given (``invoke/tracing.py``), so spans the function exports itself
hang under it, and a caller that sent ``X-Amzn-Trace-Id`` is the span's parent.

Off the hot path: the invoke path hands over plain numbers (``InvocationTiming``); the
spans are built in a later turn of the event loop, after the response is on its way,
and a ``BatchSpanProcessor`` exports them from its own thread. Without an endpoint
nothing here is imported or called. The SDK's own ``OTEL_EXPORTER_OTLP_*`` variables
(headers, timeout, compression) apply as usual.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdaplane.ids import random_bits
from lambdaplane.invoke.tracing import InvocationTrace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

SCOPE = "lambdaplane.invoke"


@dataclass(frozen=True)
class InvocationTiming:
    """What one invocation did, times in epoch nanoseconds: the input of its spans."""

    trace: InvocationTrace
    function_name: str
    version: str
    invoked_arn: str
    request_id: str
    memory_mb: int
    environment_id: str
    start_ns: int  # the request reached the invoke service
    acquire_ns: int  # an environment was asked for (the last attempt)
    ready_ns: int  # ... and handed over (after its init, on a cold start)
    invoke_ns: int  # the event went to the runtime; 0: never (its init failed)
    end_ns: int  # the outcome is ready to answer
    init_ms: float | None  # a cold start's init duration
    invoke_duration_ms: float  # the REPORT line's Duration
    function_error: str | None = None  # "Unhandled" when it failed
    error_type: str | None = None

    @property
    def init_window(self) -> tuple[int, int] | None:
        """The init phase, on a cold start (a failed init took the whole acquisition)."""
        if self.init_ms is not None:
            return self.ready_ns - int(self.init_ms * 1_000_000), self.ready_ns
        return (self.acquire_ns, self.ready_ns) if self.invoke_ns == 0 else None

    @property
    def error(self) -> str | None:
        """What the spans' error status says, when the invocation failed."""
        return (self.error_type or self.function_error) if self.function_error else None


class SpanExport:
    """Exports invocation spans to one OTLP/HTTP traces endpoint.

    The spans are finished ``ReadableSpan``s handed straight to the processor: their
    ids and times are already known (the X-Ray ones, and the phases as measured), and
    the SDK's tracer would spend ~50 us an invocation deriving what is given (~3 us so).
    """

    def __init__(self, traces_url: str, resource: dict[str, str]) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        self.traces_url = traces_url
        self._resource = Resource.create(resource)
        self._scope = InstrumentationScope(SCOPE)
        self._processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url))

    def record(self, timing: InvocationTiming) -> None:
        """Queue an invocation's spans; they are built after the current loop turn."""
        asyncio.get_running_loop().call_soon(self._export, timing)

    def _export(self, t: InvocationTiming) -> None:
        for span in self.spans(t):
            self._processor.on_end(span)

    def spans(self, t: InvocationTiming) -> list[ReadableSpan]:
        """The invocation's span and its phases' (pure, apart from fresh child span ids)."""
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        trace_id = int(t.trace.trace_id, 16)
        flags = TraceFlags(TraceFlags.SAMPLED)
        context = SpanContext(trace_id, int(t.trace.span_id, 16), False, flags)
        caller = (
            SpanContext(trace_id, int(t.trace.caller_span_id, 16), True, flags)
            if t.trace.caller_span_id
            else None
        )
        window, error = t.init_window, t.error
        failed = Status(StatusCode.ERROR, error) if error else Status(StatusCode.UNSET)
        # Few attributes: encoding each costs the exporter's thread about a microsecond.
        attributes: dict[str, str | bool | int] = {
            "faas.name": t.function_name,
            "faas.version": t.version,
            "faas.invocation_id": t.request_id,
            "faas.coldstart": window is not None,
            "faas.max_memory": t.memory_mb * 1024 * 1024,
            "faas.instance": t.environment_id,
            "aws.lambda.invoked_arn": t.invoked_arn,
        }
        if error:
            attributes["error.type"] = error

        def phase(name: str, start: int, end: int, status: Status | None = None) -> ReadableSpan:
            own = SpanContext(trace_id, random_bits(64) or 1, False, flags)
            return ReadableSpan(
                name,
                own,
                context,
                self._resource,
                start_time=start,
                end_time=end,
                status=status or Status(StatusCode.UNSET),
                instrumentation_scope=self._scope,
            )

        spans = [
            ReadableSpan(
                t.function_name,
                context,
                caller,
                self._resource,
                attributes,
                kind=SpanKind.SERVER,
                status=failed,
                start_time=t.start_ns,
                end_time=t.end_ns,
                instrumentation_scope=self._scope,
            )
        ]
        if window is not None:
            init_failed = failed if t.invoke_ns == 0 else None
            spans.append(phase("Initialization", window[0], window[1], init_failed))
        if t.invoke_ns:
            invoked_end = t.invoke_ns + int(t.invoke_duration_ms * 1_000_000)
            spans.append(phase("Invocation", t.invoke_ns, invoked_end, failed))
            spans.append(phase("Overhead", invoked_end, max(invoked_end, t.end_ns)))
        return spans

    def shutdown(self) -> None:
        """Export what is queued (bounded by the exporter's timeout) and stop the thread."""
        self._processor.shutdown()  # type: ignore[no-untyped-call]
