"""CORS for function URLs, from the URL config's ``Cors``: pure header decisions.

With a ``Cors`` config, the platform answers a preflight (``OPTIONS`` carrying
``Origin`` and ``Access-Control-Request-Method``) itself, without invoking the
function: 200, with the allow headers when the origin is allowed and none when it is
not (the browser then blocks the call). Actual responses to an allowed origin carry
``Access-Control-Allow-Origin``, ``-Expose-Headers`` and ``-Allow-Credentials``; the
config's CORS headers replace any the function set. Without a config, nothing is
added and an ``OPTIONS`` request goes to the function like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_CORS_PREFIX = "access-control-"


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """``headers``: lowercased names."""
    return (
        method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers
    )


def allowed_origin(cors: Mapping[str, Any], origin: str | None) -> str | None:
    """The value of ``Access-Control-Allow-Origin`` for ``origin``, or None if not allowed."""
    if not origin:
        return None
    origins = [str(o) for o in cors.get("AllowOrigins") or []]
    if "*" in origins:
        # A credentialed request may not be answered with the wildcard: name the origin.
        return origin if cors.get("AllowCredentials") else "*"
    wanted = origin.rstrip("/").lower()
    for allowed in origins:
        if allowed.rstrip("/").lower() == wanted:
            return origin
    return None


def preflight_headers(cors: Mapping[str, Any], origin: str | None) -> list[tuple[str, str]]:
    """The headers of the platform's answer to a preflight from ``origin``."""
    allow = allowed_origin(cors, origin)
    if allow is None:
        return []
    headers = [("access-control-allow-origin", allow)]
    methods = [str(m).upper() for m in cors.get("AllowMethods") or []]
    if methods:
        headers.append(("access-control-allow-methods", ",".join(methods)))
    allow_headers = [str(h) for h in cors.get("AllowHeaders") or []]
    if allow_headers:
        headers.append(("access-control-allow-headers", ",".join(allow_headers)))
    if cors.get("AllowCredentials"):
        headers.append(("access-control-allow-credentials", "true"))
    if cors.get("MaxAge"):
        headers.append(("access-control-max-age", str(int(cors["MaxAge"]))))
    if allow != "*":
        headers.append(("vary", "Origin"))
    return headers


def response_headers(cors: Mapping[str, Any], origin: str | None) -> list[tuple[str, str]]:
    """The CORS headers added to an actual response to ``origin``."""
    allow = allowed_origin(cors, origin)
    if allow is None:
        return []
    headers = [("access-control-allow-origin", allow)]
    expose = [str(h) for h in cors.get("ExposeHeaders") or []]
    if expose:
        headers.append(("access-control-expose-headers", ",".join(expose)))
    if cors.get("AllowCredentials"):
        headers.append(("access-control-allow-credentials", "true"))
    if allow != "*":
        headers.append(("vary", "Origin"))
    return headers


def with_cors(
    headers: list[tuple[str, str]], cors: Mapping[str, Any] | None, origin: str | None
) -> list[tuple[str, str]]:
    """``headers`` of a function's response, with the config's CORS headers in force."""
    if not cors:
        return headers
    added = response_headers(cors, origin)
    if not added:
        return headers
    kept = [(k, v) for k, v in headers if not k.lower().startswith(_CORS_PREFIX)]
    return [*kept, *added]
