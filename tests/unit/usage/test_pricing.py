"""The price list: AWS's numbers, tiers, and user price files."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from lambdaplane.usage.pricing import (
    PriceFileError,
    Tier,
    gb_seconds,
    load_prices,
    tier_portions,
)

D = Decimal


def test_the_built_in_list_is_awss_us_east_1_prices() -> None:
    prices = load_prices()
    assert prices.currency == "USD"
    assert prices.request_price == D("0.0000002")  # $0.20 per million
    assert prices.tiers("x86_64") == (
        Tier(D("6000000000"), D("0.0000166667")),
        Tier(D("15000000000"), D("0.0000150000")),
        Tier(None, D("0.0000133334")),
    )
    assert prices.tiers("arm64") == (
        Tier(D("7500000000"), D("0.0000133334")),
        Tier(D("18750000000"), D("0.0000120001")),
        Tier(None, D("0.0000106667")),
    )
    assert prices.ephemeral_included_mb == 512
    assert prices.ephemeral_price == D("0.0000000309")


def test_gb_seconds_are_exact() -> None:
    assert gb_seconds(1, 128) == D("0.000125")
    assert gb_seconds(1000, 1024) == D(1)
    assert gb_seconds(3, 129) == D("0.0003779296875")  # 3 x 129 / 1,024,000


def test_tier_portions() -> None:
    tiers = (Tier(D(10), D(3)), Tier(D(25), D(2)), Tier(None, D(1)))
    assert tier_portions(tiers, D(0), D(4)) == [D(4), D(0), D(0)]
    assert tier_portions(tiers, D(8), D(4)) == [D(2), D(2), D(0)]
    assert tier_portions(tiers, D(8), D(40)) == [D(2), D(15), D(23)]
    assert tier_portions(tiers, D(30), D(5)) == [D(0), D(0), D(5)]
    assert tier_portions(tiers, D("9.999"), D("0.002")) == [D("0.001"), D("0.001"), D(0)]


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(document))
    return path


def test_a_price_file_replaces_the_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "currency": "EUR",
            "requests": {"price_per_million": "0.25"},
            "duration": {"x86_64": [{"price_per_gb_second": "0.00002"}]},
        },
    )
    prices = load_prices(path)
    assert prices.source == str(path)
    assert prices.currency == "EUR"
    assert prices.request_price == D("0.00000025")
    assert prices.tiers("x86_64") == (Tier(None, D("0.00002")),)
    assert prices.ephemeral_price == 0
    with pytest.raises(PriceFileError, match="no duration prices for architecture 'arm64'"):
        prices.tiers("arm64")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"duration": {}}, "expected shape"),
        (
            {"requests": {"price_per_million": -1}, "duration": {}},
            "non-negative",
        ),
        (
            {
                "requests": {"price_per_million": 0.2},
                "duration": {"x86_64": [{"up_to_gb_seconds": 5, "price_per_gb_second": 1}]},
            },
            "only the last tier",
        ),
        (
            {
                "requests": {"price_per_million": 0.2},
                "duration": {
                    "x86_64": [
                        {"up_to_gb_seconds": 5, "price_per_gb_second": 1},
                        {"up_to_gb_seconds": 5, "price_per_gb_second": 1},
                        {"price_per_gb_second": 1},
                    ]
                },
            },
            "must rise",
        ),
    ],
)
def test_bad_price_files_are_explained(tmp_path: Path, document: object, message: str) -> None:
    with pytest.raises(PriceFileError, match=message):
        load_prices(write(tmp_path, document))


def test_unreadable_price_files(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="cannot read"):
        load_prices(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(PriceFileError, match="not valid JSON"):
        load_prices(tmp_path / "bad.json")
