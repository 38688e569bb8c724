"""The Extensions API 2020-01-01 as the agent serves it: real external extensions (a curl
shell script, a Python program) started from a temporary extensions directory, beside
the fake runtime, and the test itself playing an internal extension.

Expected codes, error types and messages are those of AWS's runtime interface emulator
(lambda/rapi/handler/agent*.go, lambda/rapi/middleware); lifecycle and payloads are
the Lambda developer guide's ("Lambda Extensions API")."""

from __future__ import annotations

import json
import re
import threading
import time
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
    lines,
    python_extension,
    shell_extension,
    start,
)
from .harness import (
    PYTHONS,
    TIMEOUT,
    RuntimeClient,
    fake_runtime,
    pid_gone,
    sleeper,
    wait_listening,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# -- external extensions ---------------------------------------------------------------


def test_external_extension_registers_gets_invokes_and_shutdown(
    start_agent: StartAgent, extensions_dir: Path, out: Path
) -> None:
    shell_extension(extensions_dir)
    host = start(start_agent, extensions_dir, out)
    _, before = host.until(wire.NEXT)

    # Registered before the first NEXT, with AWS's response.
    assert json.loads((out / "shell-ext.register").read_text()) == {
        "functionName": "my-function",
        "functionVersion": "$LATEST",
        "handler": "handler.fn",
    }
    headers = (out / "shell-ext.register-headers").read_bytes().decode()
    assert headers.startswith("HTTP/1.1 200 OK\r\n")
    ident = re.search(r"Lambda-Extension-Identifier: (\S+)", headers)
    assert ident is not None and UUID.match(ident.group(1))
    logs = host.logs(before)
    assert b"shell-ext registered\n" in logs
    assert b"EXTENSION\tName: shell-ext\tState: Ready\tEvents: [INVOKE,SHUTDOWN]\n" in logs

    deadlines = {}
    for n in range(2):
        deadlines[f"req-{n}"] = deadline = int(time.time() * 1000) + 30_000
        host.invoke(b'{"n": 1}', request_id=f"req-{n}", deadline_ms=deadline)
        frame, _ = host.until(wire.RESPONSE)
        assert frame.meta == {"request_id": f"req-{n}"}
        host.until(wire.NEXT)  # the extension has called next again, so it wrote the event
    events = lines(out / "shell-ext.events")
    assert events == [
        {
            "eventType": "INVOKE",
            "deadlineMs": deadlines[request_id],
            "requestId": request_id,
            "invokedFunctionArn": "arn:aws:lambda:us-east-1:111111111111:function:f",
            "tracing": {
                "type": "X-Amzn-Trace-Id",
                "value": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            },
        }
        for request_id in ("req-0", "req-1")
    ]

    sent_ms = int(time.time() * 1000)
    host.send(wire.SHUTDOWN)
    frame, before = host.until(wire.EXIT)
    # With extensions the runtime gets SIGTERM, not SIGKILL.
    assert frame.meta == {"status": "signal: terminated", "code": None, "signal": 15}
    shutdown = lines(out / "shell-ext.events")[-1]
    assert shutdown["eventType"] == "SHUTDOWN"
    assert shutdown["shutdownReason"] == "spindown"
    assert sent_ms + 1_000 <= shutdown["deadlineMs"] <= sent_ms + 3_000  # the 2 s phase
    assert b"shell-ext shutting down\n" in host.logs(before)
    assert host.wait_exit() == 0


def test_next_waits_for_a_slow_extension(
    start_agent: StartAgent, extensions_dir: Path, out: Path
) -> None:
    python_extension(extensions_dir)
    host = start(start_agent, extensions_dir, out, EXT_DELAY="0.3")
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="slow")
    host.until(wire.RESPONSE)
    frame, before = host.until(wire.NEXT)
    assert wire.NEXT not in [f.type for f in before]

    events = lines(out / "python-ext.events")
    invoke = next(i for i, e in enumerate(events) if e.get("event", {}).get("requestId") == "slow")
    assert events[invoke]["headers"]["Content-Type"] == "application/json"
    assert UUID.match(events[invoke]["headers"]["Lambda-Extension-Event-Identifier"])
    # NEXT (stamped with CLOCK_MONOTONIC when sent) came after the extension called next.
    extension_next_at = events[invoke + 1]["next_at"]
    assert frame.meta["t"] / 1e9 >= extension_next_at >= events[invoke]["at"] + 0.3


