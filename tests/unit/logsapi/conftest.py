from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from lambdaplane.logsapi.service import LogsService
from lambdaplane.store import open_engine, upgrade
from lambdaplane.store.log_groups import LogGroupRepository
from lambdaplane.store.logs import LogRepository

NOW = 1_800_000_000.0  # seconds


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Logs:
    service: LogsService
    writer: LogRepository
    catalog: LogGroupRepository
    clock: Clock
    nudges: list[int]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def logs(engine: sa.Engine) -> Logs:
    clock = Clock()
    nudges: list[int] = []
    catalog = LogGroupRepository(engine)
    service = LogsService(
        catalog,
        region="us-east-1",
        account_id="000000000000",
        clock=clock,
        retention_changed=lambda: nudges.append(1),
    )
    return Logs(service, LogRepository(engine), catalog, clock, nudges)
