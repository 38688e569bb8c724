"""The rest-json protocol of the Lambda API, as four calls the server makes per request.

Contract:

- ``parse_request(op, uri_params, query, headers, body)`` -> the input dict keyed by
  member names exactly as boto3 takes them (``FunctionName``, ``Code`` ->
  ``{"ZipFile": b"..."}``, Invoke's ``Payload`` -> raw body bytes…). ``headers`` keys
  must be lower-case; ``query`` is ``parse_qs``-style (name -> list of values). Bad JSON,
  unknown fields and wrongly typed values raise ``InvalidRequestContentException``
  (see ``parsing``).
- ``validate(op, params, overrides=None, skip_enum=frozenset())`` raises
  ``ValidationException.from_violations([...])`` listing every constraint violation
  (see ``validation``); returns None when the input is valid.
- ``serialize_response(op, output)`` -> ``(status, headers, body)`` (see
  ``serialization``); ``output["__status__"]`` overrides the status.
- ``render_error(err, request_id)`` -> ``(status, headers, body)`` for any
  ``LambdaError``; the one place errors become responses.

Per-operation work (walking shapes, compiling regexes and converters) happens once, on
an operation's first request, in a ``CompiledOperation`` cached by operation identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambdaplane.api.parsing import InputPlan
from lambdaplane.api.serialization import Headers, OutputPlan
from lambdaplane.api.serialization import render_error as _render_error
from lambdaplane.api.validation import Overrides, compile_validator
from lambdaplane.errors import LambdaError, ValidationException

__all__ = [
    "CompiledOperation",
    "compiled",
    "parse_request",
    "render_error",
    "serialize_response",
    "validate",
]


class CompiledOperation:
    """An operation's request parser and response serialiser, built once."""

    __slots__ = ("input", "name", "operation", "output")

    def __init__(self, operation: Any) -> None:
        self.operation = operation
        self.name: str = operation.name
        self.input = InputPlan(operation)
        self.output = OutputPlan(operation)


_COMPILED: dict[Any, CompiledOperation] = {}


def compiled(operation: Any) -> CompiledOperation:
    """The cached CompiledOperation of a botocore ``OperationModel``."""
    found = _COMPILED.get(operation)
    if found is None:
        found = _COMPILED[operation] = CompiledOperation(operation)
    return found


def parse_request(
    op: Any,
    uri_params: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The operation's input, as boto3 would have passed it, from the HTTP request."""
    return compiled(op).input.parse(uri_params, query, headers, body)


def validate(
    op: Any,
    params: Mapping[str, Any],
    overrides: Overrides | None = None,
    skip_enum: frozenset[str] = frozenset(),
) -> None:
    """Raise ValidationException with every constraint violation in ``params``."""
    violations = compile_validator(op, overrides, skip_enum).violations(params)
    if violations:
        raise ValidationException.from_violations(violations)


def serialize_response(op: Any, output: Mapping[str, Any]) -> tuple[int, Headers, bytes]:
    """(status, headers, body) for an operation's output dict."""
    return compiled(op).output.serialize(output)


def render_error(err: LambdaError, request_id: str) -> tuple[int, Headers, bytes]:
    """(status, headers, body) for an error, as AWS renders it."""
    return _render_error(err, request_id)
