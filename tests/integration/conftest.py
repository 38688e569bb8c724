from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lambdaplane.testing import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server per test module, with its own data dir."""
    srv = start_server(tmp_path_factory.mktemp("data"))
    yield srv
    code = srv.stop()
    assert code == 0, srv.log()


@pytest.fixture
def lam(server: ServerProcess) -> Iterator[Any]:
    client = server.client()
    yield client
    client.close()


@pytest.fixture
def raw_lam(server: ServerProcess) -> Iterator[Any]:
    """A client without botocore's own parameter validation: the server's is exercised."""
    client = server.client(validate=False)
    yield client
    client.close()


ROLE = "arn:aws:iam::000000000000:role/lambda-role"


@pytest.fixture
def role() -> str:
    return ROLE


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> None:
    """Show the server's output when a test that used it fails."""
    if call.excinfo is not None and "server" in getattr(item, "funcargs", {}):
        srv: ServerProcess = item.funcargs["server"]  # type: ignore[attr-defined]
        item.add_report_section(call.when, "lambdaplane output", srv.log()[-5000:])
