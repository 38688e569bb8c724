"""The HTTP/1.1 server core under the agent's Runtime API: requests in, bytes out.

Just enough HTTP for runtime clients: keep-alive connections (awslambdaric) and one
connection per request (curl in a custom ``bootstrap``), ``Content-Length`` and
chunked request bodies, ``Expect: 100-continue``. Each connection is served by its
own blocking thread; a handler answers with ``Connection.send`` (one gathered write
per response) or, for a long poll, keeps the connection and answers later from
another thread while this one already waits for the next request.

Bodies larger than the route table's limit are read and thrown away in fixed-size
pieces, never buffered; the handler then sees ``body is None`` and the real ``size``.
A /response in AWS's streaming mode (``Lambda-Runtime-Function-Response-Mode:
streaming``) is handed over unread (``Request.streaming``): its handler reads it chunk
by chunk with ``Connection.read_stream``, trailers included.
"""

from __future__ import annotations

import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    # Answers on the connection and returns False, or parks it (a long poll) and returns
    # True: another thread will answer, while this one goes on reading the connection.
    Handler = Callable[["Connection", "Request", bytes], bool]

_RECV = 65536
_MAX_HEAD = 65536
_PIECE = 1 << 20
"""Largest piece of a streamed body handed on at once."""
STREAMING_MODE = b"lambda-runtime-function-response-mode"
_GATHER_FROM = 16384
"""Bodies at least this long go out with sendmsg beside their head instead of a joined copy."""

STATUS = {
    200: b"200 OK",
    202: b"202 Accepted",
    400: b"400 Bad Request",
    403: b"403 Forbidden",
    404: b"404 Not Found",
    405: b"405 Method Not Allowed",
    413: b"413 Request Entity Too Large",
    431: b"431 Request Header Fields Too Large",
    500: b"500 Internal Server Error",
    501: b"501 Not Implemented",
}


def response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    """Return a whole HTTP/1.1 response with a Content-Length body."""
    return b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        STATUS[status],
        content_type,
        len(body),
        body,
    )


# What Go's net/http answers for routes it does not know (the emulator is a Go server).
NOT_FOUND = response(404, b"404 page not found\n", b"text/plain; charset=utf-8")
METHOD_NOT_ALLOWED = response(405, b"", b"text/plain; charset=utf-8")
INTERNAL_SERVER_ERROR = response(
    500, b'{"errorMessage":"Internal Server Error","errorType":"InternalServerError"}\n'
)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def send_all(sock: _socket.socket, head: bytes, body: bytes | bytearray = b"") -> None:
    """Write ``head`` then ``body`` with one syscall when possible, never joining big bodies."""
    if len(body) < _GATHER_FROM:
        sock.sendall(head + body if body else head)
        return
    sent = sock.sendmsg([head, body])
    if sent < len(head):
        sock.sendall(head[sent:])
        sock.sendall(body)
    elif sent < len(head) + len(body):
        with memoryview(body) as view:
            sock.sendall(view[sent - len(head) :])