def test_the_response_does_not_wait_for_extensions(
    start_agent: StartAgent, extensions_dir: Path, out: Path
) -> None:
    python_extension(extensions_dir)
    gate = out / "gate"
    host = start(start_agent, extensions_dir, out, EXT_GATE=str(gate))
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="gated")
    frame, _ = host.until(wire.RESPONSE)  # while the extension waits for the gate
    assert frame.meta == {"request_id": "gated"}
    assert host.silent_for(0.3)  # no NEXT while the extension has not called next
    gate.touch()
    host.until(wire.NEXT)


@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_extensions_work_on_every_supported_python(
    start_agent: StartAgent, extensions_dir: Path, out: Path, version: str
) -> None:
    python = PYTHONS[version]
    if not Path(python).exists():
        pytest.skip(f"no Python {version} here")
    shell_extension(extensions_dir)
    python_extension(extensions_dir)
    environ = dict(FUNCTION_ENV, EXT_OUT=str(out), TMPDIR=str(out))
    host = start_agent(fake_runtime(), python=python, env=environ, extensions_dir=extensions_dir)
    host.until(wire.NEXT)
    host.invoke(json.dumps({"action": "print", "lines": 1}).encode(), request_id=version)
    host.until(wire.RESPONSE)
    host.until(wire.NEXT)
    host.send(wire.SHUTDOWN)
    frame, _ = host.until(wire.EXIT)
    assert frame.meta["status"] == "signal: terminated"
    assert [e["requestId"] for e in lines(out / "shell-ext.events")[:-1]] == [version]
    records = lines(out / "python-ext.telemetry")
    assert "line 0" in [r["record"] for r in records if r["type"] == "function"]


