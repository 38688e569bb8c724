"""The event-stream encoding, read back by botocore's own parser (what boto3 uses)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.eventstream import EventStream, EventStreamBuffer
from botocore.parsers import EventStreamJSONParser

from lambdaplane.api import eventstream
from lambdaplane.api.model import load_service_model


class _Raw:
    """What botocore's EventStream reads from: a urllib3-like raw stream."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self) -> Any:
        size = 7 if len(self._data) < 4096 else 65536  # odd pieces: messages span reads
        for at in range(0, len(self._data), size):
            yield self._data[at : at + size]

    def close(self) -> None:
        pass


def parse(data: bytes) -> list[dict[str, Any]]:
    operation = load_service_model().operation_model("InvokeWithResponseStream")
    shape = operation.output_shape.members["EventStream"]
    stream = EventStream(_Raw(data), shape, EventStreamJSONParser(), operation.name)
    return list(stream)


def test_payload_chunks_and_complete_parse_as_boto3_sees_them() -> None:
    data = (
        b"".join(eventstream.payload_chunks(b"hello "))
        + b"".join(eventstream.payload_chunks(b"\x00\xffbinary"))
        + eventstream.invoke_complete()
    )
    assert parse(data) == [
        {"PayloadChunk": {"Payload": b"hello "}},
        {"PayloadChunk": {"Payload": b"\x00\xffbinary"}},
        {"InvokeComplete": {}},
    ]


def test_invoke_complete_with_error_and_log() -> None:
    details = json.dumps({"errorType": "Error", "errorMessage": "boom"})
    data = eventstream.invoke_complete("Error", details, "bG9n")
    assert parse(data) == [
        {"InvokeComplete": {"ErrorCode": "Error", "ErrorDetails": details, "LogResult": "bG9n"}}
    ]


def test_prelude_headers_and_checksums_are_what_botocore_validates() -> None:
    message = eventstream.payload_chunks(b"abc")[0]
    buffer = EventStreamBuffer()
    buffer.add_data(message)
    (parsed,) = list(buffer)
    assert parsed.headers == {
        ":event-type": "PayloadChunk",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert parsed.payload == b"abc"
    assert int.from_bytes(message[:4], "big") == len(message)
    corrupted = message[:-1] + bytes([message[-1] ^ 1])
    buffer = EventStreamBuffer()
    buffer.add_data(corrupted)
    with pytest.raises(Exception, match="Checksum mismatch"):
        list(buffer)


def test_a_payload_too_big_for_one_message_is_split() -> None:
    data = b"x" * (16 * 1024 * 1024 + 10)
    messages = eventstream.payload_chunks(data)
    assert len(messages) == 2
    events = parse(b"".join(messages))
    assert b"".join(e["PayloadChunk"]["Payload"] for e in events) == data
