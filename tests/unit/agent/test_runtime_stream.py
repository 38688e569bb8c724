"""A /response in streaming mode (Lambda-Runtime-Function-Response-Mode: streaming), as
the agent relays it: STREAM_START, a STREAM_CHUNK per HTTP chunk as it arrives, STREAM_END
with the error the trailers carry. The test plays both the host and the runtime."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator

import pytest

from lambdaplane.agent import wire

from .conftest import StartAgent
from .harness import Host, RuntimeClient, sleeper, wait_listening

STREAM_HEADERS = (
    "Content-Type: text/event-stream\r\n"
    "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
)


@pytest.fixture
def host(start_agent: StartAgent) -> Iterator[Host]:
    host = start_agent(sleeper())
    wait_listening(host)
    yield host


def start_invocation(host: Host, request_id: str = "req-1") -> RuntimeClient:
    client = RuntimeClient(host)
    host.invoke(b"{}", request_id=request_id)
    status, _, _ = client.call("GET", "/invocation/next")
    assert status == 200
    host.until(wire.NEXT)
    return client


def open_stream(host: Host, request_id: str = "req-1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", host.port))
    head = f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
    sock.sendall((head + "Host: x\r\n" + STREAM_HEADERS + "\r\n").encode())
    return sock


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def reply(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def test_chunks_are_relayed_as_they_arrive(host: Host) -> None:
    client = start_invocation(host)
    sock = open_stream(host)
    start, _ = host.until(wire.STREAM_START)
    assert start.meta == {"request_id": "req-1", "content_type": "text/event-stream"}
    sock.sendall(chunk(b"first"))
    frame, _ = host.until(wire.STREAM_CHUNK)
    assert frame.body == b"first"  # before the runtime wrote anything more
    sock.sendall(chunk(b"second") + chunk(b"third"))
    assert host.until(wire.STREAM_CHUNK)[0].body == b"second"
    assert host.until(wire.STREAM_CHUNK)[0].body == b"third"
    # While it streams, the runtime cannot ask for the next event.
    status, _, body = client.call("GET", "/invocation/next")
    assert status == 403
    assert json.loads(body)["errorType"] == "InvalidStateTransition"
    sock.sendall(b"0\r\n\r\n")
    end, _ = host.until(wire.STREAM_END)
    assert end.meta == {"request_id": "req-1", "size": 16}
    assert end.body == b""
    assert reply(sock).startswith(b"HTTP/1.1 202 Accepted")
    sock.close()
    # And the invocation is over: the next /next is the usual move into Ready.
    host.invoke(b"{}", request_id="req-2")
    status, headers, _ = client.call("GET", "/invocation/next")
    assert status == 200 and headers["Lambda-Runtime-Aws-Request-Id"] == "req-2"
    client.close()


def test_error_trailers_end_the_stream_with_the_error(host: Host) -> None:
    client = start_invocation(host)
    sock = open_stream(host)
    document = {"errorType": "Runtime.Broken", "errorMessage": "midway"}
    trailer = base64.b64encode(json.dumps(document).encode())
    sock.sendall(
        chunk(b"partial")
        + b"0\r\nLambda-Runtime-Function-Error-Type: Runtime.Broken\r\n"
        + b"Lambda-Runtime-Function-Error-Body: "
        + trailer
        + b"\r\n\r\n"
    )
    end, before = host.until(wire.STREAM_END)
    assert [f.body for f in before if f.type == wire.STREAM_CHUNK] == [b"partial"]
    assert end.meta["error_type"] == "Runtime.Broken"
    assert json.loads(end.body) == document
    assert reply(sock).startswith(b"HTTP/1.1 202 Accepted")
    sock.close()
    client.close()


def test_a_broken_off_stream_ends_as_truncated(host: Host) -> None:
    client = start_invocation(host)
    sock = open_stream(host)
    sock.sendall(chunk(b"some") + b"10\r\nonly")
    sock.close()
    end, _ = host.until(wire.STREAM_END)
    assert end.meta["error_type"] == "Runtime.TruncatedResponse"
    client.close()


def test_a_stream_for_another_request_id_is_refused(host: Host) -> None:
    client = start_invocation(host)
    sock = open_stream(host, "someone-else")
    assert reply(sock).startswith(b"HTTP/1.1 400 Bad Request")
    sock.close()
    assert host.silent_for(0.2)
    client.close()


def test_buffered_responses_are_unchanged(host: Host) -> None:
    client = start_invocation(host)
    status, _, _ = client.call("POST", "/invocation/req-1/response", b'{"ok":true}')
    assert status == 202
    frame, _ = host.until(wire.RESPONSE)
    assert frame.body == b'{"ok":true}'
    client.close()
