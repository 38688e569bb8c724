"""Whether a resource-based policy allows a request: a pure function of its statements.

A statement applies when its Principal, Action and every Condition match; an explicit
Deny that applies wins over any Allow, and nothing applying means no. What is matched:

- Principal ``*`` matches anyone, anonymous callers too; ``{"AWS": ...}`` matches the
  caller's own ARN, or the root of the caller's account (which stands for every
  principal of that account); ``{"Service": ...}`` matches no key-authenticated or
  anonymous caller (no AWS service calls lambdaplane).
- Action: exact (case-insensitive, as IAM compares actions) or with ``*``/``?`` wildcards
  (``lambda:*``, ``*``).
- Conditions: StringEquals/StringNotEquals/StringLike/ArnLike/ArnEquals/Bool over the
  keys this request has: AWS:SourceAccount, AWS:SourceArn, aws:PrincipalOrgID,
  aws:PrincipalAccount, aws:PrincipalArn, lambda:FunctionUrlAuthType,
  lambda:InvokedViaFunctionUrl, lambda:EventSourceToken. A key the request lacks fails
  its condition, so a statement conditioned on lambda:FunctionUrlAuthType applies to
  function URL invocations only. Unknown operators fail too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lambdaplane.auth.keys import Identity


@dataclass(frozen=True)
class Request:
    """What is being asked: ``action`` by ``caller`` (None: anonymous, a URL with auth
    type NONE), through a function URL of ``url_auth_type`` when that is set."""

    action: str
    caller: Identity | None
    url_auth_type: str | None = None
    source_arn: str | None = None
    source_account: str | None = None
    event_source_token: str | None = None

    def context(self, key: str) -> str | None:
        """The value of condition key ``key`` for this request (keys are case-insensitive)."""
        caller = self.caller
        values: dict[str, str | None] = {
            "aws:sourceaccount": self.source_account,
            "aws:sourcearn": self.source_arn,
            "aws:principalorgid": caller.org_id if caller else None,
            "aws:principalaccount": caller.account_id if caller else None,
            "aws:principalarn": caller.arn if caller else None,
            "lambda:functionurlauthtype": self.url_auth_type,
            "lambda:invokedviafunctionurl": "true" if self.url_auth_type else "false",
            "lambda:eventsourcetoken": self.event_source_token,
        }
        return values.get(key.lower())


def allows(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    """True when some Allow statement applies to ``request`` and no Deny statement does."""
    allowed = False
    for statement in statements:
        if not _applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    return (
        _principal_matches(statement.get("Principal"), request.caller)
        and any(_like(a, request.action, fold=True) for a in _values(statement.get("Action")))
        and _conditions_hold(statement.get("Condition") or {}, request)
    )


def _principal_matches(principal: Any, caller: Identity | None) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if any(p == "*" for p in _values(principal.get("AWS"))):
        return True
    if caller is None:
        return False
    root = f"arn:{_partition(caller.arn)}:iam::{caller.account_id}:root"
    return any(p in (caller.arn, root, caller.account_id) for p in _values(principal.get("AWS")))


def _conditions_hold(condition: Mapping[str, Any], request: Request) -> bool:
    for operator, tests in condition.items():
        if not isinstance(tests, Mapping):
            return False
        for key, expected in tests.items():
            if not _test(operator, request.context(key), _values(expected)):
                return False
    return True


def _test(operator: str, actual: str | None, expected: list[str]) -> bool:
    if operator == "StringNotEquals":
        return actual is None or actual not in expected
    if actual is None:
        return False
    if operator in ("StringEquals", "ArnEquals"):
        return actual in expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() in (e.lower() for e in expected)
    if operator in ("StringLike", "ArnLike"):
        return any(_like(e, actual) for e in expected)
    if operator == "Bool":
        return actual.lower() in (e.lower() for e in expected)
    return False


def _like(pattern: str, value: str, fold: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` exactly one."""
    return _compiled(pattern, fold).fullmatch(value) is not None


@lru_cache(maxsize=1024)
def _compiled(pattern: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def _values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _partition(arn: str) -> str:
    parts = arn.split(":", 2)
    return parts[1] if len(parts) > 2 and parts[0] == "arn" else "aws"
