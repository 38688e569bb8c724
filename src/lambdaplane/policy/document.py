"""Policy statements as AWS Lambda writes them (AddPermission, GetPolicy).

A statement's keys come in AWS's order: Sid, Effect, Principal, Action, Resource, then
Condition, which holds ``StringEquals`` (AWS:SourceAccount, lambda:FunctionUrlAuthType,
aws:PrincipalOrgID, lambda:EventSourceToken, each only when given) and then ``ArnLike``
(AWS:SourceArn). Documents are serialised compactly, as AWS sends them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lambdaplane.errors import InvalidParameterValueException

INVALID_PRINCIPAL = "The provided principal was invalid. Please check the principal and try again."
POLICY_VERSION = "2012-10-17"

_ACCOUNT = re.compile(r"\d{12}")
# An IAM principal ARN: the account's root, a user, a role, or an STS assumed role.
_PRINCIPAL_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:(?:iam::\d{12}:(?:root|user/\S+|role/\S+)|sts::\d{12}:assumed-role/\S+)"
)
# A service principal: a DNS name of an AWS (or Amazon) service.
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*\.(?:amazonaws\.com(?:\.cn)?|amazon\.com)")

# Request member → condition key, in the order AWS writes them under StringEquals.
_STRING_EQUALS = (
    ("SourceAccount", "AWS:SourceAccount"),
    ("FunctionUrlAuthType", "lambda:FunctionUrlAuthType"),
    ("PrincipalOrgID", "aws:PrincipalOrgID"),
    ("EventSourceToken", "lambda:EventSourceToken"),
)


def principal_element(principal: str, partition: str = "aws") -> str | dict[str, str]:
    """The statement's Principal for AddPermission's ``Principal``; raises AWS's error for
    anything that is not ``*``, an account id, an IAM principal ARN or a service."""
    if principal == "*":
        return "*"
    if _ACCOUNT.fullmatch(principal):
        return {"AWS": f"arn:{partition}:iam::{principal}:root"}
    if _PRINCIPAL_ARN.fullmatch(principal):
        return {"AWS": principal}
    if _SERVICE.fullmatch(principal):
        return {"Service": principal}
    raise InvalidParameterValueException(INVALID_PRINCIPAL)


def build_statement(
    request: Mapping[str, Any], resource_arn: str, partition: str = "aws"
) -> dict[str, Any]:
    """The statement AddPermission adds for ``request`` on ``resource_arn`` (the ARN the
    policy belongs to: the function's, or qualified by the version or alias)."""
    statement: dict[str, Any] = {
        "Sid": request["StatementId"],
        "Effect": "Allow",
        "Principal": principal_element(request["Principal"], partition),
        "Action": request["Action"],
        "Resource": resource_arn,
    }
    condition: dict[str, dict[str, str]] = {}
    equals = {key: request[member] for member, key in _STRING_EQUALS if request.get(member)}
    if equals:
        condition["StringEquals"] = equals
    if request.get("SourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": request["SourceArn"]}
    if request.get("InvokedViaFunctionUrl"):
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    if condition:
        statement["Condition"] = condition
    return statement


def render_statement(statement: Mapping[str, Any]) -> str:
    """A statement as AddPermission's ``Statement`` string."""
    return _json(statement)


def render_policy(statements: Sequence[Mapping[str, Any]]) -> str:
    """A policy document as GetPolicy's ``Policy`` string."""
    return _json({"Version": POLICY_VERSION, "Id": "default", "Statement": list(statements)})


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
