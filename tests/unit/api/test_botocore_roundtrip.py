"""Round trips through botocore's own client-side code: what boto3 sends parses back to
the same input, and what we send back parses in boto3 to the same output."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from lambdaplane.api import protocol
from lambdaplane.api.routing import Router

ARN = "arn:aws:lambda:us-east-1:123456789012:function:my-fn"

REQUESTS = [
    (
        "CreateFunction",
        {
            "FunctionName": "my-fn",
            "Role": "arn:aws:iam::123456789012:role/r",
            "Code": {"ZipFile": b"PK\x03\x04\xff"},
            "Runtime": "python3.12",
            "Handler": "index.handler",
            "Environment": {"Variables": {"STAGE": "1"}},
            "Architectures": ["arm64"],
            "MemorySize": 512,
            "Publish": True,
        },
    ),
    ("GetFunction", {"FunctionName": ARN, "Qualifier": "$LATEST"}),
    ("ListFunctions", {"MaxItems": 10, "Marker": "abc", "FunctionVersion": "ALL"}),
    ("DeleteFunction", {"FunctionName": f"{ARN}:1"}),
    ("TagResource", {"Resource": ARN, "Tags": {"k": "v"}}),
    ("UntagResource", {"Resource": ARN, "TagKeys": ["a", "b"]}),
    (
        "Invoke",
        {
            "FunctionName": "my-fn",
            "InvocationType": "RequestResponse",
            "LogType": "Tail",
            "Payload": b'{"x": 1}',
            "Qualifier": "live",
        },
    ),
    ("GetLayerVersionByArn", {"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:l:3"}),
    ("ListLayers", {"CompatibleRuntime": "python3.12"}),
    ("ListProvisionedConcurrencyConfigs", {"FunctionName": "f", "MaxItems": 5}),
    ("GetProvisionedConcurrencyConfig", {"FunctionName": "f", "Qualifier": "1"}),
    ("RemoveLayerVersionPermission", {"LayerName": "l", "VersionNumber": 2, "StatementId": "s"}),
    (
        "ListDurableExecutionsByFunction",
        {
            "FunctionName": "f",
            "StartedAfter": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
            "Statuses": ["RUNNING"],
            "ReverseOrder": False,
        },
    ),
    (
        "CreateEventSourceMapping",
        {
            "FunctionName": "f",
            "EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
            "StartingPosition": "AT_TIMESTAMP",
            "StartingPositionTimestamp": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        },
    ),
]


@pytest.mark.parametrize(("name", "params"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_what_boto3_sends_parses_back(
    model: Any, router: Router, name: str, params: dict[str, Any]
) -> None:
    op = model.operation_model(name)
    request = create_serializer("rest-json").serialize_to_request(params, op)
    url = urlsplit(request["url_path"])
    query: dict[str, list[str]] = parse_qs(url.query, keep_blank_values=True)
    for key, value in request["query_string"].items():
        values = value if isinstance(value, list) else [value]
        query.setdefault(key, []).extend(str(v) for v in values)
    matched, labels = router.match(request["method"], url.path, query)
    assert matched.name == name
    headers = {k.lower(): v for k, v in request["headers"].items()}
    body = request["body"] if isinstance(request["body"], bytes) else request["body"].encode()
    parsed = protocol.parse_request(matched, labels, query, headers, body)
    assert parsed == params
    protocol.validate(matched, parsed, skip_enum=frozenset({"Runtime"}))


RESPONSES = [
    (
        "GetFunction",
        {
            "Configuration": {
                "FunctionName": "my-fn",
                "MemorySize": 128,
                "Architectures": ["x86_64"],
                "Environment": {"Variables": {"A": "1"}},
                "LastModified": "2024-01-01T00:00:00.000+0000",
            },
            "Code": {"Location": "https://example/x.zip"},
            "Tags": {"a": "b"},
        },
    ),
    (
        "Invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "LogResult": "U1RBUlQ=",
            "ExecutedVersion": "$LATEST",
            "Payload": b'{"errorMessage": "boom"}',
        },
    ),
    (
        "GetEventSourceMapping",
        {"UUID": "u", "LastModified": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)},
    ),
    ("ListTags", {"Tags": {}}),
]


@pytest.mark.parametrize(("name", "output"), RESPONSES, ids=[r[0] for r in RESPONSES])
def test_what_we_send_parses_in_boto3(model: Any, name: str, output: dict[str, Any]) -> None:
    op = model.operation_model(name)
    status, headers, body = protocol.serialize_response(op, output)
    response = {
        "status_code": status,
        "headers": HeadersDict({k.decode(): v.decode() for k, v in headers}),
        "body": body,
    }
    parsed = create_parser("rest-json").parse(response, op.output_shape)
    parsed.pop("ResponseMetadata")
    payload = parsed.get("Payload")
    if payload is not None:
        payload = payload.read() if hasattr(payload, "read") else payload
        parsed["Payload"] = payload.encode() if isinstance(payload, str) else payload
    assert parsed == output


def test_errors_parse_in_boto3(model: Any) -> None:
    from lambdaplane.errors import ResourceNotFoundException

    status, headers, body = protocol.render_error(ResourceNotFoundException("nope"), "rid")
    response = {
        "status_code": status,
        "headers": HeadersDict({k.decode(): v.decode() for k, v in headers}),
        "body": body,
    }
    op = model.operation_model("GetFunction")
    parsed = create_parser("rest-json").parse(response, op.output_shape)
    assert parsed["Error"] == {"Code": "ResourceNotFoundException", "Message": "nope"}
    assert parsed["ResponseMetadata"]["RequestId"] == "rid"


def _sample(shape: Any, depth: int = 0) -> Any:
    """A value of ``shape``: every member filled for the top level, required ones below."""
    kind = shape.type_name
    if kind == "structure":
        names = shape.members if depth == 0 else shape.required_members
        return {
            name: _sample(shape.members[name], depth + 1)
            for name in names
            if not shape.members[name].serialization.get("eventstream")
        }
    if kind == "list":
        return [_sample(shape.member, depth + 1)]
    if kind == "map":
        return {"key": _sample(shape.value, depth + 1)}
    if kind == "string":
        enum = shape.enum
        return enum[0] if enum else f"v-{shape.name.lower()}:$/x"
    if kind in ("integer", "long"):
        return 7
    if kind in ("double", "float"):
        return 0.5
    if kind == "boolean":
        return True
    if kind == "blob":
        return b"\x00blob\xff"
    if kind == "timestamp":
        return dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    raise AssertionError(kind)


def test_every_operation_round_trips_through_botocore(model: Any, router: Router) -> None:
    serializer = create_serializer("rest-json", include_validation=False)
    for name in model.operation_names:
        op = model.operation_model(name)
        params = _sample(op.input_shape) if op.input_shape is not None else {}
        if name == "GetLayerVersionByArn":
            params = {"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:l:1"}
        request = serializer.serialize_to_request(params, op)
        url = urlsplit(request["url_path"])
        query: dict[str, list[str]] = parse_qs(url.query, keep_blank_values=True)
        for key, value in request["query_string"].items():
            values = value if isinstance(value, list) else [value]
            query.setdefault(key, []).extend(str(v) for v in values)
        matched, labels = router.match(request["method"], url.path, query)
        assert matched.name == name
        headers = {k.lower(): v for k, v in request["headers"].items()}
        body = request["body"]
        body = body if isinstance(body, bytes) else body.encode()
        assert protocol.parse_request(matched, labels, query, headers, body) == params, name
