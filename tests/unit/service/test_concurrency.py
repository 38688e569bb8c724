"""ConcurrencyService's rules and its in-memory copy for the invoke path (fake store)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdaplane.errors import (
    ConcurrencyLimitException,
    InvalidParameterValueException,
    ResourceNotFoundException,
)
from lambdaplane.service.concurrency import ConcurrencyService
from lambdaplane.service.names import Scope

SCOPE = Scope("us-east-1", "000000000000")


class FakeRepo:
    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.reads = 0

    def get(self, name: str) -> int | None:
        return self.rows.get(name)

    def all(self) -> dict[str, int]:
        self.reads += 1
        return dict(self.rows)

    def put(self, name: str, reserved: int, check: Callable[[int], None]) -> bool:
        check(sum(v for k, v in self.rows.items() if k != name))
        self.rows[name] = reserved
        return True

    def delete(self, name: str) -> None:
        self.rows.pop(name, None)


class FakeFunctions:
    def get(self, name: str) -> Any:
        return None if name.startswith("missing") else object()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def service(provisioned: int = 0) -> tuple[ConcurrencyService, FakeRepo, Clock]:
    repo, clock = FakeRepo(), Clock()
    fake_functions: Any = FakeFunctions()
    fake_repo: Any = repo
    svc = ConcurrencyService(
        SCOPE, fake_functions, fake_repo, 1000, provisioned_total=lambda _: provisioned, clock=clock
    )
    return svc, repo, clock


def test_the_unreserved_minimum_of_100() -> None:
    svc, _, _ = service()
    assert svc.put("a", 850) == {"ReservedConcurrentExecutions": 850}
    assert svc.put("b", 50) == {"ReservedConcurrentExecutions": 50}
    assert svc.unreserved() == 100
    with pytest.raises(ConcurrencyLimitException) as info:
        svc.put("c", 1)
    assert info.value.message == (
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100]."
    )
    assert info.value.body() == {"message": info.value.message}  # no Type, as recorded
    assert svc.put("a", 849)  # replacing its own reservation does not count it twice
    svc.put("c", 1)


def test_not_below_the_provisioned_total() -> None:
    svc, _, _ = service(provisioned=2)
    with pytest.raises(ConcurrencyLimitException) as info:
        svc.put("a", 1)
    assert info.value.message == (
        " ReservedConcurrentExecutions  1 should not be lower than function's total "
        "provisioned concurrency [2]."
    )
    svc.put("a", 2)


def test_qualifiers_and_unknown_functions() -> None:
    svc, _, _ = service()
    for name in ("a:$LATEST", "a:1", "a:live"):
        with pytest.raises(InvalidParameterValueException):
            svc.put(name, 1)
        with pytest.raises(InvalidParameterValueException):
            svc.get(name)
    with pytest.raises(ResourceNotFoundException) as info:
        svc.put("missing", 1)
    assert info.value.message.endswith(":function:missing:$LATEST")  # type: ignore[union-attr]
    with pytest.raises(ResourceNotFoundException) as info:
        svc.get("missing")
    assert info.value.message.endswith(":function:missing")  # type: ignore[union-attr]


def test_invoke_path_copy_is_cached_a_second_and_replaced_by_local_writes() -> None:
    svc, repo, clock = service()
    assert svc.current().of("a") is None
    assert repo.reads == 1
    clock.now += 0.5
    svc.current()
    assert repo.reads == 1  # from memory
    svc.put("a", 3)
    assert svc.current().of("a") == 3  # a local write replaces it at once
    repo.rows["b"] = 4  # another node's write ...
    assert svc.current().total == 3
    clock.now += 1.0
    assert svc.current().total == 7  # ... is seen within the second
    svc.delete("a")
    assert svc.current().of("a") is None
