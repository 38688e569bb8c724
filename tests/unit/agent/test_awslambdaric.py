"""The agent with AWS's official Python runtime interface client, unmodified:
``python -m awslambdaric handler.fn`` in a task directory, as on AWS."""

from __future__ import annotations

import json
import statistics
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lambdaplane.agent import wire

from .conftest import StartAgent
from .harness import Host

pytest.importorskip("awslambdaric")

HANDLER = textwrap.dedent(
    """
    import sys

    def echo(event, context):
        return {
            "event": event,
            "request_id": context.aws_request_id,
            "arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "client_context": context.client_context.custom if context.client_context else None,
            "identity_pool": context.identity.cognito_identity_pool_id,
        }

    def trivial(event, context):
        return 1

    def chatty(event, context):
        for i in range(1000):
            print("line %d" % i)
        return "done"

    def fails(event, context):
        raise ValueError("no good")

    def huge(event, context):
        return "x" * 7_000_000
    """
)


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    (tmp_path / "handler.py").write_text(HANDLER)
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    return tmp_path


def start_ric(start_agent: StartAgent, task_root: Path, handler: str) -> Host:
    return start_agent(
        [sys.executable, "-m", "awslambdaric", handler],
        cwd=task_root,
        env={"LAMBDA_TASK_ROOT": str(task_root), "AWS_LAMBDA_FUNCTION_NAME": "f"},
    )


def test_context_comes_from_the_runtime_api_headers(
    start_agent: StartAgent, task_root: Path
) -> None:
    host = start_ric(start_agent, task_root, "handler.echo")
    host.until(wire.NEXT)
    host.invoke(
        b'{"a": [1, 2]}',
        request_id="8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        deadline_ms=int(time.time() * 1000) + 30_000,
        client_context=json.dumps({"client": {}, "custom": {"k": "v"}, "env": {}}),
        cognito_identity=json.dumps({"cognitoIdentityId": "i", "cognitoIdentityPoolId": "p"}),
    )
    frame, _ = host.until(wire.RESPONSE)
    assert frame.meta == {"request_id": "8476a536-e9f4-11e8-9739-2dfe598c3fcd"}
    result = json.loads(frame.body)
    assert result["event"] == {"a": [1, 2]}
    assert result["request_id"] == "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    assert result["arn"] == "arn:aws:lambda:us-east-1:111111111111:function:f"
    assert 25_000 < result["remaining_ms"] <= 30_000
    assert result["client_context"] == {"k": "v"}
    assert result["identity_pool"] == "p"
    host.until(wire.NEXT)


def test_a_raising_handler_posts_aws_error_shape(start_agent: StartAgent, task_root: Path) -> None:
    host = start_ric(start_agent, task_root, "handler.fails")
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="req-err")
    frame, _ = host.until(wire.ERROR)
    # awslambdaric 4.x sends no Lambda-Runtime-Function-Error-Type on /error (only an
    # X-Ray cause header), so the host sees no error_type and must read the document.
    assert frame.meta == {"request_id": "req-err"}
    error = json.loads(frame.body)
    assert error["errorMessage"] == "no good"
    assert error["errorType"] == "ValueError"
    assert error["requestId"] == "req-err"
    assert any("raise ValueError" in line for line in error["stackTrace"])
    host.until(wire.NEXT)  # the runtime lives on


def test_an_import_error_is_an_init_error_then_exit(
    start_agent: StartAgent, task_root: Path
) -> None:
    host = start_ric(start_agent, task_root, "broken.handler")
    frame, before = host.until(wire.INIT_ERROR)
    assert frame.meta["error_type"] == "Runtime.ImportModuleError"
    error = json.loads(frame.body)
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module_anywhere" in error["errorMessage"]
    assert wire.NEXT not in [f.type for f in before]
    frame, before = host.until(wire.EXIT)
    assert frame.meta["status"] == "exit status 1"
    logs = host.logs([f for f in host.seen if f.type == wire.LOG])
    assert b"Runtime.ImportModuleError" in logs


def test_output_reaches_the_host_before_the_response(
    start_agent: StartAgent, task_root: Path
) -> None:
    host = start_ric(start_agent, task_root, "handler.chatty")
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="chatty")
    _, before = host.until(wire.RESPONSE)
    logs = host.logs(before).decode()
    assert [line for line in logs.splitlines() if line.startswith("line ")] == [
        f"line {i}" for i in range(1000)
    ]


def test_a_response_over_6mb_is_reported_too_large(
    start_agent: StartAgent, task_root: Path
) -> None:
    host = start_ric(start_agent, task_root, "handler.huge")
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="big")
    frame, _ = host.until(wire.RESPONSE_TOO_LARGE)
    assert frame.meta["request_id"] == "big"
    assert frame.meta["size"] > 6_291_556
    # awslambdaric treats the 413 as fatal and exits; AWS then reports the runtime's exit.
    frame, _ = host.until(wire.NEXT, wire.EXIT)
    print(f"\nafter 413, awslambdaric: {wire.NAMES[frame.type]} {frame.meta}")


def test_measure_warm_round_trip(start_agent: StartAgent, task_root: Path) -> None:
    """Prints host INVOKE -> RESPONSE with a trivial handler, median of 2000 (no assertion)."""
    host = start_ric(start_agent, task_root, "handler.trivial")
    host.until(wire.NEXT)
    samples = []
    for n in range(2200):
        started = time.perf_counter_ns()
        host.invoke(b"{}", request_id=f"r{n}")
        frame, _ = host.until(wire.RESPONSE)
        samples.append(time.perf_counter_ns() - started)
        assert frame.body == b"1"
        host.until(wire.NEXT)
    warm = sorted(samples[200:])
    print(
        f"\nwarm INVOKE -> RESPONSE via agent + awslambdaric: median {statistics.median(warm) / 1000:.0f} us, p90 {warm[int(len(warm) * 0.9)] / 1000:.0f} us"
    )
