"""Provisioned concurrency configs: Put, Get, Delete and ListProvisionedConcurrencyConfigs.

A config belongs to a published version or an alias, never to ``$LATEST``, and a
version is provisioned once: directly, or through one alias. What is requested counts
against the function's reserved concurrency when it has one, else against the account's
unreserved concurrency, which must keep ``MIN_UNRESERVED``. The store holds what is
requested; the provisioner (``invoke/provisioned.py``) says what is allocated.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from lambdaplane.errors import (
    ConcurrencyLimitException,
    InvalidParameterValueException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdaplane.invoke.provisioned import Allocation, Target
from lambdaplane.service.concurrency import MIN_UNRESERVED, ConcurrencyService
from lambdaplane.service.configuration import last_modified
from lambdaplane.service.functions import DEFAULT_PAGE, is_alias
from lambdaplane.service.names import MAX_NAME_LENGTH, Scope
from lambdaplane.store import AliasRepository, FunctionRepository
from lambdaplane.store.functions import LATEST
from lambdaplane.store.provisioned import (
    Billing,
    ProvisionedConfigRepository,
    StoredProvisionedConfig,
)

NOT_PUBLISHED = (
    "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
)
NOT_ALIAS_OR_VERSION = "The function resource provided must be an alias or a published version."
NO_CONFIG = "No Provisioned Concurrency Config found for this function"
ALIAS_ON_PROVISIONED_VERSION = (
    "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned "
    "version"
)
VERSION_UNDER_ALIAS = "Version is pointed by a Provisioned Concurrency alias"
OVER_RESERVED = (
    "Requested Provisioned Concurrency should not be greater than the "
    "reservedConcurrentExecution for function"
)


class Allocations(Protocol):
    """What the provisioner tells the API (``invoke.provisioned.Provisioner``)."""

    def allocation(self, function_name: str, qualifier: str, requested: int) -> Allocation: ...

    def changed(self, function_name: str, qualifier: str) -> None: ...


class ProvisionedConcurrencyService:
    def __init__(
        self,
        scope: Scope,
        functions: FunctionRepository,
        aliases: AliasRepository,
        configs: ProvisionedConfigRepository,
        allocations: Allocations,
        concurrency: ConcurrencyService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scope = scope
        self._functions = functions
        self._aliases = aliases
        self._configs = configs
        self._allocations = allocations
        self._concurrency = concurrency
        self._clock = clock

    # -- the API -----------------------------------------------------------------------

    def put(self, function_name: str, qualifier: str, requested: int) -> dict[str, Any]:
        name, qualifier, version = self._target(function_name, qualifier, NOT_PUBLISHED)
        if version == LATEST:  # an alias on $LATEST
            raise InvalidParameterValueException(NOT_PUBLISHED)
        self._check_overlap(name, qualifier, version)
        self._check_limits(name, qualifier, requested)
        stored = StoredProvisionedConfig(name, qualifier, requested, self._clock())
        if not self._configs.put(stored, self._billing(name, version)):
            raise self.scope.not_found(name, qualifier)
        self._allocations.changed(name, qualifier)
        return self._rendered(stored)

    def get(self, function_name: str, qualifier: str) -> dict[str, Any]:
        name, qualifier, _ = self._target(function_name, qualifier, NOT_ALIAS_OR_VERSION)
        stored = self._configs.get(name, qualifier)
        if stored is None:
            raise ProvisionedConcurrencyConfigNotFoundException(NO_CONFIG)
        return self._rendered(stored)

    def delete(self, function_name: str, qualifier: str) -> None:
        """Deleting a config that does not exist succeeds, as on AWS."""
        name, qualifier, _ = self._target(function_name, qualifier, NOT_ALIAS_OR_VERSION)
        if self._configs.delete(name, qualifier):
            self._allocations.changed(name, qualifier)

    def list(self, function_name: str, marker: str | None, max_items: int | None) -> dict[str, Any]:
        ref = self.scope.parse(function_name)
        if len(ref.name) > MAX_NAME_LENGTH or self._functions.get(ref.name) is None:
            raise self.scope.not_found(ref.name)
        configs = self._configs.of_function(ref.name)
        start = 0
        if marker:
            if not marker.isdigit():
                raise InvalidParameterValueException("Invalid marker: " + marker)
            start = int(marker)
        limit = max_items or DEFAULT_PAGE
        page = configs[start : start + limit]
        result: dict[str, Any] = {
            "ProvisionedConcurrencyConfigs": [
                {"FunctionArn": self.scope.function_arn(c.function_name, c.qualifier)}
                | self._rendered(c)
                for c in page
            ]
        }
        if start + limit < len(configs):
            result["NextMarker"] = str(start + limit)
        return result

    # -- for the rest of the server ----------------------------------------------------

    def total(self, function_name: str) -> int:
        """The function's provisioned concurrency over all its versions and aliases."""
        return self._configs.totals().get(function_name, 0)

    def targets(self) -> builtins.list[Target]:
        """Every stored config with the version it provisions now (blocking: store reads)."""
        targets = []
        for config in self._configs.all():
            version = config.qualifier
            if is_alias(version):
                alias = self._aliases.get(config.function_name, version)
                version = alias.function_version if alias is not None else LATEST
            stored = (
                self._functions.get(config.function_name, version) if version != LATEST else None
            )
            targets.append(
                Target(
                    config.function_name,
                    config.qualifier,
                    config.requested,
                    config.last_modified,
                    stored,
                )
            )
        return targets

    # -- helpers -----------------------------------------------------------------------

    def _target(self, function_name: str, qualifier: str, latest: str) -> tuple[str, str, str]:
        """(function name, qualifier, the version it provisions), with AWS's errors."""
        ref = self.scope.parse(function_name, qualifier)
        name, qualifier = ref.name, ref.qualifier or qualifier
        if qualifier == LATEST:
            raise InvalidParameterValueException(latest)
        version = qualifier
        if is_alias(qualifier):
            alias = self._aliases.get(name, qualifier) if len(name) <= MAX_NAME_LENGTH else None
            if alias is None:
                raise ResourceNotFoundException(
                    f"Cannot find alias arn: {self.scope.function_arn(name, qualifier)}"
                )
            version = alias.function_version
        elif len(name) > MAX_NAME_LENGTH or self._functions.get(name, version) is None:
            raise self.scope.not_found(name, qualifier)
        return name, qualifier, version

    def _billing(self, name: str, version: str) -> Billing:
        """The memory and architecture the provisioned environments of ``version`` bill."""
        fn = self._functions.get(name, version)
        if fn is None:
            raise self.scope.not_found(name, version)
        architecture = (fn.config.get("Architectures") or ("x86_64",))[0]
        return Billing(int(fn.config["MemorySize"]), architecture)

    def _check_overlap(self, name: str, qualifier: str, version: str) -> None:
        """A version is provisioned once: by itself, or through one alias."""
        if is_alias(qualifier):
            others = [version, *(a.name for a in self._aliases.of_function(name, version))]
            if any(q != qualifier and self._configs.get(name, q) for q in others):
                raise ResourceConflictException(ALIAS_ON_PROVISIONED_VERSION)
        elif any(self._configs.get(name, a.name) for a in self._aliases.of_function(name, version)):
            raise ResourceConflictException(VERSION_UNDER_ALIAS)

    def _check_limits(self, name: str, qualifier: str, requested: int) -> None:
        """Within the function's reservation, or the account's unreserved concurrency."""
        current = self._configs.get(name, qualifier)
        totals = self._configs.totals()
        elsewhere = totals.get(name, 0) - (current.requested if current else 0)
        reservations = self._concurrency.current()
        reserved = reservations.of(name)
        if reserved is not None:
            if elsewhere + requested > reserved:
                raise InvalidParameterValueException(OVER_RESERVED)
            return
        unreserved = self._concurrency.unreserved() - elsewhere
        unreserved -= sum(
            total
            for function, total in totals.items()
            if function != name and reservations.of(function) is None
        )
        if requested > unreserved:
            raise ConcurrencyLimitException(
                "Specified ConcurrentExecutions for function is greater than account's "
                f"unreserved concurrency [{unreserved}]."
            )
        if unreserved - requested < MIN_UNRESERVED:
            raise ConcurrencyLimitException(
                "Specified ConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
            )

    def _rendered(self, stored: StoredProvisionedConfig) -> dict[str, Any]:
        allocation = self._allocations.allocation(
            stored.function_name, stored.qualifier, stored.requested
        )
        rendered: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": stored.requested,
            "AvailableProvisionedConcurrentExecutions": allocation.allocated,
            "AllocatedProvisionedConcurrentExecutions": allocation.allocated,
            "Status": allocation.status,
            "LastModified": last_modified(datetime.fromtimestamp(stored.last_modified, UTC)),
        }
        if allocation.reason:
            rendered["StatusReason"] = allocation.reason
        return rendered
