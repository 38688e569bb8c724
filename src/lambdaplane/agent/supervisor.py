"""The running agent: the runtime process, the host link, and the threads around them.

Threads, each blocking on one thing: the caller's thread accepts runtime connections
(one thread each, see ``server``); one reads host frames; one waits for the runtime's
output pipe to become readable; one waits for the runtime to exit. The runtime's
stdout and stderr share one pipe, so their interleaving is kept, and the pipe is
drained under the host-link lock right before RESPONSE, ERROR, INIT_ERROR and EXIT:
everything the runtime wrote before posting reaches the host before the outcome.

Every way out (runtime exit, SHUTDOWN, host gone, agent bug) goes through
``Supervisor``: it kills the runtime's process group and ends the process with
``os._exit``, so no thread outlives it.
"""

from __future__ import annotations

import _socket
import _thread
import os
import select
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable
    from typing import BinaryIO

    from lambdaplane.agent import runtime_api, server, wire
else:
    import _signal  # the same constants, without the enum import that `signal` costs

    import runtime_api
    import server
    import wire

_DRAIN_LIMIT = 1 << 20
"""Bytes read per drain at most: more than a pipe holds, so all output written before a
POST is read, while a runtime that writes nonstop cannot hold the outcome back."""
_SHUTDOWN_GRACE = 2.0
"""Seconds to wait, after SHUTDOWN's SIGKILL, for the EXIT report before leaving anyway."""

# Go's names for signals (syscall.Signal.String), as in "Runtime exited with error: signal: killed".
_SIGNAL_NAMES = (
    "hangup",
    "interrupt",
    "quit",
    "illegal instruction",
    "trace/breakpoint trap",
    "aborted",
    "bus error",
    "floating point exception",
    "killed",
    "user defined signal 1",
    "segmentation fault",
    "user defined signal 2",
    "broken pipe",
    "alarm clock",
    "terminated",
    "stack fault",
    "child exited",
    "continued",
    "stopped (signal)",
    "stopped",
    "stopped (tty input)",
    "stopped (tty output)",
    "urgent I/O condition",
    "CPU time limit exceeded",
    "file size limit exceeded",
    "virtual timer expired",
    "profiling timer expired",
    "window changed",
    "I/O possible",
    "power failure",
    "bad system call",
)


def exit_meta(status: int) -> dict[str, object]:
    """Describe a wait status as Go's os.ProcessState does ("exit status 3", "signal: killed")."""
    if os.WIFSIGNALED(status):
        signal = os.WTERMSIG(status)
        if 0 < signal <= len(_SIGNAL_NAMES):
            text = "signal: " + _SIGNAL_NAMES[signal - 1]
        else:
            text = f"signal: signal {signal}"
        if os.WCOREDUMP(status):
            text += " (core dumped)"
        return {"status": text, "code": None, "signal": signal}
    code = os.WEXITSTATUS(status)
    return {"status": f"exit status {code}", "code": code, "signal": None}


