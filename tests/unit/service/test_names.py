from __future__ import annotations

import pytest

from lambdaplane.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    ResourceNotFoundException,
)
from lambdaplane.service.names import FunctionRef, Scope

SCOPE = Scope(region="us-east-1", account_id="123456789012")


@pytest.mark.parametrize(
    ("value", "qualifier", "expected"),
    [
        ("fn", None, FunctionRef("fn", None)),
        ("fn:1", None, FunctionRef("fn", "1")),
        ("fn:$LATEST", "$LATEST", FunctionRef("fn", "$LATEST")),
        ("fn", "prod", FunctionRef("fn", "prod")),
        ("123456789012:function:fn", None, FunctionRef("fn", None)),
        ("function:fn", None, FunctionRef("fn", None)),
        ("arn:aws:lambda:us-east-1:123456789012:function:fn", None, FunctionRef("fn", None)),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:fn:alias",
            None,
            FunctionRef("fn", "alias"),
        ),
        ("arn:aws:lambda:us-east-1:123456789012:function", None, FunctionRef("function", None)),
    ],
)
def test_parse(value: str, qualifier: str | None, expected: FunctionRef) -> None:
    assert SCOPE.parse(value, qualifier) == expected


def test_foreign_region_and_account() -> None:
    with pytest.raises(ResourceNotFoundException) as exc:
        SCOPE.parse("arn:aws:lambda:eu-west-1:123456789012:function:fn")
    assert (
        exc.value.message
        == "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    )
    with pytest.raises(AccessDeniedException):
        SCOPE.parse("arn:aws:lambda:us-east-1:999999999999:function:fn")


def test_qualifier_mismatch() -> None:
    with pytest.raises(InvalidParameterValueException) as exc:
        SCOPE.parse("fn:1", "2")
    assert exc.value.message == (
        "The derived qualifier from the function name does not match the specified qualifier."
    )


def test_arns() -> None:
    assert SCOPE.function_arn("fn") == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert SCOPE.function_arn("fn", "1").endswith(":function:fn:1")
    assert SCOPE.not_found("fn").body() == {
        "Type": "User",
        "Message": "Function not found: arn:aws:lambda:us-east-1:123456789012:function:fn",
    }
