"""X-Ray trace headers: parsing the caller's, making one per invocation."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from lambdaplane.invoke import tracing
from lambdaplane.settings import SettingsError, from_environ

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
HEADER = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]")


def counting_bits() -> Callable[[int], int]:
    values: Iterator[int] = iter(range(1, 1000))
    return lambda k: next(values) % (1 << k)


def test_parse_reads_root_parent_and_sampled() -> None:
    parsed = tracing.parse(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    assert parsed == tracing.TraceHeader(ROOT, "53995c3f42cd8ad8", True)
    assert tracing.parse(f" Sampled=0 ; Root={ROOT.upper()}") == (
        tracing.TraceHeader(ROOT, None, False)
    )
    assert tracing.parse(f"Root={ROOT};Sampled=?;Lineage=a:1") == tracing.TraceHeader(ROOT)
    for bad in (None, "", "Root=1-abc", "Parent=53995c3f42cd8ad8", f"Root=2-{ROOT[2:]}"):
        assert tracing.parse(bad) is None


def test_a_new_trace_when_the_caller_sent_none() -> None:
    trace = tracing.for_invocation(None, active=False, now=0x5759E988, bits=counting_bits())
    assert HEADER.fullmatch(trace.header)
    assert trace.root.startswith("1-5759e988-") and trace.sampled is False
    assert trace.caller_span_id is None
    assert tracing.for_invocation(None, active=True, now=0).sampled is True  # Active samples


def test_the_callers_root_and_decision_are_kept_with_a_new_parent() -> None:
    incoming = f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=0"
    trace = tracing.for_invocation(incoming, active=True, now=1.0)
    assert trace.root == ROOT and trace.sampled is False  # the caller decided
    assert trace.caller_span_id == "53995c3f42cd8ad8" and trace.span_id != "53995c3f42cd8ad8"
    assert HEADER.fullmatch(trace.header) and trace.header.startswith(f"Root={ROOT};Parent=")
    undecided = tracing.for_invocation(f"Root={ROOT}", active=True, now=1.0)
    assert undecided.sampled is True and undecided.caller_span_id is None


def test_otel_trace_id_is_the_roots_hex() -> None:
    trace = tracing.for_invocation(f"Root={ROOT}", active=False, now=1.0)
    assert trace.trace_id == "5759e988bd862e3fe1be46a994272793"


def test_report_fields_for_active_tracing() -> None:
    fields = tracing.xray_report_fields(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    assert fields == f"XRAY TraceId: {ROOT}\tSegmentId: 53995c3f42cd8ad8\tSampled: true"


def test_otlp_endpoint_from_the_flag_or_the_environment() -> None:
    settings = from_environ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert settings.otlp_traces_url == "http://127.0.0.1:4318/v1/traces"
    flag = from_environ(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318"}, otlp_endpoint="http://b:4318/"
    )
    assert flag.otlp_traces_url == "http://b:4318/v1/traces"  # the flag wins
    assert from_environ({}).otlp_traces_url == ""
    with pytest.raises(SettingsError, match="otlp-endpoint"):
        from_environ({}, otlp_endpoint="127.0.0.1:4318")
