"""Lambda event filtering: AWS's documented examples, the cases recorded against real AWS
in ../shared/aws-reference/lambda/esm_*.snapshot.json, and the edges between them."""

from __future__ import annotations

import base64
import json
import random
import re
import time
from typing import Any

import pytest

from lambdaplane.esm.filtering import (
    INVALID_PATTERN_MESSAGE,
    EventSourceKind,
    FilterError,
    Matcher,
    compile_criteria,
    dynamodb_view,
    kinesis_view,
    sqs_view,
)


def criteria(*patterns: object) -> dict[str, Any]:
    return {"Filters": [{"Pattern": json.dumps(p)} for p in patterns]}


def matcher(*patterns: object, source: EventSourceKind | None = None) -> Matcher:
    return compile_criteria(criteria(*patterns), source)


def refused(pattern: str, source: EventSourceKind | None = None) -> FilterError:
    with pytest.raises(FilterError) as caught:
        compile_criteria({"Filters": [{"Pattern": pattern}]}, source)
    return caught.value


def sqs_record(body: str) -> dict[str, Any]:
    return {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SenderId": "AIDAIENQZJOLO23YVJ4VO"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "awsRegion": "us-west-2",
    }


def kinesis_record(data: bytes, partition_key: str = "1") -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": 1545084650.987,
        },
        "eventSource": "aws:kinesis",
        "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
        "eventName": "aws:kinesis:record",
        "awsRegion": "us-east-2",
    }


