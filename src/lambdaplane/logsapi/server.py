"""The Logs API's request path on the shared endpoint.

A request whose ``X-Amz-Target`` starts with ``Logs_20140328.`` (see ``logs_target``)
goes: read body → SigV4 with service ``logs`` → operation from the target → parse +
validate → handler (in a worker thread) → JSON. ``LogsApi.handle`` never raises: any
error becomes AWS's JSON error; the app adds ``x-amzn-RequestId``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from lambdaplane.asgi import Receive, read_body
from lambdaplane.auth import KeyLookup, SignedRequest, verify
from lambdaplane.errors import LambdaError, NotImplementedYet, RequestEntityTooLargeException
from lambdaplane.logsapi.errors import UnknownOperationException
from lambdaplane.logsapi.handlers import HANDLERS
from lambdaplane.logsapi.protocol import (
    Headers,
    load_logs_model,
    parse_request,
    render_error,
    serialize_response,
    validate,
)
from lambdaplane.logsapi.service import LogsService

TARGET_PREFIX = "Logs_20140328."
MAX_REQUEST_BYTES = 2 * 1024 * 1024
SERVICES = frozenset({"logs"})
_TARGET_HEADER = b"x-amz-target"
_PREFIX_BYTES = TARGET_PREFIX.encode()

log = logging.getLogger("lambdaplane.logsapi")


def logs_target(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The operation named by a Logs ``X-Amz-Target`` header, or None if there is none."""
    for name, value in headers:
        if name == _TARGET_HEADER and value.startswith(_PREFIX_BYTES):
            return value[len(_PREFIX_BYTES) :].decode("latin-1")
    return None


class LogsApi:
    def __init__(
        self,
        service: LogsService,
        secret_for: KeyLookup,
        *,
        region: str,
        any_credentials: bool = False,
    ) -> None:
        self._service = service
        self._secret_for = secret_for
        self._region = region
        self._any_credentials = any_credentials
        self._model = load_logs_model()
        self._operations = frozenset(self._model.operation_names)

    async def handle(
        self, scope: MutableMapping[str, Any], receive: Receive, operation: str, request_id: str
    ) -> tuple[int, Headers, bytes]:
        try:
            return await self._call(scope, receive, operation)
        except LambdaError as err:
            return render_error(err)
        except Exception:
            log.exception("unhandled error in Logs request %s", request_id)
            return render_error(LambdaError("Internal error"))

    async def _call(
        self, scope: MutableMapping[str, Any], receive: Receive, operation: str
    ) -> tuple[int, Headers, bytes]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = await _read_body(receive)
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        verify(
            SignedRequest(
                method=scope["method"],
                raw_path=raw_path,
                raw_query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body_sha256=hashlib.sha256(body).hexdigest(),
            ),
            self._secret_for,
            datetime.now(UTC),
            region=self._region,
            services=SERVICES,
            any_credentials=self._any_credentials,
        )
        if operation not in self._operations:
            raise UnknownOperationException(f"Unknown operation {TARGET_PREFIX}{operation}")
        handler = HANDLERS.get(operation)
        if handler is None:
            raise NotImplementedYet(
                f"lambdaplane does not implement the {operation} operation yet."
            )
        op = self._model.operation_model(operation)
        params = parse_request(op, body)
        validate(op, params)
        output = await asyncio.to_thread(handler, self._service, params)
        return serialize_response(output)


async def _read_body(receive: Receive) -> bytes:
    body = await read_body(receive, MAX_REQUEST_BYTES)
    if body is None:
        raise RequestEntityTooLargeException(
            f"Request must be smaller than {MAX_REQUEST_BYTES} bytes"
        )
    return body
