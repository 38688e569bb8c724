"""JSON decoding that fails with the messages Lambda's (Java, Jackson) front end uses.

Lambda answers a body it cannot bind with ``InvalidRequestContentException`` and a
message ``"Could not parse request body into json: " + <Jackson's message>``. This
module produces the Jackson part; the prefix belongs to the caller (Invoke wraps a bad
*payload* once more: ``"...into json: Could not parse payload into json: <detail>"``).

Contract:

- ``loads(data)`` -> the decoded value, or ``JsonSyntaxError(detail)`` where detail
  approximates Jackson's wording and ends with Jackson's location line
  ``\\n at [Source: REDACTED (...); line: L, column: C]``. Strict JSON: no NaN/Infinity,
  no trailing content, UTF-8 only (a leading BOM is skipped).
- ``describe_json_error(data)`` -> that detail, or None if ``data`` is valid JSON.
- ``java_type(shape)`` -> how Jackson names the bound Java type of a botocore shape
  (``java.lang.Integer``, ``java.util.List<java.lang.String>``,
  ``com.amazonaws.services.lambda.model.Environment``…).
- ``mismatch(shape, value)`` -> ``"Cannot deserialize value of type `T` from …"``.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

MODEL_PACKAGE = "com.amazonaws.services.lambda.model."
_LOCATION = "\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); "
_EXPECTED_VALUE = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
_TOKEN = re.compile(r"[A-Za-z0-9_$+\-.]+")

_SCALAR_TYPES = {
    "string": "java.lang.String",
    "integer": "java.lang.Integer",
    "long": "java.lang.Long",
    "short": "java.lang.Short",
    "byte": "java.lang.Byte",
    "boolean": "java.lang.Boolean",
    "double": "java.lang.Double",
    "float": "java.lang.Float",
    "bigInteger": "java.math.BigInteger",
    "bigDecimal": "java.math.BigDecimal",
    "blob": "java.nio.ByteBuffer",
    "timestamp": "java.util.Date",
}


class JsonSyntaxError(ValueError):
    """The body is not well-formed JSON; ``detail`` is Jackson's wording."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _NonStandardToken(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonStandardToken(name)


def _char_desc(ch: str) -> str:
    code = ord(ch)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"(CTRL-CHAR, code {code})"
    if code > 255:
        return f"'{ch}' (code {code} / 0x{code:x})"
    return f"'{ch}' (code {code})"


def _location(line: int, column: int) -> str:
    return f"{_LOCATION}line: {line}, column: {column}]"


