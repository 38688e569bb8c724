"""Serving function URLs: route a request to its URL config, authorise, invoke, answer.

A request reaches a URL by its Host (``<url-id>.lambda-url.<region>.localhost[:port]``,
which resolves to loopback) or by the path form ``/lambda-url/<url-id>/...`` for clients
that cannot set Host. Per request: the config comes from a cache of at most a second,
the resource policy check from the permission service's cache, then one invoke
(or a streamed one for ``RESPONSE_STREAM``). Nothing else touches the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambdaplane import ids
from lambdaplane.asgi import Receive, Scope, Send, read_body
from lambdaplane.auth import KeyStore, SignedRequest, verify
from lambdaplane.auth.keys import Identity
from lambdaplane.errors import LambdaError
from lambdaplane.invoke.service import MAX_SYNC_PAYLOAD_BYTES, InvokeService
from lambdaplane.service.permissions import PermissionService
from lambdaplane.service.url_configs import UrlConfigService
from lambdaplane.store.functions import LATEST
from lambdaplane.store.url_configs import StoredUrlConfig
from lambdaplane.urls import cors, response
from lambdaplane.urls.event import IamCaller, UrlRequest, build_event
from lambdaplane.urls.response import HttpResponse

log = logging.getLogger("lambdaplane")

PATH_PREFIX = "/lambda-url/"
INVOKE_ACTION = "lambda:InvokeFunctionUrl"
LAMBDA_SERVICE = frozenset({"lambda"})
_URL_HOST = re.compile(r"([a-z0-9]{32})\.lambda-url\.([a-z0-9-]+)\.localhost\.?(?::\d+)?")
_URL_ID = re.compile(r"[a-z0-9]{32}")


@dataclass(frozen=True)
class StreamedResponse:
    """A response whose body is still arriving (``RESPONSE_STREAM``)."""

    status: int
    headers: list[tuple[str, str]]
    first: bytes
    rest: AsyncIterator[bytes]


@dataclass(frozen=True)
class UrlTarget:
    """A request addressed to a function URL: the url id and the path the function sees."""

    url_id: str
    raw_path: str
    region: str | None  # from the Host; None for the path form


def url_target(scope: Scope) -> UrlTarget | None:
    """The URL a request is addressed to, if any (cheap for every other request)."""
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    if raw_path.startswith(PATH_PREFIX):
        rest = raw_path[len(PATH_PREFIX) :]
        url_id, slash, path = rest.partition("/")
        if _URL_ID.fullmatch(url_id):
            return UrlTarget(url_id, slash + path or "/", None)
        return None
    for name, value in scope["headers"]:
        if name == b"host":
            if b".lambda-url." not in value:
                return None
            match = _URL_HOST.fullmatch(value.decode("latin-1").lower())
            if match is None:
                return None
            return UrlTarget(match.group(1), raw_path or "/", match.group(2))
    return None


class FunctionUrls:
    """The function URL front door (an ASGI handler for requests ``url_target`` matched)."""

    def __init__(
        self,
        configs: UrlConfigService,
        invoke: InvokeService,
        keys: KeyStore,
        *,
        region: str,
        account_id: str,
        permissions: PermissionService | None = None,
        any_credentials: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._configs = configs
        self._invoke = invoke
        self._keys = keys
        self._region = region
        self._account_id = account_id
        self._permissions = permissions
        self._any_credentials = any_credentials
        self._clock = clock

    async def serve(self, scope: Scope, receive: Receive, send: Send, target: UrlTarget) -> None:
        request_id = ids.request_id()
        try:
            result = await self._handle(scope, receive, target, request_id)
        except Exception:
            log.exception("unhandled error in function URL request %s", request_id)
            result = response.FUNCTION_ERROR
        if isinstance(result, StreamedResponse):
            await _send_stream(send, result, request_id)
        else:
            await _send(send, result, request_id, scope["method"] == "HEAD")

    async def _handle(
        self, scope: Scope, receive: Receive, target: UrlTarget, request_id: str
    ) -> HttpResponse | StreamedResponse:
        config = self._configs.resolve(target.url_id)
        if config is None or (target.region is not None and target.region != self._region):
            return response.NO_SUCH_URL
        method: str = scope["method"]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        lowered = {k.lower(): v for k, v in headers}
        origin = lowered.get("origin")
        if config.cors and cors.is_preflight(method, lowered):
            return HttpResponse(200, cors.preflight_headers(config.cors, origin))
        body = await read_body(receive, MAX_SYNC_PAYLOAD_BYTES)
        if body is None:
            return response.TOO_LARGE
        raw_query = scope.get("query_string", b"").decode("latin-1")
        caller: IamCaller | None = None
        if config.auth_type == "AWS_IAM":
            identity = self._signer(scope, method, raw_query, lowered, body)
            if identity is None or not self._iam_allowed(config, identity):
                return response.FORBIDDEN
            caller = IamCaller(
                identity.access_key_id, identity.account_id, identity.arn, identity.org_id
            )
        elif not self._public(config):
            return response.FORBIDDEN
        client = scope.get("client") or ("127.0.0.1", 0)
        server = scope.get("server") or ("127.0.0.1", 80)
        request = UrlRequest(
            method=method,
            raw_path=target.raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            source_ip=str(client[0]),
            protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        )
        now = self._clock()
        trace_header = lowered.get("x-amzn-trace-id") or new_trace_header(now)
        forwarded = [
            ("x-amzn-trace-id", trace_header),
            ("x-forwarded-for", str(client[0])),
            ("x-forwarded-port", str(server[1])),
            ("x-forwarded-proto", str(scope.get("scheme", "http"))),
        ]
        if "x-amzn-trace-id" in lowered:
            forwarded = forwarded[1:]  # the caller's own stays where it was
        event = build_event(
            request,
            url_id=config.url_id,
            domain_name=f"{config.url_id}.lambda-url.{self._region}.localhost",
            request_id=request_id,
            now=now,
            owner_account=self._account_id,
            caller=caller,
            extra_headers=forwarded,
        )
        result: HttpResponse | StreamedResponse
        if config.invoke_mode == "RESPONSE_STREAM":
            result = await self._stream(config, event, request_id, trace_header)
        else:
            result = await self._call(config, event, request_id, trace_header)
        headers = cors.with_cors(result.headers, config.cors, origin)
        if isinstance(result, StreamedResponse):
            return StreamedResponse(result.status, headers, result.first, result.rest)
        return HttpResponse(result.status, headers, result.body)

    async def _call(
        self,
        config: StoredUrlConfig,
        event: dict[str, Any],
        request_id: str,
        trace_header: str | None,
    ) -> HttpResponse:
        qualifier = None if config.qualifier == LATEST else config.qualifier
        payload = json.dumps(event, separators=(",", ":")).encode()
        try:
            outcome = await self._invoke.invoke(
                config.function_name,
                qualifier,
                payload,
                request_id=request_id,
                trace_header=trace_header,
            )
        except LambdaError as err:
            return _refusal(err)
        if outcome.function_error is not None:
            return response.FUNCTION_ERROR
        return response.from_result(outcome.payload)

    async def _stream(
        self,
        config: StoredUrlConfig,
        event: dict[str, Any],
        request_id: str,
        trace_header: str | None,
    ) -> HttpResponse | StreamedResponse:
        """Invoke with a streamed response; the status and headers come from the Node
        prelude when the runtime declares an HTTP integration response, else 200 and
        the declared content type with the body as it is."""
        qualifier = None if config.qualifier == LATEST else config.qualifier
        payload = json.dumps(event, separators=(",", ":")).encode()
        try:
            streamed = await self._invoke.invoke_stream(
                config.function_name,
                qualifier,
                payload,
                request_id=request_id,
                trace_header=trace_header,
            )
        except LambdaError as err:
            return _refusal(err)
        chunks = streamed.chunks()
        head = HttpResponse(200, [("content-type", streamed.content_type)])
        first = b""
        integration = streamed.content_type.split(";")[0].strip() == response.HTTP_INTEGRATION_TYPE
        async for chunk in chunks:
            first += chunk
            if not integration:
                break
            split = response.split_prelude(first)
            if split is not None:
                head, first = split
                break
        else:  # the stream ended before any body (or before the prelude's end)
            if streamed.error_type is not None and not first:
                return response.FUNCTION_ERROR
            if integration:
                split = response.split_prelude(first + response.PRELUDE_END)
                if split is not None:
                    head, first = split
        return StreamedResponse(head.status, head.headers, first, chunks)

    # -- auth --------------------------------------------------------------------------

    def _public(self, config: StoredUrlConfig) -> bool:
        """An ``NONE`` URL needs a statement granting InvokeFunctionUrl to ``*``."""
        if self._permissions is None:
            return False
        return self._permissions.allows(
            config.function_name,
            None if config.qualifier == LATEST else config.qualifier,
            action=INVOKE_ACTION,
            caller=None,
            url_auth_type="NONE",
        )

    def _signer(
        self, scope: Scope, method: str, raw_query: str, headers: dict[str, str], body: bytes
    ) -> Identity | None:
        """The identity of a valid SigV4 signature (service ``lambda``), else None."""
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        try:
            access_key = verify(
                SignedRequest(
                    method=method,
                    raw_path=raw_path,
                    raw_query=raw_query,
                    headers=headers,
                    body_sha256=hashlib.sha256(body).hexdigest(),
                ),
                self._keys.secret_for,
                datetime.now(UTC),
                region=self._region,
                services=LAMBDA_SERVICE,
                any_credentials=self._any_credentials,
            )
        except LambdaError:
            return None
        identity = self._keys.identity_for(access_key)
        if identity is None and self._any_credentials:  # any key stands for the account
            identity = Identity(
                access_key, self._account_id, f"arn:aws:iam::{self._account_id}:root"
            )
        return identity

    def _iam_allowed(self, config: StoredUrlConfig, identity: Identity) -> bool:
        """The account's own keys may call; others need the resource policy's grant."""
        if identity.account_id == self._account_id:
            return True
        if self._permissions is None:
            return False
        return self._permissions.allows(
            config.function_name,
            None if config.qualifier == LATEST else config.qualifier,
            action=INVOKE_ACTION,
            caller=identity,
            url_auth_type="AWS_IAM",
        )


def new_trace_header(now: float) -> str:
    """A fresh X-Ray trace header, as AWS's front door adds to a request without one."""
    return f"Root=1-{int(now):08x}-{ids.random_bits(96):024x}"


