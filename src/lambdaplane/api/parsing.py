"""Request parsing for rest-json: HTTP pieces -> the input dict boto3 would have sent.

Contract (``compile_input(op)`` once per operation, then ``InputPlan.parse`` per request):

- uri labels, querystring and header members are converted from text to their shape
  type (integer/long: optional sign + digits; boolean: ``true``/``false`` in any case;
  timestamps: ISO-8601, epoch or HTTP date; querystring lists: every value of the
  repeated parameter; header ``jsonvalue``: base64 of JSON; ``headers`` location maps:
  every header under the prefix, keyed by the rest of the (lower-cased) name). An empty
  value of a non-string member counts as absent. A value that does not convert raises
  ``InvalidRequestContentException`` with Jackson's wording but no body prefix (AWS's
  behaviour for this case is not recorded).
- A ``payload`` member that is a blob takes the raw body bytes (absent when the body is
  empty); a structure payload is the JSON body bound to that structure.
- Otherwise the body (empty or whitespace = ``{}``; ``null`` = ``{}``) is a JSON object
  bound to the input shape's body members, with Jackson's rules as Lambda applies them:
  an unknown field at any depth, a value of the wrong JSON type, an int out of range or
  a blob that is not base64 raise ``InvalidRequestContentException`` whose message
  starts ``"Could not parse request body into json: "``. No scalar coercion: a string
  is not an integer and a number is not a string. A member that the input shape binds
  elsewhere (uri/querystring/header) is accepted in the body and ignored. ``null``
  members are dropped; ``null`` list items and map values are kept (validation
  reports them as "Member must not be null").
- Blobs come back as ``bytes``, timestamps as aware UTC ``datetime``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from lambdaplane.api import jackson
from lambdaplane.api.timestamps import parse_timestamp
from lambdaplane.errors import InvalidRequestContentException

BODY_PREFIX = "Could not parse request body into json: "

_INT_RANGES = {
    "integer": ("int", -(2**31), 2**31 - 1),
    "long": ("long", -(2**63), 2**63 - 1),
    "short": ("short", -(2**15), 2**15 - 1),
    "byte": ("byte", -(2**7), 2**7 - 1),
}
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_WHITESPACE = re.compile(r"\s+")

Parser = Callable[[Any], Any]


class BindError(ValueError):
    """A JSON value that does not bind; ``chain`` is Jackson's reference chain, inner last."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.chain: list[str] = []

    def message(self) -> str:
        if not self.chain:
            return self.detail
        return f"{self.detail} (through reference chain: {'->'.join(reversed(self.chain))})"


def _decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        pass
    compact = _WHITESPACE.sub("", text)
    try:
        return base64.b64decode(compact, validate=True)
    except ValueError:
        pass
    for ch in compact:
        if ch not in _B64_CHARS:
            raise ValueError(
                "Failed to decode VALUE_STRING as base64 (MIME-NO-LINEFEEDS): "
                f"Illegal character '{ch}' (code 0x{ord(ch):x}) in base64 content"
            )
    raise ValueError(
        "Unexpected end of base64-encoded String: base64 variant 'MIME-NO-LINEFEEDS' "
        "expects padding (one or more '=' characters) at the end"
    )


# --------------------------------------------------------------------------- JSON body


