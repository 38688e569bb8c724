"""The Telemetry API 2022-07-01 as the agent serves it: a Python extension subscribing
its own HTTP listener (beside a curl extension) with the fake runtime and with the real
awslambdaric, and the test itself subscribing as an internal extension.

Record shapes are the Lambda developer guide's ("Telemetry API Event schema reference");
validation follows AWS's emulator (its subscription schema)."""

from __future__ import annotations

import http.server
import json
import re
import socket
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.agent import wire

from .conftest import StartAgent
from .extension_scripts import (
    EXTENSION,
    FUNCTION_ENV,
    Caller,
    error,
    eventually,
    lines,
    python_extension,
    shell_extension,
    start,
)
from .harness import TIMEOUT, Host, sleeper, wait_listening

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TELEMETRY = "/2022-07-01/telemetry"


def of_type(records: list[Any], type: str) -> list[Any]:
    return [r["record"] for r in records if r["type"] == type]


def test_subscriber_gets_platform_function_and_extension_records(
    start_agent: StartAgent, extensions_dir: Path, out: Path
) -> None:
    python_extension(extensions_dir)
    shell_extension(extensions_dir)
    host = start(start_agent, extensions_dir, out)
    host.until(wire.NEXT)
    (subscribe,) = lines(out / "python-ext.subscribe")
    assert subscribe == {"status": 200, "body": '"OK"'}

    host.invoke(json.dumps({"action": "print", "lines": 3}).encode(), request_id="t1")
    host.until(wire.RESPONSE)
    host.until(wire.NEXT)
    host.send(wire.SHUTDOWN)  # buffered records are flushed before extensions get SHUTDOWN
    host.until(wire.EXIT)

    records = lines(out / "python-ext.telemetry")
    assert all(TIME.match(r["time"]) for r in records)
    types = [r["type"] for r in records]
    assert of_type(records, "platform.initStart") == [
        {"initializationType": "on-demand", "phase": "init"}
    ]
    assert {
        "name": "python-ext",
        "state": "Subscribed",
        "types": ["platform", "function", "extension"],
    } in of_type(records, "platform.telemetrySubscription")
    assert of_type(records, "platform.initRuntimeDone") == [
        {"initializationType": "on-demand", "phase": "init", "status": "success"}
    ]
    assert sorted(of_type(records, "platform.extension"), key=lambda r: r["name"]) == [
        {"name": "python-ext", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]},
        {"name": "shell-ext", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]},
    ]
    (init_report,) = of_type(records, "platform.initReport")
    assert init_report["phase"] == "init"
    assert init_report["metrics"]["durationMs"] > 0

    tracing = {
        "type": "X-Amzn-Trace-Id",
        "value": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
    }
    assert of_type(records, "platform.start") == [
        {"requestId": "t1", "version": "$LATEST", "tracing": tracing}
    ]
    (done,) = of_type(records, "platform.runtimeDone")
    assert done["requestId"] == "t1"
    assert done["status"] == "success"
    assert done["tracing"] == tracing
    assert done["metrics"]["producedBytes"] == len(b'"done"')
    assert done["metrics"]["durationMs"] >= 0
    (report,) = of_type(records, "platform.report")
    assert report["requestId"] == "t1"
    assert report["status"] == "success"
    metrics = report["metrics"]
    assert set(metrics) == {
        "durationMs",
        "billedDurationMs",
        "memorySizeMB",
        "maxMemoryUsedMB",
        "initDurationMs",
    }
    assert metrics["memorySizeMB"] == 128
    assert metrics["maxMemoryUsedMB"] > 0
    assert metrics["billedDurationMs"] >= metrics["durationMs"] >= done["metrics"]["durationMs"]

    assert of_type(records, "function") == ["line 0", "line 1", "line 2"]
    assert "shell-ext got an event" in of_type(records, "extension")
    # One invocation's records in the order things happened.
    order = [types.index(t) for t in ("platform.start", "function", "platform.runtimeDone")]
    assert order == sorted(order)
    assert types.index("platform.report") > types.index("platform.runtimeDone")