def ddb_record(
    new_image: dict[str, Any], event_name: str = "INSERT", keys: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "eventID": "1",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "ApproximateCreationDateTime": 1678831218.0,
            "Keys": keys or {"id": {"S": "id_value_1"}},
            "NewImage": new_image,
            "SequenceNumber": "111",
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


# --- the grammar, by AWS's documented examples: (pattern, an event it matches, one it
# does not). Sources: the "Filter rule syntax" table and examples of the Lambda developer
# guide (invocation-eventfiltering), EventBridge's "Content filtering in event patterns",
# "Matching null values and empty strings", "Arrays in event patterns" and the
# comparison-operator summary, and event-ruler's README for $or.

DOCUMENTED: list[Any] = [
    # Lambda "Filter rule syntax" table
    pytest.param({"UserID": [None]}, {"UserID": None}, {"UserID": ""}, id="null"),
    pytest.param({"LastName": [""]}, {"LastName": ""}, {"LastName": None}, id="empty"),
    pytest.param({"Name": ["Alice"]}, {"Name": "Alice"}, {"Name": "alice"}, id="equals"),
    pytest.param(
        {"Name": [{"equals-ignore-case": "alice"}]},
        {"Name": "ALICE"},
        {"Name": "Alicia"},
        id="equals-ignore-case",
    ),
    pytest.param(
        {"Location": ["New York"], "Day": ["Monday"]},
        {"Location": "New York", "Day": "Monday"},
        {"Location": "New York", "Day": "Tuesday"},
        id="and",
    ),
    pytest.param(
        {"PaymentType": ["Credit", "Debit"]},
        {"PaymentType": "Debit"},
        {"PaymentType": "Cash"},
        id="or",
    ),
    pytest.param(
        {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]},
        {"Location": "Boston", "Day": "Monday"},
        {"Location": "Boston", "Day": "Tuesday"},
        id="or-multiple-fields",
    ),
    pytest.param(
        {"Weather": [{"anything-but": ["Raining"]}]},
        {"Weather": "Sunny"},
        {"Weather": "Raining"},
        id="not",
    ),
    pytest.param(
        {"Price": [{"numeric": ["=", 100]}]}, {"Price": 100}, {"Price": 101}, id="numeric-equals"
    ),
    pytest.param(
        {"Price": [{"numeric": [">", 10, "<=", 20]}]},
        {"Price": 20},
        {"Price": 10},
        id="numeric-range",
    ),
    pytest.param(
        {"ProductName": [{"exists": True}]},
        {"ProductName": "Widget"},
        {"ProductCode": "W-1"},
        id="exists",
    ),
    pytest.param(
        {"ProductName": [{"exists": False}]},
        {"ProductCode": "W-1"},
        {"ProductName": "Widget"},
        id="does-not-exist",
    ),
    pytest.param(
        {"Region": [{"prefix": "us-"}]},
        {"Region": "us-east-1"},
        {"Region": "eu-west-1"},
        id="prefix",
    ),
    pytest.param(
        {"FileName": [{"suffix": ".png"}]},
        {"FileName": "cat.png"},
        {"FileName": "cat.jpg"},
        id="suffix",
    ),
    # Lambda guide, filtering examples
    pytest.param(
        {"partitionKey": ["1"], "data": {"Location": ["Los Angeles"]}},
        {"partitionKey": "1", "data": {"Location": "Los Angeles"}},
        {"partitionKey": "2", "data": {"Location": "Los Angeles"}},
        id="metadata-and-data",
    ),
    pytest.param(
        {"data": {"Temperature": [{"numeric": [">", 50, "<=", 60]}]}},
        {"data": {"City": "Seattle", "Temperature": 55}},
        {"data": {"City": "Seattle", "Temperature": 46}},
        id="data-numeric-range",
    ),
    pytest.param(
        {"dynamodb": {"Keys": {"Id": {"N": ["101"]}}}},
        {"dynamodb": {"Keys": {"Id": {"N": "101"}}, "SequenceNumber": "111"}},
        {"dynamodb": {"Keys": {"Id": {"N": "102"}}, "SequenceNumber": "111"}},
        id="multi-level",
    ),
    pytest.param({"a": [1, 2]}, {"a": 2}, {"a": 3}, id="console-example"),
    # EventBridge content filtering
    pytest.param(
        {"time": [{"prefix": "2017-10-02"}]},
        {"time": "2017-10-02T18:43:48Z"},
        {"time": "2017-10-03T18:43:48Z"},
        id="eb-prefix",
    ),
    pytest.param(
        {"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}},
        {"detail": {"service": "eventbridge"}},
        {"detail": {"service": "cloudwatch"}},
        id="eb-prefix-ignore-case",
    ),
    pytest.param(
        {"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}},
        {"detail": {"FileName": "IMAGE.PNG"}},
        {"detail": {"FileName": "image.png.txt"}},
        id="eb-suffix-ignore-case",
    ),
    pytest.param(
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        {"detail": {"state": "running"}},
        {"detail": {"state": "initializing"}},
        id="eb-anything-but-string",
    ),
    pytest.param(
        {"detail": {"x-limit": [{"anything-but": 123}]}},
        {"detail": {"x-limit": 124}},
        {"detail": {"x-limit": 123}},
        id="eb-anything-but-number",
    ),
    pytest.param(
        {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
        {"detail": {"state": "running"}},
        {"detail": {"state": "overloaded"}},
        id="eb-anything-but-strings",
    ),
    pytest.param(
        {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
        {"detail": {"x-limit": 301}},
        {"detail": {"x-limit": 200}},
        id="eb-anything-but-numbers",
    ),
    pytest.param(
        {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
        {"detail": {"state": "running"}},
        {"detail": {"state": "initializing"}},
        id="eb-anything-but-prefix",
    ),
    pytest.param(
        {"FileName": [{"anything-but": {"suffix": ".png"}}]},
        {"FileName": "cat.jpg"},
        {"FileName": "cat.png"},
        id="eb-anything-but-suffix",
    ),
    pytest.param(
        {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]},
        {"state": "running"},
        {"state": "INITIALIZING"},
        id="eb-anything-but-ignore-case",
    ),
    pytest.param(
        {"state": [{"anything-but": {"equals-ignore-case": ["initializing", "stopped"]}}]},
        {"state": "running"},
        {"state": "Stopped"},
        id="eb-anything-but-ignore-case-list",
    ),
    pytest.param(
        {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
        {"FilePath": "/usr/bin/python"},
        {"FilePath": "/usr/lib/python"},
        id="eb-anything-but-wildcard",
    ),
    pytest.param(
        {
            "detail": {
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}],
            }
        },
        {"detail": {"c-count": 5, "d-count": 3, "x-limit": 301.8}},
        {"detail": {"c-count": 0, "d-count": 3, "x-limit": 301.8}},
        id="eb-numeric",
    ),
    pytest.param(
        {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}},
        {"detail": {"sourceIPAddress": "10.0.0.255"}},
        {"detail": {"sourceIPAddress": "10.0.1.1"}},
        id="eb-cidr",
    ),
    pytest.param(
        {"detail": {"c-count": [{"exists": False}]}},
        {"detail": {"state": ["initializing", "running"], "c-count": {"c1": 100}}},
        {"detail": {"state": ["initializing", "running"], "c-count": 5}},
        id="eb-exists-false-on-intermediate-node",
    ),
    pytest.param(
        {"detail": {"eventVersion": [""]}},
        {"detail": {"eventVersion": "", "responseElements": None}},
        {"detail": {"eventVersion": None}},
        id="eb-empty-string",
    ),
    pytest.param(
        {"detail": {"responseElements": [None]}},
        {"detail": {"eventVersion": "", "responseElements": None}},
        {"detail": {"responseElements": ""}},
        id="eb-null",
    ),
    pytest.param(
        {
            "resources": [
                "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
            ]
        },
        {
            "resources": [
                "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
            ]
        },
        {"resources": ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b"]},
        id="eb-arrays-intersect",
    ),
    pytest.param(
        {"source": ["aws.macie"], "detail": {"risk-score": [80], "trigger": {"risk": [8]}}},
        {"source": "aws.macie", "detail": {"risk-score": 80, "trigger": {"risk": 8}}},
        {"source": "aws.macie", "detail": {"risk-score": 80, "trigger": {"risk": 7}}},
        id="eb-value-matching",
    ),
    pytest.param(
        {
            "time": [{"prefix": "2017-10-02"}],
            "detail": {
                "state": [{"anything-but": "initializing"}],
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"anything-but": [100, 200, 300]}],
            },
        },
        {
            "time": "2017-10-02T16:24:49Z",
            "detail": {"state": "running", "c-count": 5, "d-count": 3, "x-limit": 301.8},
        },
        {
            "time": "2017-10-02T16:24:49Z",
            "detail": {"state": "running", "c-count": 5, "d-count": 3, "x-limit": 300},
        },
        id="eb-complex",
    ),
    pytest.param(
        {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
        {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"},
        {"EventBusArn": "arn:aws:events:us-west-2:123456789012:event-bus/default"},
        id="eb-wildcard",
    ),
    pytest.param(
        {"FileName": [{"wildcard": "dir/*.png"}]},
        {"FileName": "dir/sub/cat.png"},
        {"FileName": "other/cat.png"},
        id="eb-wildcard-file",
    ),
    # event-ruler's $or examples
    pytest.param(
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {"namespace": ["AWS/EC2", "AWS/ES"]},
            ],
        },
        {"source": "aws.cloudwatch", "namespace": "AWS/ES"},
        {"source": "aws.ec2", "namespace": "AWS/ES"},
        id="or-with-and",
    ),
    pytest.param(
        {
            "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
            "detail": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["Alarm"]}]},
        },
        {"namespace": "AWS/EC2", "detail": {"detail-type": "Alarm"}},
        {"namespace": "AWS/EC2", "detail": {"detail-type": "Other"}},
        id="or-parallel",
    ),
    pytest.param(
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization"]},
                {
                    "metricType": ["MetricType"],
                    "namespace": ["AWS/EC2"],
                    "$or": [{"metricId": [1234]}, {"spaceId": [1000]}],
                },
                {"scope": ["Service"]},
            ],
        },
        {
            "source": "aws.cloudwatch",
            "metricType": "MetricType",
            "namespace": "AWS/EC2",
            "spaceId": 1000,
        },
        {
            "source": "aws.cloudwatch",
            "metricType": "MetricType",
            "namespace": "AWS/EC2",
            "spaceId": 1001,
        },
        id="or-nested",
    ),
]


