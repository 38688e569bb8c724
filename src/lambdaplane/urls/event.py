"""An HTTP request to a function URL, as the payload-format-2.0 event the function sees.

Pure: the request, the URL's identity, the caller and the clock come in; a dict goes
out. Following AWS: header names are lowercased and repeated headers joined with
commas; the ``cookie`` header moves to ``cookies``; repeated query keys are joined with
commas in ``queryStringParameters``; a body is passed as text when its content type is
textual and base64-encoded otherwise; empty parts are left out.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

ROUTE_KEY = "$default"

# Content types whose bodies reach the function as text (parameters ignored).
_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/xml",
        "application/xhtml+xml",
        "application/yaml",
        "application/x-yaml",
        "application/graphql",
    }
)


@dataclass(frozen=True)
class UrlRequest:
    """What arrived: the method, the path and query as sent, headers in order, the body."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


@dataclass(frozen=True)
class IamCaller:
    """The SigV4 signer of a request to an ``AWS_IAM`` URL."""

    access_key_id: str
    account_id: str
    arn: str
    org_id: str | None = None

    @property
    def user_id(self) -> str:
        """A stable unique id for the principal: the account for a root, else AIDA…."""
        if self.arn.endswith(":root"):
            return self.account_id
        digest = hashlib.sha256(self.arn.encode()).hexdigest().upper()
        return "AIDA" + "".join(c for c in digest if c.isalnum())[:17]


def is_text(content_type: str | None) -> bool:
    """Whether a body of this content type is passed as text (else base64)."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


def joined_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lowercased names; a repeated header's values joined with commas, in order."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def query_parameters(raw_query: str) -> dict[str, str]:
    """Decoded query parameters; a repeated key's values joined with commas."""
    params: dict[str, str] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        name, decoded = unquote_plus(key), unquote_plus(value)
        params[name] = f"{params[name]},{decoded}" if name in params else decoded
    return params


def request_time(epoch: float) -> str:
    """``12/Mar/2020:19:03:58 +0000``: the event's ``requestContext.time``."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch))


def build_event(
    request: UrlRequest,
    *,
    url_id: str,
    domain_name: str,
    request_id: str,
    now: float,
    owner_account: str,
    caller: IamCaller | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The event for ``request`` to the URL ``url_id``; ``caller`` is set for AWS_IAM URLs.

    ``requestContext.accountId`` is the function owner's account for a signed request
    and ``anonymous`` otherwise. ``extra_headers`` are those the front door adds
    (``x-forwarded-*``, the trace id).
    """
    all_headers = [*request.headers, *extra_headers]
    headers = joined_headers(h for h in all_headers if h[0].lower() != "cookie")
    cookies = [
        c.strip()
        for name, value in all_headers
        if name.lower() == "cookie"
        for c in value.split(";")
    ]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": ROUTE_KEY,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if any(cookies):
        event["cookies"] = [c for c in cookies if c]
    event["headers"] = headers
    if request.raw_query:
        event["queryStringParameters"] = query_parameters(request.raw_query)
    context: dict[str, Any] = {
        "accountId": owner_account if caller is not None else "anonymous",
        "apiId": url_id,
    }
    if caller is not None:
        context["authorizer"] = {
            "iam": {
                "accessKey": caller.access_key_id,
                "accountId": caller.account_id,
                "callerId": caller.user_id,
                "cognitoIdentity": None,
                "principalOrgId": caller.org_id,
                "userArn": caller.arn,
                "userId": caller.user_id,
            }
        }
    context.update(
        {
            "domainName": domain_name,
            "domainPrefix": url_id,
            "http": {
                "method": request.method,
                "path": request.raw_path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": ROUTE_KEY,
            "stage": ROUTE_KEY,
            "time": request_time(now),
            "timeEpoch": int(now * 1000),
        }
    )
    event["requestContext"] = context
    if request.body:
        text = _as_text(request.body, headers.get("content-type"))
        if text is not None:
            event["body"] = text
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    event["pathParameters"] = None
    event["isBase64Encoded"] = event.get("isBase64Encoded", False)
    event["stageVariables"] = None
    return event


def _as_text(body: bytes, content_type: str | None) -> str | None:
    if not is_text(content_type):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None
