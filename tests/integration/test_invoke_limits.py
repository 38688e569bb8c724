"""Invoke with tight platform settings: throttling, keep-alive reaping, init timeout,
logs in the store, and no process surviving the server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.testing import ServerProcess, make_zip, start_server
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
SLEEPY = """
import time, uuid
BOOT = uuid.uuid4().hex
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return BOOT
"""


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory.mktemp("tight"),
        "--account-concurrency", "1", "--keep-alive", "1", "--init-timeout", "2",
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, srv.log()


def _deploy(lam: Any, source: str, **extra: Any) -> str:
    name = unique_name("lim")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(source)})},
        Timeout=extra.pop("Timeout", 10),
        **extra,
    )
    wait_settled(lam, name)
    return name


def _invoke(lam: Any, name: str, event: Any) -> Any:
    return json.loads(lam.invoke(FunctionName=name, Payload=json.dumps(event))["Payload"].read())


def test_throttled_beyond_account_concurrency(tight: ServerProcess) -> None:
    lam = tight.client()
    name = _deploy(lam, SLEEPY)
    _invoke(lam, name, {})

    def slow(_: int) -> str:
        client = tight.client()
        try:
            _invoke(client, name, {"sleep": 1.5})
            return "ok"
        except ClientError as exc:
            error = exc.response
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert error["Error"]["Message"] == "Rate Exceeded."
            return str(error["Reason"])
        finally:
            client.close()

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(slow, range(2)))
    assert outcomes == ["ConcurrentInvocationLimitExceeded", "ok"]
    lam.close()


def test_idle_environments_are_reaped_after_keep_alive(tight: ServerProcess) -> None:
    lam = tight.client()
    name = _deploy(lam, SLEEPY)
    first = _invoke(lam, name, {})
    assert _invoke(lam, name, {}) == first  # warm
    time.sleep(3)  # keep-alive is 1 s; the reaper runs every second
    assert _invoke(lam, name, {}) != first  # reaped: a cold start
    lam.close()


def test_init_longer_than_the_limit_fails(tight: ServerProcess) -> None:
    lam = tight.client()
    name = _deploy(lam, "import time\ntime.sleep(5)\ndef handler(e, c):\n    return 1\n")
    response = lam.invoke(FunctionName=name, Payload=b"{}")
    body = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    lam.close()


def test_log_lines_are_stored(tight: ServerProcess) -> None:
    lam = tight.client()
    name = _deploy(lam, "def handler(e, c):\n    print('stored line', e['n'])\n    return 1\n")
    for n in range(3):
        _invoke(lam, name, {"n": n})
    time.sleep(0.6)  # the sink flushes every 200 ms
    db = sqlite3.connect(f"file:{tight.data_dir / 'lambdaplane.db'}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT log_stream, message FROM log_events WHERE log_group = ? ORDER BY timestamp, id",
        (f"/aws/lambda/{name}",),
    ).fetchall()
    db.close()
    messages = [m for _, m in rows]
    assert [m for m in messages if m.startswith("stored line")] == [
        f"stored line {n}" for n in range(3)
    ]
    assert sum(m.startswith("START RequestId:") for m in messages) == 3
    assert sum(m.startswith("REPORT RequestId:") for m in messages) == 3
    stream = rows[0][0]
    assert stream.startswith(time.strftime("%Y/%m/%d/", time.gmtime())) and "[$LATEST]" in stream
    lam.close()


def _sandbox_pids() -> set[int]:
    pids: set[int] = set()
    root = Path("/sys/fs/cgroup/pids/lambdaplane")
    for procs in root.glob("*/cgroup.procs"):
        pids |= {int(p) for p in procs.read_text().split()}
    return pids


def test_killed_server_leaves_no_sandbox_process(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    lam = srv.client()
    name = _deploy(lam, SLEEPY)
    _invoke(lam, name, {})
    lam.close()
    children = subprocess.run(
        ["pgrep", "-P", str(srv.process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert children, "an environment should be running"
    os.kill(srv.process.pid, signal.SIGKILL)
    srv.process.wait()
    srv.stop()
    deadline = time.monotonic() + 10
    alive = {int(c) for c in children}
    while time.monotonic() < deadline:
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists()}
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, f"sandbox processes outlived the server: {alive}"


def test_custom_runtime_with_awslambdaric(tmp_path: Path, tight: ServerProcess) -> None:
    """awslambdaric vendored into the zip and run by a bootstrap, as AWS documents."""
    vendor = tmp_path / "vendor"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--target", str(vendor), "awslambdaric>=2.2,<5"],
        check=True, timeout=300,
    )  # fmt: skip
    python = os.path.realpath(sys.executable)
    if not python.startswith("/usr/"):
        python = os.path.realpath(f"/usr/bin/python3.{sys.version_info.minor}")
    files: dict[str, str | bytes] = {
        str(p.relative_to(vendor)): p.read_bytes()
        for p in vendor.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    files["function.py"] = (
        "def handler(event, context):\n    return {'custom': event, 'fn': context.function_name}\n"
    )
    files["bootstrap"] = (
        f'#!/bin/sh\ncd "$LAMBDA_TASK_ROOT"\nexec {python} -m awslambdaric function.handler\n'
    )
    lam = tight.client()
    name = unique_name("ric")
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="function.handler",
        Code={"ZipFile": make_zip(files, mode=0o755)},
    )
    wait_settled(lam, name)
    assert _invoke(lam, name, {"x": 1}) == {"custom": {"x": 1}, "fn": name}
    lam.close()
