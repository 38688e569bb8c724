"""TagResource, UntagResource and ListTags over any taggable ARN.

Functions and event source mappings are the taggable resources that exist so far; ARNs
of the other taggable kinds (code signing configs, capacity providers) are well-formed
but name nothing yet, and get AWS's not-found message for their kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lambdaplane.errors import InvalidParameterValueException, ResourceNotFoundException
from lambdaplane.service.configuration import MAX_TAGS
from lambdaplane.service.names import Scope
from lambdaplane.store import FunctionRepository, TagRepository

_ARN = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[^:]+):(?P<account>\d{12}):"
    r"(?P<kind>function|code-signing-config|event-source-mapping|capacity-provider|network-connector):"
    r"(?P<rest>.+)"
)
_KIND_NOT_FOUND = {
    "code-signing-config": "Code signing config not found: ",
    "event-source-mapping": "Event source mapping not found: ",
    "capacity-provider": "Capacity provider not found: ",
    "network-connector": "Network connector not found: ",
}
GENERIC_ERROR = "An error occurred and the request cannot be processed."


class TagService:
    def __init__(
        self,
        scope: Scope,
        functions: FunctionRepository,
        tags: TagRepository,
        mapping_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self._scope = scope
        self._functions = functions
        self._tags = tags
        self._mapping_exists = mapping_exists  # event source mapping UUID -> exists?

    def _resource(self, arn: str) -> str:
        """The canonical ARN of an existing taggable resource, or AWS's error."""
        match = _ARN.fullmatch(arn)
        if match is None:
            raise InvalidParameterValueException(GENERIC_ERROR)
        kind, rest = match.group("kind"), match.group("rest")
        ours = (match.group("region"), match.group("account")) == (
            self._scope.region,
            self._scope.account_id,
        )
        exists = self._mapping_exists
        if kind == "event-source-mapping" and ours and exists is not None and exists(rest):
            return arn
        if kind != "function":
            raise ResourceNotFoundException(_KIND_NOT_FOUND[kind] + arn)
        name, _, qualifier = rest.partition(":")
        if qualifier:
            raise InvalidParameterValueException(
                "Tags on function aliases and versions are not supported. Please specify a function ARN."
            )
        foreign = (
            match.group("region") != self._scope.region
            or match.group("account") != self._scope.account_id
        )
        if foreign or self._functions.get(name) is None:
            raise ResourceNotFoundException(f"Function not found: {arn}")
        return self._scope.function_arn(name)

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        resource = self._resource(arn)
        if not tags:
            raise InvalidParameterValueException(GENERIC_ERROR)
        merged = self._tags.get(resource) | tags
        if len(merged) > MAX_TAGS:
            raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")
        self._tags.put(resource, tags)

    def untag(self, arn: str, keys: list[str]) -> None:
        resource = self._resource(arn)
        if keys:
            self._tags.remove(resource, keys)

    def list(self, arn: str) -> dict[str, str]:
        return self._tags.get(self._resource(arn))
