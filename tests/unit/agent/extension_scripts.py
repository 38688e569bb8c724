"""External extensions for the agent's tests, written into a temporary extensions
directory, and the helpers of the tests that use them. Each extension records what it
receives under ``$EXT_OUT`` (a temporary directory), in files named after itself, so a
test can read what the extension saw."""

from __future__ import annotations

import http.client
import json
import shutil
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import StartAgent
from .harness import TIMEOUT, Host, fake_runtime

# Registers for INVOKE and SHUTDOWN with curl, as in AWS's shell examples; appends every
# event to $EXT_OUT/<name>.events (EXT_EVENTS replaces the register body). With EXT_INIT_ERROR it reports /init/error and exits;
# with EXT_EXIT it exits with that status right after registering.
SHELL_EXTENSION = """\
#!/bin/sh
set -eu
NAME="$(basename "$0")"
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
OUT="${EXT_OUT}/${NAME}"
EVENTS='{"events": ["INVOKE", "SHUTDOWN"]}'
if [ -n "${EXT_EVENTS:-}" ]; then EVENTS="$EXT_EVENTS"; fi
curl -sS -D "$OUT.register-headers" -o "$OUT.register" -X POST \\
  -H "Lambda-Extension-Name: $NAME" -d "$EVENTS" "$API/register"
ID=$(grep -i '^Lambda-Extension-Identifier:' "$OUT.register-headers" | tr -d '[:space:]' | cut -d: -f2)
echo "$NAME registered"
if [ -n "${EXT_INIT_ERROR:-}" ]; then
  curl -sS -o /dev/null -H "Lambda-Extension-Identifier: $ID" \\
    -H "Lambda-Extension-Function-Error-Type: $EXT_INIT_ERROR" \\
    -d '{"errorMessage": "cannot start", "errorType": "Extension.TestError"}' "$API/init/error"
  exit 0
fi
if [ -n "${EXT_EXIT:-}" ]; then
  exit "$EXT_EXIT"
fi
while true; do
  EVENT=$(curl -sS -H "Lambda-Extension-Identifier: $ID" "$API/event/next")
  echo "$EVENT" >> "$OUT.events"
  echo "$NAME got an event"
  case "$EVENT" in
    *SHUTDOWN*) echo "$NAME shutting down"; exit 0;;
  esac
done
"""

# Registers for INVOKE and SHUTDOWN, runs a telemetry listener and subscribes it to all
# three streams. Writes: <name>.register (status, headers, body), <name>.subscribe,
# <name>.pid, <name>.events (each event plus when it arrived and when the extension
# called next again, CLOCK_MONOTONIC), and <name>.telemetry (one record a line).
# EXT_DELAY: seconds to sleep after each INVOKE before calling next.
# EXT_GATE: after each INVOKE, wait for this file to exist before calling next.
# EXT_HANG: on SHUTDOWN, sleep instead of exiting.
PYTHON_EXTENSION = """\
#!{python}
import http.client
import http.server
import json
import os
import threading
import time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
NAME = os.path.basename(__file__)
OUT = os.path.join(os.environ["EXT_OUT"], NAME)
DELAY = float(os.environ.get("EXT_DELAY", "0"))
LOCK = threading.Lock()


def call(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(API)
    conn.request(method, path, body, headers or {{}})
    reply = conn.getresponse()
    data = reply.read()
    conn.close()
    return reply.status, dict(reply.getheaders()), data


def record(suffix, value):
    with LOCK, open(OUT + suffix, "a") as out:
        out.write(json.dumps(value) + "\\n")


class Listener(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        for item in json.loads(body):
            record(".telemetry", item)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass  # our own output would come back as extension records, forever


record(".pid", os.getpid())
status, headers, body = call(
    "POST",
    "/2020-01-01/extension/register",
    json.dumps({{"events": ["INVOKE", "SHUTDOWN"]}}),
    {{"Lambda-Extension-Name": NAME, "Lambda-Extension-Accept-Feature": "accountId"}},
)
record(".register", {{"status": status, "headers": headers, "body": json.loads(body)}})
ident = headers["Lambda-Extension-Identifier"]
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
threading.Thread(target=server.serve_forever, daemon=True).start()
subscription = {{
    "schemaVersion": "2022-07-01",
    "types": ["platform", "function", "extension"],
    "buffering": {{"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}},
    "destination": {{
        "protocol": "HTTP",
        "URI": "http://sandbox.localdomain:%d/telemetry" % server.server_address[1],
    }},
}}
status, headers, body = call(
    "PUT", "/2022-07-01/telemetry", json.dumps(subscription), {{"Lambda-Extension-Identifier": ident}}
)
record(".subscribe", {{"status": status, "body": body.decode()}})
print(NAME, "subscribed", flush=True)
while True:
    record(".events", {{"next_at": time.monotonic()}})
    status, headers, body = call(
        "GET", "/2020-01-01/extension/event/next", headers={{"Lambda-Extension-Identifier": ident}}
    )
    event = json.loads(body)
    record(".events", {{"event": event, "headers": headers, "at": time.monotonic()}})
    if event["eventType"] == "SHUTDOWN":
        if os.environ.get("EXT_HANG"):
            time.sleep(600)
        os._exit(0)
    time.sleep(DELAY)
    while os.environ.get("EXT_GATE") and not os.path.exists(os.environ["EXT_GATE"]):
        time.sleep(0.01)
"""


def install(directory: Path, name: str, text: str) -> Path:
    """Write an executable extension ``name`` into ``directory``."""
    path = directory / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def shell_extension(directory: Path, name: str = "shell-ext") -> Path:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    return install(directory, name, SHELL_EXTENSION)


def python_extension(directory: Path, name: str = "python-ext") -> Path:
    return install(directory, name, PYTHON_EXTENSION.format(python=sys.executable))


# -- helpers of the tests that run them ---------------------------------------------

EXTENSION = "/2020-01-01/extension"
FUNCTION_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "my-function",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "_HANDLER": "handler.fn",
}


def start(
    start_agent: StartAgent,
    extensions_dir: Path,
    out: Path,
    runtime: list[str] | None = None,
    **env: str,
) -> Host:
    """Start an agent with the extensions of ``extensions_dir`` recording into ``out``."""
    environ = dict(FUNCTION_ENV, EXT_OUT=str(out), TMPDIR=str(out), **env)
    return start_agent(
        runtime or fake_runtime(),
        env=environ,
        extensions_dir=extensions_dir,
        agent_args=("--account-id", "111111111111"),
    )


def lines(path: Path) -> list[Any]:
    """The JSON documents of a file, one a line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Caller:
    """One request per connection to the agent's APIs, as extensions often do. A call
    returns (status, headers, JSON document); ``[::2]`` of it is (status, document)."""

    def __init__(self, host: Host) -> None:
        self.port = host.port

    def __call__(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
            conn.request(method, path, data, headers or {})
            reply = conn.getresponse()
            raw = reply.read()
        finally:
            conn.close()
        try:
            document = json.loads(raw) if raw else None
        except ValueError:
            document = raw
        return reply.status, reply.headers, document


def error(error_type: str, message: str) -> dict[str, str]:
    """An error document as the emulator renders it."""
    return {"errorMessage": message, "errorType": error_type}
