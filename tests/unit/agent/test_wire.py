"""The host<->agent frame format: encoding, blocking reads, incremental decoding."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lambdaplane.agent import wire
from lambdaplane.agent.wire import Frame, FrameDecoder, FrameError

FRAMES = [
    Frame(wire.INVOKE, {"request_id": "r-1", "deadline_ms": 1_700_000_000_000}, b'{"k": "v"}'),
    Frame(wire.NEXT, {}, b""),
    Frame(wire.LOG, {"ts": 1}, b"line\n\x00\xff binary is fine\n"),
    Frame(wire.RESPONSE, {"request_id": "r-1"}, b"x" * 200_000),
    Frame(wire.AGENT_ERROR, {"message": "caf\u00e9 \u2603"}, b""),
    Frame(wire.SHUTDOWN, {}, b""),
]


def stream() -> bytes:
    return b"".join(wire.encode(f.type, f.meta, f.body) for f in FRAMES)


def test_header_layout_and_empty_meta() -> None:
    data = wire.encode(wire.SHUTDOWN)
    assert data == b"\x02" + b"\x00" * 8
    framed = wire.encode(wire.RESPONSE, {"request_id": "a"}, b"body")
    meta = b'{"request_id":"a"}'
    assert (
        framed
        == bytes([wire.RESPONSE])
        + len(meta).to_bytes(4, "big")
        + (4).to_bytes(4, "big")
        + meta
        + b"body"
    )
    assert wire.encode_head(wire.RESPONSE, meta, 4) + b"body" == framed


def test_type_codes_are_distinct_and_named() -> None:
    assert len(set(wire.NAMES)) == len(wire.NAMES) == 14
    assert all(0 < code < 256 for code in wire.NAMES)


def test_read_frame_from_a_binary_file_round_trips() -> None:
    source = io.BytesIO(stream())
    got = []
    while (frame := wire.read_frame(source)) is not None:
        got.append(frame)
    assert got == FRAMES


def test_read_frame_from_a_socket_recv_round_trips() -> None:
    a, b = socket.socketpair()
    with a, b:
        writer = threading.Thread(target=lambda: (a.sendall(stream()), a.shutdown(socket.SHUT_WR)))
        writer.start()
        got = []
        while (frame := wire.read_frame(b.recv)) is not None:
            got.append(frame)
        writer.join()
    assert got == FRAMES


@pytest.mark.parametrize("cut", [1, 8, 9, 12, 20, 26])
def test_read_frame_raises_when_the_stream_ends_inside_a_frame(cut: int) -> None:
    with pytest.raises(FrameError):
        wire.read_frame(io.BytesIO(wire.encode(wire.LOG, {"ts": 1}, b"0123456789")[:cut]))


def test_decoder_whole_stream_at_once() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(stream()) == FRAMES
    assert decoder.buffered == 0


@pytest.mark.parametrize("step", [1, 2, 7, 9, 4096, 65536])
def test_decoder_partial_feeds(step: int) -> None:
    data = stream()
    decoder = FrameDecoder()
    got: list[Frame] = []
    for at in range(0, len(data), step):
        got += decoder.feed(data[at : at + step])
    assert got == FRAMES
    assert decoder.buffered == 0


def test_decoder_keeps_a_partial_tail_between_feeds() -> None:
    data = stream()
    decoder = FrameDecoder()
    first = decoder.feed(data[:-3])
    assert first == FRAMES[:-1]
    assert decoder.buffered == len(data) - 3 - sum(
        len(wire.encode(f.type, f.meta, f.body)) for f in FRAMES[:-1]
    )
    assert decoder.feed(data[-3:]) == FRAMES[-1:]


def test_decoder_refuses_oversized_frames() -> None:
    decoder = FrameDecoder(max_body=10)
    with pytest.raises(FrameError, match="too large"):
        decoder.feed(wire.encode_head(wire.LOG, b"", 11))


@pytest.mark.parametrize("meta", [b"[1]", b"{not json", b"\xff"])
def test_meta_must_be_a_json_object(meta: bytes) -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(wire.encode_head(wire.LOG, meta, 0))


JSON_VALUES = [
    {"empty": {}},
    {"request_id": "8476a536-e9f4-11e8-9739-2dfe598c3fcd", "deadline_ms": 1_542_409_706_888},
    {"s": 'quote " backslash \\ newline \n tab \t nul \x00 caf\u00e9 \u2603 \U0001f600'},
    {"n": None, "t": True, "f": False, "i": -7, "x": 1.5, "big": 2**70},
    {"nested": {"list": [1, "two", [3.25], {"k": []}], "empty": {}}},
]


@pytest.mark.parametrize("value", JSON_VALUES)
def test_meta_json_agrees_with_the_json_package(value: dict[str, object]) -> None:
    encoded = wire.encode_meta(value)
    assert encoded.isascii()
    assert json.loads(encoded) == value
    assert wire.decode_meta(encoded) == value
    assert wire.decode_meta(json.dumps(value, indent=2).encode()) == value
    assert (
        wire.decode_meta(b" \n" + json.dumps(value, ensure_ascii=False).encode() + b"\n") == value
    )


@pytest.mark.parametrize("bad", [float("nan"), {1: "int key"}, object()])
def test_meta_json_refuses_what_is_not_json(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        wire.encode_meta({"bad": bad})


@pytest.mark.parametrize("data", [b'{"a": 1} {"b": 2}', b'{"a": 1,}', b'{"a": "\x01"}', b""])
def test_meta_json_rejects_malformed_documents(data: bytes) -> None:
    with pytest.raises(ValueError):
        wire.loads(data)


@pytest.mark.parametrize("python", [sys.executable, "/root/.pyenv/versions/3.9.18/bin/python3.9"])
def test_the_agent_side_imports_stay_light(python: str) -> None:
    """wire, and the whole agent (extension support included), must not pull in
    json/re/enum/typing/collections."""
    if not Path(python).exists():
        pytest.skip(f"{python} is not installed")
    here = str(Path(wire.__file__).parent)
    heavy = "{'json', 're', 'enum', 'typing', 'collections', 'socket', 'threading', 'subprocess'}"
    probe = (
        f"import sys; sys.path.insert(0, {here!r}); import supervisor, host_link, extensions, extensions_api, telemetry, telemetry_delivery; "
        f"print(sorted({heavy} & set(sys.modules)))"
    )
    out = subprocess.run(
        [python, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("data", [b"{", b'{"a"', b"[1,", b'{"a":1'])
def test_truncated_json_is_a_value_error_without_the_json_package(data: bytes) -> None:
    """CPython 3.11's C scanner raises SystemError on these until ``json`` is imported;
    the agent never imports it, and extensions can send anything."""
    here = str(Path(wire.__file__).parent)
    probe = (
        f"import sys; sys.path.insert(0, {here!r}); import wire\n"
        f"try:\n    wire.loads({data!r})\nexcept ValueError:\n    print('ValueError')"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "ValueError"
