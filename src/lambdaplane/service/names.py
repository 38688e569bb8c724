"""Function names as Lambda accepts them: a name, a partial ARN or a full ARN, plus a qualifier.

The model's pattern has already been checked by the API layer; this module splits a
valid value into its parts and applies the rules AWS applies after the pattern:
the region and account must be ours, and a qualifier in the name must agree with
the ``Qualifier`` parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambdaplane.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    ResourceNotFoundException,
)

_NAME = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d{1}):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9\-_\.]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9\-_]+))?"
)

MAX_NAME_LENGTH = 64
QUALIFIER_MISMATCH = (
    "The derived qualifier from the function name does not match the specified qualifier."
)


@dataclass(frozen=True)
class FunctionRef:
    """A function named by an API call: its bare name and optional qualifier."""

    name: str
    qualifier: str | None


@dataclass(frozen=True)
class Scope:
    """The account and region this server answers for; builds ARNs."""

    region: str
    account_id: str
    partition: str = "aws"

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:{self.partition}:lambda:{self.region}:{self.account_id}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    def not_found(self, name: str, qualifier: str | None = None) -> ResourceNotFoundException:
        return ResourceNotFoundException(
            f"Function not found: {self.function_arn(name, qualifier)}"
        )

    def parse(self, value: str, qualifier: str | None = None) -> FunctionRef:
        """Split ``value`` into name and qualifier; raise AWS's errors for foreign or mismatched ones."""
        match = _NAME.fullmatch(value)
        if match is None:  # The API layer validates the pattern first; this is a guard.
            raise self.not_found(value)
        region, account = match.group("region"), match.group("account")
        if region is not None and region != self.region:
            raise ResourceNotFoundException(
                f"Functions from '{region}' are not reachable in this region ('{self.region}')"
            )
        if account is not None and account != self.account_id:
            raise AccessDeniedException(None)
        derived = match.group("qualifier")
        if derived is not None and qualifier is not None and derived != qualifier:
            raise InvalidParameterValueException(QUALIFIER_MISMATCH)
        return FunctionRef(match.group("name"), derived if derived is not None else qualifier)
