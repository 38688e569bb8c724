"""Response streaming through boto3's ``invoke_with_response_stream``: Node.js functions
using ``awslambda.streamifyResponse``, a custom runtime streaming by the Runtime API's
streaming mode, and buffered functions (one chunk)."""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.service.runtime_install import install_runtime
from lambdaplane.service.runtimes import find_interpreters
from lambdaplane.settings import default_runtimes_dir
from lambdaplane.testing import ServerProcess, make_zip, start_server
from tests.integration.helpers import unique_name, wait_settled

_NODES = sorted(r.id for r in find_interpreters() if r.family == "nodejs")
NODE = "nodejs20.x" if "nodejs20.x" in _NODES else next(iter(_NODES), None)
PYTHON = f"python3.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose Node.js runtime is built from this checkout (the installed tree may
    predate streaming); every other runtime is the installed one."""
    runtimes = tmp_path_factory.mktemp("runtimes")
    installed = default_runtimes_dir()
    for tree in installed.iterdir() if installed.is_dir() else ():
        if not tree.name.startswith(("nodejs", ".")):
            (runtimes / tree.name).symlink_to(tree)
    for runtime in find_interpreters():
        if runtime.family == "nodejs":
            install_runtime(runtime, runtimes, lambda _line: None)
    before = os.environ.get("LAMBDAPLANE_RUNTIMES_DIR")
    os.environ["LAMBDAPLANE_RUNTIMES_DIR"] = str(runtimes)
    try:
        # No bandwidth cap here: the 64 MiB back-pressure test would take half a minute
        # at AWS's 2 MB/s (the cap's pacing has its unit test, test_stream_pacing.py).
        srv = start_server(tmp_path_factory.mktemp("data"), "--stream-bandwidth", "0")
    finally:
        if before is None:
            del os.environ["LAMBDAPLANE_RUNTIMES_DIR"]
        else:
            os.environ["LAMBDAPLANE_RUNTIMES_DIR"] = before
    yield srv
    code = srv.stop()
    assert code == 0, srv.log()


needs_node = pytest.mark.skipif(NODE is None, reason="no `node` on this host")


def deploy(
    lam: Any, role: str, runtime: str, files: dict[str, str], handler: str, Timeout: int = 10
) -> str:
    name = unique_name("stream")
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=role,
        Handler=handler,
        Code={
            "ZipFile": make_zip({k: textwrap.dedent(v).lstrip() for k, v in files.items()}, 0o755)
        },
        Timeout=Timeout,
    )
    wait_settled(lam, name)
    return name


def stream(
    lam: Any, name: str, event: Any = None, **kwargs: Any
) -> tuple[dict[str, Any], list[Any]]:
    """The response and its events: bytes for each PayloadChunk, the InvokeComplete dict."""
    response = lam.invoke_with_response_stream(
        FunctionName=name, Payload=json.dumps(event or {}).encode(), **kwargs
    )
    events: list[Any] = []
    for event_ in response["EventStream"]:
        if "PayloadChunk" in event_:
            events.append(event_["PayloadChunk"]["Payload"])
        else:
            events.append(event_["InvokeComplete"])
    return response, events


# -- Node.js ---------------------------------------------------------------------------

CHUNKS = """
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType('text/plain');
  for (const word of event.words) {
    responseStream.write(word);
    await pause(100);  // each write goes out on its own
  }
  if (event.fail) {
    throw new Error(event.fail);
  }
  responseStream.end();
});
"""


@needs_node
def test_node_chunks_arrive_as_separate_events(lam: Any, role: str) -> None:
    assert NODE is not None
    name = deploy(lam, role, NODE, {"index.js": CHUNKS}, "index.handler")
    response, events = stream(lam, name, {"words": ["one ", "two ", "three"]})
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    assert events == [b"one ", b"two ", b"three", {}]


@needs_node
def test_node_error_mid_stream_completes_with_its_error(lam: Any, role: str) -> None:
    assert NODE is not None
    name = deploy(lam, role, NODE, {"index.js": CHUNKS}, "index.handler")
    _, events = stream(lam, name, {"words": ["partial"], "fail": "broke midway"}, LogType="Tail")
    assert events[0] == b"partial"
    complete = events[-1]
    assert complete["ErrorCode"] == "Error"
    details = json.loads(complete["ErrorDetails"])
    assert details["errorType"] == "Error" and details["errorMessage"] == "broke midway"
    log = base64.b64decode(complete["LogResult"]).decode()
    assert "Invoke Error" in log and "REPORT RequestId:" in log
    # The environment is fine afterwards.
    _, events = stream(lam, name, {"words": ["again"]})
    assert events == [b"again", {}]


@needs_node
def test_node_error_before_writing_is_a_plain_function_error(lam: Any, role: str) -> None:
    assert NODE is not None
    name = deploy(lam, role, NODE, {"index.js": CHUNKS}, "index.handler")
    _, events = stream(lam, name, {"words": [], "fail": "nothing written"})
    assert len(events) == 1
    assert events[0]["ErrorCode"] == "Error"
    assert json.loads(events[0]["ErrorDetails"])["errorMessage"] == "nothing written"


SLOW = """
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('started');
  await new Promise((resolve) => setTimeout(resolve, 5000));
  responseStream.end('never');
});
"""


@needs_node
def test_a_timeout_mid_stream_completes_with_sandbox_timedout(lam: Any, role: str) -> None:
    assert NODE is not None
    name = deploy(lam, role, NODE, {"index.js": SLOW}, "index.handler", Timeout=1)
    _, events = stream(lam, name)
    assert events[0] == b"started"
    complete = events[-1]
    assert complete["ErrorCode"] == "Sandbox.Timedout"
    assert (
        "Task timed out after 1.00 seconds" in json.loads(complete["ErrorDetails"])["errorMessage"]
    )


CRASH = """
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('before the crash');
  setTimeout(() => { throw new TypeError('uncaught'); }, 50);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  responseStream.end();
});
"""


@needs_node
def test_an_uncaught_exception_mid_stream_ends_it_with_the_error(lam: Any, role: str) -> None:
    assert NODE is not None
    name = deploy(lam, role, NODE, {"index.js": CRASH}, "index.handler")
    _, events = stream(lam, name)
    assert events[0] == b"before the crash"
    assert events[-1]["ErrorCode"] == "TypeError"
    assert json.loads(events[-1]["ErrorDetails"])["errorMessage"] == "uncaught"


@needs_node
def test_dry_run_streams_too(lam: Any, role: str) -> None:
    """AWS's streaming API runs the function for DryRun as well (SAM's tests against AWS
    record the chunks), unlike Invoke's 204."""
    assert NODE is not None
    name = deploy(lam, role, NODE, {"index.js": CHUNKS}, "index.handler")
    response, events = stream(lam, name, {"words": ["x"]}, InvocationType="DryRun")
    assert response["StatusCode"] == 200
    assert events == [b"x", {}]