@pytest.mark.parametrize(("pattern", "matching", "not_matching"), DOCUMENTED)
def test_documented_examples(pattern: object, matching: Any, not_matching: Any) -> None:
    compiled = matcher(pattern)
    assert compiled.matches(matching)
    assert not compiled.matches(not_matching)


def test_sqs_documented_examples() -> None:
    body = (
        '{\n "RecordNumber": 1234,\n "TimeStamp": "yyyy-mm-ddThh:mm:ss",\n "RequestCode": "AAAA"\n}'
    )
    record = sqs_view(sqs_record(body))
    other = sqs_view(sqs_record(body.replace("AAAA", "BBBB").replace("1234", "10000")))
    code = matcher({"body": {"RequestCode": ["BBBB"]}}, source=EventSourceKind.SQS)
    number = matcher(
        {"body": {"RecordNumber": [{"numeric": [">", 9999]}]}}, source=EventSourceKind.SQS
    )
    assert code.matches(other) and not code.matches(record)
    assert number.matches(other) and not number.matches(record)


def test_kinesis_documented_example() -> None:
    buy = {"record": 12345, "order": {"type": "buy", "stock": "ANYCO", "quantity": 1000}}
    sell = {"record": 12345, "order": {"type": "sell", "stock": "ANYCO", "quantity": 1000}}
    orders = matcher({"data": {"order": {"type": ["buy"]}}}, source=EventSourceKind.KINESIS)
    assert orders.matches(kinesis_view(kinesis_record(json.dumps(buy).encode())))
    assert not orders.matches(kinesis_view(kinesis_record(json.dumps(sell).encode())))


DDB_IMAGE = {
    "AccountManager": {"S": "Pat Candella"},
    "PaymentTerms": {"S": "60 days"},
    "CustomerName": {"S": "AnyCompany Industries"},
}


@pytest.mark.parametrize(
    ("pattern", "matching_image", "not_matching_image"),
    [
        pytest.param(
            {
                "dynamodb": {
                    "NewImage": {"AccountManager": {"S": ["Pat Candella", "Shirley Rodriguez"]}}
                }
            },
            DDB_IMAGE,
            {**DDB_IMAGE, "AccountManager": {"S": "Someone Else"}},
            id="attribute-or",
        ),
        pytest.param(
            {
                "dynamodb": {
                    "NewImage": {
                        "AccountManager": {"S": ["Pat Candella"]},
                        "PaymentTerms": {"S": ["60 days"]},
                    }
                }
            },
            DDB_IMAGE,
            {**DDB_IMAGE, "PaymentTerms": {"S": "30 days"}},
            id="attributes-and",
        ),
        pytest.param(
            {"dynamodb": {"NewImage": {"Organizations": {"L": {"S": [{"exists": True}]}}}}},
            {"Organizations": {"L": [{"S": "Sales"}, {"S": "Marketing"}, {"S": "Support"}]}},
            {"Organizations": {"L": []}},
            id="exists-on-list-leaves",
        ),
    ],
)
def test_dynamodb_documented_examples(
    pattern: object, matching_image: dict[str, Any], not_matching_image: dict[str, Any]
) -> None:
    compiled = matcher(pattern, source=EventSourceKind.DYNAMODB)
    assert compiled.matches(dynamodb_view(ddb_record(matching_image)))
    assert not compiled.matches(dynamodb_view(ddb_record(not_matching_image)))


