"""The JSON 1.1 wire: requests signed and serialised by botocore go through
``LogsApi.handle`` (SigV4 scope ``logs``), and botocore parses what comes back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HeadersDict
from botocore.credentials import Credentials
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from lambdaplane.logsapi.protocol import load_logs_model, parse_request
from lambdaplane.logsapi.server import LogsApi, logs_target
from lambdaplane.store.logs import LogEvent
from tests.unit.logsapi.conftest import Logs

KEY, SECRET = "AKIDEXAMPLE", "secret"
MODEL = load_logs_model()


@pytest.fixture
def api(logs: Logs) -> LogsApi:
    return LogsApi(logs.service, {KEY: SECRET}.get, region="us-east-1")


def send(
    api: LogsApi,
    operation: str,
    params: dict[str, Any],
    *,
    service: str = "logs",
    body: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    """Call ``operation`` as boto3 would; (status, what botocore parses out of the reply)."""
    op = MODEL.operation_model(operation)
    request = create_serializer("json", include_validation=False).serialize_to_request(params, op)
    if body is not None:
        request["body"] = body
    aws = AWSRequest(
        method="POST",
        url="http://127.0.0.1:9000/",
        data=request["body"],
        headers=request["headers"],
    )
    SigV4Auth(Credentials(KEY, SECRET), service, "us-east-1").add_auth(aws)
    headers = [(b"host", b"127.0.0.1:9000")]
    headers += [(k.lower().encode(), v.encode()) for k, v in aws.headers.items()]
    target = logs_target(headers)
    assert target == operation
    scope: MutableMapping[str, Any] = {
        "type": "http", "method": "POST", "path": "/", "raw_path": b"/",
        "query_string": b"", "headers": headers,
    }  # fmt: skip
    sent = [{"type": "http.request", "body": aws.body or b"", "more_body": False}]

    async def receive() -> MutableMapping[str, Any]:
        return sent.pop(0) if sent else {"type": "http.disconnect"}

    status, reply_headers, reply = asyncio.run(api.handle(scope, receive, target, "req-1"))
    assert dict(reply_headers)[b"content-type"] == b"application/x-amz-json-1.1"
    parsed = create_parser("json").parse(
        {
            "status_code": status,
            "headers": HeadersDict({k.decode(): v.decode() for k, v in reply_headers}),
            "body": reply,
        },
        op.output_shape,
    )
    return status, parsed


def test_operations_round_trip_through_botocore(api: LogsApi, logs: Logs) -> None:
    assert send(api, "CreateLogGroup", {"logGroupName": "/g"})[0] == 200
    logs.writer.append([LogEvent("/g", "s", 5, "hello")], 7)
    status, parsed = send(api, "FilterLogEvents", {"logGroupName": "/g", "filterPattern": "hello"})
    assert status == 200
    assert parsed["events"][0]["message"] == "hello" and parsed["events"][0]["ingestionTime"] == 7
    _, groups = send(api, "DescribeLogGroups", {"logGroupNamePrefix": "/"})
    assert [g["logGroupName"] for g in groups["logGroups"]] == ["/g"]


@pytest.mark.parametrize(
    ("operation", "params", "code", "message"),
    [
        ("DeleteLogGroup", {"logGroupName": "/missing"}, "ResourceNotFoundException",
         "The specified log group does not exist."),
        ("DescribeLogGroups", {"limit": 51}, "InvalidParameterException",
         "1 validation error detected: Value '51' at 'limit' failed to satisfy constraint: "
         "Member must have value less than or equal to 50"),
        ("CreateLogGroup", {"logGroupName": "bad name!"}, "InvalidParameterException",
         "1 validation error detected: Value 'bad name!' at 'logGroupName' failed to satisfy "
         "constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"),
        ("GetLogEvents", {"logGroupName": "/g"}, "InvalidParameterException",
         "1 validation error detected: Value null at 'logStreamName' failed to satisfy "
         "constraint: Member must not be null"),
        ("PutLogEvents", {"logGroupName": "/g", "logStreamName": "s", "logEvents": [{"timestamp": 1, "message": "m"}]},
         "NotImplementedException", "lambdaplane does not implement the PutLogEvents operation yet."),
    ],
)  # fmt: skip
def test_errors_are_aws_json_errors(
    api: LogsApi, operation: str, params: dict[str, Any], code: str, message: str
) -> None:
    status, parsed = send(api, operation, params)
    assert (parsed["Error"]["Code"], parsed["Error"]["Message"]) == (code, message)
    assert status == (501 if code == "NotImplementedException" else 400)


def test_signature_must_be_scoped_to_logs(api: LogsApi) -> None:
    status, parsed = send(api, "DescribeLogGroups", {}, service="lambda")
    assert status == 403
    assert parsed["Error"]["Code"] == "InvalidSignatureException"
    assert parsed["Error"]["Message"] == "Credential should be scoped to correct service: 'logs'. "


def test_bodies_that_are_not_the_model_s_json(api: LogsApi) -> None:
    status, parsed = send(api, "DescribeLogGroups", {}, body=b"[1, 2")
    assert (status, parsed["Error"]["Code"]) == (400, "SerializationException")
    status, parsed = send(api, "DescribeLogGroups", {}, body=b'{"limit": "ten"}')
    assert (status, parsed["Error"]["Code"]) == (400, "SerializationException")
    assert send(api, "DescribeLogGroups", {}, body=b'{"unknownMember": 1}')[0] == 200
    assert send(api, "DescribeLogGroups", {}, body=b"")[0] == 200


def test_parse_request_checks_nested_types() -> None:
    op = MODEL.operation_model("FilterLogEvents")
    assert parse_request(op, json.dumps({"logStreamNames": ["a"], "x": 1}).encode()) == {
        "logStreamNames": ["a"]
    }
    with pytest.raises(Exception, match="logStreamNames"):
        parse_request(op, json.dumps({"logStreamNames": [1]}).encode())
    with pytest.raises(Exception, match="startTime"):
        parse_request(op, json.dumps({"startTime": True}).encode())


def test_logs_target_only_for_logs() -> None:
    assert logs_target([(b"x-amz-target", b"Logs_20140328.GetLogEvents")]) == "GetLogEvents"
    assert logs_target([(b"x-amz-target", b"DynamoDB_20120810.GetItem")]) is None
    assert logs_target([(b"content-type", b"application/json")]) is None