HTTP_STREAM = """
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const http = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: {'x-custom': 'yes'},
    cookies: ['a=1'],
  });
  http.write('hello ');
  http.end('world');
});
"""


@needs_node
def test_node_http_response_stream_writes_its_prelude(lam: Any, role: str) -> None:
    assert NODE is not None
    name = deploy(
        lam,
        role,
        NODE,
        {"index.mjs": HTTP_STREAM.replace("exports.handler =", "export const handler =")},
        "index.handler",
    )
    _, events = stream(lam, name)
    assert events[-1] == {}
    body = b"".join(e for e in events if isinstance(e, bytes))
    prelude, delimiter, rest = body.partition(b"\0" * 8)
    assert delimiter
    assert json.loads(prelude) == {
        "statusCode": 201,
        "headers": {"x-custom": "yes"},
        "cookies": ["a=1"],
    }
    assert rest == b"hello world"


@needs_node
def test_plain_invoke_of_a_streaming_function_returns_the_whole_body(lam: Any, role: str) -> None:
    assert NODE is not None
    name = deploy(lam, role, NODE, {"index.js": CHUNKS}, "index.handler")
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"words": ["a", "b"]}))
    assert "FunctionError" not in response
    assert response["Payload"].read() == b"ab"


# -- a custom runtime speaking the streaming mode itself -------------------------------

CUSTOM_RUNTIME = r"""
import json, os, socket, base64, time, urllib.request

HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
API = "http://%s:%s/2018-06-01/runtime" % (HOST, PORT)
last = ""  # how the Runtime API answered the last stream, printed in the next invocation

while True:
    with urllib.request.urlopen(API + "/invocation/next") as answer:
        request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(answer.read())
    if last:
        print("runtime API answered", last, flush=True)
    conn = socket.create_connection((HOST, int(PORT)))
    conn.sendall((
        "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\n"
        "Host: %s:%s\r\n"
        "Content-Type: application/x-ndjson\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
        "Connection: close\r\n\r\n" % (request_id, HOST, PORT)).encode())
    for n in range(event.get("count", 3)):
        data = json.dumps({"n": n}).encode() + b"\n"
        conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        time.sleep(0.05)
    trailers = b""
    if event.get("fail"):
        body = json.dumps({"errorType": "Custom.Failure", "errorMessage": event["fail"]})
        trailers = (b"Lambda-Runtime-Function-Error-Type: Custom.Failure\r\n"
                    b"Lambda-Runtime-Function-Error-Body: " + base64.b64encode(body.encode()) + b"\r\n")
    conn.sendall(b"0\r\n" + trailers + b"\r\n")
    last = conn.recv(65536).split(b"\r\n", 1)[0].decode()
    conn.close()
"""

