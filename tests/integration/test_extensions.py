"""The Extensions and Telemetry APIs through a real server: an internal extension, started
by a custom runtime's bootstrap, receives INVOKE events and platform telemetry.

External extensions (executables in /opt/extensions) arrive with layers; the agent-level
tests in tests/unit/agent cover them, SHUTDOWN included.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from lambdaplane.testing import make_zip
from tests.integration.helpers import unique_name, wait_settled

BOOTSTRAP = """#!/bin/sh
# An internal extension registers from inside the function before the runtime's first /next.
/usr/bin/python3 -I /var/task/extension.py &
while [ ! -e /tmp/registered ]; do sleep 0.01; done
exec /usr/bin/python3 -I /var/task/runtime.py
"""

EXTENSION = """
import http.server, json, os, threading, urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]

def call(method, path, body=None, headers=None):
    request = urllib.request.Request(API + path, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request) as response:
        return response.headers, response.read()

headers, _ = call("POST", "/2020-01-01/extension/register",
                  json.dumps({"events": ["INVOKE"]}).encode(), {"Lambda-Extension-Name": "recorder"})
ident = headers["Lambda-Extension-Identifier"]

class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        records = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open("/tmp/telemetry.jsonl", "a") as f:
            for record in records:
                f.write(json.dumps(record) + "\\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 4243), Sink)
threading.Thread(target=server.serve_forever, daemon=True).start()
call("PUT", "/2022-07-01/telemetry", json.dumps({
    "schemaVersion": "2022-07-01",
    "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"},
    "types": ["platform", "function"],
    "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
}).encode(), {"Lambda-Extension-Identifier": ident})
open("/tmp/registered", "w").close()
while True:
    _, body = call("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ident})
    with open("/tmp/events.jsonl", "a") as f:
        f.write(body.decode() + "\\n")
"""

RUNTIME = """
import json, os, time, urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"

def lines(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []

while True:
    with urllib.request.urlopen(API + "next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        response.read()
    print("handling", request_id, flush=True)
    time.sleep(0.1)  # let the previous invocation's telemetry arrive
    body = json.dumps({"request_id": request_id, "events": lines("/tmp/events.jsonl"),
                       "telemetry": lines("/tmp/telemetry.jsonl")}).encode()
    urllib.request.urlopen(urllib.request.Request(API + request_id + "/response", data=body, method="POST")).read()
"""


def test_internal_extension_gets_invokes_and_telemetry(lam: Any, role: str) -> None:
    name = unique_name("ext")
    files: dict[str, str | bytes] = {
        "bootstrap": BOOTSTRAP,
        "extension.py": textwrap.dedent(EXTENSION),
        "runtime.py": textwrap.dedent(RUNTIME),
    }
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=role,
        Handler="unused",
        Code={"ZipFile": make_zip(files, mode=0o755)},
        Timeout=10,
    )
    wait_settled(lam, name)
    first = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    second = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    invoked = [e["requestId"] for e in second["events"] if e.get("eventType") == "INVOKE"]
    assert first["request_id"] in invoked and second["request_id"] in invoked
    event = next(e for e in second["events"] if e["requestId"] == first["request_id"])
    assert event["invokedFunctionArn"].endswith(f":function:{name}") and event["deadlineMs"] > 0
    types = {record["type"] for record in second["telemetry"]}
    assert {"platform.start", "platform.runtimeDone", "platform.report"} <= types, types
    starts = [r for r in second["telemetry"] if r["type"] == "platform.start"]
    assert any(r["record"]["requestId"] == first["request_id"] for r in starts)
    function_lines = [r["record"] for r in second["telemetry"] if r["type"] == "function"]
    assert any(f"handling {first['request_id']}" in line for line in function_lines), function_lines