def test_dynamodb_documented_table_key_and_non_leaf_exists() -> None:
    keyed = matcher({"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}})
    record = ddb_record(DDB_IMAGE, keys={"CustomerName": {"S": "AnyCompany Industries"}})
    assert keyed.matches(dynamodb_view(record))
    assert not keyed.matches(dynamodb_view(ddb_record(DDB_IMAGE)))
    # "this filter pattern would never return a match because Organizations is not a leaf"
    intermediate = matcher({"dynamodb": {"NewImage": {"Organizations": [{"exists": True}]}}})
    organizations = {"Organizations": {"L": [{"S": "Sales"}]}}
    assert not intermediate.matches(dynamodb_view(ddb_record(organizations)))


# --- recorded against real AWS (../shared/aws-reference/lambda/esm_*.snapshot.json) -------


@pytest.mark.parametrize(
    ("pattern", "delivered", "dropped"),
    [
        ({"body": {"testItem": ["test24"]}}, {"testItem": "test24"}, {"testItem": "tesWER"}),
        (
            {"body": {"testItem": ["test24", "test45"]}},
            {"testItem": "test45"},
            {"testItem": "WERTD"},
        ),
        (
            {"body": {"testItem": ["test24", "test45"], "test2": ["go"]}},
            {"testItem": "test45", "test2": "go"},
            {"testItem": "test67", "test2": "go"},
        ),
        ({"body": {"test2": [{"exists": True}]}}, {"test2": "7411"}, {"test5": "74545"}),
        (
            {"body": {"test2": [{"numeric": [">", 100]}]}},
            {"test2": 105},
            "this is a test string",
        ),
        ({"body": {"test2": [{"numeric": ["<", 100]}]}}, {"test2": 93}, {"test2": 105}),
        (
            {"body": {"test2": [{"numeric": [">=", 100, "<", 200]}]}},
            {"test2": 105},
            {"test2": 200},
        ),
        ({"body": {"test2": [{"prefix": "us-1"}]}}, {"test2": "us-1-48454"}, {"test2": "eu-wert"}),
    ],
)
def test_recorded_sqs_filters(pattern: object, delivered: object, dropped: object) -> None:
    compiled = matcher(pattern, source=EventSourceKind.SQS)

    def view(item: object) -> dict[str, Any]:
        return sqs_view(sqs_record(item if isinstance(item, str) else json.dumps(item)))

    assert compiled.matches(view(delivered))
    assert not compiled.matches(view(dropped))


@pytest.mark.parametrize(
    ("pattern", "delivered", "dropped"),
    [
        pytest.param(
            {"eventName": ["INSERT"]},
            ddb_record({"id": {"S": "id_value"}}),
            ddb_record({"id": {"S": "id_value"}}, event_name="MODIFY"),
            id="insert_same_entry_twice",
        ),
        pytest.param(
            {"eventName": ["INSERT"], "eventSource": ["aws:dynamodb"]},
            ddb_record({"id": {"S": "id_value"}}),
            ddb_record({"id": {"S": "id_value"}}, event_name="MODIFY"),
            id="content_multiple_filters",
        ),
        pytest.param(
            {"dynamodb": {"NewImage": {"presentKey": {"S": ["presentValue"]}}}},
            ddb_record({"id": {"S": "id_value_1"}, "presentKey": {"S": "presentValue"}}),
            ddb_record({"id": {"S": "id_value_2"}}),
            id="content_filter_type",
        ),
        pytest.param(
            {"dynamodb": {"NewImage": {"presentKey": {"S": [{"exists": True}]}}}},
            ddb_record({"id": {"S": "id_value_1"}, "presentKey": {"S": "presentValue"}}),
            ddb_record({"id": {"S": "id_value_2"}}),
            id="exists_filter_type",
        ),
        pytest.param(
            {
                "dynamodb": {
                    "NewImage": {
                        "numericFilter": {"N": [{"numeric": [">", 100]}, {"anything-but": "101"}]}
                    }
                }
            },
            # N is a string: the numeric rule never holds, anything-but "101" lets 42 in.
            ddb_record({"id": {"S": "id_value_1"}, "numericFilter": {"N": "42"}}),
            ddb_record({"id": {"S": "id_value_2"}, "numericFilter": {"N": "101"}}),
            id="numeric_filter",
        ),
        pytest.param(
            {"dynamodb": {"NewImage": {"prefix": {"S": [{"prefix": "us-1"}]}}}},
            ddb_record({"id": {"S": "id_value_1"}, "prefix": {"S": "us-1-other-suffix"}}),
            ddb_record({"id": {"S": "id_value_1"}, "prefix": {"S": "other-suffix"}}),
            id="prefix_filter",
        ),
    ],
)
def test_recorded_dynamodb_filters(
    pattern: object, delivered: dict[str, Any], dropped: dict[str, Any]
) -> None:
    compiled = matcher(pattern, source=EventSourceKind.DYNAMODB)
    assert compiled.matches(dynamodb_view(delivered))
    assert not compiled.matches(dynamodb_view(dropped))


def test_recorded_dynamodb_filters_that_pass_both_records() -> None:
    either = matcher({"eventName": ["INSERT", "MODIFY"]}, source=EventSourceKind.DYNAMODB)
    assert either.matches(ddb_record({"id": {"S": "a"}}))
    assert either.matches(ddb_record({"id": {"S": "a"}}, event_name="MODIFY"))
    # exists:false on a typed attribute ({"S": ...} is not a leaf) passes records with it too
    absent = matcher({"dynamodb": {"NewImage": {"presentKey": [{"exists": False}]}}})
    assert absent.matches(dynamodb_view(ddb_record({"id": {"S": "id_value_1"}})))
    with_key = {"id": {"S": "id_value_2"}, "presentKey": {"S": "presentValue"}}
    assert absent.matches(dynamodb_view(ddb_record(with_key)))
    # ApproximateCreationDateTime is a JSON number in the record
    created = matcher({"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">", 0]}]}})
    assert created.matches(dynamodb_view(ddb_record({"id": {"S": "id_value_1"}})))


def test_recorded_kinesis_filters() -> None:
    one = matcher({"data": {"event_type": ["function_1"]}}, source=EventSourceKind.KINESIS)
    two = matcher({"data": {"event_type": ["function_2"]}}, source=EventSourceKind.KINESIS)
    record = kinesis_view(kinesis_record(b'{"event_type": "function_1", "message": "foo"}'))
    assert one.matches(record)
    assert not two.matches(record)


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("null", id="None"),
        pytest.param("simple string", id="simple-string"),
        pytest.param('{"eventSource": "aws:sqs"}', id="scalar-value"),
        pytest.param('{"eventSource": []}', id="empty-list"),
        pytest.param("single-string", id="single-string"),
        pytest.param('[{"eventName": ["INSERT"=123}]', id="malformed-json"),
    ],
)
def test_recorded_invalid_patterns(pattern: str) -> None:
    error = refused(pattern)
    assert error.message == INVALID_PATTERN_MESSAGE == str(error)
    assert INVALID_PATTERN_MESSAGE == "Invalid filter pattern definition."


# --- value semantics -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        pytest.param({"n": [{"numeric": [">", 1]}]}, {"n": "5"}, False, id="numeric-string"),
        pytest.param({"n": [{"numeric": [">", 0]}]}, {"n": True}, False, id="numeric-bool"),
        pytest.param({"n": [{"numeric": ["=", 300]}]}, {"n": 300.0}, True, id="numeric-float"),
        pytest.param({"n": [{"numeric": [">=", -5e9]}]}, {"n": -5e9}, True, id="numeric-bound"),
        pytest.param({"n": [{"numeric": ["<", 0.5]}]}, {"n": 0.25}, True, id="numeric-fraction"),
        pytest.param({"n": [5]}, {"n": "5"}, False, id="number-is-not-string"),
        pytest.param({"n": ["5"]}, {"n": 5}, False, id="string-is-not-number"),
        pytest.param({"n": [300]}, {"n": 300.0}, False, id="300-is-not-300.0"),
        pytest.param({"n": [1]}, {"n": True}, False, id="1-is-not-true"),
        pytest.param({"n": [True]}, {"n": 1}, False, id="true-is-not-1"),
        pytest.param({"n": [False]}, {"n": False}, True, id="false"),
        pytest.param({"n": [None]}, {}, False, id="null-is-not-missing"),
        pytest.param({"n": [""]}, {}, False, id="empty-is-not-missing"),
        pytest.param({"s": [{"prefix": "1"}]}, {"s": 12}, False, id="prefix-on-number"),
        pytest.param({"s": [{"suffix": "2"}]}, {"s": 12}, False, id="suffix-on-number"),
        pytest.param({"s": [{"prefix": ""}]}, {"s": "x"}, True, id="empty-prefix"),
        pytest.param({"s": [{"equals-ignore-case": "1"}]}, {"s": 1}, False, id="ignore-case-num"),
        pytest.param({"s": [{"equals-ignore-case": "ÄB"}]}, {"s": "äb"}, True, id="ignore-case-ü"),
        pytest.param({"s": [{"prefix": "Us-"}]}, {"s": "us-east-1"}, False, id="prefix-has-case"),
        pytest.param({"s": [{"exists": True}]}, {"s": None}, True, id="null-exists"),
        pytest.param({"s": [{"exists": True}]}, {"s": {"t": 1}}, False, id="object-not-leaf"),
        pytest.param({"s": ["x", {"exists": False}]}, {}, True, id="or-with-exists-false"),
        pytest.param({"s": ["x", {"exists": False}]}, {"s": "y"}, False, id="or-exists-present"),
    ],
)
def test_value_semantics(pattern: object, event: dict[str, Any], expected: bool) -> None:
    assert matcher(pattern).matches(event) is expected


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        pytest.param({"a": {"b": ["x"]}}, {}, False, id="missing-parent"),
        pytest.param({"a": {"b": ["x"]}}, {"a": "x"}, False, id="parent-is-a-leaf"),
        pytest.param({"a": {"b": ["x"]}}, {"a": {"c": "x"}}, False, id="missing-child"),
        pytest.param({"a": {"b": [{"exists": False}]}}, {}, True, id="exists-false-no-parent"),
        pytest.param({"a": {"b": [{"exists": False}]}}, {"a": 1}, True, id="exists-false-leaf"),
        pytest.param({"a": {"b": [{"exists": True}]}}, {"a": {"b": 0}}, True, id="exists-nested"),
        pytest.param({"a": [{"anything-but": "x"}]}, {}, False, id="anything-but-missing-key"),
        pytest.param({"a": [{"anything-but": "x"}]}, {"a": {"b": 1}}, False, id="anything-but-obj"),
        pytest.param(
            {"a": [{"anything-but": {"prefix": "x"}}]}, {}, False, id="but-prefix-missing"
        ),
        pytest.param({"a": [{"anything-but": "x"}]}, {"a": 5}, True, id="anything-but-other-type"),
        pytest.param({}, {"anything": 1}, True, id="empty-pattern"),
        pytest.param({"a": {}}, {}, True, id="empty-nested-pattern"),
        pytest.param({"a": ["x"]}, {"a": ["y", "x"]}, True, id="array-any-element"),
        pytest.param({"a": ["x"]}, {"a": []}, False, id="empty-array"),
        pytest.param({"a": [{"exists": False}]}, {"a": []}, True, id="empty-array-is-absent"),
        pytest.param({"a": [{"exists": True}]}, {"a": ["v"]}, True, id="array-exists"),
        pytest.param({"a": ["x"]}, {"a": [["y"], [["x"]]]}, True, id="nested-arrays-crushed"),
        pytest.param({"a": [{"prefix": "x"}]}, {"a": [1, "xy"]}, True, id="array-mixed"),
        pytest.param({"a": [{"anything-but": "x"}]}, {"a": ["x", "y"]}, True, id="but-array-some"),
        pytest.param({"a": [{"anything-but": "x"}]}, {"a": ["x"]}, False, id="but-array-only-x"),
        pytest.param({"a": [{"numeric": [">", 5]}]}, {"a": [1, 9]}, True, id="numeric-array"),
        pytest.param({"a": {"b": ["x"]}}, {"a": [{"b": "y"}, {"b": "x"}]}, True, id="obj-array"),
        pytest.param({"a": {"b": ["x"]}}, {"a": [[{"b": "x"}]]}, True, id="obj-nested-array"),
    ],
)
def test_structure_semantics(pattern: object, event: dict[str, Any], expected: bool) -> None:
    assert matcher(pattern).matches(event) is expected