class _StructParser:
    """Binds a JSON object to a structure shape; callable, recursion-safe."""

    __slots__ = ("class_name", "members", "shape")

    def __init__(self, shape: Any) -> None:
        self.shape = shape
        self.class_name = jackson.MODEL_PACKAGE + shape.name
        # JSON key -> (member name or None to ignore, parser)
        self.members: dict[str, tuple[str | None, Parser]] = {}

    def __call__(self, value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise BindError(jackson.mismatch(self.shape, value))
        out: dict[str, Any] = {}
        members = self.members
        for key, item in value.items():
            spec = members.get(key)
            if spec is None:
                raise InvalidRequestContentException(
                    f'{BODY_PREFIX}Unrecognized field "{key}" (class {self.class_name}), '
                    "not marked as ignorable"
                )
            name, parse = spec
            if item is None or name is None:
                continue
            try:
                out[name] = parse(item)
            except BindError as err:
                err.chain.append(f'{self.class_name}["{key}"]')
                raise
        return out


_STRUCTS: dict[str, _StructParser] = {}


def _struct_parser(shape: Any, body_only: bool = False) -> _StructParser:
    """The (cached) parser of a structure shape. ``body_only`` marks non-body members
    of a top-level input shape as known-but-ignored."""
    key = shape.name + ("#body" if body_only else "")
    parser = _STRUCTS.get(key)
    if parser is not None:
        return parser
    parser = _STRUCTS[key] = _StructParser(shape)
    for name, member in shape.members.items():
        located = body_only and member.serialization.get("location") is not None
        json_key = name if located else member.serialization.get("name", name)
        parser.members[json_key] = (None if located else name, json_parser(member))
    return parser


def _scalar_mismatch(shape: Any) -> Parser:
    def parse(value: Any) -> Any:
        raise BindError(jackson.mismatch(shape, value))

    return parse


def json_parser(shape: Any) -> Parser:
    """A parser binding a decoded JSON value to ``shape`` (raises BindError)."""
    type_name = shape.type_name
    if type_name == "structure":
        return _struct_parser(shape)
    if type_name == "string":

        def parse_string(value: Any) -> Any:
            if type(value) is str:
                return value
            raise BindError(jackson.mismatch(shape, value))

        return parse_string
    if type_name in _INT_RANGES:
        java_name, low, high = _INT_RANGES[type_name]

        def parse_int(value: Any) -> Any:
            if type(value) is int:
                if low <= value <= high:
                    return value
                raise BindError(
                    f"Numeric value ({value}) out of range of {java_name} ({low} - {high})"
                )
            raise BindError(jackson.mismatch(shape, value))

        return parse_int
    if type_name in ("double", "float", "bigDecimal"):

        def parse_float(value: Any) -> Any:
            if type(value) in (int, float):
                return float(value)
            raise BindError(jackson.mismatch(shape, value))

        return parse_float
    if type_name == "boolean":

        def parse_bool(value: Any) -> Any:
            if type(value) is bool:
                return value
            raise BindError(jackson.mismatch(shape, value))

        return parse_bool
    if type_name == "blob":

        def parse_blob(value: Any) -> Any:
            if type(value) is str:
                try:
                    return _decode_base64(value)
                except ValueError as err:
                    raise BindError(jackson.mismatch(shape, value, str(err))) from None
            raise BindError(jackson.mismatch(shape, value))

        return parse_blob
    if type_name == "timestamp":

        def parse_time(value: Any) -> Any:
            if type(value) in (int, float, str):
                try:
                    return parse_timestamp(value)
                except (ValueError, OverflowError, OSError) as err:
                    raise BindError(jackson.mismatch(shape, value, str(err))) from None
            raise BindError(jackson.mismatch(shape, value))

        return parse_time
    if type_name == "list":
        item_parser = json_parser(shape.member)

        def parse_list(value: Any) -> Any:
            if type(value) is not list:
                raise BindError(jackson.mismatch(shape, value))
            out: list[Any] = []
            for index, item in enumerate(value):
                if item is None:
                    out.append(None)
                    continue
                try:
                    out.append(item_parser(item))
                except BindError as err:
                    err.chain.append(f"java.util.ArrayList[{index}]")
                    raise
            return out

        return parse_list
    if type_name == "map":
        value_parser = json_parser(shape.value)

        def parse_map(value: Any) -> Any:
            if type(value) is not dict:
                raise BindError(jackson.mismatch(shape, value))
            out: dict[str, Any] = {}
            for key, item in value.items():
                if item is None:
                    out[key] = None
                    continue
                try:
                    out[key] = value_parser(item)
                except BindError as err:
                    err.chain.append(f'java.util.LinkedHashMap["{key}"]')
                    raise
            return out

        return parse_map
    return _scalar_mismatch(shape)


# ---------------------------------------------------------------- uri / query / headers


def text_converter(shape: Any) -> Parser:
    """A converter from the text of a uri label, query value or header to ``shape``.

    Raises ValueError (with Jackson-style text) when the text does not convert."""
    type_name = shape.type_name
    if type_name == "string":
        if shape.serialization.get("jsonvalue"):

            def convert_json(text: str) -> Any:
                try:
                    raw = base64.b64decode(text, validate=True)
                except ValueError:
                    raw = text.encode()
                try:
                    return jackson.loads(raw)
                except jackson.JsonSyntaxError as err:
                    raise ValueError(err.detail) from None

            return convert_json
        return lambda text: text
    if type_name in _INT_RANGES:
        _, low, high = _INT_RANGES[type_name]

        def convert_int(text: str) -> Any:
            if _INT_TEXT.fullmatch(text):
                number = int(text)
                if low <= number <= high:
                    return number
            raise ValueError(jackson.mismatch(shape, text))

        return convert_int
    if type_name in ("double", "float", "bigDecimal"):

        def convert_float(text: str) -> Any:
            try:
                return float(text)
            except ValueError:
                raise ValueError(jackson.mismatch(shape, text)) from None

        return convert_float
    if type_name == "boolean":

        def convert_bool(text: str) -> Any:
            lowered = text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            raise ValueError(jackson.mismatch(shape, text))

        return convert_bool
    if type_name == "timestamp":

        def convert_time(text: str) -> Any:
            try:
                return parse_timestamp(text)
            except (ValueError, OverflowError, OSError) as err:
                raise ValueError(jackson.mismatch(shape, text, str(err))) from None

        return convert_time
    if type_name == "blob":

        def convert_blob(text: str) -> Any:
            try:
                return _decode_base64(text)
            except ValueError as err:
                raise ValueError(jackson.mismatch(shape, text, str(err))) from None

        return convert_blob
    if type_name == "list":
        return text_converter(shape.member)

    def unsupported(text: str) -> Any:
        raise ValueError(jackson.mismatch(shape, text))

    return unsupported


# --------------------------------------------------------------------------- the plan


class InputPlan:
    """Everything needed to parse one operation's requests, computed once."""

    def __init__(self, operation: Any) -> None:
        shape = operation.input_shape
        self.class_name = jackson.MODEL_PACKAGE + (shape.name if shape is not None else "")
        self.uri: list[tuple[str, str, Parser]] = []
        self.query: list[tuple[str, str, Parser, bool, bool]] = []
        self.headers: list[tuple[str, str, Parser, bool]] = []
        self.prefixed: list[tuple[str, str, Parser]] = []
        self.payload: tuple[str, str, Parser | None] | None = None
        self.body: _StructParser | None = None
        if shape is None:
            return
        payload_name = shape.serialization.get("payload")
        has_body_members = False
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            is_string = member.type_name == "string"
            if location == "uri":
                self.uri.append((name, wire, text_converter(member)))
            elif location == "querystring":
                if member.type_name == "map":
                    continue  # no Lambda operation binds a query map
                is_list = member.type_name == "list"
                self.query.append((name, wire, text_converter(member), is_list, is_string))
            elif location == "header":
                self.headers.append((name, wire.lower(), text_converter(member), is_string))
            elif location == "headers":
                self.prefixed.append((name, wire.lower(), text_converter(member.value)))
            elif location == "statusCode":
                continue
            elif name == payload_name:
                if member.type_name in ("blob", "string"):
                    self.payload = (name, member.type_name, None)
                else:
                    self.payload = (name, "json", json_parser(member))
            else:
                has_body_members = True
        if has_body_members and self.payload is None:
            self.body = _struct_parser(shape, body_only=True)

    def _reference(self, member: str) -> str:
        return f'(through reference chain: {self.class_name}["{member}"])'

    def parse(
        self,
        uri_params: Mapping[str, str],
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        try:
            member = ""
            for member, label, convert in self.uri:
                text = uri_params.get(label)
                if text is not None:
                    params[member] = convert(text)
            for member, wire, convert, is_list, is_string in self.query:
                values = query.get(wire)
                if not values:
                    continue
                if is_list:
                    params[member] = [convert(v) for v in values if is_string or v]
                elif is_string or values[0]:
                    params[member] = convert(values[0])
            for member, header, convert, is_string in self.headers:
                text = headers.get(header)
                if text is not None and (is_string or text):
                    params[member] = convert(text)
            for member, prefix, convert in self.prefixed:
                found = {
                    key[len(prefix) :]: convert(value)
                    for key, value in headers.items()
                    if key.startswith(prefix)
                }
                if found:
                    params[member] = found
        except ValueError as err:
            raise InvalidRequestContentException(f"{err} {self._reference(member)}") from None
        if self.payload is not None:
            name, kind, parse = self.payload
            if kind == "blob":
                if body:
                    params[name] = bytes(body)
            elif kind == "string":
                if body:
                    params[name] = bytes(body).decode("utf-8", "replace")
            elif parse is not None and body.strip():
                value = _decode_body(body)
                if value is not None:
                    params[name] = _bind(parse, value)
        elif self.body is not None and body and body.strip():
            value = _decode_body(body)
            if value is not None:
                params.update(_bind(self.body, value))
        return params


def _decode_body(body: bytes) -> Any:
    try:
        return jackson.loads(body)
    except jackson.JsonSyntaxError as err:
        raise InvalidRequestContentException(BODY_PREFIX + err.detail) from None


def _bind(parse: Parser, value: Any) -> Any:
    try:
        return parse(value)
    except BindError as err:
        raise InvalidRequestContentException(BODY_PREFIX + err.message()) from None