def test_with_awslambdaric_as_the_runtime(
    start_agent: StartAgent, extensions_dir: Path, out: Path, tmp_path: Path
) -> None:
    pytest.importorskip("awslambdaric")
    task = tmp_path / "task"
    task.mkdir()
    (task / "handler.py").write_text(
        textwrap.dedent(
            """
            def hello(event, context):
                print("hello from", context.aws_request_id)
                return {"ok": True}
            """
        )
    )
    python_extension(extensions_dir)
    shell_extension(extensions_dir)
    host = start_agent(
        [sys.executable, "-m", "awslambdaric", "handler.hello"],
        cwd=task,
        env=dict(FUNCTION_ENV, EXT_OUT=str(out), TMPDIR=str(out), LAMBDA_TASK_ROOT=str(task)),
        extensions_dir=extensions_dir,
    )
    host.until(wire.NEXT)
    for request_id in ("ric-1", "ric-2"):
        host.invoke(b"{}", request_id=request_id)
        frame, _ = host.until(wire.RESPONSE)
        assert json.loads(frame.body) == {"ok": True}
        host.until(wire.NEXT)
    assert [e["requestId"] for e in lines(out / "shell-ext.events")] == ["ric-1", "ric-2"]
    host.send(wire.SHUTDOWN)
    host.until(wire.EXIT)

    records = lines(out / "python-ext.telemetry")
    assert "hello from ric-1" in of_type(records, "function")
    assert "hello from ric-2" in of_type(records, "function")
    assert [r["requestId"] for r in of_type(records, "platform.report")] == ["ric-1", "ric-2"]
    assert "initDurationMs" in of_type(records, "platform.report")[0]["metrics"]
    assert "initDurationMs" not in of_type(records, "platform.report")[1]["metrics"]
    assert [r["requestId"] for r in of_type(records, "platform.runtimeDone")] == ["ric-1", "ric-2"]


# -- the test as an internal extension subscribing its own listeners ---------------------


class Listener(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.extend(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (Listener,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    thread.join(TIMEOUT)
    server.server_close()


def subscription(uri: str, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemaVersion": "2022-07-01",
        "types": ["platform", "function"],
        "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
        "destination": {"protocol": "HTTP", "URI": uri},
    }
    document.update(changes)
    return document


def register(host: Host, name: str) -> dict[str, str]:
    status, headers, _ = Caller(host)(
        "POST", f"{EXTENSION}/register", {"events": []}, {"Lambda-Extension-Name": name}
    )
    assert status == 200
    return {"Lambda-Extension-Identifier": headers["Lambda-Extension-Identifier"]}


def test_subscription_requests_are_validated(
    start_agent: StartAgent, listener: tuple[int, list[dict[str, Any]]]
) -> None:
    port, received = listener
    host = start_agent(sleeper(), env=FUNCTION_ENV)  # the runtime never calls next: init lasts
    wait_listening(host)
    call = Caller(host)
    ident = register(host, "internal-ext")
    uri = f"http://sandbox.localdomain:{port}/telemetry"

    assert call("PUT", TELEMETRY, subscription(uri))[::2] == (
        403,
        error("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header"),
    )
    unknown = "00000000-0000-4000-8000-000000000000"
    assert call("PUT", TELEMETRY, subscription(uri), {"Lambda-Extension-Identifier": unknown})[
        ::2
    ] == (403, error("Extension.UnknownExtensionIdentifier", f"Unknown extension {unknown}"))

    def refused(body: object) -> str:
        status, _, document = call("PUT", TELEMETRY, body, ident)
        assert status == 400
        assert document["errorType"] == "ValidationError"
        message: str = document["errorMessage"]
        return message

    assert refused(subscription(uri, types=[])) == "types should not be empty"
    assert (
        refused(subscription("http://sandbox.localdomain/telemetry")) == "URI port is not provided"
    )
    assert (
        refused(subscription(f"http://example.com:{port}/"))
        == "destination.URI host must be sandbox.localdomain"
    )
    assert "schemaVersion" in refused(subscription(uri, schemaVersion="2020-01-01"))
    assert "buffering.timeoutMs" in refused(subscription(uri, buffering={"timeoutMs": 5}))
    assert "Invalid JSON" in refused(b"{")
    assert received == []  # nothing was subscribed

    status, _, body = call("PUT", TELEMETRY, subscription(uri), ident)
    assert (status, body) == (200, "OK")
    # The init phase's platform records so far are replayed to a new subscriber.
    eventually(lambda: len(received) >= 2, "the first batch")
    assert [r["type"] for r in received[:2]] == [
        "platform.initStart",
        "platform.telemetrySubscription",
    ]
    assert received[1]["record"] == {
        "name": "internal-ext",
        "state": "Subscribed",
        "types": ["platform", "function"],
    }


def test_a_tcp_subscriber_gets_newline_delimited_json(start_agent: StartAgent) -> None:
    host = start_agent(sleeper(), env=FUNCTION_ENV)
    wait_listening(host)
    ident = register(host, "tcp-ext")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        document = subscription("", destination={"protocol": "TCP", "port": port})
        assert Caller(host)("PUT", TELEMETRY, document, ident)[::2] == (200, "OK")
        server.settimeout(TIMEOUT)
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as stream:
            conn.settimeout(TIMEOUT)
            first = json.loads(stream.readline())
            second = json.loads(stream.readline())
    assert first["type"] == "platform.initStart"
    assert second["type"] == "platform.telemetrySubscription"