def _refusal(err: LambdaError) -> HttpResponse:
    """The URL's answer when the invocation itself was refused."""
    if err.code == "TooManyRequestsException":
        return response.THROTTLED
    if err.code in ("RequestTooLargeException", "RequestEntityTooLargeException"):
        return response.TOO_LARGE
    if err.code == "ResourceNotFoundException":  # the alias or function went meanwhile
        return response.FORBIDDEN
    return response.FUNCTION_ERROR


async def _send_stream(send: Send, result: StreamedResponse, request_id: str) -> None:
    """Start the response, then pass each chunk on as it comes (chunked encoding)."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in result.headers]
    headers.append((b"x-amzn-requestid", request_id.encode()))
    await send({"type": "http.response.start", "status": result.status, "headers": headers})
    if result.first:
        await send({"type": "http.response.body", "body": result.first, "more_body": True})
    async for chunk in result.rest:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _send(send: Send, result: HttpResponse, request_id: str, head: bool) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in result.headers]
    headers.append((b"x-amzn-requestid", request_id.encode()))
    headers.append((b"content-length", str(len(result.body)).encode()))
    await send({"type": "http.response.start", "status": result.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else result.body})


class UrlListener:
    """The ASGI app of the dedicated ``--url-port`` listener: function URLs only."""

    def __init__(self, urls: FunctionUrls) -> None:
        self._urls = urls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan here: the API listener's app owns start and stop
        target = url_target(scope)
        if target is None:
            await _send(send, response.NO_SUCH_URL, ids.request_id(), False)
            return
        await self._urls.serve(scope, receive, send, target)
