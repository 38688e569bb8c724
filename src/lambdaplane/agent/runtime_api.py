"""The Runtime API 2018-06-01 as AWS serves it to a runtime, bridged to host frames.

Status codes, error types and messages follow AWS's runtime interface emulator
(aws-lambda-runtime-interface-emulator: ``lambda/rapi/handler/*.go``,
``lambda/rapi/rendering/render_error.go``, ``lambda/core/states.go``). The runtime's
state machine, with the names the emulator prints in its errors::

    Started --/next--> Ready --INVOKE--> Running --/response, /error--> RuntimeResponseSentState
    Started --/init/error--> InitError          RuntimeResponseSentState --/next--> Ready

- /next in Started or RuntimeResponseSentState tells the host NEXT and waits; if an
  INVOKE is already queued it is delivered at once. /next in Ready waits beside the
  first caller (one NEXT only). /next in Running answers the invocation in flight
  again, as the emulator's Running state does. Elsewhere: 403 InvalidStateTransition.
- /response and /error are valid only in Running: otherwise 403 InvalidStateTransition;
  for an id other than the one in flight, 400 InvalidRequestID and no transition
  (we validate before transitioning, where the emulator would stay stuck).
- A response body over 6291556 bytes is discarded: 413 RequestEntityTooLarge to the
  runtime, RESPONSE_TOO_LARGE to the host; the invocation is over. An /error or
  /init/error document over that size is dropped too: the frame says only its size.

A /response with ``Lambda-Runtime-Function-Response-Mode: streaming`` (AWS's response
streaming for custom runtimes) is relayed as it arrives: STREAM_START with the runtime's
Content-Type, a STREAM_CHUNK per HTTP chunk, and STREAM_END with the error the runtime
reported in the trailers ``Lambda-Runtime-Function-Error-Type`` / ``-Error-Body`` (base64),
if any. While it streams the runtime is in ``RuntimeResponseStreaming``: /next, /response
and /error are refused until it ends. A stream over ``MAX_STREAM`` bytes is cut: the host
gets STREAM_END with Function.ResponseSizeTooLarge and the runtime's connection is closed.

A waiting /next is answered by the thread that receives INVOKE, straight onto the
runtime's socket: no thread hand-off on the hot path. Every state change, and every
write this API makes to a runtime connection, happens under one lock; frames to the
host are sent while holding it (lock -> host link lock, never the reverse), so the
host sees outcomes and NEXTs in the order the runtime caused them.

When extensions exist, ``lifecycle`` (the Extensions API, ``extensions_api``) shares
that lock and hears of every phase change; it decides when NEXT goes to the host.
Without extensions it stays None and the hot path pays one attribute test.
"""

from __future__ import annotations

import _thread
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    from lambdaplane.agent import wire
    from lambdaplane.agent.server import BadRequest, Connection, Request, Router, response

    class FrameSink(Protocol):
        def send(
            self, type: int, meta: bytes, body: bytes | bytearray = b"", drain: bool = False
        ) -> None: ...

    class Lifecycle(Protocol):
        """What the runtime's moves mean to extensions; every call holds ``RuntimeAPI.lock``."""

        def runtime_ready(self) -> None:
            """The runtime moved into Ready: send NEXT once every extension is ready too."""

        def invoke(self, meta: dict[str, Any], request_id: str) -> None:
            """An invocation starts (the host's INVOKE)."""

        def runtime_done(
            self, request_id: str, status: str, error_type: str | None, size: int
        ) -> None:
            """The runtime posted the invocation's outcome (status: success, error, failure)."""

        def runtime_init_error(self, error_type: str | None) -> None:
            """The runtime posted /init/error."""

        def closed(self, conn: Connection) -> None:
            """A connection is about to be closed: stop writing to it."""
else:
    import wire
    from server import BadRequest, response

MAX_PAYLOAD = 6 * 1024 * 1024 + 100
"""AWS's response payload limit, 6291556 bytes (interop.MaxPayloadSize)."""

MAX_STREAM = 200 * 1024 * 1024
"""AWS's limit on a streamed response (200 MB since July 2025; it was 20 MB)."""

PREFIX = "/2018-06-01/runtime"

