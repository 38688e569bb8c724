"""CORS decisions for function URLs (pure)."""

from __future__ import annotations

from lambdaplane.urls.cors import (
    allowed_origin,
    is_preflight,
    preflight_headers,
    response_headers,
    with_cors,
)

CORS = {
    "AllowOrigins": ["https://app.example"],
    "AllowMethods": ["get", "POST"],
    "AllowHeaders": ["x-custom", "content-type"],
    "ExposeHeaders": ["x-served-by"],
    "MaxAge": 600,
    "AllowCredentials": True,
}


def test_preflight_recognised() -> None:
    assert is_preflight("OPTIONS", {"origin": "o", "access-control-request-method": "GET"})
    assert not is_preflight("OPTIONS", {"origin": "o"})
    assert not is_preflight("GET", {"origin": "o", "access-control-request-method": "GET"})


def test_origin_matching() -> None:
    assert allowed_origin(CORS, "https://app.example") == "https://app.example"
    assert allowed_origin(CORS, "https://APP.example/") == "https://APP.example/"
    assert allowed_origin(CORS, "https://evil.example") is None
    assert allowed_origin(CORS, None) is None
    assert allowed_origin({"AllowOrigins": ["*"]}, "https://x") == "*"
    # A wildcard with credentials names the origin: browsers refuse "*" with credentials.
    assert (
        allowed_origin({"AllowOrigins": ["*"], "AllowCredentials": True}, "https://x")
        == "https://x"
    )
    assert allowed_origin({}, "https://x") is None


def test_preflight_headers() -> None:
    assert dict(preflight_headers(CORS, "https://app.example")) == {
        "access-control-allow-origin": "https://app.example",
        "access-control-allow-methods": "GET,POST",
        "access-control-allow-headers": "x-custom,content-type",
        "access-control-allow-credentials": "true",
        "access-control-max-age": "600",
        "vary": "Origin",
    }
    assert preflight_headers(CORS, "https://evil.example") == []
    minimal = preflight_headers({"AllowOrigins": ["*"]}, "https://x")
    assert minimal == [("access-control-allow-origin", "*")]


def test_actual_response_headers_replace_the_functions() -> None:
    assert dict(response_headers(CORS, "https://app.example")) == {
        "access-control-allow-origin": "https://app.example",
        "access-control-expose-headers": "x-served-by",
        "access-control-allow-credentials": "true",
        "vary": "Origin",
    }
    from_function = [("content-type", "text/plain"), ("Access-Control-Allow-Origin", "*")]
    merged = with_cors(from_function, CORS, "https://app.example")
    assert ("Access-Control-Allow-Origin", "*") not in merged
    assert ("access-control-allow-origin", "https://app.example") in merged
    assert ("content-type", "text/plain") in merged
    assert with_cors(from_function, None, "https://app.example") == from_function
    assert with_cors(from_function, CORS, "https://evil.example") == from_function
