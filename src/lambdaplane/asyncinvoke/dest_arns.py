"""Destination ARNs parsed into the four kinds of target Lambda sends invocation outcomes to.

Parsing happens once, at the edge of the router: what follows dispatches on a closed set
of typed targets and never looks at ARN text again.
"""

from __future__ import annotations

from dataclasses import dataclass

_ARN_PARTS = 6  # arn:partition:service:region:account:resource


@dataclass(frozen=True)
class FunctionTarget:
    """A Lambda function, qualified or not: it is invoked asynchronously with the record."""

    arn: str


@dataclass(frozen=True)
class QueueTarget:
    """An SQS queue, addressed by name and owning account (SQS calls need its URL)."""

    arn: str
    account: str
    name: str


@dataclass(frozen=True)
class TopicTarget:
    """An SNS topic; SNS takes the ARN itself."""

    arn: str


@dataclass(frozen=True)
class EventBusTarget:
    """An EventBridge event bus; PutEvents takes the ARN as ``EventBusName``."""

    arn: str


Target = FunctionTarget | QueueTarget | TopicTarget | EventBusTarget


def parse_target(arn: str) -> Target:
    """The target an ARN names; ValueError for anything that is not a function, queue,
    topic or event bus ARN."""
    parts = arn.split(":", _ARN_PARTS - 1)
    if len(parts) != _ARN_PARTS or parts[0] != "arn" or not parts[1].startswith("aws"):
        raise ValueError(f"not an ARN: {arn!r}")
    _, _, service, _, account, resource = parts
    if not resource:
        raise ValueError(f"ARN names no resource: {arn!r}")
    if service == "lambda":
        kind, _, rest = resource.partition(":")
        if kind != "function" or not rest:
            raise ValueError(f"not a Lambda function ARN: {arn!r}")
        return FunctionTarget(arn)
    if service == "sqs":
        if not account or "/" in resource or ":" in resource:
            raise ValueError(f"not an SQS queue ARN: {arn!r}")
        return QueueTarget(arn, account, resource)
    if service == "sns":
        if ":" in resource:  # a subscription ARN, not a topic
            raise ValueError(f"not an SNS topic ARN: {arn!r}")
        return TopicTarget(arn)
    if service == "events":
        kind, _, name = resource.partition("/")
        if kind != "event-bus" or not name:
            raise ValueError(f"not an EventBridge event bus ARN: {arn!r}")
        return EventBusTarget(arn)
    raise ValueError(f"{service!r} is not a destination service: {arn!r}")
