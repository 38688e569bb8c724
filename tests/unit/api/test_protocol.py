"""Request parsing, response serialisation and error rendering."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from lambdaplane.api import jackson, protocol
from lambdaplane.api.serialization import json_serializer
from lambdaplane.errors import (
    InvalidRequestContentException,
    ResourceNotFoundException,
    ValidationException,
)

PREFIX = "Could not parse request body into json: "
ZIP = b"PK\x03\x04 not really a zip \xff\x00"


def _parse(model: Any, name: str, body: Any = b"", **kwargs: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return protocol.parse_request(
        model.operation_model(name),
        kwargs.get("uri", {}),
        kwargs.get("query", {}),
        kwargs.get("headers", {}),
        raw,
    )


def _bad_body(model: Any, name: str, body: Any) -> str:
    with pytest.raises(InvalidRequestContentException) as caught:
        _parse(model, name, body)
    assert caught.value.status == 400
    message = caught.value.message
    assert message is not None
    return message


# ------------------------------------------------------------------------- parsing


def test_create_function_body_with_base64_zip(model: Any) -> None:
    body = {
        "FunctionName": "my-fn",
        "Runtime": "python3.12",
        "Role": "arn:aws:iam::123456789012:role/r",
        "Handler": "index.handler",
        "Code": {"ZipFile": base64.b64encode(ZIP).decode()},
        "Timeout": 30,
        "MemorySize": 256,
        "Publish": True,
        "Environment": {"Variables": {"STAGE": "prod"}},
        "Architectures": ["arm64"],
        "Tags": {"team": "core"},
        "Description": None,
    }
    params = _parse(model, "CreateFunction", body)
    assert params == {
        "FunctionName": "my-fn",
        "Runtime": "python3.12",
        "Role": "arn:aws:iam::123456789012:role/r",
        "Handler": "index.handler",
        "Code": {"ZipFile": ZIP},
        "Timeout": 30,
        "MemorySize": 256,
        "Publish": True,
        "Environment": {"Variables": {"STAGE": "prod"}},
        "Architectures": ["arm64"],
        "Tags": {"team": "core"},
    }


def test_base64_with_line_breaks_is_accepted(model: Any) -> None:
    encoded = base64.encodebytes(ZIP * 20).decode()
    assert "\n" in encoded
    params = _parse(model, "UpdateFunctionCode", {"ZipFile": encoded}, uri={"FunctionName": "f"})
    assert params["ZipFile"] == ZIP * 20


def test_get_function_with_qualifier(client: Any) -> None:
    name, params = client.call("GET", "/2015-03-31/functions/my-fn?Qualifier=%24LATEST")
    assert name == "GetFunction"
    assert params == {"FunctionName": "my-fn", "Qualifier": "$LATEST"}


def test_list_functions_query_is_typed(client: Any) -> None:
    name, params = client.call("GET", "/2015-03-31/functions?MaxItems=50&Marker=x")
    assert name == "ListFunctions"
    assert params == {"MaxItems": 50, "Marker": "x"}


def test_empty_query_value_of_a_number_is_absent(client: Any) -> None:
    assert client.call("GET", "/2015-03-31/functions?MaxItems=")[1] == {}


def test_bad_query_integer_is_invalid_request_content(client: Any) -> None:
    with pytest.raises(InvalidRequestContentException) as caught:
        client.call("GET", "/2015-03-31/functions?MaxItems=abc")
    assert caught.value.message == (
        'Cannot deserialize value of type `java.lang.Integer` from String "abc": '
        "not a valid `java.lang.Integer` value (through reference chain: "
        'com.amazonaws.services.lambda.model.ListFunctionsRequest["MaxItems"])'
    )


def test_uri_long_label_is_typed(client: Any) -> None:
    name, params = client.call("GET", "/2018-10-31/layers/my-layer/versions/3")
    assert name == "GetLayerVersion"
    assert params == {"LayerName": "my-layer", "VersionNumber": 3}
    with pytest.raises(InvalidRequestContentException):
        client.call("GET", "/2018-10-31/layers/my-layer/versions/three")


def test_boolean_and_timestamp_query_members(client: Any) -> None:
    arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af"
    _, params = client.call(
        "GET",
        f"/2025-12-01/functions/{arn}/durable-executions"
        "?ReverseOrder=TRUE&StartedAfter=2024-01-02T03:04:05Z&Statuses=RUNNING&Statuses=FAILED",
    )
    assert params["ReverseOrder"] is True
    assert params["StartedAfter"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert params["Statuses"] == ["RUNNING", "FAILED"]


def test_tag_resource(client: Any) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
    name, params = client.call(
        "POST", f"/2017-03-31/tags/{arn.replace(':', '%3A')}", {"Tags": {"a": "1", "b": ""}}
    )
    assert name == "TagResource"
    assert params == {"Resource": arn, "Tags": {"a": "1", "b": ""}}


def test_untag_resource_list_query(client: Any) -> None:
    arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn"
    _, params = client.call("DELETE", f"/2017-03-31/tags/{arn}?tagKeys=a&tagKeys=b")
    assert params["TagKeys"] == ["a", "b"]


def test_invoke_headers_and_raw_payload(client: Any) -> None:
    payload = b'{"key": "value", "bytes": "\xc3\xa9"}'
    context = base64.b64encode(b'{"custom": {"a": 1}}').decode()
    name, params = client.call(
        "POST",
        "/2015-03-31/functions/my-fn/invocations?Qualifier=live",
        payload,
        headers={
            "X-Amz-Invocation-Type": "Event",
            "X-Amz-Log-Type": "Tail",
            "X-Amz-Client-Context": context,
        },
    )
    assert name == "Invoke"
    assert params == {
        "FunctionName": "my-fn",
        "Qualifier": "live",
        "InvocationType": "Event",
        "LogType": "Tail",
        "ClientContext": context,
        "Payload": payload,
    }


def test_invoke_payload_is_not_parsed_here(client: Any) -> None:
    _, params = client.call("POST", "/2015-03-31/functions/f/invocations", b"\x87 not json")
    assert params["Payload"] == b"\x87 not json"
    _, params = client.call("POST", "/2015-03-31/functions/f/invocations", b"")
    assert "Payload" not in params


def test_structure_payload(model: Any) -> None:
    params = _parse(
        model,
        "SendDurableExecutionCallbackFailure",
        {"ErrorMessage": "boom", "ErrorType": "E"},
        uri={"CallbackId": "abc"},
    )
    assert params == {"CallbackId": "abc", "Error": {"ErrorMessage": "boom", "ErrorType": "E"}}


def test_uri_member_repeated_in_body_is_ignored(model: Any) -> None:
    params = _parse(
        model,
        "UpdateFunctionConfiguration",
        {"FunctionName": "from-body", "Timeout": 5},
        uri={"FunctionName": "from-uri"},
    )
    assert params == {"FunctionName": "from-uri", "Timeout": 5}


@pytest.mark.parametrize("body", [b"", b"  \n", b"null"])
def test_empty_body_is_an_empty_object(model: Any, body: bytes) -> None:
    assert _parse(model, "CreateFunction", body) == {}


def test_timestamp_in_body_is_epoch_seconds(model: Any) -> None:
    params = _parse(
        model,
        "CreateEventSourceMapping",
        {"FunctionName": "f", "StartingPositionTimestamp": 1700000000.5},
    )
    expected = dt.datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=dt.UTC)
    assert params["StartingPositionTimestamp"] == expected


# ------------------------------------------------------------ malformed request bodies


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            b"x",
            "Unrecognized token 'x': was expecting (JSON String, Number, Array, Object or "
            "token 'null', 'true' or 'false')",
        ),
        (
            b"{",
            "Unexpected end-of-input: expected close marker for Object",
        ),
        (
            b'{"FunctionName": }',
            "Unexpected character ('}' (code 125)): expected a valid value (JSON String, "
            "Number, Array, Object or token 'null', 'true' or 'false')",
        ),
        (
            b"{FunctionName: 1}",
            "Unexpected character ('F' (code 70)): was expecting double-quote to start field name",
        ),
        (
            b'{"a" 1}',
            "Unexpected character ('1' (code 49)): was expecting a colon to separate field "
            "name and value",
        ),
        (
            b'{"Architectures": ["x86_64" "arm64"]}',
            "Unexpected character ('\"' (code 34)): was expecting comma to separate Array entries",
        ),
        (
            b'{"Description": "a\nb"}',
            "Illegal unquoted character ((CTRL-CHAR, code 10)): has to be escaped using "
            "backslash to be included in string value",
        ),
        (b'{"Timeout": NaN}', "Non-standard token 'NaN'"),
        (b"\x87{}", "Invalid UTF-8 start byte 0x87"),
        (b"{} {}", "Trailing token"),
    ],
)
def test_malformed_json(model: Any, body: bytes, detail: str) -> None:
    message = _bad_body(model, "CreateFunction", body)
    assert message.startswith(PREFIX + detail), message
    assert "\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` " in message


def test_json_error_location_is_line_and_column(model: Any) -> None:
    message = _bad_body(model, "CreateFunction", b'{\n  "Timeout": 3,\n  oops\n}')
    assert message.endswith("disabled); line: 3, column: 3]")


def test_body_must_be_an_object(model: Any) -> None:
    assert _bad_body(model, "CreateFunction", b"[1]") == (
        PREFIX + "Cannot deserialize value of type "
        "`com.amazonaws.services.lambda.model.CreateFunctionRequest` "
        "from Array value (token `JsonToken.START_ARRAY`)"
    )
    assert _bad_body(model, "CreateFunction", b'"text"').startswith(
        PREFIX + "Cannot deserialize value of type "
        "`com.amazonaws.services.lambda.model.CreateFunctionRequest` from String"
    )


def test_unknown_top_level_field(model: Any) -> None:
    assert _bad_body(model, "CreateFunction", {"FunctionName": "f", "Foo": 1}) == (
        PREFIX + 'Unrecognized field "Foo" (class '
        "com.amazonaws.services.lambda.model.CreateFunctionRequest), not marked as ignorable"
    )


def test_unknown_nested_field(model: Any) -> None:
    assert _bad_body(model, "CreateFunction", {"Environment": {"Foo": {}}}) == (
        PREFIX + 'Unrecognized field "Foo" (class '
        "com.amazonaws.services.lambda.model.Environment), not marked as ignorable"
    )
    assert _bad_body(
        model, "CreateFunction", {"FileSystemConfigs": [{"Arn": "a", "Mount": "/mnt/x"}]}
    ) == (
        PREFIX + 'Unrecognized field "Mount" (class '
        "com.amazonaws.services.lambda.model.FileSystemConfig), not marked as ignorable"
    )


def test_field_names_are_case_sensitive(model: Any) -> None:
    assert 'Unrecognized field "functionName"' in _bad_body(
        model, "CreateFunction", {"functionName": "f"}
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"MemorySize": "256"},
            'Cannot deserialize value of type `java.lang.Integer` from String "256": '
            "not a valid `java.lang.Integer` value (through reference chain: "
            'com.amazonaws.services.lambda.model.CreateFunctionRequest["MemorySize"])',
        ),
        (
            {"Timeout": True},
            "Cannot deserialize value of type `java.lang.Integer` from Boolean value "
            "(token `JsonToken.VALUE_TRUE`) (through reference chain: "
            'com.amazonaws.services.lambda.model.CreateFunctionRequest["Timeout"])',
        ),
        (
            {"Timeout": 1.5},
            "Cannot deserialize value of type `java.lang.Integer` from Floating-point "
            "value (token `JsonToken.VALUE_NUMBER_FLOAT`)",
        ),
        (
            {"MemorySize": 2**31},
            "Numeric value (2147483648) out of range of int (-2147483648 - 2147483647)",
        ),
        (
            {"FunctionName": 123},
            "Cannot deserialize value of type `java.lang.String` from Integer value "
            "(token `JsonToken.VALUE_NUMBER_INT`)",
        ),
        (
            {"Architectures": {"x86_64": True}},
            "Cannot deserialize value of type `java.util.List<java.lang.String>` from "
            "Object value (token `JsonToken.START_OBJECT`)",
        ),
        (
            {"Environment": {"Variables": {"A": 1}}},
            "Cannot deserialize value of type `java.lang.String` from Integer value (token "
            "`JsonToken.VALUE_NUMBER_INT`) (through reference chain: "
            'com.amazonaws.services.lambda.model.CreateFunctionRequest["Environment"]'
            '->com.amazonaws.services.lambda.model.Environment["Variables"]'
            '->java.util.LinkedHashMap["A"])',
        ),
        (
            {"Layers": ["ok", ["nested"]]},
            "Cannot deserialize value of type `java.lang.String` from Array value "
            "(token `JsonToken.START_ARRAY`) (through reference chain: "
            'com.amazonaws.services.lambda.model.CreateFunctionRequest["Layers"]'
            "->java.util.ArrayList[1])",
        ),
        (
            {"Publish": "true"},
            'Cannot deserialize value of type `java.lang.Boolean` from String "true"',
        ),
        (
            {"Code": {"ZipFile": "not base64!"}},
            'Cannot deserialize value of type `java.nio.ByteBuffer` from String "not '
            'base64!": Failed to decode VALUE_STRING as base64 (MIME-NO-LINEFEEDS): '
            "Illegal character '!' (code 0x21) in base64 content",
        ),
        (
            {"Code": {"ZipFile": "QUJD"[:3]}},
            'Cannot deserialize value of type `java.nio.ByteBuffer` from String "QUJ": '
            "Unexpected end of base64-encoded String",
        ),
        (
            {"VpcConfig": "sg-1"},
            "Cannot deserialize value of type `com.amazonaws.services.lambda.model.VpcConfig` "
            "from String",
        ),
    ],
)
def test_wrong_json_types(model: Any, body: Any, expected: str) -> None:
    message = _bad_body(model, "CreateFunction", body)
    assert message.startswith(PREFIX + expected), message


def test_null_members_are_absent_but_null_items_are_kept(model: Any) -> None:
    params = _parse(
        model,
        "CreateFunction",
        {"Timeout": None, "Architectures": [None], "Tags": {"a": None}},
    )
    assert params == {"Architectures": [None], "Tags": {"a": None}}


def test_describe_json_error_for_invoke_payloads() -> None:
    assert jackson.describe_json_error(b'{"a": [1, 2]}') is None
    detail = jackson.describe_json_error(b"\x87")
    assert detail is not None
    assert detail.startswith("Invalid UTF-8 start byte 0x87\n at [Source: REDACTED")


# --------------------------------------------------------------------- serialisation

CONFIGURATION = {
    "FunctionName": "my-fn",
    "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
    "Runtime": "python3.12",
    "MemorySize": 128,
    "Timeout": 3,
    "Description": "",
    "LastModified": "2024-01-01T00:00:00.000+0000",
    "KMSKeyArn": None,
    "Architectures": ["x86_64"],
    "Environment": {"Variables": {"A": "1"}, "Error": None},
    "EphemeralStorage": {"Size": 512},
    "NotAMember": "dropped",
}


def test_serialize_get_function(model: Any) -> None:
    output = {
        "Configuration": CONFIGURATION,
        "Code": {"RepositoryType": "S3", "Location": "https://example/code.zip"},
        "Tags": {"team": "core"},
        "Concurrency": None,
    }
    status, headers, body = protocol.serialize_response(
        model.operation_model("GetFunction"), output
    )
    assert status == 200
    assert headers == [(b"content-type", b"application/json")]
    assert body.startswith(b'{"Configuration":{"FunctionName":"my-fn",')
    decoded = json.loads(body)
    assert decoded["Configuration"] == {
        "FunctionName": "my-fn",
        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
        "Runtime": "python3.12",
        "MemorySize": 128,
        "Timeout": 3,
        "Description": "",
        "LastModified": "2024-01-01T00:00:00.000+0000",
        "Architectures": ["x86_64"],
        "Environment": {"Variables": {"A": "1"}},
        "EphemeralStorage": {"Size": 512},
    }
    assert decoded["Code"] == {"RepositoryType": "S3", "Location": "https://example/code.zip"}
    assert decoded["Tags"] == {"team": "core"}
    assert "Concurrency" not in decoded


def test_serialize_uses_model_response_code(model: Any) -> None:
    status, _, body = protocol.serialize_response(
        model.operation_model("CreateFunction"), CONFIGURATION
    )
    assert status == 201
    assert json.loads(body)["FunctionName"] == "my-fn"


def test_serialize_invoke_with_header_members(model: Any) -> None:
    op = model.operation_model("Invoke")
    status, headers, body = protocol.serialize_response(
        op,
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "LogResult": base64.b64encode(b"START RequestId").decode(),
            "ExecutedVersion": "$LATEST",
            "Payload": b'{"errorMessage":"boom"}',
        },
    )
    assert status == 200
    assert dict(headers) == {
        b"X-Amz-Function-Error": b"Unhandled",
        b"X-Amz-Log-Result": base64.b64encode(b"START RequestId"),
        b"X-Amz-Executed-Version": b"$LATEST",
        b"content-type": b"application/json",
    }
    assert body == b'{"errorMessage":"boom"}'


def test_serialize_status_override(model: Any) -> None:
    op = model.operation_model("Invoke")
    status, _, body = protocol.serialize_response(op, {"__status__": 202, "Payload": b""})
    assert (status, body) == (202, b"")
    status, _, _ = protocol.serialize_response(op, {"StatusCode": 202})
    assert status == 202


def test_serialize_delete_function_204_has_no_body(model: Any) -> None:
    op = model.operation_model("DeleteFunction")
    assert protocol.serialize_response(op, {"StatusCode": 204}) == (204, [], b"")
    assert protocol.serialize_response(op, {"__status__": 204}) == (204, [], b"")
    assert protocol.serialize_response(op, {})[0] == 200


def test_serialize_operation_without_output_shape(model: Any) -> None:
    op = model.operation_model("DeleteAlias")
    assert op.output_shape is None
    assert protocol.serialize_response(op, {}) == (204, [], b"")


def test_serialize_timestamps_as_epoch_seconds(model: Any) -> None:
    op = model.operation_model("GetEventSourceMapping")
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=dt.UTC)
    _, _, body = protocol.serialize_response(op, {"UUID": "u", "LastModified": when})
    assert json.loads(body) == {"UUID": "u", "LastModified": 1704164645.25}


def test_serialize_blob_in_json_body_is_base64(model: Any) -> None:
    # No Lambda output carries a blob in its JSON body today; test the shape's encoder.
    encode = json_serializer(model.shape_for("Blob"))
    assert encode is not None
    assert encode(b"\x00\x01") == "AAE="


def test_serialize_event_stream_payload(model: Any) -> None:
    op = model.operation_model("InvokeWithResponseStream")
    status, headers, body = protocol.serialize_response(
        op, {"StatusCode": 200, "ExecutedVersion": "1", "EventStream": b"\x00\x00frames"}
    )
    assert status == 200
    assert (b"content-type", b"application/vnd.amazon.eventstream") in headers
    assert body == b"\x00\x00frames"
    _, headers, _ = protocol.serialize_response(
        op, {"ResponseStreamContentType": "application/octet-stream", "EventStream": b""}
    )
    assert [v for k, v in headers if k.lower() == b"content-type"] == [b"application/octet-stream"]


# ------------------------------------------------------------------------ errors


def test_render_validation_error() -> None:
    err = ValidationException.from_violations(
        ["Value null at 'functionName' failed to satisfy constraint: Member must not be null"]
    )
    status, headers, body = protocol.render_error(err, "req-123")
    assert status == 400
    assert headers == [
        (b"x-amzn-errortype", b"ValidationException"),
        (b"x-amzn-requestid", b"req-123"),
        (b"content-type", b"application/json"),
    ]
    assert json.loads(body) == {
        "message": "1 validation error detected: Value null at 'functionName' failed to "
        "satisfy constraint: Member must not be null"
    }


def test_render_resource_not_found() -> None:
    err = ResourceNotFoundException(
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"
    )
    status, headers, body = protocol.render_error(err, "req-9")
    assert status == 404
    assert (b"x-amzn-errortype", b"ResourceNotFoundException") in headers
    assert (b"x-amzn-requestid", b"req-9") in headers
    assert body == (
        b'{"Type":"User","Message":"Function not found: '
        b'arn:aws:lambda:us-east-1:123456789012:function:nope"}'
    )


def test_compiled_operations_are_cached(model: Any) -> None:
    op = model.operation_model("GetFunction")
    assert protocol.compiled(op) is protocol.compiled(op)