def test_nested_pattern_must_hold_within_one_array_element() -> None:
    employees = {
        "employees": [
            {"firstName": "John", "lastName": "Doe"},
            {"firstName": "Anna", "lastName": "Smith"},
            {"firstName": "Peter", "lastName": "Jones"},
        ]
    }
    assert matcher({"employees": {"firstName": ["Anna"]}}).matches(employees)
    assert matcher({"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}).matches(employees)
    assert not matcher({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}).matches(
        employees
    )


def test_or_alternatives() -> None:
    nested = matcher(
        {"$or": [{"a": ["1"]}, {"$or": [{"b": ["2"]}, {"c": {"d": [{"exists": False}]}}]}]}
    )
    assert nested.matches({"a": "1", "c": {"d": 1}})
    assert nested.matches({"b": "2", "c": {"d": 1}})
    assert nested.matches({"c": {}})
    assert not nested.matches({"a": "0", "b": "0", "c": {"d": 0}})
    inner = matcher({"detail": {"$or": [{"x": [1]}, {"y": [2]}], "z": [3]}})
    assert inner.matches({"detail": {"y": 2, "z": 3}})
    assert not inner.matches({"detail": {"y": 2, "z": 4}})
    assert not inner.matches({"y": 2, "z": 3})


def test_or_that_is_not_a_clause_is_a_field_name() -> None:
    # event-ruler reads "$or" as OR only over 2+ sub-patterns free of operator names
    field = matcher({"$or": [{"prefix": "ab"}, {"suffix": "yz"}]})
    assert field.matches({"$or": "abc"})
    assert not field.matches({"$or": "bcd"})
    assert refused('{"$or": [{"a": ["1"]}]}').message == INVALID_PATTERN_MESSAGE
    assert refused('{"$or": []}').message == INVALID_PATTERN_MESSAGE


@pytest.mark.parametrize(
    ("wildcard", "value", "expected"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "aXbY", False),
        ("*.png", "x.PNG", False),
        ("literal", "literal", True),
        ("literal", "literally", False),
        ("a\\*b", "a*b", True),
        ("a\\*b", "aXb", False),
        ("a\\\\*", "a\\xyz", True),
        ("a\\\\*", "axyz", False),
        ("a.c", "abc", False),
        ("line*", "line1\nline2", True),
    ],
)
def test_wildcard(wildcard: str, value: str, expected: bool) -> None:
    assert matcher({"f": [{"wildcard": wildcard}]}).matches({"f": value}) is expected


def test_wildcard_matches_strings_only() -> None:
    assert not matcher({"f": [{"wildcard": "*"}]}).matches({"f": 5})


@pytest.mark.parametrize(
    ("wildcard", "value", "expected"),
    [
        ("ab*ba", "aba", False),
        ("ab*ba", "abba", True),
        ("a*a*a", "aa", False),
        ("a*a*a", "aaa", True),
        ("*ab*ab*", "xabyab", True),
        ("*ab*ab*", "xaby", False),
        ("\\**", "*", True),
        ("\\**", "*tail", True),
        ("\\**", "tail", False),
    ],
)
def test_wildcard_overlaps_and_escaped_stars(wildcard: str, value: str, expected: bool) -> None:
    assert matcher({"f": [{"wildcard": wildcard}]}).matches({"f": value}) is expected


def test_wildcard_agrees_with_a_regex() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        pattern = "".join(rng.choice("ab*") for _ in range(rng.randint(0, 7)))
        if "**" in pattern:
            continue
        text = "".join(rng.choice("ab") for _ in range(rng.randint(0, 8)))
        regex = ".*".join(re.escape(part) for part in pattern.split("*"))
        compiled = matcher({"f": [{"wildcard": pattern}]})
        assert compiled.matches({"f": text}) is bool(re.fullmatch(regex, text)), (pattern, text)


def test_wildcard_matching_stays_linear() -> None:
    # a regex engine backtracks through every way of placing the stars; this does not
    compiled = matcher({"f": [{"wildcard": "*a" * 1000 + "*c*b"}]})
    started = time.monotonic()
    assert not compiled.matches({"f": "a" * 200_000 + "b"})
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("cidr", "address", "expected"),
    [
        ("10.0.0.0/24", "10.0.0.7", True),
        ("10.0.0.0/24", "10.0.1.7", False),
        ("10.0.0.1/24", "10.0.0.200", True),
        ("2001:db8::/32", "2001:db8::1", True),
        ("2001:db8::/32", "10.0.0.1", False),
        ("10.0.0.0/24", "not an ip", False),
    ],
)
def test_cidr(cidr: str, address: str, expected: bool) -> None:
    assert matcher({"ip": [{"cidr": cidr}]}).matches({"ip": address}) is expected


