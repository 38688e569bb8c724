"""The payload-format-2.0 event built from a request (pure)."""

from __future__ import annotations

import base64

from lambdaplane.urls.event import (
    IamCaller,
    UrlRequest,
    build_event,
    is_text,
    joined_headers,
    query_parameters,
    request_time,
)

URL_ID = "a" * 32
DOMAIN = f"{URL_ID}.lambda-url.us-east-1.localhost"


def event_for(request: UrlRequest, caller: IamCaller | None = None) -> dict:  # type: ignore[type-arg]
    return build_event(
        request,
        url_id=URL_ID,
        domain_name=DOMAIN,
        request_id="rid",
        now=1583348638.390,
        owner_account="123456789012",
        caller=caller,
    )


def request(**kw: object) -> UrlRequest:
    values: dict[str, object] = {
        "method": "POST",
        "raw_path": "/my/path",
        "raw_query": "",
        "headers": [],
        "body": b"",
        "source_ip": "10.0.0.1",
    }
    values.update(kw)
    return UrlRequest(**values)  # type: ignore[arg-type]


def test_the_documented_example() -> None:
    event = event_for(
        request(
            raw_query="parameter1=value1&parameter1=value2&parameter2=value",
            headers=[
                ("Header1", "value1"),
                ("header2", "value1"),
                ("HEADER2", "value2"),
                ("Cookie", "cookie1; cookie2"),
                ("User-Agent", "agent"),
                ("Content-Type", "text/plain"),
            ],
            body=b"Hello from client!",
        )
    )
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert (event["rawPath"], event["rawQueryString"]) == (
        "/my/path",
        "parameter1=value1&parameter1=value2&parameter2=value",
    )
    assert event["cookies"] == ["cookie1", "cookie2"]
    assert event["headers"] == {
        "header1": "value1",
        "header2": "value1,value2",
        "user-agent": "agent",
        "content-type": "text/plain",
    }
    assert event["queryStringParameters"] == {"parameter1": "value1,value2", "parameter2": "value"}
    ctx = event["requestContext"]
    assert ctx == {
        "accountId": "anonymous",
        "apiId": URL_ID,
        "domainName": DOMAIN,
        "domainPrefix": URL_ID,
        "http": {
            "method": "POST",
            "path": "/my/path",
            "protocol": "HTTP/1.1",
            "sourceIp": "10.0.0.1",
            "userAgent": "agent",
        },
        "requestId": "rid",
        "routeKey": "$default",
        "stage": "$default",
        "time": "04/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1583348638390,
    }
    assert (event["body"], event["isBase64Encoded"]) == ("Hello from client!", False)
    assert event["pathParameters"] is None and event["stageVariables"] is None


def test_empty_parts_are_left_out() -> None:
    event = event_for(request(method="GET"))
    assert "cookies" not in event and "queryStringParameters" not in event
    assert "body" not in event and event["isBase64Encoded"] is False
    assert event["headers"] == {}


def test_binary_and_undeclared_bodies_are_base64() -> None:
    data = bytes(range(256))
    for content_type in ("application/octet-stream", "multipart/form-data; boundary=x", None):
        headers = [("content-type", content_type)] if content_type else []
        event = event_for(request(headers=headers, body=data))
        assert event["isBase64Encoded"] is True
        assert base64.b64decode(event["body"]) == data
    invalid_utf8 = event_for(request(headers=[("content-type", "text/plain")], body=b"\xff\xfe"))
    assert invalid_utf8["isBase64Encoded"] is True


def test_text_content_types() -> None:
    for text in ("text/plain", "text/html; charset=utf-8", "application/json",
                 "application/vnd.api+json", "application/xml", "application/javascript"):  # fmt: skip
        assert is_text(text), text
    for binary in ("application/octet-stream", "image/png", "application/x-www-form-urlencoded",
                   "multipart/form-data", "", None):  # fmt: skip
        assert not is_text(binary), binary


def test_iam_authorizer() -> None:
    user = IamCaller("AKIAFOREIGN", "111122223333", "arn:aws:iam::111122223333:user/bob", "o-abc")
    ctx = event_for(request(), caller=user)["requestContext"]
    iam = ctx["authorizer"]["iam"]
    assert ctx["accountId"] == "123456789012"  # the function owner's
    assert iam["accessKey"] == "AKIAFOREIGN" and iam["accountId"] == "111122223333"
    assert iam["userArn"] == "arn:aws:iam::111122223333:user/bob"
    assert iam["principalOrgId"] == "o-abc" and iam["cognitoIdentity"] is None
    assert iam["callerId"] == iam["userId"] and iam["userId"].startswith("AIDA")
    root = IamCaller("AKIAROOT", "000000000000", "arn:aws:iam::000000000000:root")
    assert root.user_id == "000000000000"


def test_helpers() -> None:
    assert joined_headers([("A", "1"), ("a", "2"), ("B", "3")]) == {"a": "1,2", "b": "3"}
    assert query_parameters("a=1&b&a=x+y&c=%2F") == {"a": "1,x y", "b": "", "c": "/"}
    assert request_time(0) == "01/Jan/1970:00:00:00 +0000"
