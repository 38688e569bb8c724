"""Frames exchanged between the host and the in-sandbox agent over one Unix stream socket.

A frame is a 9-byte header ``struct.pack("!BII", type, meta_len, body_len)``, then
``meta_len`` bytes of meta (a UTF-8 JSON object, or nothing for an empty one), then
``body_len`` bytes of body, passed through untouched (payloads are never re-encoded).

This module runs on both sides: the host imports it as ``lambdaplane.agent.wire``,
the agent as the sibling module ``wire`` under whatever Python 3.9-3.13 the function
uses. So: standard library only, 3.9 syntax, and nothing slow to import: not
``typing``, not ``collections``, and not the ``json`` package, whose import of ``re``
and ``enum`` alone costs 6-7 ms of every cold start (billed against the function's
CPU share). Metas go through CPython's own JSON accelerator ``_json`` instead; the
``json`` package is the fallback where that is missing.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NamedTuple, Protocol, Union

    class Frame(NamedTuple):
        type: int
        meta: dict[str, Any]
        body: bytes

    class _Readable(Protocol):
        def read(self, size: int, /) -> bytes | None: ...

    FrameSource = Union[_Readable, Callable[[int], bytes]]
else:

    class Frame(tuple):
        """(type, meta, body): a named tuple without the cost of importing collections."""

        __slots__ = ()

        def __new__(cls, type, meta, body):
            return tuple.__new__(cls, (type, meta, body))

        type = property(lambda self: self[0])
        meta = property(lambda self: self[1])
        body = property(lambda self: self[2])

        def __repr__(self):
            return f"Frame(type={self[0]!r}, meta={self[1]!r}, body={self[2]!r})"


# host -> agent
INVOKE = 1
"""meta: request_id, deadline_ms (epoch ms), invoked_function_arn, trace_id, and optional
client_context / cognito_identity / tenant_id (strings passed through as the runtime's
Lambda-Runtime-* headers; a dict is sent as its JSON); body: the event. At most one
invocation is in flight: an INVOKE before the runtime's /next waits for it."""
SHUTDOWN = 2
"""Kill the runtime's process group; the agent answers with EXIT and exits. With extensions
registered this is AWS's shutdown phase: the runtime gets SIGTERM (and SIGKILL after
300 ms), extensions subscribed to SHUTDOWN get the event, everything is killed within
2 s (0.5 s with internal extensions only), then EXIT. meta: optional reason (spindown,
timeout, failure: the event's shutdownReason; default spindown)."""
ASSIGN = 3
"""To a pre-initialised Python runtime (agent/pyruntime.py --prewarm): meta env (the
function's complete environment) and handler; the runtime then starts its init phase."""

