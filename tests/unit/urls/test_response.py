"""A function's result as its URL's HTTP response (pure)."""

from __future__ import annotations

import base64
import json

import pytest

from lambdaplane.urls.response import FUNCTION_ERROR, from_result


@pytest.mark.parametrize(
    ("result", "body"),
    [  # as AWS answered in TestLambdaURL::test_lambda_url_invocation
        ('{"hello": "world"}', '{"hello":"world"}'),
        ('"hello"', "hello"),
        ('["hello", 3, true]', '["hello",3,true]'),
        ("3", "3"),
        ("3.1", "3.1"),
        ("true", "true"),
        ('{"statusCode": 200, "body": "body123"}', "body123"),
        ('{"statusCode": 200, "body": "{\\"hello\\": \\"world\\"}"}', '{"hello": "world"}'),
    ],
)
def test_aws_recorded_results(result: str, body: str) -> None:
    response = from_result(result.encode())
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.body == body.encode()


def test_structured_response() -> None:
    response = from_result(
        json.dumps(
            {
                "statusCode": "418",
                "headers": {"Content-Type": "text/plain", "X-Num": 3, "X-List": ["a", "b"]},
                "cookies": ["a=1", "b=2; Secure"],
                "body": "i'm a teapot",
            }
        ).encode()
    )
    assert response.status == 418
    assert response.headers == [
        ("Content-Type", "text/plain"),
        ("X-Num", "3"),
        ("X-List", "a,b"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2; Secure"),
    ]
    assert response.body == b"i'm a teapot"


def test_base64_body_is_decoded() -> None:
    data = bytes(range(256))
    payload = {"statusCode": 200, "body": base64.b64encode(data).decode(), "isBase64Encoded": True}
    assert from_result(json.dumps(payload).encode()).body == data


def test_broken_structured_responses_are_function_errors() -> None:
    for payload in (
        {"statusCode": "teapot"},
        {"statusCode": 99},
        {"statusCode": True},
        {"statusCode": 200, "headers": []},
        {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
    ):
        assert from_result(json.dumps(payload).encode()) is FUNCTION_ERROR, payload
    assert from_result(b"{not json") is FUNCTION_ERROR


def test_empty_and_null_results() -> None:
    assert from_result(b"").body == b""
    assert from_result(b"null").body == b"null"
    structured_without_body = from_result(b'{"statusCode": 204}')
    assert (structured_without_body.status, structured_without_body.body) == (204, b"")
