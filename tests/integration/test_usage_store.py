"""Usage records on SQLite and on the real PostgreSQL: the same rows, the same sums."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lambdaplane.store import upgrade
from lambdaplane.store.usage import UsageRepository, UsageTotal


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    return bare_engine


def test_usage_repository(engine: sa.Engine) -> None:
    upgrade(engine)
    east = UsageRepository(engine, "000000000000", "us-east-1")
    west = UsageRepository(engine, "000000000000", "eu-west-1")
    east.append(
        [
            (1000, "f", "$LATEST", "r1", 3, 128, "x86_64", 512, False, False),
            (1001, "f", "1", "r2", 7, 128, "x86_64", 512, False, False),
            (1002, "f", "1", "r3", 900_000, 10240, "arm64", 10240, False, False),
            (1003, "f", "1", "r6", 4, 128, "x86_64", 512, True, False),
            (2000, "g", "$LATEST", "r4", 1, 128, "x86_64", 512, False, False),
        ]
    )
    west.append([(1500, "f", "$LATEST", "r5", 2, 128, "x86_64", 512, False, False)])
    east.append([])
    assert east.totals(1000, 2000) == [
        UsageTotal("000000000000", "eu-west-1", "f", "x86_64", 128, 512, 1, 2),
        UsageTotal("000000000000", "us-east-1", "f", "arm64", 10240, 10240, 1, 900_000),
        UsageTotal("000000000000", "us-east-1", "f", "x86_64", 128, 512, 2, 10),
        UsageTotal("000000000000", "us-east-1", "f", "x86_64", 128, 512, 1, 4, provisioned=True),
    ]
    assert east.totals(0, 10_000, "g") == [
        UsageTotal("000000000000", "us-east-1", "g", "x86_64", 128, 512, 1, 1)
    ]
    assert [t.region for t in east.totals(0, 10_000, None, "eu-west-1")] == ["eu-west-1"]
    records = east.records("f")
    assert [r["request_id"] for r in records] == ["r1", "r2", "r3", "r6", "r5"]
    assert records[0]["version"] == "$LATEST" and records[1]["version"] == "1"
    assert [r["provisioned"] for r in records] == [False, False, False, True, False]


def test_many_rows_go_in_several_statements(engine: sa.Engine) -> None:
    upgrade(engine)
    repository = UsageRepository(engine, "000000000000", "us-east-1")
    rows = [
        (5000 + i, "many", "$LATEST", f"r{i}", i % 7 + 1, 128, "x86_64", 512, False, False)
        for i in range(2500)
    ]
    repository.append(rows)
    (total,) = repository.totals(0, 10_000, "many")
    assert total.requests == 2500
    assert total.billed_ms == sum(i % 7 + 1 for i in range(2500))
    assert [r["request_id"] for r in repository.records("many")] == [f"r{i}" for i in range(2500)]
