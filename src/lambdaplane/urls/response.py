"""A function's result as the HTTP response of its URL, and the URL's own error answers.

Pure. As AWS documents for function URLs (payload format 2.0): a JSON object with a
``statusCode`` is a structured response (``statusCode``, ``headers``, ``cookies``,
``body``, ``isBase64Encoded``); any other JSON value is the body of a 200
``application/json`` response, a JSON string as its text, anything else compactly
re-serialised. Errors are AWS's front-door answers (status, ``x-amzn-ErrorType``, body).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json"
URLS_AUTH_DOC = "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


def _error(status: int, error_type: str | None, body: bytes) -> HttpResponse:
    headers = [("content-type", JSON_TYPE)]
    if error_type is not None:
        headers.append(("x-amzn-ErrorType", error_type))
    return HttpResponse(status, headers, body)


# The caller may not invoke this URL (auth type, signature or resource policy).
FORBIDDEN = _error(
    403,
    "AccessDeniedException",
    json.dumps(
        {
            "Message": "Forbidden. For troubleshooting Function URL authorization issues, "
            f"see: {URLS_AUTH_DOC}"
        },
        separators=(",", ":"),
    ).encode(),
)
# No URL has this id (or its function or alias is gone).
NO_SUCH_URL = _error(403, "AccessDeniedException", b'{"Message":null}')
# The function failed: an unhandled error, a timeout, a crash, an oversized response.
FUNCTION_ERROR = _error(502, None, b"Internal Server Error")
# No concurrency was left for the invocation.
THROTTLED = _error(429, "TooManyRequestsException", b'{"Message":"Rate Exceeded."}')
# The request (as the event) is over the 6 MB invocation payload limit.
TOO_LARGE = _error(413, "RequestEntityTooLargeException", b'{"Message":"Request Entity Too Large"}')


def from_result(payload: bytes) -> HttpResponse:
    """The HTTP response for a successful invocation's ``payload``."""
    try:
        value = json.loads(payload) if payload.strip() else None
    except ValueError:
        return FUNCTION_ERROR
    if isinstance(value, dict) and "statusCode" in value:
        return _structured(value)
    if payload.strip() == b"":
        return HttpResponse(200, [("content-type", JSON_TYPE)], b"")
    body = value if isinstance(value, str) else _compact(value)
    return HttpResponse(200, [("content-type", JSON_TYPE)], body.encode())


def _structured(value: dict[str, Any]) -> HttpResponse:
    status = _status(value.get("statusCode"))
    if status is None:
        return FUNCTION_ERROR
    headers: list[tuple[str, str]] = []
    raw_headers = value.get("headers")
    if raw_headers is None:
        raw_headers = {}
    if not isinstance(raw_headers, dict):
        return FUNCTION_ERROR
    for name, header_value in raw_headers.items():
        headers.append((str(name), _header_text(header_value)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", JSON_TYPE))
    cookies = value.get("cookies") or []
    if isinstance(cookies, list):
        headers.extend(("set-cookie", str(c)) for c in cookies)
    body = value.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = _compact(body).encode()
    if value.get("isBase64Encoded") is True and isinstance(body, str):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return FUNCTION_ERROR
    return HttpResponse(status, headers, data)


def _status(code: Any) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        status = code
    elif isinstance(code, str) and code.strip().isdigit():
        status = int(code.strip())
    else:
        return None
    return status if 100 <= status <= 599 else None


def _header_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_header_text(v) for v in value)
    return str(value)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# A streamed response whose first bytes are a JSON prelude (status, headers, cookies),
# then eight NUL bytes, then the body: what awslambda.HttpResponseStream.from() writes.
HTTP_INTEGRATION_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\x00" * 8


def split_prelude(buffered: bytes) -> tuple[HttpResponse, bytes] | None:
    """(status and headers from the prelude, the body bytes after it), or None while the
    prelude's end has not arrived yet. A prelude that is not a JSON object is empty."""
    end = buffered.find(PRELUDE_END)
    if end < 0:
        return None
    try:
        prelude = json.loads(buffered[:end]) if buffered[:end].strip() else {}
    except ValueError:
        prelude = {}
    if not isinstance(prelude, dict):
        prelude = {}
    status = _status(prelude.get("statusCode", 200)) or 200
    headers = [(str(k), _header_text(v)) for k, v in (prelude.get("headers") or {}).items()]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/octet-stream"))
    cookies = prelude.get("cookies") or []
    if isinstance(cookies, list):
        headers.extend(("set-cookie", str(c)) for c in cookies)
    return HttpResponse(status, headers), buffered[end + len(PRELUDE_END) :]
