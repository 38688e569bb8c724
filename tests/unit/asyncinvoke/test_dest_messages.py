"""The invocation record per condition, the EventBridge entry and the DLQ attributes.

Shapes are checked against records captured from real AWS destinations in
../shared/aws-reference/lambda/test_lambda_destinations.snapshot.json.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.asyncinvoke.dest_messages import (
    dead_letter_attributes,
    event_bridge_entry,
    qualified_function_arn,
    record_json,
    record_timestamp,
    truncate_utf8,
)
from lambdaplane.asyncinvoke.destinations import invocation_record

FN = "arn:aws:lambda:us-east-1:000000000000:function:orders"
TEST_ID = "tests/aws/services/lambda_/test_lambda_destinations.py::TestLambdaDestinationSqs::"
ERROR = {
    "errorMessage": "intentional failure",
    "errorType": "Exception",
    "requestId": "r-1",
    "stackTrace": ['  File "/var/task/handler.py", line 7, in handler\n'],
}


@cache
def recorded(test: str, step: str) -> Any:
    """A record AWS delivered to an SQS destination (the message body)."""
    for parent in Path(__file__).resolve().parents:
        path = (
            parent
            / "shared"
            / "aws-reference"
            / "lambda"
            / "test_lambda_destinations.snapshot.json"
        )
        if path.is_file():
            content = json.loads(path.read_text())[TEST_ID + test]["recorded-content"][step]
            message = content["Messages"][0] if "Messages" in content else content
            return message["Body"]
    raise FileNotFoundError("shared/aws-reference not found beside the checkout")


def keys(value: Any) -> Any:
    """Key names, in order, all the way down through records' own keys (not payloads)."""
    if isinstance(value, dict):
        return [
            (k, keys(v) if k in ("requestContext", "responseContext") else None)
            for k, v in value.items()
        ]
    return None


def record(condition: str, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": "r-1",
        "function_arn": f"{FN}:$LATEST",
        "condition": condition,
        "approximate_invoke_count": 1,
        "request_payload": b'{"message": "m-1"}',
        "status_code": 200,
        "executed_version": "$LATEST",
        "function_error": "Unhandled",
        "response_payload": json.dumps(ERROR).encode(),
        "timestamp": "2019-11-14T18:16:05.568Z",
    }
    fields.update(overrides)
    return invocation_record(**fields)


def test_success_record_is_awss() -> None:
    body = record(
        "Success",
        function_error=None,
        request_payload=b"{}",
        response_payload=b'{"hello": "world", "val": 5}',
    )
    assert body == {
        "version": "1.0",
        "timestamp": "2019-11-14T18:16:05.568Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": f"{FN}:$LATEST",
            "condition": "Success",
            "approximateInvokeCount": 1,
        },
        "requestPayload": {},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "responsePayload": {"hello": "world", "val": 5},
    }
    assert keys(body) == keys(
        recorded("test_assess_lambda_destination_invocation[payload0]", "receive_message_result")
    )


def test_retries_exhausted_record_carries_the_error() -> None:
    body = record("RetriesExhausted", approximate_invoke_count=3)
    assert body["requestContext"]["approximateInvokeCount"] == 3
    assert body["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert body["responsePayload"] == ERROR
    assert body["requestPayload"] == {"message": "m-1"}
    aws = recorded("test_retries", "queue_destination_payload")
    assert keys(body) == keys(aws)
    assert body["responseContext"] == aws["responseContext"]


def test_event_age_exceeded_after_a_run_carries_the_last_response() -> None:
    # AWS, with MaximumEventAgeInSeconds too short for the next retry, reports the attempt made.
    body = record("EventAgeExceeded", approximate_invoke_count=2)
    aws = recorded("test_maxeventage", "single_retry_failure_message")
    assert keys(body) == keys(aws)
    assert body["responseContext"] == aws["responseContext"]
    assert body["requestContext"]["condition"] == "EventAgeExceeded"


def test_event_age_exceeded_before_any_run_has_no_response() -> None:
    body = record(
        "EventAgeExceeded",
        approximate_invoke_count=0,
        status_code=None,
        executed_version=None,
        function_error=None,
        response_payload=None,
    )
    assert list(body) == ["version", "timestamp", "requestContext", "requestPayload"]
    assert body["requestContext"]["approximateInvokeCount"] == 0


def test_payloads_that_are_not_json_are_kept_as_text() -> None:
    body = record("RetriesExhausted", request_payload=b"plain \xff", response_payload=b"oops")
    assert body["requestPayload"] == "plain \ufffd"
    assert body["responsePayload"] == "oops"


def test_a_null_or_empty_response_is_null() -> None:
    assert (
        record("Success", function_error=None, response_payload=b"null")["responsePayload"] is None
    )
    assert record("Success", function_error=None, response_payload=b"")["responsePayload"] is None


def test_unqualified_function_arn_is_latest() -> None:
    assert record("Success", function_arn=FN)["requestContext"]["functionArn"] == f"{FN}:$LATEST"
    assert qualified_function_arn(f"{FN}:live") == f"{FN}:live"


def test_unknown_condition_is_refused() -> None:
    with pytest.raises(ValueError):
        record("Throttled")


def test_timestamp_is_iso_with_milliseconds_in_utc() -> None:
    assert record_timestamp(1573755365.568) == "2019-11-14T18:16:05.568Z"
    assert record_timestamp(0) == "1970-01-01T00:00:00.000Z"


def test_record_json_round_trips() -> None:
    body = record("Success", function_error=None, request_payload='{"s": "\u00e9\\ud800"}'.encode())
    text = record_json(body)
    text.encode("utf-8")  # a lone surrogate in the event stays an escape, so this cannot fail
    assert json.loads(text) == body


@pytest.mark.parametrize(
    ("condition", "detail_type"),
    [
        ("Success", "Lambda Function Invocation Result - Success"),
        ("RetriesExhausted", "Lambda Function Invocation Result - Failure"),
        ("EventAgeExceeded", "Lambda Function Invocation Result - Failure"),
    ],
)
def test_event_bridge_entry(condition: str, detail_type: str) -> None:
    bus = "arn:aws:events:us-east-1:000000000000:event-bus/outcomes"
    body = record(condition)
    entry = event_bridge_entry(body, bus)
    assert entry == {
        "Source": "lambda",
        "DetailType": detail_type,
        "Detail": record_json(body),
        "EventBusName": bus,
        # As AWS sends them: the destination bus, then the function (qualified).
        "Resources": [bus, f"{FN}:$LATEST"],
    }


def test_dead_letter_attributes_are_awss() -> None:
    assert dead_letter_attributes("r-1", "200", "Test exception") == {
        "RequestID": {"DataType": "String", "StringValue": "r-1"},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "Test exception"},
    }


def test_dead_letter_error_message_keeps_the_first_kilobyte() -> None:
    message = dead_letter_attributes("r-1", "200", "é" * 600)["ErrorMessage"]["StringValue"]
    assert message == "é" * 512  # 1024 bytes of UTF-8, no character cut in half
    assert truncate_utf8("x" * 1025, 1024) == "x" * 1024
    assert truncate_utf8("short", 1024) == "short"


def test_dead_letter_without_message_or_with_odd_code() -> None:
    attributes = dead_letter_attributes("r-1", "Unhandled", "")
    assert "ErrorMessage" not in attributes  # SQS and SNS refuse empty attribute values
    assert attributes["ErrorCode"] == {"DataType": "String", "StringValue": "Unhandled"}