# agent -> host
NEXT = 16
"""The runtime called /invocation/next and is idle; the first NEXT means init finished.
meta: {"t": CLOCK_MONOTONIC in ns}. Sent on every move into Ready, even if an INVOKE is queued.
With extensions, only once every extension has called next too (all of them after init,
those subscribed to INVOKE after an invocation)."""
RESPONSE = 17
"""meta: request_id; body: the response exactly as the runtime posted it."""
ERROR = 18
"""meta: request_id, error_type (only when the runtime sent Lambda-Runtime-Function-Error-Type);
body: the error document as posted."""
INIT_ERROR = 19
"""meta: error_type (only when sent); body: the error document as posted. An extension's
failure during init is one too: error_type Extension.InitError, Extension.Crash or
Extension.LaunchError, body {"errorMessage": "Error: exit code 0", "errorType": ...}."""
RESPONSE_TOO_LARGE = 20
"""meta: request_id, size (bytes the runtime posted); the runtime was answered 413."""
LOG = 21
"""meta: {"ts": epoch ms when read}; body: raw stdout+stderr bytes of the runtime, in order,
or whole lines of extensions' output, or AWS's EXTENSION status lines."""
EXIT = 22
"""meta: status ("exit status 3", "signal: killed"), code (int or null), signal (int or null).
When an extension ended the environment: its status, plus extension (its name) and
error_type (Extension.Crash, Extension.InitError, Extension.LaunchError)."""
AGENT_ERROR = 23
"""meta: message. Something the agent could not handle; fatal ones are followed by EOF."""
STREAM_START = 24
"""The runtime began a response in streaming mode (Lambda-Runtime-Function-Response-Mode:
streaming). meta: request_id, content_type (the runtime's Content-Type, if it sent one).
STREAM_CHUNKs follow, then one STREAM_END; no RESPONSE or ERROR for that invocation."""
STREAM_CHUNK = 25
"""No meta; body: the next bytes of the streamed response, as the runtime sent them (one
HTTP chunk, or a piece of at most 1 MiB of a larger one)."""
STREAM_END = 26
"""The streamed response is over. meta: request_id, size (bytes streamed), and error_type
when it failed: from the runtime's Lambda-Runtime-Function-Error-Type trailer, or
Function.ResponseSizeTooLarge (the stream was cut at the limit), or
Runtime.TruncatedResponse (the runtime's connection broke off). body: the error document
(the trailer Lambda-Runtime-Function-Error-Body, base64-decoded), or empty."""

NAMES = {
    INVOKE: "INVOKE",
    SHUTDOWN: "SHUTDOWN",
    ASSIGN: "ASSIGN",
    NEXT: "NEXT",
    RESPONSE: "RESPONSE",
    ERROR: "ERROR",
    INIT_ERROR: "INIT_ERROR",
    RESPONSE_TOO_LARGE: "RESPONSE_TOO_LARGE",
    LOG: "LOG",
    EXIT: "EXIT",
    AGENT_ERROR: "AGENT_ERROR",
    STREAM_START: "STREAM_START",
    STREAM_CHUNK: "STREAM_CHUNK",
    STREAM_END: "STREAM_END",
}

HEADER = struct.Struct("!BII")
HEADER_SIZE = HEADER.size  # 9

MAX_META = 1 << 20
"""Largest meta a decoder accepts; metas are a few hundred bytes."""
MAX_BODY = 64 << 20
"""Largest body a decoder accepts by default (payloads are at most ~6 MB)."""


class FrameError(ValueError):
    """The byte stream is not a valid sequence of frames (truncated, oversized, bad meta)."""


def encode_meta(meta: dict[str, Any] | None) -> bytes:
    """Return the compact UTF-8 JSON of ``meta``; an empty or missing meta encodes as b""."""
    if not meta:
        return b""
    return dumps(meta).encode()


def encode_head(type: int, meta: bytes, body_len: int) -> bytes:
    """Return header + already-encoded ``meta``, for callers that send the body separately."""
    return HEADER.pack(type, len(meta), body_len) + meta


def encode(type: int, meta: dict[str, Any] | None = None, body: bytes = b"") -> bytes:
    """Return one whole frame."""
    meta_bytes = encode_meta(meta)
    return HEADER.pack(type, len(meta_bytes), len(body)) + meta_bytes + body


