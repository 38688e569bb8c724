"""Evaluating statements: principals, actions and conditions."""

from __future__ import annotations

from typing import Any

import pytest

from lambdaplane.auth.keys import Identity
from lambdaplane.policy import Request, allows, build_statement

FN = "arn:aws:lambda:us-east-1:000000000000:function:f"
ROOT = Identity("AKIAROOT", "111122223333", "arn:aws:iam::111122223333:root")
ALICE = Identity(
    "AKIAALICE", "111122223333", "arn:aws:iam::111122223333:user/alice", "o-aaaaaaaaaa"
)
BOB = Identity("AKIABOB", "444455556666", "arn:aws:iam::444455556666:user/bob")
INVOKE = "lambda:InvokeFunction"


def statement(principal: str, action: str = INVOKE, **conditions: str) -> dict[str, Any]:
    request = {"StatementId": "s", "Action": action, "Principal": principal, **conditions}
    return build_statement(request, FN)


def test_no_statements_allow_nothing() -> None:
    assert not allows([], Request(INVOKE, ALICE))
    assert not allows([], Request(INVOKE, None))


def test_account_root_stands_for_every_principal_of_the_account() -> None:
    granted = [statement("111122223333")]
    assert allows(granted, Request(INVOKE, ROOT))
    assert allows(granted, Request(INVOKE, ALICE))
    assert not allows(granted, Request(INVOKE, BOB))
    assert not allows(granted, Request(INVOKE, None))


def test_a_user_arn_matches_that_user_only() -> None:
    granted = [statement("arn:aws:iam::111122223333:user/alice")]
    assert allows(granted, Request(INVOKE, ALICE))
    assert not allows(granted, Request(INVOKE, ROOT))
    assert not allows([statement("arn:aws:iam::111122223333:user/carol")], Request(INVOKE, ALICE))


def test_wildcard_principal_matches_anyone_even_anonymous() -> None:
    granted = [statement("*")]
    assert allows(granted, Request(INVOKE, BOB))
    assert allows(granted, Request(INVOKE, None))


def test_service_principals_never_match_key_callers() -> None:
    granted = [statement("s3.amazonaws.com")]
    assert not allows(granted, Request(INVOKE, ALICE))
    assert not allows(granted, Request(INVOKE, None))


@pytest.mark.parametrize(
    ("granted", "asked", "expected"),
    [
        (INVOKE, INVOKE, True),
        (INVOKE, "lambda:invokefunction", True),  # IAM compares actions case-insensitively
        ("lambda:*", INVOKE, True),
        ("*", "lambda:InvokeFunctionUrl", True),
        (INVOKE, "lambda:InvokeFunctionUrl", False),
        ("lambda:GetFunction", INVOKE, False),
        ("lambda:Invoke*", "lambda:InvokeFunctionUrl", True),
    ],
)
def test_actions(granted: str, asked: str, expected: bool) -> None:
    assert allows([statement("*", granted)], Request(asked, ALICE)) is expected


def test_org_condition_matches_the_callers_organization() -> None:
    granted = [statement("*", PrincipalOrgID="o-aaaaaaaaaa")]
    assert allows(granted, Request(INVOKE, ALICE))
    assert not allows(granted, Request(INVOKE, BOB))  # in no organization
    assert not allows(granted, Request(INVOKE, None))


def test_url_auth_type_condition_applies_to_url_invocations_only() -> None:
    granted = [statement("*", "lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE")]
    url = "lambda:InvokeFunctionUrl"
    assert allows(granted, Request(url, None, url_auth_type="NONE"))
    assert not allows(granted, Request(url, None, url_auth_type="AWS_IAM"))
    assert not allows(granted, Request(url, None))  # not through a URL


def test_invoked_via_url_condition() -> None:
    granted = [statement("*", InvokedViaFunctionUrl="true")]
    assert granted[0]["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
    assert allows(granted, Request(INVOKE, None, url_auth_type="NONE"))
    assert not allows(granted, Request(INVOKE, ALICE))


def test_source_conditions() -> None:
    granted = [statement("*", SourceAccount="111122223333", SourceArn="arn:aws:s3:::bucket-*-logs")]
    assert allows(
        granted,
        Request(
            INVOKE, ALICE, source_account="111122223333", source_arn="arn:aws:s3:::bucket-a-logs"
        ),
    )
    assert not allows(
        granted,
        Request(INVOKE, ALICE, source_account="111122223333", source_arn="arn:aws:s3:::other"),
    )
    assert not allows(granted, Request(INVOKE, ALICE, source_arn="arn:aws:s3:::bucket-a-logs"))
    # ? is exactly one character
    single = [statement("*", SourceArn="arn:aws:s3:::b?")]
    assert allows(single, Request(INVOKE, ALICE, source_arn="arn:aws:s3:::b1"))
    assert not allows(single, Request(INVOKE, ALICE, source_arn="arn:aws:s3:::b12"))


def test_event_source_token_needs_the_token() -> None:
    granted = [statement("*", EventSourceToken="amzn1.ask.skill.x")]
    assert not allows(granted, Request(INVOKE, ALICE))
    assert allows(granted, Request(INVOKE, ALICE, event_source_token="amzn1.ask.skill.x"))


def test_an_applying_deny_wins() -> None:
    deny = {**statement("arn:aws:iam::111122223333:user/alice"), "Effect": "Deny"}
    granted = [statement("111122223333"), deny]
    assert allows(granted, Request(INVOKE, ROOT))
    assert not allows(granted, Request(INVOKE, ALICE))


def test_unknown_operators_and_keys_fail_closed() -> None:
    odd = {**statement("*"), "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}}
    assert not allows([odd], Request(INVOKE, ALICE))
    unknown_key = {**statement("*"), "Condition": {"StringEquals": {"aws:UserAgent": "x"}}}
    assert not allows([unknown_key], Request(INVOKE, ALICE))
