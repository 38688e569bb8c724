from __future__ import annotations

import pytest

from lambdaplane.errors import InvalidParameterValueException
from lambdaplane.service.runtimes import Runtime, RuntimeCatalog

CATALOG = RuntimeCatalog(
    [Runtime("python3.11", "/usr/bin/python3.11"), Runtime("provided.al2023", None)]
)


def test_known_runtime() -> None:
    assert CATALOG.require("python3.11").executable == "/usr/bin/python3.11"
    arn = CATALOG.require("python3.11").version_arn("us-east-1")
    assert arn.startswith("arn:aws:lambda:us-east-1::runtime:") and len(arn.rsplit(":", 1)[1]) == 64


def test_unknown_runtime_lists_what_this_host_runs() -> None:
    with pytest.raises(InvalidParameterValueException) as exc:
        CATALOG.require("dotnet8")
    assert exc.value.message == (
        "Value dotnet8 at 'runtime' failed to satisfy constraint: Member must satisfy enum value "
        "set: [provided.al2023, python3.11] or be a valid ARN"
    )


def test_deprecated_runtime() -> None:
    with pytest.raises(InvalidParameterValueException) as exc:
        CATALOG.require("go1.x")
    assert exc.value.message and exc.value.message.startswith(
        "The runtime parameter of go1.x is no longer supported"
    )