class BadRequest(Exception):
    """The peer does not speak HTTP/1.1 as we understand it; answer and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Request:
    """One parsed request. ``headers`` has lower-case names; ``body`` is None when it
    was over the limit (and was discarded), ``size`` is its length either way."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "size", "streaming")

    def __init__(
        self,
        method: bytes,
        path: bytes,
        headers: dict[bytes, bytes],
        body: bytes | bytearray | None,
        size: int,
        keep_alive: bool,
        streaming: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.size = size
        self.keep_alive = keep_alive
        self.streaming = streaming
        """A /response in streaming mode: the body is still unread (``Connection.read_stream``)."""


class Connection:
    """An accepted connection. ``closed`` is set by the owner of a long poll, under its
    own lock, before the socket is closed, so that late writers never hit a reused fd."""

    __slots__ = ("_buf", "closed", "sock")

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.closed = False
        self._buf = b""

    def send(self, head: bytes, body: bytes | bytearray = b"") -> None:
        send_all(self.sock, head, body)

    # -- reading ---------------------------------------------------------------------

    def _fill(self) -> bool:
        chunk = self.sock.recv(_RECV)
        if not chunk:
            return False
        self._buf = self._buf + chunk if self._buf else chunk
        return True

    def read_request(self, limit: int) -> Request | None:
        """Read one request; None when the peer closed cleanly between requests."""
        while True:
            # Tolerate stray CRLFs between requests (RFC 9112 §2.2).
            if self._buf[:2] == b"\r\n":
                self._buf = self._buf.lstrip(b"\r\n")
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buf) > _MAX_HEAD:
                raise BadRequest(431, "request head too large")
            if not self._fill():
                if self._buf:
                    raise BadRequest(400, "connection closed inside a request head")
                return None
        head = self._buf[:end]
        self._buf = self._buf[end + 4 :]
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise BadRequest(400, "malformed request line")
        method, target, version = parts
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name[-1:] in b" \t":
                raise BadRequest(400, "malformed header line")
            headers[name.lower()] = value.strip()
        path = target.partition(b"?")[0]
        connection = headers.get(b"connection", b"").lower()
        if version == b"HTTP/1.1":
            keep_alive = connection != b"close"
        else:
            keep_alive = connection == b"keep-alive"

        mode = headers.get(STREAMING_MODE)
        if mode is not None and mode.lower() == b"streaming" and path.endswith(b"/response"):
            return Request(method, path, headers, None, -1, keep_alive, True)
        body: bytes | bytearray | None
        coding = headers.get(b"transfer-encoding")
        if coding is not None and coding.lower() != b"identity":
            if coding.lower() != b"chunked":
                raise BadRequest(501, "unsupported transfer-encoding")
            self._expect_continue(headers, 1)
            body, size = self._read_chunked(limit)
        else:
            raw = headers.get(b"content-length", b"0")
            if not raw.isdigit():
                raise BadRequest(400, "bad content-length")
            size = int(raw)
            self._expect_continue(headers, size)
            body = self._read_body(size, limit)
        return Request(method, path, headers, body, size, keep_alive)

    def _expect_continue(self, headers: dict[bytes, bytes], size: int) -> None:
        if size > len(self._buf) and headers.get(b"expect", b"").lower() == b"100-continue":
            self.sock.sendall(_CONTINUE)

    def _read_body(self, size: int, limit: int) -> bytes | bytearray | None:
        if size > limit:
            self._skip(size)
            return None
        buf = self._buf
        if len(buf) >= size:
            self._buf = buf[size:]
            return buf[:size]
        self._buf = b""
        body = bytearray(size)
        got = len(buf)
        with memoryview(body) as view:
            view[:got] = buf
            while got < size:
                n = self.sock.recv_into(view[got:])
                if not n:
                    raise BadRequest(400, "connection closed inside a request body")
                got += n
        return body

    def _skip_unread(self, remaining: int) -> None:
        """Read and drop ``remaining`` bytes in fixed-size pieces, never holding them all."""
        scratch = bytearray(min(remaining, _RECV))
        while remaining:
            n = self.sock.recv_into(scratch, min(remaining, _RECV))
            if not n:
                raise BadRequest(400, "connection closed inside a request body")
            remaining -= n

    def _read_line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = self._buf[:end]
                self._buf = self._buf[end + 2 :]
                return line
            if len(self._buf) > _MAX_HEAD:
                raise BadRequest(400, "chunk line too long")
            if not self._fill():
                raise BadRequest(400, "connection closed inside a chunked body")

    def _read_chunked(self, limit: int) -> tuple[bytes | None, int]:
        parts: list[bytes] = []
        size = 0
        while True:
            digits = self._read_line().partition(b";")[0].strip()
            if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                raise BadRequest(400, "bad chunk size")
            chunk = int(digits, 16)
            if chunk == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return (b"".join(parts) if size <= limit else None), size
            size += chunk
            if size <= limit:
                data = self._read_body(chunk, chunk)
                assert data is not None
                parts.append(bytes(data))
            else:
                parts = []
                self._skip(chunk)
            if self._read_line():
                raise BadRequest(400, "chunk not followed by CRLF")

    def read_stream(
        self, headers: dict[bytes, bytes], on_piece: Callable[[bytes], None]
    ) -> dict[bytes, bytes]:
        """Read a streamed request body, handing ``on_piece`` each HTTP chunk as it arrives
        (pieces of at most 1 MiB of a larger one); return the trailers (lower-case names).

        A Content-Length body is handed over in pieces too. Raises BadRequest when the
        peer breaks off or does not speak chunked encoding, and whatever ``on_piece`` raises.
        """
        coding = headers.get(b"transfer-encoding")
        if coding is None or coding.lower() != b"chunked":
            raw = headers.get(b"content-length", b"0")
            if not raw.isdigit():
                raise BadRequest(400, "bad content-length")
            remaining = int(raw)
            self._expect_continue(headers, remaining)
            while remaining:
                piece = self._read_body(min(remaining, _PIECE), _PIECE)
                assert piece is not None
                on_piece(bytes(piece))
                remaining -= len(piece)
            return {}
        self._expect_continue(headers, 1)
        while True:
            digits = self._read_line().partition(b";")[0].strip()
            if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                raise BadRequest(400, "bad chunk size")
            chunk = int(digits, 16)
            if chunk == 0:
                trailers: dict[bytes, bytes] = {}
                while True:
                    line = self._read_line()
                    if not line:
                        return trailers
                    name, sep, value = line.partition(b":")
                    if sep:
                        trailers[name.strip().lower()] = value.strip()
            while chunk:
                piece = self._read_body(min(chunk, _PIECE), _PIECE)
                assert piece is not None
                on_piece(bytes(piece))
                chunk -= len(piece)
            if self._read_line():
                raise BadRequest(400, "chunk not followed by CRLF")

    def _skip(self, count: int) -> None:
        """Throw away the next ``count`` body bytes: what is buffered, then the socket's."""
        held = min(count, len(self._buf))
        self._buf = self._buf[held:]
        if count > held:
            self._skip_unread(count - held)


