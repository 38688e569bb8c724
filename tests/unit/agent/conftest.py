"""Run the real agent as a subprocess, without a sandbox: the test plays the host over a
socketpair, and the runtime is a real process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import AGENT, Host, free_port

StartAgent = Callable[..., Host]


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[StartAgent]:
    """Start an agent for ``runtime_argv``; every agent is killed and reaped afterwards."""
    hosts: list[Host] = []

    def start(
        runtime_argv: list[str],
        *,
        python: str = sys.executable,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        extensions_dir: Path | None = None,
        agent_args: tuple[str, ...] = (),
    ) -> Host:
        """``extensions_dir`` defaults to a missing directory: no extensions, whatever
        this machine's /opt/extensions holds."""
        port = free_port()
        ours, theirs = socket.socketpair()
        environ = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}")
        environ.update(env or {})
        proc = subprocess.Popen(
            [
                python,
                "-I",
                "-S",
                str(AGENT),
                "--fd",
                str(theirs.fileno()),
                "--port",
                str(port),
                "--extensions-dir",
                str(extensions_dir or tmp_path / "no-extensions"),
                *agent_args,
                "--",
                *runtime_argv,
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            cwd=cwd or tmp_path,
            env=environ,
        )
        theirs.close()
        host = Host(proc, ours, port)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.close()


@pytest.fixture
def extensions_dir(tmp_path: Path) -> Path:
    """An empty extensions directory, for a test to install extensions into."""
    path = tmp_path / "extensions"
    path.mkdir()
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where the test extensions record what they receive ($EXT_OUT)."""
    path = tmp_path / "out"
    path.mkdir()
    return path
