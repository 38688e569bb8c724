"""The agent's one link to the host: frames out, one writer at a time, and the output
of the runtime and of extensions forwarded as LOG frames."""

from __future__ import annotations

import _socket
import _thread
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lambdaplane.agent import server, wire
else:
    import server
    import wire

_DRAIN_LIMIT = 1 << 20
"""Bytes read per drain at most: more than a pipe holds, so all output written before a
POST is read, while a runtime that writes nonstop cannot hold the outcome back."""


class HostLink:
    """Frames to the host, one writer at a time, with the runtime's output drained first
    when asked. If the host is gone the environment is too: ``on_lost`` never returns.

    ``tap`` and ``extension_tap`` (set once telemetry exists) see every chunk of output
    of the runtime and of extensions, under the link's lock."""

    def __init__(self, sock: _socket.socket, log_fd: int, on_lost: Callable[[], None]) -> None:
        self._sock = sock
        self._log_fd = log_fd
        self._on_lost = on_lost
        self._lock = _thread.allocate_lock()
        self.extension_fd = -1
        self._extension_partial = b""
        self.tap: Callable[[bytes], None] | None = None
        self.extension_tap: Callable[[bytes], None] | None = None

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
            self._send_log(data)
            if self.tap is not None:
                self.tap(data)
        return fd >= 0

    def drain_extension_logs(self) -> bool:
        """Forward the whole lines extensions have written; False once the pipe is at EOF.

        Whole lines only: the host joins LOG frames into one stream of lines, and half
        a line of an extension must not end up in the middle of one of the runtime's."""
        with self._lock:
            try:
                return self._drain_extensions_locked()
            except OSError:
                self._on_lost()
                return False

    def _drain_extensions_locked(self) -> bool:
        fd = self.extension_fd
        read = 0
        while fd >= 0 and read < _DRAIN_LIMIT:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return True
            if not data:
                os.close(fd)
                self.extension_fd = fd = -1
                if self._extension_partial:
                    self._send_log(self._extension_partial + b"\n")
                    self._extension_partial = b""
                break
            read += len(data)
            if self.extension_tap is not None:
                self.extension_tap(data)
            data = self._extension_partial + data
            cut = data.rfind(b"\n") + 1
            self._extension_partial = data[cut:]
            if cut:
                self._send_log(data[:cut])
        return fd >= 0

    def _send_log(self, data: bytes) -> None:
        meta = b'{"ts":%d}' % (time.time_ns() // 1000000)
        server.send_all(self._sock, wire.encode_head(wire.LOG, meta, len(data)), data)