def _open_container(text: str, pos: int) -> str | None:
    """'Object' or 'Array' for the innermost container open at ``pos`` (None at root)."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("Object" if ch == "{" else "Array")
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _end_of_input(text: str, pos: int) -> str:
    container = _open_container(text, pos)
    if container is None:
        return "No content to map due to end-of-input"
    return f"Unexpected end-of-input: expected close marker for {container}"


def _syntax_detail(text: str, err: json.JSONDecodeError) -> str:
    pos, msg = err.pos, err.msg
    ch = text[pos] if pos < len(text) else None
    if msg.startswith("Expecting value"):
        if ch is None:
            detail = _end_of_input(text, pos)
        elif ch.isalpha():
            token = _TOKEN.match(text, pos)
            word = token.group(0) if token else ch
            detail = f"Unrecognized token '{word}': was expecting {_EXPECTED_VALUE}"
        else:
            detail = (
                f"Unexpected character ({_char_desc(ch)}): expected a valid value {_EXPECTED_VALUE}"
            )
    elif msg.startswith("Expecting property name"):
        detail = (
            _end_of_input(text, pos)
            if ch is None
            else f"Unexpected character ({_char_desc(ch)}): "
            "was expecting double-quote to start field name"
        )
    elif msg.startswith("Expecting ':'"):
        detail = (
            _end_of_input(text, pos)
            if ch is None
            else f"Unexpected character ({_char_desc(ch)}): "
            "was expecting a colon to separate field name and value"
        )
    elif msg.startswith("Expecting ','"):
        container = _open_container(text, pos) or "Object"
        detail = (
            _end_of_input(text, pos)
            if ch is None
            else f"Unexpected character ({_char_desc(ch)}): "
            f"was expecting comma to separate {container} entries"
        )
    elif msg.startswith("Unterminated string"):
        detail = "Unexpected end-of-input: was expecting closing quote for a string value"
        pos = len(text)
    elif msg.startswith("Invalid control character") and ch is not None:
        detail = (
            f"Illegal unquoted character ({_char_desc(ch)}): "
            "has to be escaped using backslash to be included in string value"
        )
    elif msg.startswith("Invalid \\u"):
        detail = "Unexpected character: expected a hex-digit for character escape sequence"
    elif msg.startswith("Invalid \\escape") and pos + 1 < len(text):
        detail = f"Unrecognized character escape {_char_desc(text[pos + 1])}"
    elif msg.startswith("Extra data") and ch is not None:
        detail = (
            f"Trailing token ({_char_desc(ch)}) found after value: not allowed as per "
            "`DeserializationFeature.FAIL_ON_TRAILING_TOKENS`"
        )
    else:
        detail = msg
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return detail + _location(line, column)


def _utf8_detail(data: bytes, err: UnicodeDecodeError) -> str:
    if err.reason == "invalid continuation byte" and err.end < len(data):
        offset, detail = err.end, f"Invalid UTF-8 middle byte 0x{data[err.end]:x}"
    elif err.reason == "unexpected end of data":
        offset, detail = len(data), "Unexpected end-of-input in a multi-byte UTF-8 character"
    else:
        offset, detail = err.start, f"Invalid UTF-8 start byte 0x{data[err.start]:x}"
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return detail + _location(line, column)


@functools.cache
def _decoder() -> json.JSONDecoder:
    """One decoder for every call: json.loads with keyword arguments builds a new one each
    time (2% of a warm invoke's server time in a profile)."""
    return json.JSONDecoder(parse_constant=_reject_constant)


def loads(data: bytes | str) -> Any:
    """Decode strict JSON or raise JsonSyntaxError with a Jackson-style detail."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise JsonSyntaxError(_utf8_detail(data, err)) from None
    else:
        text = data
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return _decoder().decode(text)
    except json.JSONDecodeError as err:
        raise JsonSyntaxError(_syntax_detail(text, err)) from None
    except _NonStandardToken as err:
        token = str(err)
        pos = max(text.find(token), 0)
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise JsonSyntaxError(
            f"Non-standard token '{token}': enable "
            "`JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow" + _location(line, column)
        ) from None
    except RecursionError:
        raise JsonSyntaxError(
            "Document nesting depth exceeds the maximum allowed" + _location(1, 1)
        ) from None


def describe_json_error(data: bytes | str) -> str | None:
    """Jackson's description of why ``data`` is not JSON, or None if it is."""
    try:
        loads(data)
    except JsonSyntaxError as err:
        return err.detail
    return None


def java_type(shape: Any) -> str:
    """Jackson's name for the Java type a botocore shape binds to."""
    type_name = shape.type_name
    if type_name == "structure":
        return MODEL_PACKAGE + str(shape.name)
    if type_name == "list":
        return f"java.util.List<{java_type(shape.member)}>"
    if type_name == "map":
        return f"java.util.Map<{java_type(shape.key)},{java_type(shape.value)}>"
    return _SCALAR_TYPES.get(type_name, "java.lang.Object")


def json_kind(value: Any) -> str:
    """Jackson's description of the JSON token a value came from."""
    if isinstance(value, bool):
        return f"Boolean value (token `JsonToken.VALUE_{'TRUE' if value else 'FALSE'}`)"
    if isinstance(value, int):
        return "Integer value (token `JsonToken.VALUE_NUMBER_INT`)"
    if isinstance(value, float):
        return "Floating-point value (token `JsonToken.VALUE_NUMBER_FLOAT`)"
    if isinstance(value, str):
        return "String value (token `JsonToken.VALUE_STRING`)"
    if isinstance(value, list):
        return "Array value (token `JsonToken.START_ARRAY`)"
    return "Object value (token `JsonToken.START_OBJECT`)"


def mismatch(shape: Any, value: Any, reason: str | None = None) -> str:
    """``Cannot deserialize value of type `T` from …`` for a value of the wrong JSON type."""
    target = java_type(shape)
    if isinstance(value, str) and shape.type_name not in ("structure", "list", "map"):
        shown = value if len(value) <= 500 else value[:500] + "[truncated]"
        why = reason or f"not a valid `{target}` value"
        return f'Cannot deserialize value of type `{target}` from String "{shown}": {why}'
    return f"Cannot deserialize value of type `{target}` from {json_kind(value)}"
