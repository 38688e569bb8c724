"""Aliases: named pointers to a function version, optionally splitting traffic with a
second version (``RoutingConfig.AdditionalVersionWeights``).

Every method validates fully before it writes; writes are compare-and-swap on the
alias's ``RevisionId``. Invocations read aliases through ``FunctionService``'s short
cache, which the writes here invalidate.
"""

from __future__ import annotations

import uuid
from typing import Any

from lambdaplane.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdaplane.service.functions import DEFAULT_PAGE, REVISION_MISMATCH, FunctionService
from lambdaplane.service.names import MAX_NAME_LENGTH, Scope
from lambdaplane.store import AliasRepository, FunctionRepository, StoredAlias
from lambdaplane.store.aliases import AliasExists
from lambdaplane.store.functions import LATEST


class AliasService:
    def __init__(
        self,
        scope: Scope,
        functions: FunctionRepository,
        aliases: AliasRepository,
        function_service: FunctionService,
    ) -> None:
        self.scope = scope
        self._functions = functions
        self._aliases = aliases
        self._function_service = function_service

    # -- reads -------------------------------------------------------------------------

    def get(self, function_name: str, name: str) -> dict[str, Any]:
        fn = self._function_name(function_name)
        alias = self._aliases.get(fn, name)
        if alias is None:
            raise ResourceNotFoundException(
                f"Cannot find alias arn: {self.scope.function_arn(fn, name)}"
            )
        return self._rendered(alias)

    def list(
        self,
        function_name: str,
        version: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> dict[str, Any]:
        fn = self._existing_function(function_name)
        aliases = self._aliases.of_function(fn, version)
        if marker:
            aliases = [a for a in aliases if a.name > marker]
        limit = max_items or DEFAULT_PAGE
        result: dict[str, Any] = {"Aliases": [self._rendered(a) for a in aliases[:limit]]}
        if len(aliases) > limit:
            result["NextMarker"] = aliases[limit - 1].name
        return result

    # -- writes ------------------------------------------------------------------------

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        fn = self._function_name(request["FunctionName"])
        version = request["FunctionVersion"]
        routing = _weights(request.get("RoutingConfig"))
        self._check_target(fn, version, routing)
        alias = StoredAlias(
            function_name=fn,
            name=request["Name"],
            function_version=version,
            description=request.get("Description") or "",
            revision_id=str(uuid.uuid4()),
            routing=routing,
        )
        try:
            self._aliases.create(alias)
        except AliasExists:
            raise ResourceConflictException(
                f"Alias already exists: {self.scope.function_arn(fn, alias.name)}"
            ) from None
        self._function_service.alias_changed(fn)
        return self._rendered(alias)

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        fn = self._function_name(request["FunctionName"])
        current = self._aliases.get(fn, request["Name"])
        if current is None:
            raise ResourceNotFoundException(
                f"Alias not found: {self.scope.function_arn(fn, request['Name'])}"
            )
        if request.get("RevisionId") is not None and request["RevisionId"] != current.revision_id:
            raise PreconditionFailedException(REVISION_MISMATCH)
        version = request.get("FunctionVersion") or current.function_version
        routing = (
            _weights(request["RoutingConfig"]) if "RoutingConfig" in request else current.routing
        )
        self._check_target(fn, version, routing)
        description = request.get("Description")
        updated = StoredAlias(
            function_name=fn,
            name=current.name,
            function_version=version,
            description=current.description if description is None else description,
            revision_id=str(uuid.uuid4()),
            routing=routing,
        )
        if not self._aliases.replace(updated, current.revision_id):
            raise PreconditionFailedException(REVISION_MISMATCH)
        self._function_service.alias_changed(fn)
        return self._rendered(updated)

    def delete(self, function_name: str, name: str) -> None:
        """Deleting an alias that does not exist succeeds, as on AWS."""
        fn = self._existing_function(function_name)
        self._aliases.delete(fn, name)
        self._function_service.alias_changed(fn)

    # -- helpers -----------------------------------------------------------------------

    def _function_name(self, function_name: str) -> str:
        ref = self.scope.parse(function_name)
        return ref.name

    def _existing_function(self, function_name: str) -> str:
        fn = self._function_name(function_name)
        if len(fn) > MAX_NAME_LENGTH or self._functions.get(fn) is None:
            raise self.scope.not_found(fn)
        return fn

    def _check_target(self, fn: str, version: str, routing: dict[str, float]) -> None:
        """AWS's rules for what an alias may point at, in AWS's order."""
        if len(routing) > 1:
            raise InvalidParameterValueException(
                "Number of items in AdditionalVersionWeights cannot be greater than 1"
            )
        primary = self._functions.get(fn, version) if len(fn) <= MAX_NAME_LENGTH else None
        if primary is None:
            raise self.scope.not_found(fn, version)
        if routing and version == LATEST:
            raise InvalidParameterValueException(
                "$LATEST is not supported for an alias pointing to more than 1 version"
            )
        for extra in routing:
            if extra == version:
                raise InvalidParameterValueException(
                    f"Invalid function version {extra}. Function version {extra} is already "
                    "included in routing configuration."
                )
            other = self._functions.get(fn, extra)
            if other is None:
                raise self.scope.not_found(fn, extra)
            # AWS's message for the role (seen in the wild); the DLQ rule's wording is ours.
            if primary.config.get("Role") != other.config.get("Role"):
                raise InvalidParameterValueException(
                    "Specified versions must be associated with the same execution role"
                )
            if primary.config.get("DeadLetterConfig") != other.config.get("DeadLetterConfig"):
                raise InvalidParameterValueException(
                    "Specified versions must be associated with the same dead-letter queue "
                    "configuration"
                )

    def _rendered(self, alias: StoredAlias) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "AliasArn": self.scope.function_arn(alias.function_name, alias.name),
            "Description": alias.description,
            "FunctionVersion": alias.function_version,
            "Name": alias.name,
            "RevisionId": alias.revision_id,
        }
        if alias.routing:
            rendered["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.routing)}
        return rendered


def _weights(routing: dict[str, Any] | None) -> dict[str, float]:
    return {
        str(k): float(v) for k, v in ((routing or {}).get("AdditionalVersionWeights") or {}).items()
    }
