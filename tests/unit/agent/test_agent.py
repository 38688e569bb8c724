"""The agent process end to end with a tiny ``http.client`` runtime: invocations, output
ordering, runtime exits, shutdown, host loss, and every Python the agent must run on."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lambdaplane.agent import wire

from .conftest import StartAgent
from .harness import AGENT, PYTHONS, Host, fake_runtime, pid_gone


def echo(host: Host, request_id: str, event: dict[str, object]) -> dict[str, object]:
    host.invoke(json.dumps(event).encode(), request_id=request_id)
    frame, _ = host.until(wire.RESPONSE)
    assert frame.meta == {"request_id": request_id}
    result: dict[str, object] = json.loads(frame.body)
    return result


def runtime_pid(host: Host) -> int:
    frame = echo(host, "pid", {"action": "pid"})
    pid = frame["pid"]
    assert isinstance(pid, int)
    return pid


def test_serves_invocations_to_a_python_runtime(start_agent: StartAgent) -> None:
    host = start_agent(fake_runtime())
    first, _ = host.until(wire.NEXT)
    for n in range(3):
        result = echo(host, f"req-{n}", {"n": n})
        assert result["event"] == json.dumps({"n": n})
        headers = result["headers"]
        assert isinstance(headers, dict)
        assert headers["Lambda-Runtime-Aws-Request-Id"] == f"req-{n}"
        assert headers["Content-Type"] == "application/json"
        assert set(headers) >= {
            "Lambda-Runtime-Deadline-Ms",
            "Lambda-Runtime-Invoked-Function-Arn",
            "Lambda-Runtime-Trace-Id",
        }
        frame, _ = host.until(wire.NEXT)
        assert frame.meta["t"] > first.meta["t"]


def test_all_output_before_the_response_arrives_first_and_in_order(
    start_agent: StartAgent,
) -> None:
    host = start_agent(fake_runtime())
    host.until(wire.NEXT)
    host.invoke(json.dumps({"action": "print", "lines": 1000}).encode(), request_id="p")
    _, before = host.until(wire.RESPONSE)
    expected = "".join(f"line {i}\n" for i in range(1000)).encode()
    assert host.logs(before) == expected  # stdout and stderr interleaved as written
    assert all(isinstance(f.meta["ts"], int) for f in before if f.type == wire.LOG)


def test_runtime_exit_is_reported_with_aws_wording(start_agent: StartAgent) -> None:
    host = start_agent(fake_runtime())
    host.until(wire.NEXT)
    host.invoke(json.dumps({"action": "exit", "code": 3}).encode())
    frame, _ = host.until(wire.EXIT)
    assert frame.meta == {"status": "exit status 3", "code": 3, "signal": None}
    assert host.read() is None
    assert host.wait_exit() == 0


def test_runtime_killed_by_sigkill_is_signal_killed(start_agent: StartAgent) -> None:
    host = start_agent(fake_runtime())
    pid = runtime_pid(host)
    host.until(wire.NEXT)
    os.kill(pid, signal.SIGKILL)
    frame, _ = host.until(wire.EXIT)
    assert frame.meta == {"status": "signal: killed", "code": None, "signal": 9}
    assert host.wait_exit() == 0


def test_exit_during_init_and_init_error_are_reported(start_agent: StartAgent) -> None:
    host = start_agent(fake_runtime("--exit", "7"))
    frame, before = host.until(wire.EXIT)
    assert frame.meta["status"] == "exit status 7"
    assert wire.NEXT not in [f.type for f in before]

    host = start_agent(fake_runtime("--init-error"))
    frame, _ = host.until(wire.INIT_ERROR)
    assert frame.meta == {"error_type": "Custom.Init"}
    assert json.loads(frame.body)["errorMessage"] == "boom"
    frame, _ = host.until(wire.EXIT)
    assert frame.meta["status"] == "exit status 1"


def test_shutdown_kills_the_runtime_and_ends_the_agent(start_agent: StartAgent) -> None:
    host = start_agent(fake_runtime())
    pid = runtime_pid(host)
    host.invoke(json.dumps({"action": "hang"}).encode(), request_id="hang")
    host.send(wire.SHUTDOWN)
    frame, _ = host.until(wire.EXIT)
    assert frame.meta["status"] == "signal: killed"
    assert host.wait_exit() == 0
    assert pid_gone(pid)


def test_host_eof_takes_the_agent_and_runtime_down(start_agent: StartAgent) -> None:
    host = start_agent(fake_runtime())
    pid = runtime_pid(host)
    host.reader.close()
    host.sock.close()
    assert host.wait_exit() == 0
    assert pid_gone(pid)


def test_a_runtime_that_cannot_start_is_an_agent_error(start_agent: StartAgent) -> None:
    host = start_agent(["/nonexistent/bootstrap"])
    frame, _ = host.until(wire.AGENT_ERROR)
    assert frame.meta["errno"] == 2
    assert "/nonexistent/bootstrap" in frame.meta["message"]
    assert host.read() is None
    assert host.wait_exit() == 1


def test_bad_command_line_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, str(AGENT), "--port", "1"], capture_output=True, timeout=30
    )
    assert proc.returncode == 2
    assert b"usage:" in proc.stderr


@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_agent_runs_on_every_supported_python(start_agent: StartAgent, version: str) -> None:
    python = PYTHONS[version]
    if not Path(python).exists():
        pytest.skip(f"no Python {version} here")
    host = start_agent(fake_runtime(), python=python)
    host.until(wire.NEXT)
    assert echo(host, "r", {"v": version})["event"] == json.dumps({"v": version})
    host.send(wire.SHUTDOWN)
    host.until(wire.EXIT)
    assert host.wait_exit() == 0


def test_measure_start_to_first_next(start_agent: StartAgent) -> None:
    """Prints agent start -> first NEXT with the fake runtime (no assertion on time)."""
    for label, python in [("3.11", sys.executable), ("3.9", PYTHONS["3.9"])]:
        if not Path(python).exists():
            continue
        samples = []
        for _ in range(15):
            started = time.perf_counter()
            host = start_agent(fake_runtime(), python=python)
            host.until(wire.NEXT)
            samples.append((time.perf_counter() - started) * 1000)
            host.send(wire.SHUTDOWN)
            host.until(wire.EXIT)
            host.wait_exit()
        print(
            f"\nagent({label}) start -> first NEXT, fake runtime: median {statistics.median(samples):.1f} ms, min {min(samples):.1f} ms"
        )
