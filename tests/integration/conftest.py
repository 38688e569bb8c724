from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from lambdaplane.store import open_engine
from lambdaplane.testing import ServerProcess, start_server

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on an empty database: SQLite, then the machine's real PostgreSQL (a
    database of its own, dropped afterwards). Store tests run on both."""
    if request.param == "sqlite":
        eng = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
        yield eng
        eng.dispose()
        return
    name = f"lambdaplane_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    eng = open_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        yield eng
    finally:
        eng.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
