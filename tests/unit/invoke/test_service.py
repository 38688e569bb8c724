from __future__ import annotations

from typing import Any

import pytest

from lambdaplane.errors import (
    InvalidRequestContentException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdaplane.invoke.service import InvokeService, RequestTooLargeException
from lambdaplane.service.names import Scope
from lambdaplane.store.functions import StoredFunction

SCOPE = Scope("us-east-1", "000000000000")


class FakeFunctions:
    """Only what InvokeService.resolve calls."""

    scope = SCOPE

    def __init__(self, state: str | None) -> None:
        self.state = state

    def load_for_invoke(self, name: str, qualifier: str | None) -> StoredFunction:
        if self.state is None:
            raise SCOPE.not_found(name, qualifier)
        return StoredFunction(name, "$LATEST", "r", self.state, None, "ab", 1, {})


def service(state: str | None) -> InvokeService:
    fake: Any = FakeFunctions(state)
    return InvokeService(fake, pools=None, runtimes=None, unpacked=lambda sha: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["Pending", "Failed", "Inactive"])
def test_only_active_functions_run(state: str) -> None:
    with pytest.raises(ResourceConflictException) as exc:
        service(state).resolve("fn", None)
    assert exc.value.message == (
        "The operation cannot be performed at this time. The function is currently in the "
        f"following state: {state}"
    )


def test_missing_function_names_latest() -> None:
    with pytest.raises(ResourceNotFoundException) as exc:
        service(None).resolve("fn", None)
    assert (
        exc.value.message
        == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST"
    )


def test_payload_checks() -> None:
    svc = service("Active")
    svc.check_payload(b'{"ok": true}')
    svc.check_payload(b"")
    with pytest.raises(RequestTooLargeException):
        svc.check_payload(b" " * (6 * 1024 * 1024 + 1))
    with pytest.raises(InvalidRequestContentException) as exc:
        svc.check_payload(b"{nope")
    assert exc.value.message and exc.value.message.startswith(
        "Could not parse request body into json: Could not parse payload into json: "
    )
