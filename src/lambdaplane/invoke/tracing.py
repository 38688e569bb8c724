"""X-Ray trace headers for invocations: kept from the caller's ``X-Amzn-Trace-Id`` or made.

Each invocation runs under ``Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=0|1``,
handed to the runtime as ``Lambda-Runtime-Trace-Id`` (runtimes put it in
``_X_AMZN_TRACE_ID``). A caller's Root is kept, so the function's work joins the
caller's trace; Parent is always new: it names this invocation (the span that OTLP
export records, ``invoke/otlp.py``), so spans the function makes hang under it. The
sampling decision is the caller's when it made one; otherwise ``TracingConfig`` decides,
as on AWS: Active samples, PassThrough does not. Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lambdaplane import ids

_ROOT = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
_PARENT = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class TraceHeader:
    """The parts of an ``X-Amzn-Trace-Id`` this platform reads; None where absent."""

    root: str
    parent: str | None = None
    sampled: bool | None = None


def parse(header: str | None) -> TraceHeader | None:
    """The caller's header, or None when it has no valid Root (then a new trace starts)."""
    if not header:
        return None
    fields: dict[str, str] = {}
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        fields[key.strip()] = value.strip()
    root = fields.get("Root", "").lower()
    if not _ROOT.fullmatch(root):
        return None
    parent = fields.get("Parent", "").lower()
    sampled = {"1": True, "0": False}.get(fields.get("Sampled", ""))
    return TraceHeader(root, parent if _PARENT.fullmatch(parent) else None, sampled)


@dataclass(frozen=True)
class InvocationTrace:
    """The trace an invocation runs in."""

    root: str  # 1-<8 hex>-<24 hex>
    span_id: str  # 16 hex: this invocation, the function's Parent
    sampled: bool
    caller_span_id: str | None = None  # the caller's Parent, when it sent one

    @property
    def header(self) -> str:
        """What the runtime gets as Lambda-Runtime-Trace-Id."""
        return f"Root={self.root};Parent={self.span_id};Sampled={int(self.sampled)}"

    @property
    def trace_id(self) -> str:
        """The W3C/OpenTelemetry trace id of the Root: its 32 hex digits."""
        return self.root[2:10] + self.root[11:]


def for_invocation(
    incoming: str | None,
    active: bool,
    now: float,
    bits: Callable[[int], int] = ids.random_bits,
) -> InvocationTrace:
    """The trace of an invocation: the caller's Root and decision kept, or new ones."""
    caller = parse(incoming)
    span_id = f"{bits(64) or 1:016x}"
    if caller is None:
        return InvocationTrace(f"1-{int(now) & 0xFFFFFFFF:08x}-{bits(96):024x}", span_id, active)
    sampled = active if caller.sampled is None else caller.sampled
    return InvocationTrace(caller.root, span_id, sampled, caller.parent)


def xray_report_fields(header: str) -> str:
    """The X-Ray fields AWS's Text REPORT line ends with when tracing is Active."""
    parsed = parse(header)
    if parsed is None:
        return ""
    sampled = "true" if parsed.sampled else "false"
    return f"XRAY TraceId: {parsed.root}\tSegmentId: {parsed.parent or ''}\tSampled: {sampled}"
