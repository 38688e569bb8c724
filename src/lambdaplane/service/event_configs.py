"""Put/Update/Get/Delete/ListFunctionEventInvokeConfigs, and what async delivery follows.

A function version or alias has at most one EventInvokeConfig: retries, maximum event
age and OnSuccess/OnFailure destinations. Put replaces it whole (a setting it leaves out
is gone, not defaulted: AWS omits it from the answer and applies its default when it
delivers); Update changes only the top-level settings it names. Reads never check the
function: like AWS, Get and Delete of a missing function say it has no config.

Messages, codes and the order of checks follow responses recorded against AWS
(``TestLambdaEventInvokeConfig`` in ``shared/aws-reference``). ``$LATEST``, a
published version or an alias can each have one.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambdaplane.asyncinvoke.settings import (
    DEFAULT_MAX_EVENT_AGE_SECONDS,
    DEFAULT_MAX_RETRY_ATTEMPTS,
    AsyncSettings,
)
from lambdaplane.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdaplane.service.names import MAX_NAME_LENGTH, Scope
from lambdaplane.store import AliasRepository, FunctionRepository
from lambdaplane.store.event_configs import EventInvokeConfigRepository, StoredEventInvokeConfig
from lambdaplane.store.functions import LATEST

DEFAULT_PAGE = 50
NOTHING_TO_SET = "You must specify at least one of error handling or destination setting."
NO_FUNCTION = "The function doesn't exist."
SELF_DESTINATION = "You can't specify the function as a destination for itself."
_WRITE_ATTEMPTS = 5

_ARN = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z0-9-]*):(?P<service>[a-zA-Z0-9-]+):"
    r"(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)"
)
_FUNCTION_RESOURCE = re.compile(r"function:(?P<name>[a-zA-Z0-9-_]+)(?::(?P<qualifier>[^:]+))?")
# Where Lambda delivers records of asynchronous invocations: S3 takes failures only.
_ON_SUCCESS_KINDS = frozenset({"lambda", "sqs", "sns", "events"})
_ON_FAILURE_KINDS = _ON_SUCCESS_KINDS | {"s3"}


@dataclass(frozen=True)
class Target:
    """An OnSuccess or OnFailure as sent: ``destination`` is None when it names no ARN."""

    destination: str | None = None

    @property
    def arn(self) -> str | None:
        return self.destination or None  # The model allows "": no destination.


@dataclass(frozen=True)
class Destinations:
    """A DestinationConfig as sent; a side is None when the request left it out."""

    on_success: Target | None = None
    on_failure: Target | None = None

    def described(self) -> str:
        """How AWS prints it in error messages (Java's ``toString`` of the request)."""

        def side(target: Target | None, cls: str) -> str:
            if target is None:
                return "null"
            return f"{cls}(destination={_java(target.destination)})"

        return (
            f"DestinationConfig(onSuccess={side(self.on_success, 'OnSuccess')}, "
            f"onFailure={side(self.on_failure, 'OnFailure')})"
        )

    def as_config(self) -> dict[str, Any]:
        """The stored and returned shape: both sides, each with its ARN if it has one."""

        def side(target: Target | None) -> dict[str, str]:
            arn = target.arn if target is not None else None
            return {"Destination": arn} if arn else {}

        return {"OnSuccess": side(self.on_success), "OnFailure": side(self.on_failure)}


@dataclass(frozen=True)
class InvokeConfigChange:
    """The settings a Put or Update request names; None for each one it leaves out."""

    max_retry_attempts: int | None = None
    max_event_age_seconds: int | None = None
    destinations: Destinations | None = None

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> InvokeConfigChange:
        """From a parsed, model-validated Put/UpdateFunctionEventInvokeConfig request."""
        sent = request.get("DestinationConfig")
        destinations = None
        if sent is not None:
            success, failure = sent.get("OnSuccess"), sent.get("OnFailure")
            destinations = Destinations(
                on_success=None if success is None else Target(success.get("Destination")),
                on_failure=None if failure is None else Target(failure.get("Destination")),
            )
        return cls(
            max_retry_attempts=request.get("MaximumRetryAttempts"),
            max_event_age_seconds=request.get("MaximumEventAgeInSeconds"),
            destinations=destinations,
        )

    def is_empty(self) -> bool:
        return (
            self.max_retry_attempts is None
            and self.max_event_age_seconds is None
            and self.destinations is None
        )

    def applied_to(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with the settings this change names replaced (``{}`` for a Put)."""
        updated = {"DestinationConfig": {"OnSuccess": {}, "OnFailure": {}}, **config}
        if self.max_retry_attempts is not None:
            updated["MaximumRetryAttempts"] = self.max_retry_attempts
        if self.max_event_age_seconds is not None:
            updated["MaximumEventAgeInSeconds"] = self.max_event_age_seconds
        if self.destinations is not None:
            updated["DestinationConfig"] = self.destinations.as_config()
        return updated


def destination_kind(arn: str) -> str | None:
    """The service an ARN names if Lambda can deliver to it (``lambda``, ``sqs``, ``sns``,
    ``events``, ``s3``), else None."""
    match = _ARN.fullmatch(arn)
    if match is None:
        return None
    service, resource = match.group("service"), match.group("resource")
    if service == "lambda":
        return service if _FUNCTION_RESOURCE.fullmatch(resource) else None
    if service == "events":
        return service if resource.startswith("event-bus/") else None
    return service if service in _ON_FAILURE_KINDS else None


class EventInvokeConfigService:
    def __init__(
        self,
        scope: Scope,
        functions: FunctionRepository,
        configs: EventInvokeConfigRepository,
        aliases: AliasRepository | None = None,
    ) -> None:
        self.scope = scope
        self._functions = functions
        self._configs = configs
        self._aliases = aliases

    # -- reads -------------------------------------------------------------------------

    def get(self, function_name: str, qualifier: str | None) -> dict[str, Any]:
        name, version = self._target(function_name, qualifier)
        stored = self._configs.get(name, version)
        if stored is None:
            raise self._not_configured(name, version)
        return self._rendered(stored)

    def list(self, function_name: str, marker: str | None, max_items: int | None) -> dict[str, Any]:
        """One page of a function's configs, by qualifier; raises if the function is missing."""
        ref = self.scope.parse(function_name)
        if not self._exists(ref.name, LATEST):
            raise ResourceNotFoundException(NO_FUNCTION)
        limit = max_items or DEFAULT_PAGE
        after = _decode_marker(marker) if marker else None
        rows = self._configs.page(ref.name, after, limit + 1)
        page = rows[:limit]
        result: dict[str, Any] = {"FunctionEventInvokeConfigs": [self._rendered(r) for r in page]}
        if len(rows) > limit:
            result["NextMarker"] = _encode_marker(page[-1].qualifier)
        return result

    def effective(self, function_name: str, qualifier: str) -> AsyncSettings:
        """What asynchronous invocations of this function version follow (AWS's defaults
        when it has no EventInvokeConfig)."""
        stored = self._configs.get(function_name, qualifier or LATEST)
        if stored is None:
            return AsyncSettings()
        config = stored.config
        destinations = config.get("DestinationConfig") or {}
        return AsyncSettings(
            max_retry_attempts=config.get("MaximumRetryAttempts", DEFAULT_MAX_RETRY_ATTEMPTS),
            max_event_age_seconds=config.get(
                "MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_SECONDS
            ),
            on_success=(destinations.get("OnSuccess") or {}).get("Destination"),
            on_failure=(destinations.get("OnFailure") or {}).get("Destination"),
        )

    # -- writes ------------------------------------------------------------------------

    def put(
        self, function_name: str, qualifier: str | None, change: InvokeConfigChange, now: float
    ) -> dict[str, Any]:
        """Create or replace the config of a function version: only ``change`` remains."""
        if change.is_empty():
            raise InvalidParameterValueException(NOTHING_TO_SET)
        name, version = self._existing(function_name, qualifier)
        self._check_destinations(name, change.destinations)
        stored = StoredEventInvokeConfig(name, version, change.applied_to({}), now)
        self._configs.put(stored)
        return self._rendered(stored)

    def update(
        self, function_name: str, qualifier: str | None, change: InvokeConfigChange, now: float
    ) -> dict[str, Any]:
        """Change the settings ``change`` names in an existing config; keep the others."""
        if change.is_empty():
            raise InvalidParameterValueException(NOTHING_TO_SET)
        name, version = self._existing(function_name, qualifier)
        current = self._configs.get(name, version)
        if current is None:
            raise self._not_configured(name, version)
        self._check_destinations(name, change.destinations)
        for _ in range(_WRITE_ATTEMPTS):
            updated = StoredEventInvokeConfig(name, version, change.applied_to(current.config), now)
            if self._configs.replace(updated, current.last_modified):
                return self._rendered(updated)
            # Another writer changed or deleted it between our read and our write.
            reread = self._configs.get(name, version)
            if reread is None:
                raise self._not_configured(name, version)
            current = reread
        raise ResourceConflictException(
            "The operation cannot be performed at this time. An update is in progress for "
            f"resource: {self.scope.function_arn(name, version)}"
        )

    def delete(self, function_name: str, qualifier: str | None) -> None:
        name, version = self._target(function_name, qualifier)
        if not self._configs.delete(name, version):
            raise self._not_configured(name, version)

    def forget_function(self, function_name: str) -> None:
        """Drop every config of a function that was deleted."""
        self._configs.drop_function(function_name)

    def forget_qualifier(self, function_name: str, qualifier: str) -> None:
        """Drop the config of a version (or alias) that was deleted."""
        self._configs.delete(function_name, qualifier)

    # -- helpers -----------------------------------------------------------------------

    def _target(self, function_name: str, qualifier: str | None) -> tuple[str, str]:
        ref = self.scope.parse(function_name, qualifier)
        return ref.name, ref.qualifier or LATEST

    def _existing(self, function_name: str, qualifier: str | None) -> tuple[str, str]:
        """(name, qualifier) of a function version that exists, or AWS's not-found error."""
        name, version = self._target(function_name, qualifier)
        if not self._exists(name, version):
            raise ResourceNotFoundException(NO_FUNCTION)
        return name, version

    def _exists(self, name: str, version: str) -> bool:
        if len(name) > MAX_NAME_LENGTH:
            return False
        if version == LATEST or version.isdigit():
            return self._functions.get(name, version) is not None
        return self._aliases is not None and self._aliases.get(name, version) is not None

    def _check_destinations(self, function_name: str, destinations: Destinations | None) -> None:
        """AWS's checks, in its order: every ARN's type, then each Lambda destination."""
        if destinations is None:
            return
        sides = (
            (destinations.on_success, _ON_SUCCESS_KINDS),
            (destinations.on_failure, _ON_FAILURE_KINDS),
        )
        arns: list[str] = []
        for target, allowed in sides:
            arn = target.arn if target is not None else None
            if arn is None:
                continue
            if destination_kind(arn) not in allowed:
                raise InvalidParameterValueException(
                    f"The provided destination config {destinations.described()} is invalid."
                )
            arns.append(arn)
        for arn in arns:
            if destination_kind(arn) == "lambda":
                self._check_function_destination(function_name, arn)

    def _check_function_destination(self, function_name: str, arn: str) -> None:
        arn_match = _ARN.fullmatch(arn)
        assert arn_match is not None  # destination_kind accepted it
        function = _FUNCTION_RESOURCE.fullmatch(arn_match.group("resource"))
        assert function is not None
        ours = (
            arn_match.group("partition") == self.scope.partition
            and arn_match.group("region") == self.scope.region
            and arn_match.group("account") == self.scope.account_id
        )
        if ours and function.group("name") == function_name:
            raise InvalidParameterValueException(SELF_DESTINATION)
        if not ours or not self._exists(
            function.group("name"), function.group("qualifier") or LATEST
        ):
            raise InvalidParameterValueException(f"The destination ARN {arn} is invalid.")

    def _not_configured(self, name: str, qualifier: str) -> ResourceNotFoundException:
        return ResourceNotFoundException(
            f"The function {self.scope.function_arn(name, qualifier)} doesn't have an "
            "EventInvokeConfig"
        )

    def _rendered(self, stored: StoredEventInvokeConfig) -> dict[str, Any]:
        return {
            "LastModified": datetime.fromtimestamp(stored.last_modified, UTC),
            "FunctionArn": self.scope.function_arn(stored.function_name, stored.qualifier),
            **stored.config,
        }


def _java(value: str | None) -> str:
    return "null" if value is None else value


def _encode_marker(qualifier: str) -> str:
    return base64.urlsafe_b64encode(qualifier.encode()).decode().rstrip("=")


def _decode_marker(marker: str) -> str:
    try:
        padded = marker + "=" * (-len(marker) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParameterValueException("Invalid marker: " + marker) from None
