"""The spans of an invocation, as OTLP export builds them (no collector needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lambdaplane.invoke import tracing
from lambdaplane.invoke.otlp import InvocationTiming, SpanExport

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
MS = 1_000_000


@pytest.fixture
def export() -> Iterator[SpanExport]:
    spans = SpanExport("http://127.0.0.1:9/v1/traces", {"service.name": "lambdaplane"})
    yield spans
    spans.shutdown()  # nothing was queued: nothing is sent


def timing(**changes: Any) -> InvocationTiming:
    values: dict[str, Any] = {
        "trace": tracing.for_invocation(f"Root={ROOT};Parent=53995c3f42cd8ad8", False, 0.0),
        "function_name": "fn",
        "version": "3",
        "invoked_arn": "arn:aws:lambda:us-east-1:000000000000:function:fn:live",
        "request_id": "r-1",
        "memory_mb": 256,
        "environment_id": "env",
        "start_ns": 1000 * MS,
        "acquire_ns": 1001 * MS,
        "ready_ns": 1050 * MS,
        "invoke_ns": 1051 * MS,
        "end_ns": 1060 * MS,
        "init_ms": 45.0,
        "invoke_duration_ms": 8.0,
    }
    values.update(changes)
    return InvocationTiming(**values)


def test_a_cold_start_has_three_phases_under_the_invocation(export: SpanExport) -> None:
    t = timing()
    root, init, invocation, overhead = export.spans(t)
    assert root.name == "fn" and root.kind.name == "SERVER"
    assert root.context is not None and root.parent is not None
    assert f"{root.context.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
    assert f"{root.context.span_id:016x}" == t.trace.span_id  # the function's Parent
    assert f"{root.parent.span_id:016x}" == "53995c3f42cd8ad8" and root.parent.is_remote
    assert root.attributes is not None
    assert root.attributes["faas.coldstart"] is True
    assert root.attributes["faas.max_memory"] == 256 * 1024 * 1024
    assert root.attributes["aws.lambda.invoked_arn"].endswith(":fn:live")
    assert [s.name for s in (init, invocation, overhead)] == [
        "Initialization",
        "Invocation",
        "Overhead",
    ]
    for child in (init, invocation, overhead):
        assert child.parent == root.context
    assert (init.start_time, init.end_time) == (1005 * MS, 1050 * MS)  # ready - Init Duration
    assert (invocation.start_time, invocation.end_time) == (1051 * MS, 1059 * MS)
    assert (overhead.start_time, overhead.end_time) == (1059 * MS, 1060 * MS)
    assert root.status.is_unset


def test_a_warm_invocation_without_a_caller(export: SpanExport) -> None:
    t = timing(trace=tracing.for_invocation(None, False, 0.0), init_ms=None)
    root, *phases = export.spans(t)
    assert root.parent is None
    assert [s.name for s in phases] == ["Invocation", "Overhead"]
    assert root.attributes is not None and root.attributes["faas.coldstart"] is False


def test_failures_mark_the_span_and_its_phase(export: SpanExport) -> None:
    timed_out = timing(init_ms=None, function_error="Unhandled", error_type="Sandbox.Timedout")
    root, invocation, _ = export.spans(timed_out)
    assert root.status.status_code.name == "ERROR" and root.status.description == "Sandbox.Timedout"
    assert invocation.status.status_code.name == "ERROR"
    assert root.attributes is not None and root.attributes["error.type"] == "Sandbox.Timedout"
    init_failed = timing(init_ms=None, invoke_ns=0, function_error="Unhandled")
    root, init = export.spans(init_failed)
    assert (init.start_time, init.end_time) == (1001 * MS, 1050 * MS)  # the whole acquisition
    assert init.status.status_code.name == "ERROR" and init.status.description == "Unhandled"
