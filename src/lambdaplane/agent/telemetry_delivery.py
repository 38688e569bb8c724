"""Delivery of telemetry to one subscriber: a buffer, batches, and one thread that
POSTs them (HTTP) or writes them as newline-delimited JSON (TCP).

As in AWS's open-source emulator (``aws-lambda-rie/internal/telemetry/internal``:
``subscriber.go``, ``batch.go``, ``client.go``): a batch goes out when it holds
``maxItems`` records or ``maxBytes`` bytes, or ``timeoutMs`` after its first record.
A failed delivery is retried with back-off for about three seconds, then dropped;
records that do not fit a buffer twice the batch limits are dropped too. Either way
the subscriber later gets ``platform.logsDropped``. The destination is always this
sandbox's loopback: ``sandbox.localdomain`` is 127.0.0.1, whatever /etc/hosts says.
"""

from __future__ import annotations

import _socket
import _thread
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lambdaplane.agent import wire
    from lambdaplane.agent.telemetry import Subscription
else:
    import wire

_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
_SEND_TIMEOUT = 5.0


def iso_time(epoch: float) -> str:
    """2022-10-12T00:00:15.064Z: the ``time`` of a record."""
    seconds = int(epoch)
    t = time.gmtime(seconds)
    millis = int((epoch - seconds) * 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"
    )


def encode_event(epoch: float, type: str, record_json: str) -> str:
    """One telemetry event, encoded: {"time", "type", "record"}."""
    return f'{{"time":"{iso_time(epoch)}","type":"{type}","record":{record_json}}}'


class Subscriber:
    """One subscription: a buffer and the thread that delivers it in batches."""

    def __init__(self, name: str, subscription: Subscription) -> None:
        self.name = name
        self.types = subscription.types
        self._to = subscription
        self._lock = _thread.allocate_lock()
        self._wake = _thread.allocate_lock()  # released to wake the delivery thread
        self._wake.acquire()
        self._queue: list[str] = []
        self._bytes = 0
        self._first = 0.0  # when the oldest buffered record arrived
        self._dropped = [0, 0]  # records, bytes
        self._flushing = False
        self._busy = False
        self._tcp: _socket.socket | None = None
        self.closed = False

    def start(self) -> None:
        _thread.start_new_thread(self._run, ())

    def close(self) -> None:
        self.closed = True
        self._signal()

    def add(self, event: str) -> None:
        to = self._to
        with self._lock:
            if len(self._queue) >= 2 * to.max_items or self._bytes >= 2 * to.max_bytes:
                self._dropped[0] += 1
                self._dropped[1] += len(event)
                return
            wake = not self._queue
            if wake:
                self._first = time.monotonic()
            self._queue.append(event)
            self._bytes += len(event)
            wake = wake or len(self._queue) >= to.max_items or self._bytes >= to.max_bytes
        if wake:
            self._signal()

    def flush(self, deadline: float) -> None:
        with self._lock:
            self._flushing = True
        self._signal()
        while time.monotonic() < deadline:
            with self._lock:
                if not self._queue and not self._busy:
                    break
            time.sleep(0.005)
        with self._lock:
            self._flushing = False

    def _signal(self) -> None:
        try:
            self._wake.release()
        except RuntimeError:
            pass  # already released: the thread wakes anyway

    def _run(self) -> None:
        to = self._to
        while not self.closed:
            with self._lock:
                if not self._queue:
                    wait: float | None = None
                elif (
                    self._flushing
                    or len(self._queue) >= to.max_items
                    or self._bytes >= to.max_bytes
                ):
                    wait = 0.0
                else:
                    wait = self._first + to.timeout - time.monotonic()
            if wait is None:
                self._wake.acquire()
            elif wait > 0:
                self._wake.acquire(True, wait)
            else:
                self._send_batch()
        if self._tcp is not None:
            self._tcp.close()

    def _send_batch(self) -> None:
        to = self._to
        with self._lock:
            size = 0
            count = 0
            for event in self._queue[: to.max_items]:
                if count and size + len(event) > to.max_bytes:
                    break
                size += len(event)
                count += 1
            batch = self._queue[:count]
            del self._queue[:count]
            self._bytes -= size
            self._first = time.monotonic()
            dropped, self._dropped = self._dropped, [0, 0]
            self._busy = True
        if dropped[0]:
            record = {
                "droppedRecords": dropped[0],
                "droppedBytes": dropped[1],
                "reason": "Some logs were dropped because the subscriber could not keep up",
            }
            batch.append(encode_event(time.time(), "platform.logsDropped", wire.dumps(record)))
        delivered = self._deliver(batch)
        with self._lock:
            self._busy = False
            if not delivered:
                self._dropped[0] += len(batch)
                self._dropped[1] += sum(len(event) for event in batch)

    def _deliver(self, batch: list[str]) -> bool:
        for delay in (0.0, *_RETRY_DELAYS):
            if delay:
                time.sleep(delay)
            if self.closed:
                return False
            try:
                if self._to.protocol == "TCP":
                    self._send_tcp(batch)
                else:
                    self._post(("[" + ",".join(batch) + "]").encode())
                return True
            except (OSError, ValueError):
                continue
        return False

    def _post(self, body: bytes) -> None:
        """POST one batch over a fresh connection; raises OSError or ValueError (status >= 400)."""
        to = self._to
        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            sock.settimeout(_SEND_TIMEOUT)
            sock.connect(("127.0.0.1", to.port))
            head = (
                f"POST {to.path} HTTP/1.1\r\nHost: sandbox.localdomain:{to.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            status = _read_status(sock)
        finally:
            sock.close()
        if status >= 400:
            raise ValueError(f"the listener answered {status}")

    def _send_tcp(self, batch: list[str]) -> None:
        if self._tcp is None:
            sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
            try:
                sock.settimeout(_SEND_TIMEOUT)
                sock.connect(("127.0.0.1", self._to.port))
            except OSError:
                sock.close()
                raise
            self._tcp = sock
        try:
            self._tcp.sendall(("\n".join(batch) + "\n").encode())
        except OSError:
            self._tcp.close()
            self._tcp = None
            raise


def _read_status(sock: _socket.socket) -> int:
    """Read an HTTP response to its end (EOF, Content-Length or last chunk); its status."""
    reply = b""
    end = -1
    length = -1
    chunked = False
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
        if end < 0:
            end = reply.find(b"\r\n\r\n")
            if end < 0:
                continue
            for line in reply[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length" and value.strip().isdigit():
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
        if length >= 0 and len(reply) - end - 4 >= length:
            break
        if chunked and reply.endswith(b"0\r\n\r\n"):
            break
    parts = reply.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1][:3].isdigit():
        raise ValueError("the listener's answer is not HTTP")
    return int(parts[1][:3])
