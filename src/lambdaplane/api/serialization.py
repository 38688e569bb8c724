"""Response serialisation for rest-json: output dict -> (status, headers, body).

Contract (``OutputPlan(op)`` once per operation, then ``serialize(output)``):

- status: ``output["__status__"]`` if present, else a ``statusCode``-bound member
  (DeleteFunction's ``StatusCode``, Invoke's ``StatusCode``) if set, else the model's
  ``http.responseCode`` (default 200).
- header-bound members become headers under the model's name (``X-Amz-Function-Error``…):
  str as is, int decimal, bool ``true``/``false``, datetime per ``timestampFormat``
  (default RFC 822), ``jsonvalue`` as base64 JSON; ``headers`` maps as prefix + key.
- a blob ``payload`` member is the raw body (``bytes``; a ``str`` is UTF-8 encoded); an
  event-stream payload must already be encoded ``bytes`` (the server streams it); a
  structure payload is that structure's JSON.
- otherwise the body is compact JSON of the body members, keys per the model, members
  the shape does not have and ``None`` values dropped at every depth, ``bytes`` base64,
  ``datetime`` per the shape's ``timestampFormat`` (rest-json default: epoch seconds).
- no output shape, or status 204/304: empty body and no content-type. Otherwise
  ``content-type: application/json`` unless a header member sets Content-Type.
- ``render_error(err, request_id)``: ``err.status``; ``x-amzn-errortype: <code>``,
  ``x-amzn-requestid``, ``content-type: application/json``; body ``err.body()`` as JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

from lambdaplane.api.timestamps import default_format, format_timestamp
from lambdaplane.errors import LambdaError

Serializer = Callable[[Any], Any]
Headers = list[tuple[bytes, bytes]]

JSON_CONTENT_TYPE = (b"content-type", b"application/json")
EVENTSTREAM_CONTENT_TYPE = (b"content-type", b"application/vnd.amazon.eventstream")
_EMPTY_STATUSES = frozenset({204, 304})


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


_STRUCTURES: dict[str, Serializer] = {}


def _structure_serializer(shape: Any, top_level: bool = False) -> Serializer:
    key = shape.name + ("#top" if top_level else "")
    cached = _STRUCTURES.get(key)
    if cached is not None:
        return cached
    specs: dict[str, tuple[str, Serializer | None]] = {}

    def serialize(value: Any) -> Any:
        out = {}
        for name, item in value.items():
            if item is None:
                continue
            spec = specs.get(name)
            if spec is None:
                continue
            key, inner = spec
            out[key] = item if inner is None else inner(item)
        return out

    # Registered before the members are compiled, so recursive shapes terminate.
    _STRUCTURES[key] = serialize
    for name, member in shape.members.items():
        if top_level and member.serialization.get("location"):
            continue
        specs[name] = (member.serialization.get("name", name), json_serializer(member))
    return serialize


def json_serializer(shape: Any) -> Serializer | None:
    """A converter to JSON-ready values for ``shape``, or None when values pass as is."""
    type_name = shape.type_name
    if type_name == "structure":
        return _structure_serializer(shape)
    if type_name == "blob":

        def encode_blob(value: Any) -> Any:
            if isinstance(value, bytes | bytearray | memoryview):
                return base64.b64encode(value).decode()
            return value

        return encode_blob
    if type_name == "timestamp":
        fmt = shape.serialization.get("timestampFormat") or default_format(None)

        def encode_time(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return format_timestamp(value, fmt)
            return value

        return encode_time
    if type_name == "list":
        item_serializer = json_serializer(shape.member)
        if item_serializer is None:
            return None
        encode_item: Serializer = item_serializer

        def encode_list(value: Any) -> Any:
            return [None if item is None else encode_item(item) for item in value]

        return encode_list
    if type_name == "map":
        value_serializer = json_serializer(shape.value)
        if value_serializer is None:
            return None
        encode_value: Serializer = value_serializer

        def encode_map(value: Any) -> Any:
            return {
                key: None if item is None else encode_value(item) for key, item in value.items()
            }

        return encode_map
    return None


def header_formatter(shape: Any) -> Callable[[Any], bytes]:
    """Converts a header-bound output value to header bytes."""
    jsonvalue = bool(shape.serialization.get("jsonvalue"))
    fmt = shape.serialization.get("timestampFormat") or default_format("header")

    def format_header(value: Any) -> bytes:
        if jsonvalue:
            return base64.b64encode(_dumps(value))
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, bool):
            return b"true" if value else b"false"
        if isinstance(value, dt.datetime):
            return str(format_timestamp(value, fmt)).encode()
        if isinstance(value, bytes):
            return base64.b64encode(value)
        return str(value).encode()

    return format_header


class OutputPlan:
    """Everything needed to serialise one operation's responses, computed once."""

    def __init__(self, operation: Any) -> None:
        self.status: int = operation.http.get("responseCode", 200)
        shape = operation.output_shape
        self.has_shape = shape is not None
        self.status_member: str | None = None
        self.headers: list[tuple[str, bytes, Callable[[Any], bytes]]] = []
        self.prefixed: list[tuple[str, str, Callable[[Any], bytes]]] = []
        self.payload: tuple[str, str, Serializer | None] | None = None
        self.body: Serializer | None = None
        self.content_type_member: str | None = None
        if shape is None:
            return
        payload_name = shape.serialization.get("payload")
        has_body_members = False
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "statusCode":
                self.status_member = name
            elif location == "header":
                if wire.lower() == "content-type":
                    self.content_type_member = name
                self.headers.append((name, wire.encode(), header_formatter(member)))
            elif location == "headers":
                self.prefixed.append((name, wire, header_formatter(member.value)))
            elif name == payload_name:
                if member.type_name in ("blob", "string"):
                    self.payload = (name, "raw", None)
                elif member.serialization.get("eventstream"):
                    self.payload = (name, "eventstream", None)
                else:
                    self.payload = (name, "json", json_serializer(member))
            elif location is None:
                has_body_members = True
        if self.payload is None:
            self.body = _structure_serializer(shape, top_level=True) if has_body_members else None

    def serialize(self, output: Mapping[str, Any]) -> tuple[int, Headers, bytes]:
        status = output.get("__status__")
        if status is None and self.status_member is not None:
            status = output.get(self.status_member)
        if status is None:
            status = self.status
        headers: Headers = []
        for name, wire, format_header in self.headers:
            value = output.get(name)
            if value is not None:
                headers.append((wire, format_header(value)))
        for name, prefix, format_header in self.prefixed:
            values = output.get(name)
            if values:
                for key, value in values.items():
                    if value is not None:
                        headers.append(((prefix + key).encode(), format_header(value)))
        content_type = JSON_CONTENT_TYPE
        if self.payload is not None:
            name, kind, inner = self.payload
            value = output.get(name)
            if kind == "json":
                body = b"{}" if value is None else _dumps(value if inner is None else inner(value))
            else:
                if kind == "eventstream":
                    content_type = EVENTSTREAM_CONTENT_TYPE
                body = value.encode() if isinstance(value, str) else bytes(value or b"")
        elif self.body is not None:
            body = _dumps(self.body(output))
        elif self.has_shape:
            body = b"{}"
        else:
            body = b""
        if status in _EMPTY_STATUSES or not self.has_shape:
            return status, headers, b""
        if self.content_type_member is None or output.get(self.content_type_member) is None:
            headers.append(content_type)
        return status, headers, body


def render_error(err: LambdaError, request_id: str) -> tuple[int, Headers, bytes]:
    """An error response as AWS sends it (botocore reads the code from the header)."""
    headers: Headers = [
        (b"x-amzn-errortype", err.code.encode()),
        (b"x-amzn-requestid", request_id.encode()),
        JSON_CONTENT_TYPE,
    ]
    return err.status, headers, _dumps(err.body())