def test_register_response_reports_the_account_when_asked(
    start_agent: StartAgent, extensions_dir: Path, out: Path
) -> None:
    python_extension(extensions_dir)
    host = start(start_agent, extensions_dir, out)
    host.until(wire.NEXT)
    (register,) = lines(out / "python-ext.register")
    assert register["status"] == 200
    assert register["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert UUID.match(register["headers"]["Lambda-Extension-Identifier"])
    assert register["body"] == {
        "accountId": "111111111111",
        "functionName": "my-function",
        "functionVersion": "$LATEST",
        "handler": "handler.fn",
    }


def test_an_extension_init_error_fails_the_init(
    start_agent: StartAgent, extensions_dir: Path, out: Path
) -> None:
    shell_extension(extensions_dir, "bad-ext")
    host = start(start_agent, extensions_dir, out, EXT_INIT_ERROR="Extension.TestError")
    frame, before = host.until(wire.INIT_ERROR)
    assert wire.NEXT not in [f.type for f in before]
    assert frame.meta == {"error_type": "Extension.InitError"}
    assert json.loads(frame.body) == error("Extension.InitError", "Error: exit code 0")
    assert (
        b"EXTENSION\tName: bad-ext\tState: InitError\tEvents: [INVOKE,SHUTDOWN]"
        b"\tError Type: Extension.TestError\n"
    ) in host.logs(before)
    frame, _ = host.until(wire.EXIT)
    assert frame.meta["error_type"] == "Extension.InitError"
    assert frame.meta["extension"] == "bad-ext"
    assert host.read() is None
    assert host.wait_exit() == 0


def test_an_extension_that_exits_during_init_is_a_crash(
    start_agent: StartAgent, extensions_dir: Path, out: Path
) -> None:
    shell_extension(extensions_dir, "crashing-ext")
    host = start(start_agent, extensions_dir, out, EXT_EXIT="3")
    frame, before = host.until(wire.INIT_ERROR)
    assert wire.NEXT not in [f.type for f in before]
    assert frame.meta == {"error_type": "Extension.Crash"}
    assert json.loads(frame.body) == error("Extension.Crash", "Error: exit status 3")
    frame, _ = host.until(wire.EXIT)
    assert frame.meta["status"] == "exit status 3"


def test_an_extension_that_cannot_be_started_is_a_launch_error(
    start_agent: StartAgent, extensions_dir: Path, out: Path
) -> None:
    (extensions_dir / "not-executable").write_text("#!/bin/sh\n")
    host = start(start_agent, extensions_dir, out)
    frame, _ = host.until(wire.INIT_ERROR)
    assert frame.meta == {"error_type": "Extension.LaunchError"}
    message = json.loads(frame.body)["errorMessage"]
    assert message == f"Error: fork/exec {extensions_dir}/not-executable: permission denied"
    host.until(wire.EXIT)


def test_an_extension_that_ignores_shutdown_is_killed_at_the_deadline(
    start_agent: StartAgent, extensions_dir: Path, out: Path
) -> None:
    python_extension(extensions_dir)
    host = start(start_agent, extensions_dir, out, EXT_HANG="1")
    host.until(wire.NEXT)
    (pid,) = lines(out / "python-ext.pid")
    host.send(wire.SHUTDOWN, {"reason": "timeout"})
    host.until(wire.EXIT)
    assert host.wait_exit() == 0
    assert pid_gone(pid)
    shutdown = lines(out / "python-ext.events")[-1]["event"]
    assert shutdown["eventType"] == "SHUTDOWN"
    assert shutdown["shutdownReason"] == "timeout"


def test_api_refusals_after_init(start_agent: StartAgent, extensions_dir: Path, out: Path) -> None:
    shell_extension(extensions_dir)
    host = start(start_agent, extensions_dir, out)
    host.until(wire.NEXT)
    call = Caller(host)
    headers = (out / "shell-ext.register-headers").read_bytes().decode()
    match = re.search(r"Lambda-Extension-Identifier: (\S+)", headers)
    assert match is not None
    ident = match.group(1)
    unknown = "00000000-0000-4000-8000-000000000000"
    events = {"events": ["INVOKE"]}

    # Registration is over: a new name would be an internal extension; a known one is
    # registered already.
    status, reply_headers, body = call(
        "POST", f"{EXTENSION}/register", events, {"Lambda-Extension-Name": "late"}
    )
    assert (status, body) == (
        403,
        error("Extension.RegistrationClosed", "Extension registration closed already"),
    )
    assert reply_headers["Content-Type"] == "application/json; charset=utf-8"
    status, _, body = call(
        "POST", f"{EXTENSION}/register", events, {"Lambda-Extension-Name": "shell-ext"}
    )
    assert (status, body) == (
        403,
        error(
            "Extension.InvalidExtensionState",
            "State transition from Ready to Registered failed for extension shell-ext. "
            "Error: State transition is not allowed",
        ),
    )
    # Malformed registrations.
    status, _, body = call("POST", f"{EXTENSION}/register", events)
    assert (status, body) == (403, error("Extension.InvalidExtensionName", "Empty extension name"))
    status, _, body = call("POST", f"{EXTENSION}/register", b"{", {"Lambda-Extension-Name": "x"})
    assert (status, body["errorType"]) == (403, "InvalidRequestFormat")
    status, _, body = call(
        "POST",
        f"{EXTENSION}/register",
        {"events": ["BOOT"]},
        {"Lambda-Extension-Name": "shell-ext"},
    )
    assert (status, body) == (
        403,
        error("Extension.InvalidEventType", "BOOT: ErrorInvalidEventType"),
    )

    # Identifiers.
    assert call("GET", f"{EXTENSION}/event/next")[::2] == (
        403,
        error("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header"),
    )
    bad = {"Lambda-Extension-Identifier": "not-a-uuid"}
    assert call("GET", f"{EXTENSION}/event/next", headers=bad)[::2] == (
        403,
        error("Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier"),
    )
    stranger = {"Lambda-Extension-Identifier": unknown}
    assert call("GET", f"{EXTENSION}/event/next", headers=stranger)[::2] == (
        403,
        error("Extension.UnknownExtensionIdentifier", f"Unknown extension {unknown}"),
    )
    typed = dict(stranger, **{"Lambda-Extension-Function-Error-Type": "Extension.Oops"})
    assert call("POST", f"{EXTENSION}/init/error", b"{}", typed)[::2] == (
        403,
        error("Extension.UnknownExtensionIdentifier", "Unknown Lambda-Extension-Identifier"),
    )
    known = {"Lambda-Extension-Identifier": ident.upper()}  # any spelling Go's uuid.Parse takes
    assert call("POST", f"{EXTENSION}/exit/error", b"{}", known)[::2] == (
        403,
        error("Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found"),
    )

    # States: a second /next while the extension's first one waits; init/error after init.
    assert call("GET", f"{EXTENSION}/event/next", headers=known)[::2] == (
        403,
        error(
            "Extension.InvalidExtensionState",
            f"State transition from Ready to Ready failed for extension {ident}. "
            "Error: State transition is not allowed",
        ),
    )
    typed = dict(known, **{"Lambda-Extension-Function-Error-Type": "Extension.Oops"})
    assert call("POST", f"{EXTENSION}/init/error", b"{}", typed)[::2] == (
        403,
        error(
            "Extension.InvalidExtensionState",
            f"State transition from Ready to InitError failed for extension {ident}. "
            "Error: State transition is not allowed",
        ),
    )
    # Telemetry subscriptions close with the init phase.
    status, _, body = call("PUT", "/2022-07-01/telemetry", {}, known)
    assert (status, body) == (
        403,
        error("Telemetry.SubscriptionClosed", "Telemetry API subscription is closed already"),
    )

    # /exit/error: logged, and the extension is gone: nothing waits for it any more.
    status, _, body = call("POST", f"{EXTENSION}/exit/error", b"{}", typed)
    assert (status, body) == (202, {"status": "OK"})
    host.invoke(b"{}", request_id="after-exit-error")
    host.until(wire.RESPONSE)
    host.until(wire.NEXT)
    assert (
        b"EXTENSION\tName: shell-ext\tState: ExitError\tEvents: [INVOKE,SHUTDOWN]"
        b"\tError Type: Extension.Oops\n"
    ) in host.logs(host.seen)
    assert not (out / "shell-ext.events").exists()  # it got no INVOKE


# -- internal extensions (the test plays the runtime and its in-process extension) ------


def test_internal_extension_takes_part_in_init_and_invokes(start_agent: StartAgent) -> None:
    host = start_agent(sleeper(), env=FUNCTION_ENV)
    wait_listening(host)
    call = Caller(host)
    name = {"Lambda-Extension-Name": "internal-ext"}
    status, _, body = call("POST", f"{EXTENSION}/register", {"events": ["SHUTDOWN"]}, name)
    assert (status, body) == (
        403,
        error(
            "Extension.InvalidEventType",
            "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension",
        ),
    )
    status, headers, body = call("POST", f"{EXTENSION}/register", {"events": ["INVOKE"]}, name)
    assert status == 200
    assert body == {
        "functionName": "my-function",
        "functionVersion": "$LATEST",
        "handler": "handler.fn",
    }
    ident = {"Lambda-Extension-Identifier": headers["Lambda-Extension-Identifier"]}
    status, _, body = call("POST", f"{EXTENSION}/register", {"events": ["INVOKE"]}, name)
    assert (status, body) == (
        403,
        error("Extension.InvalidExtensionState", "Extension with this name already registered"),
    )

    runtime = RuntimeClient(host)
    replies: dict[str, list[Any]] = {"runtime": [], "extension": []}

    def runtime_next() -> None:
        replies["runtime"].append(runtime.call("GET", "/invocation/next"))

    def extension_next() -> None:
        replies["extension"].append(call("GET", f"{EXTENSION}/event/next", headers=ident))

    try:
        first = threading.Thread(target=runtime_next)
        first.start()
        # The runtime alone is not enough: init waits for the extension's next too.
        assert host.silent_for(0.3)
        waiting = threading.Thread(target=extension_next)
        waiting.start()
        host.until(wire.NEXT)
        status, _, body = call("POST", f"{EXTENSION}/register", {}, {"Lambda-Extension-Name": "x"})
        assert (status, body["errorType"]) == (403, "Extension.RegistrationClosed")

        host.invoke(b'"hi"', request_id="in-1")
        first.join(TIMEOUT)
        waiting.join(TIMEOUT)
        assert replies["runtime"][0][2] == b'"hi"'
        status, headers, event = replies["extension"][0]
        assert status == 200
        assert event["eventType"] == "INVOKE"
        assert event["requestId"] == "in-1"
        assert UUID.match(headers["Lambda-Extension-Event-Identifier"])

        assert runtime.call("POST", "/invocation/in-1/response", b"1")[0] == 202
        host.until(wire.RESPONSE)
        second = threading.Thread(target=runtime_next)
        second.start()
        assert host.silent_for(0.3)
        waiting = threading.Thread(target=extension_next)
        waiting.start()
        host.until(wire.NEXT)
        host.invoke(b'"bye"', request_id="in-2")
        second.join(TIMEOUT)
        waiting.join(TIMEOUT)
        assert replies["extension"][1][2]["requestId"] == "in-2"
    finally:
        runtime.close()
