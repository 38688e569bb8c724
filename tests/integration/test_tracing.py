"""Traces through a real server: X-Ray headers made or kept per invocation, and OTLP spans
received by a real OTLP/HTTP endpoint."""

from __future__ import annotations

import base64
import http.server
import json
import re
import sqlite3
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lambdaplane.service.runtimes import find_interpreters
from lambdaplane.testing import ServerProcess, make_zip, start_server
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

HEADER = re.compile(r"Root=(1-[0-9a-f]{8}-[0-9a-f]{24});Parent=([0-9a-f]{16});Sampled=([01])")
CALLER_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
CALLER_PARENT = "53995c3f42cd8ad8"
ECHO_TRACE = """
import os
def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("failed on purpose")
    return os.environ.get("_X_AMZN_TRACE_ID")
"""


def deploy(lam: Any, role: str, source: str = ECHO_TRACE, **extra: Any) -> str:
    name = unique_name("trace")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(source)})},
        **extra,
    )
    wait_settled(lam, name)
    return name


def call(
    lam: Any, name: str, event: Any = None, trace: str | None = None, **kwargs: Any
) -> tuple[dict[str, Any], Any]:
    """Invoke, sending ``trace`` as the X-Amzn-Trace-Id header when given."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = trace

    if trace is not None:
        lam.meta.events.register_first("before-sign.lambda.Invoke", add_header)
    try:
        response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kwargs)
    finally:
        if trace is not None:
            lam.meta.events.unregister("before-sign.lambda.Invoke", add_header)
    return response, json.loads(response["Payload"].read())


def test_a_new_trace_per_invocation(lam: Any, role: str) -> None:
    name = deploy(lam, role)  # TracingConfig PassThrough: not sampled
    _, first = call(lam, name)
    _, second = call(lam, name)
    one, two = HEADER.fullmatch(first), HEADER.fullmatch(second)
    assert one and two, (first, second)
    assert one.group(1) != two.group(1) and one.group(2) != two.group(2)
    assert one.group(3) == two.group(3) == "0"
    assert abs(int(one.group(1)[2:10], 16) - time.time()) < 60  # the Root carries the time


def test_the_callers_root_and_sampling_are_kept(lam: Any, role: str) -> None:
    name = deploy(lam, role)
    incoming = f"Root={CALLER_ROOT};Parent={CALLER_PARENT};Sampled=1"
    _, seen = call(lam, name, trace=incoming)
    match = HEADER.fullmatch(seen)
    assert match, seen
    assert match.group(1) == CALLER_ROOT and match.group(3) == "1"
    assert match.group(2) != CALLER_PARENT  # the invocation is the function's parent
    _, malformed = call(lam, name, trace="Root=not-a-trace")
    assert HEADER.fullmatch(malformed) and CALLER_ROOT not in malformed


def test_active_tracing_samples_and_reports_the_trace(lam: Any, role: str) -> None:
    name = deploy(lam, role, TracingConfig={"Mode": "Active"})
    response, seen = call(lam, name, LogType="Tail")
    match = HEADER.fullmatch(seen)
    assert match and match.group(3) == "1", seen
    report = base64.b64decode(response["LogResult"]).decode().splitlines()[-1]
    assert f"\tXRAY TraceId: {match.group(1)}\tSegmentId: {match.group(2)}\tSampled: true\t" in (
        report
    )
    # The caller's explicit decision wins over Active.
    _, unsampled = call(lam, name, trace=f"Root={CALLER_ROOT};Sampled=0")
    assert unsampled.endswith(";Sampled=0") and CALLER_ROOT in unsampled


NODE = next((r.id for r in find_interpreters() if r.family == "nodejs"), None)


@pytest.mark.skipif(NODE is None, reason="no `node` on this host")
def test_node_runtime_sets_the_trace_per_invocation(lam: Any, role: str) -> None:
    name = unique_name("trace-node")
    source = "exports.handler = async () => process.env._X_AMZN_TRACE_ID ?? null;\n"
    lam.create_function(
        FunctionName=name,
        Runtime=NODE,
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": source})},
    )
    wait_settled(lam, name)
    _, first = call(lam, name, trace=f"Root={CALLER_ROOT};Parent={CALLER_PARENT};Sampled=1")
    _, second = call(lam, name)
    assert HEADER.fullmatch(first) and first.startswith(f"Root={CALLER_ROOT};")
    assert HEADER.fullmatch(second) and CALLER_ROOT not in second


# -- OTLP export ---------------------------------------------------------------------------


class Collector:
    """A minimal OTLP/HTTP traces endpoint: decodes each ExportTraceServiceRequest."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.add(self.path, request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, path: str, request: Any) -> None:
        with self._lock:
            self.paths.append(path)
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "kind": span.kind,
                                "start": span.start_time_unix_nano,
                                "end": span.end_time_unix_nano,
                                "status": span.status.code,
                                "status_message": span.status.message,
                                "attributes": {a.key: _value(a.value) for a in span.attributes},
                                "resource": resource,
                                "scope": scope_spans.scope.name,
                            }
                        )

    def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} spans, got {self.spans}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def traced(
    collector: Collector, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server exporting to the collector (batches every 100 ms instead of 5 s)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
        srv = start_server(tmp_path_factory.mktemp("traced"), "--otlp-endpoint", collector.url)
    yield srv
    assert srv.stop() == 0, srv.log()


def test_spans_for_a_cold_and_a_warm_invoke(
    traced: ServerProcess, collector: Collector, role: str
) -> None:
    lam = traced.client()
    try:
        name = deploy(lam, role)
        cold_response, cold_header = call(lam, name)
        warm_header = call(lam, name, trace=f"Root={CALLER_ROOT};Parent={CALLER_PARENT};Sampled=1")[
            1
        ]
        failed_response, _ = call(lam, name, {"fail": True})
    finally:
        lam.close()
    assert failed_response["FunctionError"] == "Unhandled"
    spans = collector.wait_for(4 + 3 + 3)  # cold: root + 3 phases; warm, failed: root + 2
    assert set(collector.paths) == {"/v1/traces"}
    roots = [s for s in spans if s["name"] == name]
    assert len(roots) == 3
    cold, warm, failed = sorted(roots, key=lambda s: s["start"])

    # The span is the invocation the function saw: trace = X-Ray Root, span = its Parent.
    for root, header in ((cold, cold_header), (warm, warm_header)):
        match = HEADER.fullmatch(header)
        assert match, header
        assert root["trace_id"] == match.group(1)[2:].replace("-", "")
        assert root["span_id"] == match.group(2)
        assert root["kind"] == 2  # SERVER
        assert root["scope"] == "lambdaplane.invoke"
    assert cold["parent"] == ""  # no caller trace
    assert warm["trace_id"] == CALLER_ROOT[2:].replace("-", "") and warm["parent"] == CALLER_PARENT

    attributes = cold["attributes"]
    assert attributes["faas.name"] == name and attributes["faas.version"] == "$LATEST"
    assert attributes["faas.invocation_id"] == cold_response["ResponseMetadata"]["RequestId"]
    assert attributes["faas.coldstart"] is True and warm["attributes"]["faas.coldstart"] is False
    assert attributes["faas.max_memory"] == 128 * 1024 * 1024
    assert attributes["aws.lambda.invoked_arn"].endswith(f":function:{name}")
    assert attributes["faas.instance"] and attributes["faas.max_memory"] == 128 * 1024 * 1024
    assert cold["resource"]["cloud.provider"] == "lambdaplane"
    assert cold["resource"]["cloud.region"] == "us-east-1"
    assert cold["resource"]["service.name"] == "lambdaplane"
    assert cold["status"] == 0 and warm["status"] == 0  # UNSET: no error
    assert failed["status"] == 2 and failed["attributes"]["error.type"]  # ERROR

    def children(root: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {
            s["name"]: s
            for s in spans
            if s["parent"] == root["span_id"] and s["trace_id"] == root["trace_id"]
        }

    assert set(children(cold)) == {"Initialization", "Invocation", "Overhead"}
    assert set(children(warm)) == {"Invocation", "Overhead"}
    assert children(failed)["Invocation"]["status"] == 2
    phases = children(cold)
    init, invocation, overhead = (phases[n] for n in ("Initialization", "Invocation", "Overhead"))
    assert cold["start"] <= init["start"] < init["end"] <= invocation["start"]
    assert invocation["end"] == overhead["start"] <= overhead["end"] <= cold["end"]


PRINT_TRACE = """
import os
def handler(event, context):
    print("TRACE", os.environ.get("_X_AMZN_TRACE_ID"))
    if event.get("fail"):
        raise RuntimeError("failed on purpose")
"""


def _trace_lines(server: ServerProcess, name: str) -> list[str]:
    db = sqlite3.connect(f"file:{server.data_dir / 'lambdaplane.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT message FROM log_events WHERE log_group = ? AND message LIKE 'TRACE %' "
            "ORDER BY timestamp, id",
            (f"/aws/lambda/{name}",),
        ).fetchall()
    finally:
        db.close()
    return [m for (m,) in rows]


def test_async_invocations_continue_the_callers_trace(
    server: ServerProcess, lam: Any, role: str
) -> None:
    """The trace header is stored with the event: every attempt, retries included, runs
    in the caller's trace (a new Parent each time)."""
    name = deploy(lam, role, PRINT_TRACE)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    incoming = f"Root={CALLER_ROOT};Parent={CALLER_PARENT};Sampled=1"

    def add_header(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = incoming

    lam.meta.events.register_first("before-sign.lambda.Invoke", add_header)
    try:
        accepted = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    finally:
        lam.meta.events.unregister("before-sign.lambda.Invoke", add_header)
    assert accepted["StatusCode"] == 202
    accepted["Payload"].read()
    deadline = time.monotonic() + 10
    while not (lines := _trace_lines(server, name)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(lines) == 1, lines
    match = HEADER.fullmatch(lines[0].removeprefix("TRACE "))
    assert match, lines
    assert match.group(1) == CALLER_ROOT and match.group(3) == "1"
    assert match.group(2) != CALLER_PARENT