# Runtime states, spelled as the emulator prints them.
STARTED = "Started"
INIT_ERROR = "InitError"
READY = "Ready"
RUNNING = "Running"
RESPONSE_SENT = "RuntimeResponseSentState"
STREAMING = "RuntimeResponseStreaming"  # ours: a streamed /response is being read
# Targets named in InvalidStateTransition messages.
_TO_READY = "Ready"
_TO_RESPONSE = "InvocationResponse"
_TO_ERROR_RESPONSE = "InvocationErrorResponse"
_TO_INIT_ERROR = "InitError"

_JSON = b"application/json; charset=utf-8"
# Go's json.Encoder ends each document with a newline; the emulator's bodies do too.
_ACCEPTED = response(202, b'{"status":"OK"}\n', _JSON)
_INVALID_REQUEST_ID = response(
    400, b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}\n', _JSON
)
_TOO_LARGE = response(
    413,
    b'{"errorMessage":"Exceeded maximum allowed payload size (%d bytes).",'
    b'"errorType":"RequestEntityTooLarge"}\n' % MAX_PAYLOAD,
    _JSON,
)
_ERROR_TYPE = b"lambda-runtime-function-error-type"
_ERROR_BODY = b"lambda-runtime-function-error-body"
_STREAM_TOO_LARGE = response(
    413,
    b'{"errorMessage":"Exceeded maximum allowed payload size (%d bytes).",'
    b'"errorType":"RequestEntityTooLarge"}\n' % MAX_STREAM,
    _JSON,
)


class _StreamCut(Exception):
    """The streamed response passed MAX_STREAM."""


def next_meta() -> bytes:
    """The meta of a NEXT frame: when the environment became ready (CLOCK_MONOTONIC, ns)."""
    return b'{"t":%d}' % time.monotonic_ns()


def _forbidden(state: str, target: str) -> bytes:
    message = (
        f"State transition from {state} to {target} failed for runtime. "
        "Error: State transition is not allowed"
    )
    body = wire.dumps({"errorMessage": message, "errorType": "InvalidStateTransition"})
    return response(403, body.encode() + b"\n", _JSON)


def _header_value(value: object) -> bytes:
    text = value if isinstance(value, str) else wire.dumps(value)
    data = text.encode()
    if b"\r" in data or b"\n" in data:  # never let a value split the response head
        data = data.replace(b"\r", b" ").replace(b"\n", b" ")
    return data


class Refused(Exception):
    """The host sent an INVOKE the agent cannot take; reported back as AGENT_ERROR."""


