"""Destination ARNs parse into typed targets; anything else is refused."""

from __future__ import annotations

import pytest

from lambdaplane.asyncinvoke.dest_arns import (
    EventBusTarget,
    FunctionTarget,
    QueueTarget,
    TopicTarget,
    parse_target,
)


@pytest.mark.parametrize(
    ("arn", "target"),
    [
        (
            "arn:aws:lambda:us-east-1:111111111111:function:next",
            FunctionTarget("arn:aws:lambda:us-east-1:111111111111:function:next"),
        ),
        (
            "arn:aws:lambda:us-east-1:111111111111:function:next:live",
            FunctionTarget("arn:aws:lambda:us-east-1:111111111111:function:next:live"),
        ),
        (
            "arn:aws:sqs:eu-west-1:111111111111:failures",
            QueueTarget("arn:aws:sqs:eu-west-1:111111111111:failures", "111111111111", "failures"),
        ),
        (
            "arn:aws-cn:sns:cn-north-1:111111111111:alerts",
            TopicTarget("arn:aws-cn:sns:cn-north-1:111111111111:alerts"),
        ),
        (
            "arn:aws:events:us-east-1:111111111111:event-bus/default",
            EventBusTarget("arn:aws:events:us-east-1:111111111111:event-bus/default"),
        ),
    ],
)
def test_destination_kinds(arn: str, target: object) -> None:
    assert parse_target(arn) == target


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "failures",
        "arn:aws:sqs:us-east-1:111111111111",
        "arn:aws:sqs:us-east-1:111111111111:",
        "arn:aws:sqs:us-east-1::failures",
        "arn:aws:lambda:us-east-1:111111111111:layer:l:1",
        "arn:aws:lambda:us-east-1:111111111111:function:",
        "arn:aws:sns:us-east-1:111111111111:alerts:6f1c2b7e-subscription",
        "arn:aws:events:us-east-1:111111111111:rule/r",
        "arn:aws:s3:::bucket",
        "urn:aws:sqs:us-east-1:111111111111:q",
    ],
)
def test_other_arns_are_refused(arn: str) -> None:
    with pytest.raises(ValueError):
        parse_target(arn)
