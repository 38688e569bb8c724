"""Reserved concurrency: PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency.

A reservation both guarantees a function its share of the account's concurrency and
caps it there (0 stops the function). AWS keeps at least ``MIN_UNRESERVED`` of the
account's limit for the functions without a reservation; a reservation that would eat
into it is refused, and so is one below the function's total provisioned concurrency.

Invocations read the reservations through ``current()``: an in-memory copy at most
``CACHE_SECONDS`` old, replaced at once by this node's own writes (other nodes' writes
are seen within the second, as configuration changes are).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdaplane.errors import ConcurrencyLimitException, InvalidParameterValueException
from lambdaplane.service.names import MAX_NAME_LENGTH, Scope
from lambdaplane.store.concurrency import ConcurrencyRepository
from lambdaplane.store.functions import LATEST, FunctionRepository

MIN_UNRESERVED = 100  # AWS's minimum UnreservedConcurrentExecutions
CACHE_SECONDS = 1.0
QUALIFIED = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support "
    "this operation. Please specify either a function name or an unqualified function ARN."
)


@dataclass(frozen=True)
class Reservations:
    """The account's reservations at one moment: per function, and their sum."""

    by_function: Mapping[str, int] = field(default_factory=dict)
    total: int = 0

    def of(self, function_name: str) -> int | None:
        return self.by_function.get(function_name)


NO_RESERVATIONS = Reservations()


class ConcurrencyService:
    def __init__(
        self,
        scope: Scope,
        functions: FunctionRepository,
        repo: ConcurrencyRepository,
        account_limit: int,
        *,
        provisioned_total: Callable[[str], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._scope = scope
        self._functions = functions
        self._repo = repo
        self.account_limit = account_limit
        # The sum of a function's provisioned concurrency over its versions and aliases.
        self._provisioned_total = provisioned_total or (lambda _name: 0)
        self._clock = clock
        self._cached: tuple[float, Reservations] | None = None

    # -- the API -----------------------------------------------------------------------

    def put(self, function_name: str, reserved: int) -> dict[str, Any]:
        """Reserve ``reserved`` concurrent executions for the function (replacing any)."""
        name = self._unqualified(function_name)
        if len(name) > MAX_NAME_LENGTH or self._functions.get(name) is None:
            raise self._scope.not_found(name, LATEST)  # AWS names $LATEST here
        provisioned = self._provisioned_total(name)
        if reserved < provisioned:
            raise ConcurrencyLimitException(
                f" ReservedConcurrentExecutions  {reserved} should not be lower than "
                f"function's total provisioned concurrency [{provisioned}]."
            )

        def check(others: int) -> None:
            if self.account_limit - others - reserved < MIN_UNRESERVED:
                raise ConcurrencyLimitException(
                    "Specified ReservedConcurrentExecutions for function decreases account's "
                    f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
                )

        if not self._repo.put(name, reserved, check):
            raise self._scope.not_found(name, LATEST)
        self._cached = None
        return {"ReservedConcurrentExecutions": reserved}

    def get(self, function_name: str) -> dict[str, Any]:
        name = self._existing(function_name)
        reserved = self._repo.get(name)
        return {} if reserved is None else {"ReservedConcurrentExecutions": reserved}

    def delete(self, function_name: str) -> None:
        name = self._existing(function_name)
        self._repo.delete(name)
        self._cached = None

    # -- for the rest of the server ----------------------------------------------------

    def reserved(self, function_name: str) -> int | None:
        """The function's reservation, read from the store (control-plane reads)."""
        return self._repo.get(function_name)

    def unreserved(self) -> int:
        """UnreservedConcurrentExecutions: the account's limit less every reservation."""
        return self.account_limit - sum(self._repo.all().values())

    def current(self) -> Reservations:
        """The reservations for the invoke path: from memory, at most CACHE_SECONDS old."""
        now = self._clock()
        cached = self._cached
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        by_function = self._repo.all()
        reservations = (
            Reservations(by_function, sum(by_function.values())) if by_function else NO_RESERVATIONS
        )
        self._cached = (now, reservations)
        return reservations

    def changed(self) -> None:
        """Forget the in-memory copy (a function was deleted, and its reservation with it)."""
        self._cached = None

    # -- helpers -----------------------------------------------------------------------

    def _unqualified(self, function_name: str) -> str:
        ref = self._scope.parse(function_name)
        if ref.qualifier is not None:
            raise InvalidParameterValueException(QUALIFIED)
        return ref.name

    def _existing(self, function_name: str) -> str:
        name = self._unqualified(function_name)
        if len(name) > MAX_NAME_LENGTH or self._functions.get(name) is None:
            raise self._scope.not_found(name)
        return name
