"""AWS's JSON 1.1 protocol for the Logs API, driven by botocore's ``logs`` model.

Contract:

- ``load_logs_model()``: the ``logs`` ``ServiceModel``, loaded once.
- ``parse_request(op, body)``: the JSON body as the input dict; a body that is not a
  JSON object, or a member of the wrong JSON type, raises ``SerializationException``.
  Members the model does not know are ignored, as AWS's JSON services do.
- ``validate(op, params)``: the model's constraints with Coral's wording, raised as
  ``InvalidParameterException`` ("1 validation error detected: ...").
- ``serialize_response(output)`` / ``render_error(err)``: (status, headers, body);
  errors are ``{"__type": code, "message": ...}`` with the error's status (400 for the
  Logs errors; 403 for signature errors).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from botocore.loaders import Loader
from botocore.model import ServiceModel

from lambdaplane.api.validation import compile_validator
from lambdaplane.errors import LambdaError, ValidationException
from lambdaplane.logsapi.errors import InvalidParameterException, SerializationException

Headers = list[tuple[bytes, bytes]]
SERVICE_NAME = "logs"
CONTENT_TYPE = (b"content-type", b"application/x-amz-json-1.1")


@functools.cache
def load_logs_model() -> Any:
    """The CloudWatch Logs ``ServiceModel`` (typed ``Any``: botocore ships no stubs)."""
    return ServiceModel(Loader().load_service_model(SERVICE_NAME, "service-2"), SERVICE_NAME)


def parse_request(op: Any, body: bytes) -> dict[str, Any]:
    """The operation's input members from a JSON 1.1 request body."""
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except ValueError as exc:
        raise SerializationException("Unable to parse the request body as JSON.") from exc
    if not isinstance(params, dict):
        raise SerializationException("The request body must be a JSON object.")
    shape = op.input_shape
    if shape is None:
        return {}
    known = {name: params[name] for name in shape.members if name in params}
    _check_types(known, shape, "")
    return known


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (int, float),
    "float": (int, float),
    "list": (list,),
    "map": (dict,),
    "structure": (dict,),
    "blob": (str,),
    "timestamp": (int, float, str),
}


def _check_types(value: Any, shape: Any, path: str) -> None:
    if value is None:
        return
    kind = shape.type_name
    expected = _JSON_TYPES.get(kind)
    wrong = expected is not None and not isinstance(value, expected)
    if kind in ("integer", "long", "double", "float") and isinstance(value, bool):
        wrong = True
    if wrong:
        raise SerializationException(
            f"Unexpected value type in payload at '{path or shape.name}': expected {kind}"
        )
    if kind == "structure":
        for name, member in shape.members.items():
            if name in value:
                _check_types(value[name], member, f"{path}.{name}" if path else name)
    elif kind == "list":
        for item in value:
            _check_types(item, shape.member, path)
    elif kind == "map":
        for item in value.values():
            _check_types(item, shape.value, path)


def validate(op: Any, params: Mapping[str, Any]) -> None:
    """Raise InvalidParameterException listing every constraint violation."""
    violations = compile_validator(op).violations(params)
    if violations:
        message = ValidationException.from_violations(violations).message
        raise InvalidParameterException(message)


def serialize_response(output: Mapping[str, Any]) -> tuple[int, Headers, bytes]:
    return 200, [CONTENT_TYPE], json.dumps(output, separators=(",", ":")).encode()


def render_error(err: LambdaError) -> tuple[int, Headers, bytes]:
    body: dict[str, Any] = {"__type": err.code}
    if err.message is not None:
        body["message"] = err.message
    return err.status, [CONTENT_TYPE], json.dumps(body, separators=(",", ":")).encode()
