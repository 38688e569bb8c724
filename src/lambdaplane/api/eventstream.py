"""AWS's event-stream binary encoding (``application/vnd.amazon.eventstream``), the body
of InvokeWithResponseStream.

A message is: a 12-byte prelude (total length, headers length, both big-endian
uint32, then the CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of
everything before it. A header is its name's length (uint8), the name, the value's type
(7: string), the value's length (uint16) and the value. Lambda's events carry three
string headers: ``:event-type``, ``:content-type`` and ``:message-type`` (``event``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from zlib import crc32

_PRELUDE = struct.Struct("!II")
_STRING = 7
_MAX_HEADERS = 128 * 1024
_MAX_PAYLOAD = 16 * 1024 * 1024  # botocore's _MAX_PAYLOAD_LENGTH: a bigger message fails its parser


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack("!B", len(raw_name))
        + raw_name
        + struct.pack("!BH", _STRING, len(raw_value))
        + raw_value
    )


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One message with string ``headers`` and ``payload``."""
    raw_headers = b"".join(_header(name, value) for name, value in headers)
    if len(raw_headers) > _MAX_HEADERS:
        raise ValueError("event-stream headers too long")
    total = _PRELUDE.size + 4 + len(raw_headers) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(raw_headers))
    message = prelude + struct.pack("!I", crc32(prelude)) + raw_headers + payload
    return message + struct.pack("!I", crc32(message))


def _event(event_type: str, content_type: str) -> list[tuple[str, str]]:
    return [
        (":event-type", event_type),
        (":content-type", content_type),
        (":message-type", "event"),
    ]


_CHUNK_HEADERS = _event("PayloadChunk", "application/octet-stream")
_COMPLETE_HEADERS = _event("InvokeComplete", "application/json")


def payload_chunks(data: bytes) -> list[bytes]:
    """PayloadChunk events carrying ``data`` (split where one message could not hold it)."""
    if len(data) <= _MAX_PAYLOAD:
        return [encode_message(_CHUNK_HEADERS, data)]
    return [
        encode_message(_CHUNK_HEADERS, data[at : at + _MAX_PAYLOAD])
        for at in range(0, len(data), _MAX_PAYLOAD)
    ]


def invoke_complete(
    error_code: str | None = None,
    error_details: str | None = None,
    log_result: str | None = None,
) -> bytes:
    """The InvokeComplete event that ends the stream; members that are None are left out."""
    body: dict[str, str] = {}
    if error_code is not None:
        body["ErrorCode"] = error_code
    if error_details is not None:
        body["ErrorDetails"] = error_details
    if log_result is not None:
        body["LogResult"] = log_result
    return encode_message(_COMPLETE_HEADERS, json.dumps(body, separators=(",", ":")).encode())


@dataclass(frozen=True)
class StreamedResponse:
    """A handler's answer whose body is sent as it is produced (``more_body``), not
    serialised from an output dict: what server/app.py sends for a ``__stream__`` output."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: AsyncIterator[bytes]


CONTENT_TYPE = b"application/vnd.amazon.eventstream"
