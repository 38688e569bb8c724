"""What Lambda sends for an asynchronous outcome, as pure functions of that outcome.

- the invocation record every destination receives (AWS Lambda Developer Guide, "Capturing
  records of asynchronous invocations"; shapes per condition as recorded against AWS in
  shared/aws-reference/lambda/test_lambda_destinations.snapshot.json);
- the EventBridge entry that carries it (``source`` ``lambda``, ``detail-type`` "Lambda
  Function Invocation Result - Success/Failure", ``resources`` the destination and the
  function, in the order AWS sends them);
- the message attributes of a dead-letter message (Developer Guide, "Dead-letter queues":
  RequestID String, ErrorCode Number, ErrorMessage String holding the first 1 KB).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

CONDITIONS = frozenset(
    {"Success", "RetriesExhausted", "EventAgeExceeded", "ZeroReservedConcurrency"}
)
EVENTS_SOURCE = "lambda"
DETAIL_TYPE_SUCCESS = "Lambda Function Invocation Result - Success"
DETAIL_TYPE_FAILURE = "Lambda Function Invocation Result - Failure"
ERROR_MESSAGE_LIMIT = 1024  # bytes of UTF-8: "the first 1 KB of the error message"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")  # what SQS takes as a Number


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    approximate_invoke_count: int,
    request_payload: bytes,
    status_code: int | None,
    executed_version: str | None,
    function_error: str | None,
    response_payload: bytes | None,
    timestamp: str,
) -> dict[str, Any]:
    """AWS's invocation record for one outcome; ValueError for an unknown condition.

    ``status_code=None`` means the function never ran (an event that aged out while
    waiting): the record then has no ``responseContext`` and no ``responsePayload``.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown destination condition {condition!r}")
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": qualified_function_arn(function_arn),
            "condition": condition,
            "approximateInvokeCount": approximate_invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
    }
    if status_code is not None:
        context: dict[str, Any] = {"statusCode": status_code}
        if executed_version is not None:
            context["executedVersion"] = executed_version
        if function_error:
            context["functionError"] = function_error
        record["responseContext"] = context
        record["responsePayload"] = _json_or_text(response_payload)
    return record


def record_timestamp(epoch_seconds: float) -> str:
    """A record's ``timestamp``: ISO 8601 in UTC with milliseconds, as ``...T18:16:05.568Z``."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def qualified_function_arn(function_arn: str) -> str:
    """The ARN with its qualifier; an unqualified one runs ``$LATEST``, so it gets that."""
    # arn:aws:lambda:region:account:function:name[:qualifier]
    return function_arn if function_arn.count(":") >= 7 else f"{function_arn}:$LATEST"


def record_json(record: dict[str, Any]) -> str:
    """The record as the text a destination receives."""
    # ASCII escapes keep any lone surrogate from a parsed payload encodable on the wire.
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True)


def event_bridge_entry(record: dict[str, Any], bus_arn: str) -> dict[str, Any]:
    """The PutEvents entry that puts ``record`` on the bus ``bus_arn``."""
    success = record["requestContext"]["condition"] == "Success"
    return {
        "Source": EVENTS_SOURCE,
        "DetailType": DETAIL_TYPE_SUCCESS if success else DETAIL_TYPE_FAILURE,
        "Detail": record_json(record),
        "EventBusName": bus_arn,
        "Resources": [bus_arn, record["requestContext"]["functionArn"]],
    }


def dead_letter_attributes(
    request_id: str, error_code: str, error_message: str
) -> dict[str, dict[str, str]]:
    """Message attributes of a dead-letter message (same shape for SQS and SNS).

    SQS and SNS refuse empty attribute values, so an empty error message is left out; an
    error code that is not a number is sent as a String rather than refused.
    """
    attributes = {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {
            "DataType": "Number" if _is_number(error_code) else "String",
            "StringValue": error_code,
        },
    }
    message = truncate_utf8(error_message, ERROR_MESSAGE_LIMIT)
    if message:
        attributes["ErrorMessage"] = {"DataType": "String", "StringValue": message}
    return attributes


def truncate_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``limit`` bytes."""
    encoded = text.encode("utf-8", errors="replace")  # a lone surrogate becomes "?"
    return encoded[:limit].decode("utf-8", errors="ignore")


def payload_text(payload: bytes) -> str:
    """A payload as message text; bytes that are not UTF-8 become U+FFFD."""
    return payload.decode("utf-8", errors="replace")


def _json_or_text(payload: bytes | None) -> Any:
    """The payload as parsed JSON, or as text when it is not JSON; nothing is null."""
    if not payload:
        return None
    text = payload_text(payload)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_number(value: str) -> bool:
    return _NUMBER.fullmatch(value) is not None
