"""The host's side of the agent tests: the test plays the host over a socketpair."""

from __future__ import annotations

import http.client
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lambdaplane.agent
from lambdaplane.agent import wire
from lambdaplane.agent.wire import Frame

AGENT = Path(lambdaplane.agent.__file__).parent / "agent.py"
FAKE_RUNTIME = Path(__file__).parent / "fake_runtime.py"
TIMEOUT = 20.0
PYTHONS = {
    "3.9": "/root/.pyenv/versions/3.9.18/bin/python3.9",
    "3.10": "/root/.pyenv/versions/3.10.13/bin/python3.10",
    "3.12": "/root/.pyenv/versions/3.12.1/bin/python3.12",
    "3.13": "/root/.pyenv/versions/3.13.0/bin/python3.13",
}
"""The other Pythons the agent must run on (the tests' own is 3.11), where installed."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Host:
    """The host's end of one agent: send frames, read frames with a timeout."""

    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket, port: int) -> None:
        self.proc = proc
        self.sock = sock
        self.port = port
        # Unbuffered, so that select() on the socket tells whether a frame is coming.
        self.reader = sock.makefile("rb", buffering=0)
        self.seen: list[Frame] = []

    @property
    def api(self) -> str:
        return f"127.0.0.1:{self.port}"

    def send(self, type: int, meta: dict[str, Any] | None = None, body: bytes = b"") -> None:
        self.sock.sendall(wire.encode(type, meta, body))

    def invoke(self, payload: bytes = b"{}", request_id: str = "req-1", **meta: Any) -> None:
        meta.setdefault("deadline_ms", int(time.time() * 1000) + 60_000)
        meta.setdefault("invoked_function_arn", "arn:aws:lambda:us-east-1:111111111111:function:f")
        meta.setdefault("trace_id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
        self.send(wire.INVOKE, dict(meta, request_id=request_id), payload)

    def read(self, timeout: float = TIMEOUT) -> Frame | None:
        self.sock.settimeout(timeout)
        frame = wire.read_frame(self.reader)
        if frame is not None:
            self.seen.append(frame)
        return frame

    def silent_for(self, seconds: float) -> bool:
        """True if no frame starts arriving within ``seconds`` (nothing is consumed)."""
        readable, _, _ = select.select([self.sock], [], [], seconds)
        return not readable

    def until(self, *types: int, timeout: float = TIMEOUT) -> tuple[Frame, list[Frame]]:
        """Read up to the first frame of one of ``types``; also return the frames before it."""
        before: list[Frame] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = self.read(max(deadline - time.monotonic(), 0.01))
            assert frame is not None, f"agent closed the socket; before: {before!r}"
            if frame.type in types:
                return frame, before
            before.append(frame)

    def logs(self, frames: list[Frame]) -> bytes:
        return b"".join(f.body for f in frames if f.type == wire.LOG)

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Hang up, which makes the agent kill its runtime and exit; SIGKILL it only if it
        does not (killing it first would orphan the runtime)."""
        self.reader.close()
        self.sock.close()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(TIMEOUT)


def fake_runtime(*args: str) -> list[str]:
    return [sys.executable, str(FAKE_RUNTIME), *args]


def pid_gone(pid: int, timeout: float = TIMEOUT) -> bool:
    """True once ``pid`` no longer runs (gone or a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def sleeper() -> list[str]:
    """A runtime that never calls the API, so the test itself can play the runtime."""
    return [sys.executable, "-c", "import time; time.sleep(600)"]


class RuntimeClient:
    """The test playing the runtime: one keep-alive HTTP connection to the agent."""

    def __init__(self, host: Host) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=TIMEOUT)

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        self.conn.request(method, RUNTIME + path, body, headers or {})
        reply = self.conn.getresponse()
        return reply.status, reply.headers, reply.read()

    def close(self) -> None:
        self.conn.close()


RUNTIME = "/2018-06-01/runtime"


def wait_listening(host: Host) -> None:
    """Block until the agent accepts connections on its Runtime API port."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", host.port), timeout=TIMEOUT).close()
            return
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
