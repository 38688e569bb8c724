"""Statements and policies rendered as AWS renders them."""

from __future__ import annotations

import json

import pytest

from lambdaplane.errors import InvalidParameterValueException
from lambdaplane.policy.document import (
    INVALID_PRINCIPAL,
    build_statement,
    principal_element,
    render_policy,
    render_statement,
)

FN = "arn:aws:lambda:us-east-1:000000000000:function:f"


@pytest.mark.parametrize(
    ("principal", "element"),
    [
        ("*", "*"),
        ("111122223333", {"AWS": "arn:aws:iam::111122223333:root"}),
        ("arn:aws:iam::111122223333:user/alice", {"AWS": "arn:aws:iam::111122223333:user/alice"}),
        ("arn:aws:iam::111122223333:role/r", {"AWS": "arn:aws:iam::111122223333:role/r"}),
        ("arn:aws:iam::111122223333:root", {"AWS": "arn:aws:iam::111122223333:root"}),
        ("s3.amazonaws.com", {"Service": "s3.amazonaws.com"}),
        ("alexa-appkit.amazon.com", {"Service": "alexa-appkit.amazon.com"}),
    ],
)
def test_principals(principal: str, element: object) -> None:
    assert principal_element(principal) == element


@pytest.mark.parametrize(
    "principal", ["invalid.nonaws.com", "1234", "arn:aws:s3:::bucket", "someone", "o-1234567890"]
)
def test_invalid_principals(principal: str) -> None:
    with pytest.raises(InvalidParameterValueException) as info:
        principal_element(principal)
    assert info.value.message == INVALID_PRINCIPAL


def test_minimal_statement_in_aws_order() -> None:
    statement = build_statement(
        {"StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "111122223333"}, FN
    )
    assert render_statement(statement) == (
        '{"Sid":"s","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},'
        f'"Action":"lambda:InvokeFunction","Resource":"{FN}"}}'
    )


def test_every_condition_in_aws_order() -> None:
    request = {
        "StatementId": "url",
        "Action": "lambda:InvokeFunctionUrl",
        "Principal": "*",
        # given in another order than AWS writes them
        "EventSourceToken": "tok",
        "PrincipalOrgID": "o-1234567890",
        "SourceArn": "arn:aws:s3:::bucket",
        "FunctionUrlAuthType": "NONE",
        "SourceAccount": "111122223333",
    }
    condition = build_statement(request, FN)["Condition"]
    assert list(condition) == ["StringEquals", "ArnLike"]
    assert list(condition["StringEquals"]) == [
        "AWS:SourceAccount",
        "lambda:FunctionUrlAuthType",
        "aws:PrincipalOrgID",
        "lambda:EventSourceToken",
    ]
    assert condition["ArnLike"] == {"AWS:SourceArn": "arn:aws:s3:::bucket"}


def test_policy_document() -> None:
    statement = build_statement(
        {"StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "*"}, FN
    )
    text = render_policy([statement])
    assert text.startswith('{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"s"')
    assert json.loads(text)["Statement"] == [statement]
