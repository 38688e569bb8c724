"""Bills from recorded usage: exact GB-seconds and costs, months, tiers, formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from lambdaplane.store import open_engine, upgrade
from lambdaplane.store.usage import UsageRepository, UsageRow
from lambdaplane.usage.pricing import PriceList, Tier, load_prices
from lambdaplane.usage.report import UsageReport, build_report, month_pieces

D = Decimal


def ms(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def repository(tmp_path: Path) -> UsageRepository:
    engine = open_engine(f"sqlite:///{tmp_path / 'usage.db'}")
    upgrade(engine)
    return UsageRepository(engine, "000000000000", "us-east-1")


def row(
    when: int,
    function: str,
    billed_ms: int,
    memory_mb: int = 128,
    architecture: str = "x86_64",
    ephemeral_mb: int = 512,
    version: str = "$LATEST",
) -> UsageRow:
    return (
        when,
        function,
        version,
        f"req-{when}",
        billed_ms,
        memory_mb,
        architecture,
        ephemeral_mb,
    )


def report_of(
    repository: UsageRepository,
    prices: PriceList,
    since: int,
    until: int,
    function: str | None = None,
) -> UsageReport:
    return build_report(repository.totals, prices, since, until, function)


def test_one_month_exactly(repository: UsageRepository) -> None:
    day = ms(2026, 11, 3)
    repository.append(
        [
            row(day, "small", 1),
            row(day + 1, "small", 3),
            row(day + 2, "big", 1500, memory_mb=1024, ephemeral_mb=1024),
            row(day + 3, "arm", 10, memory_mb=2048, architecture="arm64"),
            row(ms(2026, 10, 31), "small", 99),  # before the range
        ]
    )
    report = report_of(repository, load_prices(), ms(2026, 11, 1), ms(2026, 12, 1))
    small, big, arm = (report.functions[n] for n in ("small", "big", "arm"))
    assert (small.requests, small.billed_ms, small.gb_seconds) == (2, 4, D("0.0005"))
    assert small.duration_cost == D("0.0005") * D("0.0000166667")
    assert small.request_cost == D("0.0000004")
    assert (big.gb_seconds, big.storage_gb_seconds) == (D("1.5"), D("0.75"))
    assert big.storage_cost == D("0.75") * D("0.0000000309")
    assert big.duration_cost == D("1.5") * D("0.0000166667")
    assert arm.gb_seconds == D("0.02") and arm.duration_cost == D("0.02") * D("0.0000133334")
    assert report.total.requests == 4
    assert report.total.gb_seconds == D("1.5205")
    assert report.total.total_cost == sum((f.total_cost for f in report.functions.values()), D(0))
    only = report_of(repository, load_prices(), ms(2026, 11, 1), ms(2026, 12, 1), function="big")
    assert list(only.functions) == ["big"] and only.total.requests == 1


def test_month_pieces() -> None:
    assert month_pieces(ms(2026, 11, 20), ms(2027, 1, 2)) == [
        (ms(2026, 11, 20), ms(2026, 12, 1)),
        (ms(2026, 12, 1), ms(2027, 1, 1)),
        (ms(2027, 1, 1), ms(2027, 1, 2)),
    ]
    assert month_pieces(5, 5) == []


TIERED = PriceList(
    currency="USD",
    request_price=D(0),
    duration={"x86_64": (Tier(D(10), D(3)), Tier(None, D(1)))},
    ephemeral_included_mb=512,
    ephemeral_price=D(0),
    source="test",
)


def test_tiers_count_the_months_earlier_usage_and_restart_each_month(
    repository: UsageRepository,
) -> None:
    # 1,024 MB: 1 GB-second per 1,000 billed ms.
    repository.append(
        [
            row(ms(2026, 11, 2), "a", 8000, memory_mb=1024),  # 8 GB-s before the range
            row(ms(2026, 11, 10), "a", 2000, memory_mb=1024),  # reaches the tier's 10
            row(ms(2026, 11, 11), "b", 6000, memory_mb=1024),  # wholly in the 2nd tier
            row(ms(2026, 12, 2), "b", 4000, memory_mb=1024),  # a new month: 1st tier again
        ]
    )
    report = report_of(repository, TIERED, ms(2026, 11, 5), ms(2026, 12, 5))
    a, b = report.functions["a"], report.functions["b"]
    # In November's piece, 8 GB-s: 2 at 3 (tier 1) and 6 at 1, shared a 2 : b 6.
    assert a.gb_seconds == D(2) and b.gb_seconds == D(10)
    assert a.duration_cost + b.duration_cost == D(2) * 3 + D(6) * 1 + D(4) * 3
    assert a.duration_cost == D(2) / 8 * (2 * 3 + 6)
    assert b.duration_cost == D(6) / 8 * (2 * 3 + 6) + 4 * 3


def test_text_and_json(repository: UsageRepository) -> None:
    repository.append([row(ms(2026, 11, 3), "hello", 1), row(ms(2026, 11, 3, 1), "hello", 2)])
    report = report_of(repository, load_prices(), ms(2026, 11, 1), ms(2026, 11, 4))
    document = json.loads(report.to_json())
    assert document["since"] == "2026-11-01T00:00:00Z"
    assert document["until"] == "2026-11-04T00:00:00Z"
    (hello,) = document["functions"]
    assert hello == {
        "function": "hello",
        "requests": 2,
        "billed_duration_ms": 3,
        "gb_seconds": "0.000375",
        "ephemeral_storage_gb_seconds": "0",
        "cost": {
            "requests": "0.0000004",
            "duration": "0.0000000062500125",
            "ephemeral_storage": "0",
            "total": "0.0000004062500125",
        },
    }
    assert document["total"] == {k: v for k, v in hello.items() if k != "function"}
    text = report.to_text()
    assert "hello" in text and "0.000375" in text and "0.0000004063" in text
    assert text.splitlines()[-1].split() == ["TOTAL", "2", "0.003", "0.000375", "0.0000004063"]


def test_an_architecture_without_prices_is_an_error(repository: UsageRepository) -> None:
    repository.append([row(ms(2026, 11, 3), "f", 1, architecture="riscv64")])
    with pytest.raises(ValueError, match="riscv64"):
        report_of(repository, load_prices(), ms(2026, 11, 1), ms(2026, 11, 4))