def decode_meta(data: bytes) -> dict[str, Any]:
    """Parse a frame's meta; b"" is {}. Raises FrameError unless it is a JSON object."""
    if not data:
        return {}
    try:
        meta = loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise FrameError(f"frame meta is not JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise FrameError("frame meta is not a JSON object")
    return meta


# -- JSON without the json package -------------------------------------------------------


class _ScannerContext:
    """The settings _json.make_scanner reads from a json.JSONDecoder: the defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity


def _accelerators() -> tuple[Any, Any]:
    """CPython's C scanner and string quoting, or (None, None) where they are missing."""
    try:
        import _json
    except ImportError:
        return None, None
    context: Any = _ScannerContext()
    return _json.make_scanner(context), _json.encode_basestring_ascii


_scan, _quote = _accelerators()
_WHITESPACE = " \t\n\r"


def loads(data: bytes | str) -> Any:
    """json.loads for one document. Raises ValueError."""
    text = data.decode() if isinstance(data, (bytes, bytearray)) else data
    if _scan is None:
        import json

        return json.loads(text)
    text = text.strip(_WHITESPACE)
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    except SystemError:
        # CPython 3.11's scanner fails this way on some malformed input (b"{") when the
        # json package was never imported; bodies from extensions can be malformed.
        raise ValueError("not a JSON document") from None
    if end != len(text):
        raise ValueError(f"extra data after the JSON document at {end}")
    return value


def dumps(value: Any) -> str:
    """Compact, ASCII-only JSON of dicts, lists, strings, numbers, booleans and None."""
    if _quote is None:
        import json

        return json.dumps(value, separators=(",", ":"))
    out: list[str] = []
    _dump(value, out)
    return "".join(out)


def _dump(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not JSON")
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {key!r}")
            if not first:
                out.append(",")
            first = False
            out.append(_quote(key))
            out.append(":")
            _dump(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _dump(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _read_exact(read: Callable[[int], bytes | None], size: int) -> bytes:
    """Read ``size`` bytes, or fewer only at end of stream."""
    data = read(size) or b""
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        chunk = read(size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_frame(source: FrameSource) -> Frame | None:
    """Block until one whole frame is read; None at a clean end of stream.

    ``source`` is a binary file (``read(n)``, e.g. ``open(fd, "rb")``) or a ``recv``-like
    callable. Raises FrameError if the stream ends inside a frame.
    """
    read = source if callable(source) else source.read
    head = _read_exact(read, HEADER_SIZE)
    if not head:
        return None
    if len(head) < HEADER_SIZE:
        raise FrameError("stream ended inside a frame header")
    type_, meta_len, body_len = HEADER.unpack(head)
    meta = _read_exact(read, meta_len) if meta_len else b""
    body = _read_exact(read, body_len) if body_len else b""
    if len(meta) != meta_len or len(body) != body_len:
        raise FrameError("stream ended inside a frame")
    return Frame(type_, decode_meta(meta), body)


class FrameDecoder:
    """Incremental decoder for event-driven readers (asyncio Protocols).

    ``feed(data)`` returns the frames completed by ``data``, in order, keeping any
    partial frame for the next call. Raises FrameError on an oversized or bad frame;
    the stream cannot be resynchronised after that.
    """

    __slots__ = ("_buf", "max_body", "max_meta")

    def __init__(self, max_meta: int = MAX_META, max_body: int = MAX_BODY) -> None:
        self._buf = bytearray()
        self.max_meta = max_meta
        self.max_body = max_body

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        if self._buf:
            self._buf += data
            frames, used = self._parse(self._buf)
            del self._buf[:used]
        else:
            # Common case: nothing pending, so parse straight from ``data`` (no copy in).
            frames, used = self._parse(data)
            if used < len(data):
                self._buf += data[used:] if used else data
        return frames

    def _parse(self, buf: bytes | bytearray) -> tuple[list[Frame], int]:
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        unpack_from = HEADER.unpack_from
        # Slicing a memoryview copies each body once; slicing a bytearray would copy twice.
        with memoryview(buf) as view:
            while end - pos >= HEADER_SIZE:
                type_, meta_len, body_len = unpack_from(buf, pos)
                if meta_len > self.max_meta or body_len > self.max_body:
                    raise FrameError(
                        f"frame too large (type {type_}, meta {meta_len}, body {body_len} bytes)"
                    )
                meta_at = pos + HEADER_SIZE
                body_at = meta_at + meta_len
                frame_end = body_at + body_len
                if frame_end > end:
                    break
                meta = decode_meta(bytes(view[meta_at:body_at])) if meta_len else {}
                frames.append(Frame(type_, meta, bytes(view[body_at:frame_end])))
                pos = frame_end
        return frames, pos