# --- criteria ----------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, {}, {"Filters": []}, {"Filters": None}])
def test_no_filters_match_everything(empty: dict[str, Any] | None) -> None:
    compiled = compile_criteria(empty, EventSourceKind.SQS)
    assert compiled.filters == ()
    assert compiled.matches({}) and compiled.matches(sqs_view(sqs_record("anything")))


def test_filters_are_ored() -> None:
    compiled = matcher({"a": ["1"]}, {"b": ["2"]})
    assert compiled.matches({"a": "1"}) and compiled.matches({"b": "2"})
    assert not compiled.matches({"a": "2", "b": "1"})


def test_filter_count_limit() -> None:
    assert len(matcher(*[{"a": [i]} for i in range(5)]).filters) == 5
    with pytest.raises(FilterError) as caught:
        matcher(*[{"a": [i]} for i in range(6)])
    assert "limit of 5" in caught.value.message
    raised = compile_criteria(criteria(*[{"a": [i]} for i in range(10)]), max_filters=10)
    assert len(raised.filters) == 10


def test_pattern_length_limit_counts_utf16_units() -> None:
    def padded(text: str, length: int) -> str:
        """A pattern of ``length`` code points, starting its one value with ``text``."""
        frame = '{"k": ["' + text + '"]}'
        return '{"k": ["' + text + "x" * (length - len(frame)) + '"]}'

    assert len(padded("", 4096)) == 4096
    compile_criteria({"Filters": [{"Pattern": padded("", 4096)}]})
    assert refused(padded("", 4097)).message == INVALID_PATTERN_MESSAGE
    emoji = padded("\N{GRINNING FACE}", 4095)  # 4095 code points, 4096 UTF-16 units
    compile_criteria({"Filters": [{"Pattern": emoji}]})
    assert refused(padded("\N{GRINNING FACE}", 4096)).message == INVALID_PATTERN_MESSAGE


def test_nesting_depth_limit() -> None:
    def nested(depth: int) -> str:
        return '{"a":' * (depth - 1) + '{"a": ["x"]}' + "}" * (depth - 1)

    compile_criteria({"Filters": [{"Pattern": nested(64)}]})
    assert "deeper" in refused(nested(65)).reason
    assert refused("[" * 3000 + "]" * 3000).message == INVALID_PATTERN_MESSAGE