class HostLink:
    """Frames to the host, one writer at a time, with the runtime's output drained first
    when asked. If the host is gone the environment is too: ``on_lost`` never returns."""

    def __init__(self, sock: _socket.socket, log_fd: int, on_lost: Callable[[], None]) -> None:
        self._sock = sock
        self._log_fd = log_fd
        self._on_lost = on_lost
        self._lock = _thread.allocate_lock()

    def send(
        self, type: int, meta: bytes, body: bytes | bytearray = b"", drain: bool = False
    ) -> None:
        with self._lock:
            try:
                if drain:
                    self._drain_locked()
                server.send_all(self._sock, wire.encode_head(type, meta, len(body)), body)
            except OSError:
                self._on_lost()

    def drain_logs(self) -> bool:
        """Forward what the runtime has written so far; False once the pipe is at EOF."""
        with self._lock:
            try:
                return self._drain_locked()
            except OSError:
                self._on_lost()
                return False

    def _drain_locked(self) -> bool:
        fd = self._log_fd
        read = 0
        while fd >= 0 and read < _DRAIN_LIMIT:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return True
            if not data:
                os.close(fd)
                self._log_fd = fd = -1
                break
            read += len(data)
            meta = b'{"ts":%d}' % (time.time_ns() // 1000000)
            server.send_all(self._sock, wire.encode_head(wire.LOG, meta, len(data)), data)
        return fd >= 0


class Supervisor:
    """Owns the runtime process (its own process group) and the agent's threads."""

    def __init__(self, host_sock: _socket.socket, pid: int, log_fd: int) -> None:
        self.pid = pid
        self.log_fd = log_fd
        self.link = HostLink(host_sock, log_fd, self.host_lost)
        self.api = runtime_api.RuntimeAPI(self.link)
        self.router = server.Router()
        self.api.register(self.router)

    def run(self, listener: _socket.socket, host_reader: BinaryIO) -> None:
        """Start the threads and serve runtime connections; never returns."""
        os.set_blocking(self.log_fd, False)
        _thread.start_new_thread(self._guarded, (self._read_host, host_reader))
        _thread.start_new_thread(self._guarded, (self._pump_logs,))
        _thread.start_new_thread(self._guarded, (self._wait_runtime,))
        self._guarded(self._accept, listener)

    # -- ways out --------------------------------------------------------------------

    def kill_runtime(self) -> None:
        try:
            os.killpg(self.pid, _signal.SIGKILL)
        except OSError:
            pass  # already gone

    def host_lost(self) -> None:
        self.kill_runtime()
        os._exit(0)

    def report(self, message: str, **extra: object) -> None:
        extra["message"] = message
        self.link.send(wire.AGENT_ERROR, wire.encode_meta(extra))

    def _fatal(self, exc: BaseException) -> None:
        try:
            self.report(_describe(exc), fatal=True)
        finally:
            self.kill_runtime()
            os._exit(1)

    def _guarded(self, target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except BaseException as exc:
            self._fatal(exc)

    def _connection_bug(self, exc: BaseException) -> None:
        self.report(_describe(exc))

    # -- threads ---------------------------------------------------------------------

    def _read_host(self, reader: BinaryIO) -> None:
        while True:
            frame = wire.read_frame(reader)
            if frame is None:
                self.host_lost()
                return
            if frame.type == wire.INVOKE:
                try:
                    self.api.invoke(frame.meta, frame.body)
                except runtime_api.Refused as exc:
                    self.report(str(exc), request_id=frame.meta.get("request_id"))
            elif frame.type == wire.SHUTDOWN:
                self.kill_runtime()  # _wait_runtime reports EXIT and exits
                time.sleep(_SHUTDOWN_GRACE)
                os._exit(0)
            else:
                self.report(f"unexpected frame type {frame.type}")

    def _pump_logs(self) -> None:
        poller = select.poll()
        poller.register(self.log_fd, select.POLLIN)
        while True:
            poller.poll()
            if not self.link.drain_logs():
                return

    def _wait_runtime(self) -> None:
        while True:
            pid, status = os.waitpid(-1, 0)  # also reaps orphans when we are PID 1
            if pid == self.pid:
                break
        self.link.send(wire.EXIT, wire.encode_meta(exit_meta(status)), drain=True)
        self.kill_runtime()  # whatever it left behind
        os._exit(0)

    def _accept(self, listener: _socket.socket) -> None:
        while True:
            try:
                fd, _ = listener._accept()  # type: ignore[attr-defined]  # _socket's accept
            except OSError as exc:  # EMFILE and friends: back off rather than spin
                self.report(f"accept failed: {exc}")
                time.sleep(0.05)
                continue
            sock = _socket.socket(listener.family, _socket.SOCK_STREAM, 0, fd)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            _thread.start_new_thread(
                server.serve_connection,
                (
                    server.Connection(sock),
                    self.router,
                    runtime_api.MAX_PAYLOAD,
                    self.api.closed,
                    self._connection_bug,
                ),
            )


def _describe(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