BOOTSTRAP = """#!/bin/sh
exec /usr/bin/python3 -I /var/task/runtime.py
"""


def test_custom_runtime_streams_with_trailers(lam: Any, role: str) -> None:
    name = deploy(
        lam,
        role,
        "provided.al2023",
        {"bootstrap": BOOTSTRAP, "runtime.py": CUSTOM_RUNTIME},
        "unused",
    )
    _, events = stream(lam, name, {"count": 3}, LogType="Tail")
    assert events[:3] == [b'{"n": 0}\n', b'{"n": 1}\n', b'{"n": 2}\n']
    complete = events[3]
    assert set(complete) == {"LogResult"}
    assert "REPORT RequestId:" in base64.b64decode(complete["LogResult"]).decode()
    _, events = stream(lam, name, {"count": 1, "fail": "custom failure"}, LogType="Tail")
    log = base64.b64decode(events[-1]["LogResult"]).decode()
    assert "runtime API answered HTTP/1.1 202 Accepted" in log
    assert events[0] == b'{"n": 0}\n'
    assert events[1]["ErrorCode"] == "Custom.Failure"
    assert json.loads(events[1]["ErrorDetails"]) == {
        "errorType": "Custom.Failure",
        "errorMessage": "custom failure",
    }


# -- buffered functions and errors -----------------------------------------------------


def test_buffered_python_function_is_one_chunk(lam: Any, role: str) -> None:
    name = deploy(
        lam,
        role,
        PYTHON,
        {"handler.py": "def handler(event, context):\n    return {'echo': event}\n"},
        "handler.handler",
    )
    response, events = stream(lam, name, {"x": 1})
    assert response["ExecutedVersion"] == "$LATEST"
    assert len(events) == 2
    assert json.loads(events[0]) == {"echo": {"x": 1}}
    assert events[1] == {}


def test_buffered_python_error_completes_with_it(lam: Any, role: str) -> None:
    name = deploy(
        lam,
        role,
        PYTHON,
        {"handler.py": "def handler(event, context):\n    raise ValueError('nope')\n"},
        "handler.handler",
    )
    _, events = stream(lam, name)
    assert len(events) == 1
    assert events[0]["ErrorCode"] == "ValueError"
    assert json.loads(events[0]["ErrorDetails"])["errorMessage"] == "nope"


def test_unknown_function_and_bad_payload_are_json_errors(lam: Any, role: str) -> None:
    with pytest.raises(ClientError) as info:
        lam.invoke_with_response_stream(FunctionName="no-such-function", Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    name = deploy(
        lam,
        role,
        PYTHON,
        {"handler.py": "def handler(event, context):\n    return 1\n"},
        "handler.handler",
    )
    with pytest.raises(ClientError) as info:
        lam.invoke_with_response_stream(FunctionName=name, Payload=b"{not json")
    assert info.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# -- back-pressure -----------------------------------------------------------------------

RECORD = 65536  # each record: the ms time it was written, padded to 20 bytes, then filler
PRODUCER = """
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const filler = 'x'.repeat(65536 - 20);
  for (let i = 0; i < event.count; i++) {
    const record = String(Date.now()).padEnd(20, ' ') + filler;
    if (!responseStream.write(record)) {
      await new Promise((resolve) => responseStream.once('drain', resolve));
    }
  }
  responseStream.end();
});
"""


@needs_node
def test_a_slow_reader_holds_the_function_back(lam: Any, role: str) -> None:
    """The server buffers at most about a megabyte of a streamed response: while the client
    reads nothing, the function's writes block (it honours `drain`), so records written
    after the client resumed exist, although writing all 64 MiB at once takes well under
    the stall. Without back-pressure the whole response would wait in the server."""
    assert NODE is not None
    name = deploy(lam, role, NODE, {"index.js": PRODUCER}, "index.handler", Timeout=60)
    count = 1024  # 64 MiB
    response = lam.invoke_with_response_stream(
        FunctionName=name, Payload=json.dumps({"count": count}).encode()
    )
    events = iter(response["EventStream"])
    received = bytearray(next(events)["PayloadChunk"]["Payload"])
    time.sleep(3)  # the stall: read nothing
    resumed_ms = time.time() * 1000
    complete: dict[str, Any] = {}
    for event in events:
        if "PayloadChunk" in event:
            received += event["PayloadChunk"]["Payload"]
        else:
            complete = event["InvokeComplete"]
    assert complete.get("ErrorCode") is None, complete
    assert len(received) == count * RECORD
    written = [int(received[i : i + 20].decode().strip()) for i in range(0, len(received), RECORD)]
    assert written[-1] > resumed_ms, "the function finished while the reader stalled"