@pytest.mark.parametrize(
    "filters",
    [
        pytest.param({"Filters": [{}]}, id="no-pattern"),
        pytest.param({"Filters": [{"Pattern": None}]}, id="null-pattern"),
        pytest.param({"Filters": [{"Pattern": {"a": ["1"]}}]}, id="pattern-not-a-string"),
        pytest.param({"Filters": ["{}"]}, id="filter-not-an-object"),
        pytest.param({"Filters": {"Pattern": "{}"}}, id="filters-not-a-list"),
        pytest.param({"Filters": [{"Pattern": ""}]}, id="empty-pattern-string"),
    ],
)
def test_malformed_criteria(filters: dict[str, Any]) -> None:
    with pytest.raises(FilterError) as caught:
        compile_criteria(filters)
    assert caught.value.message == INVALID_PATTERN_MESSAGE


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param('["a"]', id="array-pattern"),
        pytest.param('{"a": "x"}', id="scalar"),
        pytest.param('{"a": 1}', id="number"),
        pytest.param('{"a": null}', id="null"),
        pytest.param('{"a": [["x"]]}', id="nested-list"),
        pytest.param('{"a": [{}]}', id="empty-rule"),
        pytest.param('{"a": [{"prefix": "x", "suffix": "y"}]}', id="two-operators"),
        pytest.param('{"a": [{"contains": "x"}]}', id="unknown-operator"),
        pytest.param('{"a": [{"b": ["x"]}]}', id="object-in-rules"),
        pytest.param('{"a": [NaN]}', id="nan"),
        pytest.param('{"a": [{"exists": "true"}]}', id="exists-string"),
        pytest.param('{"a": [{"prefix": 1}]}', id="prefix-number"),
        pytest.param('{"a": [{"prefix": {"equals-ignore-case": 1}}]}', id="prefix-ignore-case-num"),
        pytest.param('{"a": [{"prefix": {"ignore-case": "x"}}]}', id="prefix-bad-object"),
        pytest.param('{"a": [{"suffix": null}]}', id="suffix-null"),
        pytest.param('{"a": [{"equals-ignore-case": ["x"]}]}', id="ignore-case-list"),
        pytest.param('{"a": [{"wildcard": "a**b"}]}', id="wildcard-consecutive"),
        pytest.param('{"a": [{"wildcard": "a\\\\xb"}]}', id="wildcard-bad-escape"),
        pytest.param('{"a": [{"wildcard": "ab\\\\"}]}', id="wildcard-trailing-escape"),
        pytest.param('{"a": [{"wildcard": 5}]}', id="wildcard-number"),
        pytest.param('{"a": [{"anything-but": null}]}', id="anything-but-null"),
        pytest.param('{"a": [{"anything-but": true}]}', id="anything-but-bool"),
        pytest.param('{"a": [{"anything-but": []}]}', id="anything-but-empty"),
        pytest.param('{"a": [{"anything-but": ["x", 1]}]}', id="anything-but-mixed"),
        pytest.param('{"a": [{"anything-but": [null]}]}', id="anything-but-null-list"),
        pytest.param('{"a": [{"anything-but": {"numeric": [">", 1]}}]}', id="anything-but-num"),
        pytest.param('{"a": [{"anything-but": {"prefix": 1}}]}', id="anything-but-prefix-num"),
        pytest.param('{"a": [{"anything-but": {"prefix": "a", "suffix": "b"}}]}', id="but-two"),
        pytest.param('{"a": [{"anything-but": {"wildcard": []}}]}', id="anything-but-no-wild"),
        pytest.param('{"a": [{"anything-but": {"equals-ignore-case": 1}}]}', id="but-ic-num"),
        pytest.param('{"a": [{"numeric": []}]}', id="numeric-empty"),
        pytest.param('{"a": [{"numeric": [">"]}]}', id="numeric-no-bound"),
        pytest.param('{"a": [{"numeric": [">", 1, "<"]}]}', id="numeric-odd"),
        pytest.param('{"a": [{"numeric": ["!=", 1]}]}', id="numeric-bad-operator"),
        pytest.param('{"a": [{"numeric": [">", "1"]}]}', id="numeric-string-bound"),
        pytest.param('{"a": [{"numeric": [">", true]}]}', id="numeric-bool-bound"),
        pytest.param('{"a": [{"numeric": [">", 5000000001]}]}', id="numeric-too-big"),
        pytest.param('{"a": [{"numeric": ["<", -5.1e9]}]}', id="numeric-too-small"),
        pytest.param('{"a": [{"numeric": [">", 5, "<", 5]}]}', id="numeric-empty-range"),
        pytest.param('{"a": [{"numeric": [">", 5, "<", 1]}]}', id="numeric-inverted-range"),
        pytest.param('{"a": [{"numeric": [">", 1, ">=", 2]}]}', id="numeric-two-lower"),
        pytest.param('{"a": [{"numeric": ["=", 1, "<", 2]}]}', id="numeric-equals-pair"),
        pytest.param('{"a": [{"numeric": ">"}]}', id="numeric-not-list"),
        pytest.param('{"a": [{"cidr": "10.0.0.0/33"}]}', id="cidr-bad"),
        pytest.param('{"a": [{"cidr": 10}]}', id="cidr-number"),
        pytest.param('{"a": {"b": "x"}}', id="nested-scalar"),
    ],
)
def test_invalid_patterns(pattern: str) -> None:
    error = refused(pattern)
    assert error.message == INVALID_PATTERN_MESSAGE
    assert error.reason


def test_numeric_range_bounds_may_come_in_either_order() -> None:
    compiled = matcher({"a": [{"numeric": ["<=", 5, ">", 0]}]})
    assert compiled.matches({"a": 5}) and not compiled.matches({"a": 0})


# --- each source's data key --------------------------------------------------------------

SQS = EventSourceKind.SQS


