"""``lambdaplane logs`` against a real server: lines, filters, plain output, --follow."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

LAMBDAPLANE = str(Path(sys.executable).parent / "lambdaplane")
SOURCE = """
def handler(event, context):
    print("hello", event["marker"])
    if event.get("fail"):
        print("ERROR something broke", event["marker"])
    return "ok"
"""


def logs_command(server: ServerProcess, *args: str) -> list[str]:
    return [LAMBDAPLANE, "logs", *args, "--endpoint", server.endpoint]


def deploy(lam: Any, role: str) -> str:
    name = unique_name("logs")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(SOURCE)})},
    )
    wait_settled(lam, name)
    return name


def invoke(lam: Any, name: str, **event: Any) -> None:
    lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())["Payload"].read()


def run_until(server: ServerProcess, args: list[str], want: str, timeout: float = 10) -> str:
    """Run the command until its output contains ``want`` (the sink flushes every 0.2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            logs_command(server, *args),
            capture_output=True,
            text=True,
            env=server.cli_env(),
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        if want in done.stdout or time.monotonic() > deadline:
            return done.stdout
        time.sleep(0.2)


def test_prints_lines_plain_when_piped_and_filters(
    server: ServerProcess, lam: Any, role: str
) -> None:
    name = deploy(lam, role)
    marker = uuid.uuid4().hex
    invoke(lam, name, marker=marker, fail=True)
    out = run_until(server, [name, "--since", "5m"], f"ERROR something broke {marker}")
    assert f"hello {marker}" in out
    assert "\x1b[" not in out  # piped: no colours
    lines = out.splitlines()
    assert any(" START RequestId: " in line for line in lines)
    assert any(" REPORT RequestId: " in line for line in lines)
    assert all("/[$LATEST]" in line.split(" ", 2)[1] for line in lines)

    filtered = run_until(server, [name, "--filter", "ERROR"], marker)
    assert filtered.splitlines() == [line for line in lines if "ERROR something broke" in line]
    coloured = subprocess.run(
        logs_command(server, name, "--color", "always"),
        capture_output=True,
        text=True,
        env=server.cli_env(),
        timeout=30,
        check=True,
    ).stdout
    assert "\x1b[31mERROR something broke" in coloured


def test_follow_sees_a_new_line(server: ServerProcess, lam: Any, role: str) -> None:
    name = deploy(lam, role)
    follower = subprocess.Popen(
        logs_command(server, name, "--follow", "--since", "1s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server.cli_env(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        time.sleep(0.5)  # it is polling
        marker = uuid.uuid4().hex
        sent = time.monotonic()
        invoke(lam, name, marker=marker)
        while True:
            line = lines.get(timeout=10)
            if f"hello {marker}" in line:
                break
        assert time.monotonic() - sent < 5
    finally:
        follower.send_signal(signal.SIGINT)
        code = follower.wait(10)
        assert follower.stderr is not None
        errors = follower.stderr.read()
        follower.stdout.close() if follower.stdout else None
        follower.stderr.close()
    assert code == 0, errors


def test_unknown_function_exits_2(server: ServerProcess) -> None:
    missing = unique_name("nothere")
    done = subprocess.run(
        logs_command(server, missing),
        capture_output=True,
        text=True,
        env=server.cli_env(),
        timeout=30,
    )
    assert done.returncode == 2
    assert f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{missing}" in (
        done.stderr
    )