class Invocation:
    """One invocation, with its /next answer rendered once when it arrives."""

    __slots__ = ("head", "payload", "request_id", "response_meta")

    def __init__(self, meta: dict[str, Any], payload: bytes) -> None:
        """Raises Refused when ``meta`` lacks request_id or deadline_ms."""
        try:
            request_id = str(meta["request_id"])
            deadline = b"%d" % int(meta["deadline_ms"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Refused(f"INVOKE meta needs request_id and deadline_ms: {exc!r}") from None
        self.request_id = _header_value(request_id)
        self.payload = payload
        self.response_meta = wire.encode_meta({"request_id": request_id})
        parts = [
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: ",
            self.request_id,
            b"\r\nLambda-Runtime-Deadline-Ms: ",
            deadline,
        ]
        for key, name in _OPTIONAL_HEADERS:
            value = meta.get(key)
            if value:
                parts += (name, _header_value(value))
        parts.append(b"\r\nContent-Length: %d\r\n\r\n" % len(payload))
        self.head = b"".join(parts)


_OPTIONAL_HEADERS = (
    ("invoked_function_arn", b"\r\nLambda-Runtime-Invoked-Function-Arn: "),
    ("trace_id", b"\r\nLambda-Runtime-Trace-Id: "),
    ("client_context", b"\r\nLambda-Runtime-Client-Context: "),
    ("cognito_identity", b"\r\nLambda-Runtime-Cognito-Identity: "),
    ("tenant_id", b"\r\nLambda-Runtime-Aws-Tenant-Id: "),
)


class RuntimeAPI:
    """The runtime's side of one execution environment: routes plus the host's INVOKE."""

    def __init__(self, sink: FrameSink) -> None:
        self._sink = sink
        self.lock = _thread.allocate_lock()
        """Guards every state change; the Extensions API shares it."""
        self.lifecycle: Lifecycle | None = None
        """Set (under ``lock``) once an extension exists; None keeps the lean path."""
        self._state = STARTED
        self._waiters: list[Connection] = []
        self._pending: Invocation | None = None
        self._current: Invocation | None = None

    def register(self, router: Router) -> None:
        router.add("GET", PREFIX + "/invocation/next", self.next)
        router.add("POST", PREFIX + "/invocation/{id}/response", self.response)
        router.add("POST", PREFIX + "/invocation/{id}/error", self.error)
        router.add("POST", PREFIX + "/init/error", self.init_error)

    # -- host side -------------------------------------------------------------------

    def invoke(self, meta: dict[str, Any], payload: bytes) -> None:
        """Hand an invocation to the runtime, now or at its next /next. Raises Refused."""
        invocation = Invocation(meta, payload)
        with self.lock:
            if self._current is not None or self._pending is not None:
                raise Refused("INVOKE while another invocation is in flight")
            if self._state is INIT_ERROR:
                raise Refused("INVOKE after the runtime reported an init error")
            if self.lifecycle is not None:
                self.lifecycle.invoke(meta, invocation.request_id.decode())
            waiters = [conn for conn in self._waiters if not conn.closed]
            if self._state is READY and waiters:
                self._start(invocation, waiters)
            else:
                self._pending = invocation

    @property
    def initializing(self) -> bool:
        """True until the runtime's first /next (or /init/error) ends its init phase."""
        return self._state is STARTED

    def closed(self, conn: Connection) -> None:
        """The connection's thread is about to close it: stop writing to it."""
        with self.lock:
            conn.closed = True
            if conn in self._waiters:
                self._waiters.remove(conn)
            if self.lifecycle is not None:
                self.lifecycle.closed(conn)

    def _start(self, invocation: Invocation, conns: list[Connection]) -> None:
        self._state = RUNNING
        self._current = invocation
        self._waiters = []
        for conn in conns:
            try:
                conn.send(invocation.head, invocation.payload)
            except OSError:
                pass  # its thread sees the failure too; a later /next gets this again

    # -- routes ----------------------------------------------------------------------

    def next(self, conn: Connection, request: Request, _param: bytes) -> bool:
        with self.lock:
            state = self._state
            if state is RUNNING:
                assert self._current is not None
                conn.send(self._current.head, self._current.payload)
                return False
            if state is STARTED or state is RESPONSE_SENT:
                self._state = READY
                if self.lifecycle is None:
                    self._sink.send(wire.NEXT, next_meta(), drain=True)
                else:
                    self.lifecycle.runtime_ready()
            elif state is not READY:
                conn.send(_forbidden(state, _TO_READY))
                return False
            if self._pending is not None:
                invocation, self._pending = self._pending, None
                self._start(invocation, [conn])
                return False
            self._waiters.append(conn)
            return True  # parked: invoke() answers it from the host thread

    def response(self, conn: Connection, request: Request, request_id: bytes) -> bool:
        if request.streaming:
            return self._stream(conn, request, request_id)
        with self.lock:
            invocation = self._finish(conn, request_id, _TO_RESPONSE)
            if invocation is None:
                return False
            if request.body is None:
                meta = {"request_id": invocation.request_id.decode(), "size": request.size}
                self._sink.send(wire.RESPONSE_TOO_LARGE, wire.encode_meta(meta), drain=True)
                conn.send(_TOO_LARGE)
            else:
                self._sink.send(wire.RESPONSE, invocation.response_meta, request.body, drain=True)
                conn.send(_ACCEPTED)
            if self.lifecycle is not None:
                if request.body is None:
                    status, error_type = "failure", "Function.ResponseSizeTooLarge"
                else:
                    status, error_type = "success", None
                self.lifecycle.runtime_done(
                    invocation.request_id.decode(), status, error_type, request.size
                )
            return False

    def _stream(self, conn: Connection, request: Request, request_id: bytes) -> bool:
        """A /response in streaming mode: relay its chunks to the host as they arrive."""
        with self.lock:
            invocation = self._finish(conn, request_id, _TO_RESPONSE, STREAMING)
            if invocation is None:
                request.keep_alive = False  # its body is unread: close the connection
                return False
            rid = invocation.request_id.decode()
            meta: dict[str, Any] = {"request_id": rid}
            content_type = request.headers.get(b"content-type")
            if content_type:
                meta["content_type"] = content_type.decode("latin-1")
            self._sink.send(wire.STREAM_START, wire.encode_meta(meta), drain=True)
        sink = self._sink
        size = 0

        def forward(piece: bytes) -> None:
            nonlocal size
            size += len(piece)
            if size > MAX_STREAM:
                raise _StreamCut()
            sink.send(wire.STREAM_CHUNK, b"", piece)

        end: dict[str, Any] = {"request_id": rid}
        body = b""
        answer: bytes | None = _ACCEPTED
        try:
            trailers = conn.read_stream(request.headers, forward)
        except _StreamCut:
            trailers = {}
            end["error_type"] = "Function.ResponseSizeTooLarge"
            answer = _STREAM_TOO_LARGE
            request.keep_alive = False  # the rest of the body is never read
        except (BadRequest, OSError):
            trailers = {}
            end["error_type"] = "Runtime.TruncatedResponse"
            answer = None
            request.keep_alive = False
        error_type = trailers.get(_ERROR_TYPE)
        if error_type is not None:
            end["error_type"] = error_type.decode("utf-8", "replace")
            encoded = trailers.get(_ERROR_BODY)
            if encoded:
                import binascii  # only when a stream failed: not a built-in module

                try:
                    body = binascii.a2b_base64(encoded)
                except ValueError:  # binascii.Error is one
                    body = encoded
        end["size"] = size
        with self.lock:
            self._state = RESPONSE_SENT
            self._sink.send(wire.STREAM_END, wire.encode_meta(end), body, drain=True)
            if answer is not None:
                try:
                    conn.send(answer)
                except OSError:
                    pass
            if self.lifecycle is not None:
                status = "success" if "error_type" not in end else "error"
                self.lifecycle.runtime_done(rid, status, end.get("error_type"), size)
        return False

    def error(self, conn: Connection, request: Request, request_id: bytes) -> bool:
        with self.lock:
            invocation = self._finish(conn, request_id, _TO_ERROR_RESPONSE)
            if invocation is None:
                return False
            meta = _error_meta(request)
            meta["request_id"] = invocation.request_id.decode()
            body = request.body if request.body is not None else b""
            self._sink.send(wire.ERROR, wire.encode_meta(meta), body, drain=True)
            conn.send(_ACCEPTED)
            if self.lifecycle is not None:
                error_type = meta.get("error_type") or _document_error_type(body)
                self.lifecycle.runtime_done(meta["request_id"], "error", error_type, request.size)
            return False

    def init_error(self, conn: Connection, request: Request, _param: bytes) -> bool:
        with self.lock:
            if self._state is not STARTED:
                conn.send(_forbidden(self._state, _TO_INIT_ERROR))
                return False
            self._state = INIT_ERROR
            body = request.body if request.body is not None else b""
            meta = _error_meta(request)
            self._sink.send(wire.INIT_ERROR, wire.encode_meta(meta), body, True)
            conn.send(_ACCEPTED)
            if self.lifecycle is not None:
                self.lifecycle.runtime_init_error(
                    meta.get("error_type") or _document_error_type(body)
                )
            return False

    def _finish(
        self, conn: Connection, request_id: bytes, target: str, state: str = RESPONSE_SENT
    ) -> Invocation | None:
        """Validate a /response or /error, then end the invocation (or, for a streamed
        response, move to ``state`` STREAMING); None if refused."""
        invocation = self._current
        if self._state is not RUNNING or invocation is None:
            conn.send(_forbidden(self._state, target))
            return None
        if request_id != invocation.request_id:
            conn.send(_INVALID_REQUEST_ID)
            return None
        self._state = state
        self._current = None
        return invocation


def _error_meta(request: Request) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    error_type = request.headers.get(_ERROR_TYPE)
    if error_type is not None:
        meta["error_type"] = error_type.decode("utf-8", "replace")
    if request.body is None:  # over the limit: the document was dropped
        meta["size"] = request.size
    return meta


def _document_error_type(body: bytes | bytearray) -> str | None:
    """The errorType of a small error document (awslambdaric sends no error-type header)."""
    if len(body) > 65536:
        return None
    try:
        document = wire.loads(bytes(body))
    except ValueError:
        return None
    error_type = document.get("errorType") if isinstance(document, dict) else None
    return error_type if isinstance(error_type, str) and error_type else None