@pytest.mark.parametrize(
    ("pattern", "body", "expected"),
    [
        # Lambda's table: incoming body format x filter pattern body format
        pytest.param({"body": ["plain text"]}, "plain text", True, id="plain-plain"),
        pytest.param({"body": [{"prefix": "plain"}]}, "plain text", True, id="plain-prefix"),
        pytest.param({"body": ["other"]}, "plain text", False, id="plain-plain-miss"),
        pytest.param(
            {"attributes": {"ApproximateReceiveCount": ["1"]}}, "plain", True, id="plain-none"
        ),
        pytest.param({"body": {"a": ["1"]}}, "plain text", False, id="plain-json"),
        pytest.param({"body": {"a": [{"exists": False}]}}, "x", False, id="plain-json-absent"),
        pytest.param({"body": [{"prefix": "{"}]}, '{"a": "1"}', False, id="json-plain"),
        pytest.param({"body": [{"exists": False}]}, '{"a": "1"}', False, id="json-plain-absent"),
        pytest.param({"body": [{"exists": True}]}, '{"a": "1"}', False, id="json-plain-exists"),
        pytest.param(
            {"attributes": {"ApproximateReceiveCount": ["1"]}}, '{"a": 1}', True, id="json-none"
        ),
        pytest.param({"body": {"a": ["1"]}}, '{"a": "1"}', True, id="json-json"),
        pytest.param({"body": {"a": ["1"]}}, '[{"a": "2"}, {"a": "1"}]', True, id="json-array"),
        pytest.param({"body": ["123"]}, "123", True, id="json-scalar-is-plain"),
        pytest.param({"body": {"a": ["1"]}}, "NaN", False, id="nan-is-plain"),
        pytest.param({"body": {"a": ["1"]}}, '{"a": "1"', False, id="broken-json-is-plain"),
        pytest.param(
            {"$or": [{"body": {"a": ["1"]}}, {"body": ["raw"]}]}, "raw", True, id="or-plain"
        ),
        pytest.param(
            {"$or": [{"body": {"a": ["1"]}}, {"body": ["raw"]}]}, '{"a": "1"}', True, id="or-json"
        ),
        pytest.param(
            {"$or": [{"body": {"a": ["1"]}}, {"body": ["raw"]}]}, "x", False, id="or-miss"
        ),
    ],
)
def test_sqs_body_format_rules(pattern: object, body: str, expected: bool) -> None:
    assert matcher(pattern, source=SQS).matches(sqs_view(sqs_record(body))) is expected


def test_format_rules_apply_to_the_top_level_data_key_only() -> None:
    nested = matcher({"attributes": {"body": ["x"]}}, source=SQS)
    assert nested.matches({"attributes": {"body": "x"}, "body": {"a": 1}})
    # without a source a pattern is plain EventBridge: an object body is simply not "x"
    generic = matcher({"body": [{"exists": False}]})
    assert generic.matches(sqs_view(sqs_record('{"a": 1}')))


@pytest.mark.parametrize("source", [EventSourceKind.KINESIS, EventSourceKind.DYNAMODB])
@pytest.mark.parametrize(
    "data_pattern", [["x"], [{"prefix": "x"}], [{"exists": True}], [{"exists": False}]]
)
def test_stream_data_patterns_must_be_objects(
    source: EventSourceKind, data_pattern: object
) -> None:
    pattern = json.dumps({source.data_key: data_pattern})
    assert refused(pattern, source).message == INVALID_PATTERN_MESSAGE
    in_or = json.dumps({"$or": [{"eventName": ["INSERT"]}, {source.data_key: data_pattern}]})
    assert refused(in_or, source).message == INVALID_PATTERN_MESSAGE
    compile_criteria({"Filters": [{"Pattern": pattern}]})  # fine for SQS or no source
    compile_criteria({"Filters": [{"Pattern": pattern}]}, EventSourceKind.SQS)


def test_kinesis_non_json_data() -> None:
    text = kinesis_view(kinesis_record(b"plain text, not JSON", partition_key="7"))
    assert text["data"] == base64.b64encode(b"plain text, not JSON").decode()
    kinesis = EventSourceKind.KINESIS
    assert not matcher({"data": {"a": [{"exists": False}]}}, source=kinesis).matches(text)
    assert matcher({"partitionKey": ["7"]}, source=kinesis).matches(text)
    for data in (b"123", b'"a string"', b"\xff\xfe{}", b"{broken"):
        assert not isinstance(kinesis_view(kinesis_record(data))["data"], dict | list)


def test_kinesis_view_lifts_the_kinesis_object() -> None:
    record = kinesis_record(b'{"k": [1, 2]}')
    view = kinesis_view(record)
    assert view["data"] == {"k": [1, 2]}
    assert view["partitionKey"] == "1"
    assert view["eventSource"] == "aws:kinesis"
    assert "kinesis" not in view
    assert record["kinesis"]["data"] == base64.b64encode(b'{"k": [1, 2]}').decode()
    flat = kinesis_view({"partitionKey": "1", "data": base64.b64encode(b"[1]").decode()})
    assert flat == {"partitionKey": "1", "data": [1]}
    assert kinesis_view({"kinesis": {"partitionKey": "1"}}) == {"partitionKey": "1"}
    not_base64 = kinesis_view({"data": "not base64!"})
    assert not_base64 == {"data": "not base64!"}


def test_sqs_view_leaves_the_record_alone() -> None:
    record = sqs_record('{"a": {"b": [1]}}')
    view = sqs_view(record)
    assert view["body"] == {"a": {"b": [1]}}
    assert record["body"] == '{"a": {"b": [1]}}'
    assert {k: v for k, v in view.items() if k != "body"} == {
        k: v for k, v in record.items() if k != "body"
    }
    assert sqs_view({"messageId": "m"}) == {"messageId": "m"}
    deep = "[" * 100_000 + "]" * 100_000
    assert sqs_view(sqs_record(deep))["body"] == deep


def test_dynamodb_view_is_the_record() -> None:
    record = ddb_record({"id": {"S": "x"}})
    view = dynamodb_view(record)
    assert view == record and view is not record


def test_dynamodb_numbers_are_strings() -> None:
    numeric = matcher({"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">", 1]}]}}}})
    assert not numeric.matches(dynamodb_view(ddb_record({"n": {"N": "5"}})))
    exact = matcher({"dynamodb": {"NewImage": {"n": {"N": ["5"]}}}})
    assert exact.matches(dynamodb_view(ddb_record({"n": {"N": "5"}})))
