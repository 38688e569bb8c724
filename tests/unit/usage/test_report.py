"""Bills from recorded usage: exact GB-seconds and costs, months, tiers, formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from lambdaplane.store import open_engine, upgrade
from lambdaplane.store.schema import provisioned_usage
from lambdaplane.store.usage import ProvisionedPeriod, UsageRepository, UsageRow, UsageTotal
from lambdaplane.usage.pricing import PriceList, Tier, load_prices
from lambdaplane.usage.report import UsageReport, billed_span, build_report, month_pieces

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
    provisioned: bool = False,
    restored: bool = False,
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
        provisioned,
        restored,
    )


def report_of(
    repository: UsageRepository,
    prices: PriceList,
    since: int,
    until: int,
    function: str | None = None,
) -> UsageReport:
    return build_report(
        repository.totals, prices, since, until, function, None, repository.provisioned_periods
    )


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
        "provisioned_concurrency_gb_seconds": "0",
        "snapstart_cache_gb_seconds": "0",
        "snapstart_restores": 0,
        "cost": {
            "requests": "0.0000004",
            "duration": "0.0000000062500125",
            "ephemeral_storage": "0",
            "provisioned_concurrency": "0",
            "snapstart": "0",
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


MINUTE = 60_000
PC_X86, PC_DURATION_X86 = D("0.0000041667"), D("0.0000097222")
PC_ARM = D("0.0000033334")


def period(
    function: str,
    start: int,
    end: int | None,
    concurrency: int = 1,
    memory_mb: int = 1024,
    architecture: str = "x86_64",
) -> ProvisionedPeriod:
    return ProvisionedPeriod(
        "000000000000", "us-east-1", function, "live", concurrency, memory_mb, architecture,
        start, end,
    )  # fmt: skip


def test_provisioned_periods_bill_whole_five_minutes_from_their_start() -> None:
    t = ms(2026, 11, 3)
    day = (t, t + 24 * 60 * MINUTE)
    assert billed_span(period("f", t, t + 7 * MINUTE), *day) == 10 * MINUTE
    assert billed_span(period("f", t, t + 10 * MINUTE), *day) == 10 * MINUTE
    assert billed_span(period("f", t, t + 1), *day) == 5 * MINUTE
    assert billed_span(period("f", t, t), *day) == 5 * MINUTE  # put then deleted at once
    # What it lasted counts where it fell, the rest of its last step where it ended: any
    # split of the time adds up to the same.
    seven = period("f", t, t + 7 * MINUTE)
    assert billed_span(seven, t, t + 6 * MINUTE) == 6 * MINUTE
    assert billed_span(seven, t + 6 * MINUTE, t + 60 * MINUTE) == 4 * MINUTE
    assert billed_span(seven, t + 7 * MINUTE, t + 8 * MINUTE) == 3 * MINUTE  # ended then
    assert billed_span(seven, t + 8 * MINUTE, t + 9 * MINUTE) == 0
    assert billed_span(seven, t - MINUTE, t + 7 * MINUTE + 1) == 10 * MINUTE
    # One still configured bills up to the end of the window.
    assert billed_span(period("f", t, None), t - MINUTE, t + 42 * MINUTE) == 42 * MINUTE
    assert billed_span(period("f", t, None), t + MINUTE, t + 2 * MINUTE) == MINUTE


def test_provisioned_concurrency_as_in_aws_pricing_example() -> None:
    """AWS's example: 1,024 MB, provisioned concurrency 1,000 for two hours is 7,200,000
    GB-s at $0.0000041667; the invocations provisioned environments ran are billed at the
    provisioned duration price, not tiered; requests as usual."""
    t = ms(2026, 11, 3)
    periods = [period("api", t, t + 120 * MINUTE, concurrency=1000)]

    def totals(since: int, until: int, fn: str | None, region: str | None) -> list[UsageTotal]:
        return [
            UsageTotal("000000000000", "us-east-1", "api", "x86_64", 1024, 512, 3, 3000, True),
            UsageTotal("000000000000", "us-east-1", "api", "x86_64", 1024, 512, 1, 1000, False),
        ]

    report = build_report(totals, load_prices(), t, t + 240 * MINUTE, periods=lambda *_: periods)
    api = report.functions["api"]
    assert api.provisioned_gb_seconds == D(7_200_000)
    assert api.provisioned_cost == D(7_200_000) * PC_X86 == D("30.00024")
    assert api.gb_seconds == D(4)
    assert api.duration_cost == 3 * PC_DURATION_X86 + 1 * D("0.0000166667")
    assert api.request_cost == 4 * D("0.0000002")
    assert api.total_cost == api.provisioned_cost + api.duration_cost + api.request_cost
    document = json.loads(report.to_json())
    assert document["total"]["provisioned_concurrency_gb_seconds"] == "7200000"
    assert document["total"]["cost"]["provisioned_concurrency"] == "30.00024"
    header = report.to_text().splitlines()[2].split()
    assert "PROVISIONED" in header


def test_provisioned_periods_from_the_store(repository: UsageRepository) -> None:
    """Periods come from provisioned_usage: arm64 is priced as arm64, a period that ended
    before the window (by more than its rounding) bills nothing."""
    t = ms(2026, 11, 3)
    engine = repository._engine
    with engine.begin() as conn:
        for p in [
            period("arm", t, None, concurrency=2, memory_mb=512, architecture="arm64"),
            period("old", t - 60 * MINUTE, t - 30 * MINUTE),
        ]:
            conn.execute(
                provisioned_usage.insert().values(
                    account_id=p.account_id, region=p.region, function_name=p.function_name,
                    qualifier=p.qualifier, concurrency=p.concurrency, memory_mb=p.memory_mb,
                    architecture=p.architecture, start_ms=p.start_ms, end_ms=p.end_ms,
                )
            )  # fmt: skip
    report = report_of(repository, load_prices(), t, t + 60 * MINUTE)
    assert set(report.functions) == {"arm"}
    arm = report.functions["arm"]
    assert arm.provisioned_gb_seconds == 2 * D("0.5") * 3600
    assert arm.provisioned_cost == 3600 * PC_ARM
    assert [p.function_name for p in repository.provisioned_periods(t, t + MINUTE)] == ["arm"]
    assert [p.function_name for p in repository.provisioned_periods(0, t)] == ["old"]


def test_provisioned_usage_needs_provisioned_prices(repository: UsageRepository) -> None:
    repository.append([row(ms(2026, 11, 3), "f", 5, provisioned=True)])
    flat = PriceList("USD", D(0), {"x86_64": (Tier(None, D(1)),)}, 512, D(0), "flat.json")
    with pytest.raises(ValueError, match="no provisioned concurrency prices"):
        report_of(repository, flat, ms(2026, 11, 1), ms(2026, 11, 4))


SNAP_CACHE, SNAP_RESTORE = D("0.0000015046"), D("0.0001397998")


def test_a_snapshot_is_billed_three_hours_at_least_and_each_restore_by_its_memory(
    repository: UsageRepository,
) -> None:
    t = ms(2026, 11, 3)
    snap = ProvisionedPeriod(
        "000000000000", "us-east-1", "s", "1", 1, 2048, "x86_64", t, t + 60 * MINUTE, "snapstart"
    )
    assert billed_span(snap, t, t + 24 * 60 * MINUTE) == 180 * MINUTE  # the 3-hour minimum
    longer = ProvisionedPeriod(
        "000000000000", "us-east-1", "s", "1", 1, 2048, "x86_64", t, t + 200 * MINUTE, "snapstart"
    )
    assert billed_span(longer, t, t + 24 * 60 * MINUTE) == 200 * MINUTE  # then by the ms
    repository.append(
        [
            row(t, "s", 30, memory_mb=2048, restored=True),
            row(t + 1, "s", 20, memory_mb=2048, restored=True),
            row(t + 2, "s", 5, memory_mb=2048),
        ]
    )
    report = build_report(
        repository.totals, load_prices(), t, t + 24 * 60 * MINUTE, periods=lambda *_: [snap]
    )
    s = report.functions["s"]
    assert s.snapstart_restores == 2
    assert s.snapstart_cache_gb_seconds == 2 * 3 * 3600
    assert s.snapstart_cost == 2 * 3 * 3600 * SNAP_CACHE + 2 * 2 * SNAP_RESTORE
    assert s.requests == 3 and s.billed_ms == 55
    assert s.total_cost == s.request_cost + s.duration_cost + s.snapstart_cost
    document = json.loads(report.to_json())["functions"][0]
    assert document["snapstart_restores"] == 2
    assert D(document["cost"]["snapstart"]) == s.snapstart_cost
