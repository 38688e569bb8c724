"""The Runtime API as the agent serves it, driven by the test playing both the host
(frames) and the runtime (HTTP), against a runtime process that stays silent.

Expected codes and bodies are those of AWS's runtime interface emulator."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from lambdaplane.agent import wire

from .conftest import StartAgent
from .harness import TIMEOUT, Host, RuntimeClient, sleeper, wait_listening

ACCEPTED = b'{"status":"OK"}\n'
MAX = 6_291_556


def forbidden(state: str, target: str) -> dict[str, str]:
    return {
        "errorMessage": f"State transition from {state} to {target} failed for runtime. "
        "Error: State transition is not allowed",
        "errorType": "InvalidStateTransition",
    }


@pytest.fixture
def env(start_agent: StartAgent) -> Iterator[tuple[Host, RuntimeClient]]:
    host = start_agent(sleeper())
    wait_listening(host)
    client = RuntimeClient(host)
    yield host, client
    client.close()


def next_invocation(host: Host, client: RuntimeClient, request_id: str = "req-1") -> bytes:
    host.invoke(b'{"n": 1}', request_id=request_id)
    status, headers, body = client.call("GET", "/invocation/next")
    assert status == 200
    assert headers["Lambda-Runtime-Aws-Request-Id"] == request_id
    host.until(wire.NEXT)
    return body


def test_next_answers_a_queued_invoke_with_aws_headers(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    host.invoke(
        b'{"hello": "world"}',
        request_id="8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        deadline_ms=1_542_409_706_888,
        invoked_function_arn="arn:aws:lambda:us-east-2:123456789012:function:custom-runtime",
        trace_id="Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
        client_context='{"client": {"app_title": "t"}, "custom": {"k": "v"}}',
        cognito_identity='{"cognitoIdentityId": "id", "cognitoIdentityPoolId": "pool"}',
    )
    status, headers, body = client.call("GET", "/invocation/next")
    assert status == 200
    assert body == b'{"hello": "world"}'
    assert headers["Content-Type"] == "application/json"
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1542409706888"
    assert (
        headers["Lambda-Runtime-Invoked-Function-Arn"]
        == "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime"
    )
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-5bef4de7-")
    assert json.loads(headers["Lambda-Runtime-Client-Context"])["custom"] == {"k": "v"}
    assert json.loads(headers["Lambda-Runtime-Cognito-Identity"])["cognitoIdentityPoolId"] == "pool"
    frame, _ = host.until(wire.NEXT)
    assert isinstance(frame.meta["t"], int)


def test_optional_headers_are_absent_when_not_given(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    next_invocation(host, client)
    status, headers, _ = client.call("POST", "/invocation/req-1/response", b"{}")
    host.invoke(b"{}", request_id="req-2")
    status, headers, _ = client.call("GET", "/invocation/next")
    assert status == 200
    assert "Lambda-Runtime-Client-Context" not in headers
    assert "Lambda-Runtime-Cognito-Identity" not in headers


def test_next_long_polls_until_the_host_invokes(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    result: list[tuple[int, bytes]] = []

    def poll_next() -> None:
        status, _, body = client.call("GET", "/invocation/next")
        result.append((status, body))

    poll = threading.Thread(target=poll_next)
    poll.start()
    host.until(wire.NEXT)
    assert not result
    host.invoke(b'"late"', request_id="req-9")
    poll.join(TIMEOUT)
    assert result == [(200, b'"late"')]


def test_response_is_accepted_and_forwarded_byte_for_byte(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    next_invocation(host, client)
    payload = b'{"answer": 42, "bytes": "\xc3\xa9"}'
    status, headers, body = client.call("POST", "/invocation/req-1/response", payload)
    assert (status, body) == (202, ACCEPTED)
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    frame, _ = host.until(wire.RESPONSE)
    assert frame.meta == {"request_id": "req-1"}
    assert frame.body == payload


def test_unknown_request_id_is_400_and_leaves_the_invocation_open(
    env: tuple[Host, RuntimeClient],
) -> None:
    host, client = env
    next_invocation(host, client)
    for outcome in ("response", "error"):
        status, _, body = client.call("POST", f"/invocation/not-it/{outcome}", b"{}")
        assert status == 400
        assert json.loads(body) == {
            "errorMessage": "Invalid request ID",
            "errorType": "InvalidRequestID",
        }
    status, _, _ = client.call("POST", "/invocation/req-1/response", b"{}")
    assert status == 202


def test_second_response_for_the_same_id_is_403(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    next_invocation(host, client)
    assert client.call("POST", "/invocation/req-1/response", b"1")[0] == 202
    status, _, body = client.call("POST", "/invocation/req-1/response", b"2")
    assert status == 403
    assert json.loads(body) == forbidden("RuntimeResponseSentState", "InvocationResponse")
    status, _, body = client.call("POST", "/invocation/req-1/error", b"{}")
    assert status == 403
    assert json.loads(body) == forbidden("RuntimeResponseSentState", "InvocationErrorResponse")
    frame, _ = host.until(wire.RESPONSE)
    assert frame.body == b"1"


def test_response_before_any_next_is_403(env: tuple[Host, RuntimeClient]) -> None:
    _, client = env
    status, _, body = client.call("POST", "/invocation/req-1/response", b"{}")
    assert status == 403
    assert json.loads(body) == forbidden("Started", "InvocationResponse")


def test_next_while_an_invocation_is_in_flight_returns_it_again(
    env: tuple[Host, RuntimeClient],
) -> None:
    host, client = env
    first = next_invocation(host, client)
    status, headers, again = client.call("GET", "/invocation/next")
    assert (status, again) == (200, first)
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    client.call("POST", "/invocation/req-1/response", b"{}")
    _, before = host.until(wire.RESPONSE)
    assert wire.NEXT not in [f.type for f in before]  # one NEXT per idle period


def test_error_forwards_the_error_type_header(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    next_invocation(host, client)
    document = b'{"errorMessage": "x", "errorType": "ValueError", "stackTrace": []}'
    status, _, body = client.call(
        "POST",
        "/invocation/req-1/error",
        document,
        {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
    )
    assert (status, body) == (202, ACCEPTED)
    frame, _ = host.until(wire.ERROR)
    assert frame.meta == {"request_id": "req-1", "error_type": "Unhandled"}
    assert frame.body == document

    host.invoke(b"{}", request_id="req-2")
    client.call("GET", "/invocation/next")
    client.call("POST", "/invocation/req-2/error", b"{}")
    frame, _ = host.until(wire.ERROR)
    assert frame.meta == {"request_id": "req-2"}  # no header, no error_type


def test_init_error_is_accepted_once_and_only_before_next(
    env: tuple[Host, RuntimeClient],
) -> None:
    host, client = env
    document = b'{"errorMessage": "no module", "errorType": "Runtime.ImportModuleError"}'
    status, _, body = client.call(
        "POST",
        "/init/error",
        document,
        {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
    )
    assert (status, body) == (202, ACCEPTED)
    frame, _ = host.until(wire.INIT_ERROR)
    assert frame.meta == {"error_type": "Runtime.ImportModuleError"}
    assert frame.body == document
    status, _, body = client.call("POST", "/init/error", document)
    assert (status, json.loads(body)) == (403, forbidden("InitError", "InitError"))
    status, _, body = client.call("GET", "/invocation/next")
    assert (status, json.loads(body)) == (403, forbidden("InitError", "Ready"))


def test_init_error_after_init_is_403(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    next_invocation(host, client)
    status, _, body = client.call("POST", "/init/error", b"{}")
    assert (status, json.loads(body)) == (403, forbidden("Running", "InitError"))


def test_response_over_6mb_is_413_and_reported_to_the_host(
    env: tuple[Host, RuntimeClient],
) -> None:
    host, client = env
    next_invocation(host, client)
    status, _, body = client.call("POST", "/invocation/req-1/response", b"x" * (MAX + 1))
    assert status == 413
    assert json.loads(body) == {
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "RequestEntityTooLarge",
    }
    frame, _ = host.until(wire.RESPONSE_TOO_LARGE)
    assert frame.meta == {"request_id": "req-1", "size": MAX + 1}
    # The connection survived the discarded body; exactly 6291556 bytes is allowed.
    host.invoke(b"{}", request_id="req-2")
    assert client.call("GET", "/invocation/next")[0] == 200
    # The host must read while the agent forwards 6 MB, as the real host always does.
    statuses: list[int] = []
    post = threading.Thread(
        target=lambda: statuses.append(
            client.call("POST", "/invocation/req-2/response", b"y" * MAX)[0]
        )
    )
    post.start()
    frame, _ = host.until(wire.RESPONSE)
    post.join(TIMEOUT)
    assert statuses == [202]
    assert len(frame.body) == MAX


def test_unknown_routes_are_404_and_wrong_methods_405(env: tuple[Host, RuntimeClient]) -> None:
    _, client = env
    assert client.call("GET", "/nope")[0] == 404
    assert client.call("GET", "/invocation/a/b/response")[0] == 404
    assert client.call("POST", "/invocation/next")[0] == 405
    assert client.call("GET", "/invocation/req-1/response")[0] == 405


def test_expect_continue_and_chunked_bodies(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    next_invocation(host, client)
    with socket.create_connection(("127.0.0.1", host.port), timeout=TIMEOUT) as raw:
        raw.sendall(
            b"POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\n"
            b"Host: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert raw.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        raw.sendall(b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n")
        assert raw.recv(1000).startswith(b"HTTP/1.1 202 Accepted\r\n")
    frame, _ = host.until(wire.RESPONSE)
    assert frame.body == b"hello, world"


def test_invoke_while_busy_is_refused_with_agent_error(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    next_invocation(host, client)
    host.invoke(b"{}", request_id="req-2")
    frame, _ = host.until(wire.AGENT_ERROR)
    assert frame.meta["request_id"] == "req-2"
    assert "in flight" in frame.meta["message"]
    assert client.call("POST", "/invocation/req-1/response", b"{}")[0] == 202


def test_a_parked_next_with_connection_close_is_still_answered(
    env: tuple[Host, RuntimeClient],
) -> None:
    host, _ = env
    with socket.create_connection(("127.0.0.1", host.port), timeout=TIMEOUT) as raw:
        raw.sendall(
            b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n"
            b"Host: x\r\nConnection: close\r\n\r\n"
        )
        host.until(wire.NEXT)
        host.invoke(b'"parked"', request_id="req-c")
        reply = b""
        while not reply.endswith(b'"parked"'):
            chunk = raw.recv(4096)
            assert chunk, reply
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nLambda-Runtime-Aws-Request-Id: req-c\r\n" in reply


def test_an_invoke_waits_when_the_parked_next_went_away(env: tuple[Host, RuntimeClient]) -> None:
    host, client = env
    with socket.create_connection(("127.0.0.1", host.port), timeout=TIMEOUT) as raw:
        raw.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        host.until(wire.NEXT)
    # The agent may or may not have seen the close before the INVOKE; either way the
    # next /next must get the invocation.
    host.invoke(b'"kept"', request_id="req-k")
    status, headers, body = client.call("GET", "/invocation/next")
    assert (status, body) == (200, b'"kept"')
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-k"