class Router:
    """(method, path pattern) -> handler. A pattern may hold one ``{name}`` segment,
    which is passed to the handler as bytes (non-empty, without ``/``)."""

    def __init__(self) -> None:
        self._exact: dict[bytes, dict[bytes, Handler]] = {}
        self._patterns: list[tuple[bytes, bytes, dict[bytes, Handler]]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        verb = method.encode()
        if "{" not in pattern:
            self._exact.setdefault(pattern.encode(), {})[verb] = handler
            return
        prefix, _, rest = pattern.partition("{")
        suffix = rest.partition("}")[2]
        key = (prefix.encode(), suffix.encode())
        for entry in self._patterns:
            if entry[:2] == key:
                entry[2][verb] = handler
                return
        self._patterns.append((key[0], key[1], {verb: handler}))

    def resolve(self, method: bytes, path: bytes) -> tuple[Handler | None, bytes, bytes]:
        """Return (handler, param, b""), or (None, b"", canned 404/405 response)."""
        methods = self._exact.get(path)
        param = b""
        if methods is None:
            for prefix, suffix, candidates in self._patterns:
                if (
                    path.startswith(prefix)
                    and path.endswith(suffix)
                    and len(path) > len(prefix) + len(suffix)
                ):
                    param = path[len(prefix) : len(path) - len(suffix)]
                    if b"/" not in param:
                        methods = candidates
                        break
            if methods is None:
                return None, b"", NOT_FOUND
        handler = methods.get(method)
        if handler is None:
            return None, b"", METHOD_NOT_ALLOWED
        return handler, param, b""


def serve_connection(
    conn: Connection,
    router: Router,
    limit: int,
    on_close: Callable[[Connection], None],
    on_bug: Callable[[BaseException], None],
) -> None:
    """Serve requests on ``conn`` until the peer closes or errs (run in its own thread).

    ``on_close`` must mark the connection closed (under the lock that guards late
    writers) before the socket is closed here; ``on_bug`` hears of handler bugs.
    """
    try:
        while True:
            try:
                request = conn.read_request(limit)
            except BadRequest as exc:
                message = str(exc).encode()
                conn.send(response(exc.status, message, b"text/plain; charset=utf-8"))
                return
            if request is None:
                return
            handler, param, refusal = router.resolve(request.method, request.path)
            parked = False
            if handler is None:
                conn.send(refusal)
            else:
                parked = handler(conn, request, param)
            if not request.keep_alive and not parked:
                return  # a parked "Connection: close" one ends when the peer closes
    except OSError:
        pass
    except Exception as exc:
        on_bug(exc)
        try:
            conn.send(INTERNAL_SERVER_ERROR)
        except OSError:
            pass
    finally:
        on_close(conn)
        conn.sock.close()
