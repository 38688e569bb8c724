"""``lambdaplane usage``: requests, GB-seconds and cost per function, read from the store.

It reads the data directory's store directly (the server writes usage there in
batches, about once a second), so it needs no credentials and works while the server
runs or after it stopped. Prices: ``--prices FILE``, else ``<data-dir>/prices.json``,
else the built-in AWS price list.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa

from lambdaplane.logtail import parse_since
from lambdaplane.settings import Settings
from lambdaplane.store import open_engine, upgrade
from lambdaplane.store.usage import UsageRepository
from lambdaplane.usage.pricing import PriceFileError, PriceList, load_prices
from lambdaplane.usage.report import build_report, month_start_ms

PRICES_FILE = "prices.json"


@dataclass(frozen=True)
class UsageOptions:
    data_dir: Path
    since: str | None  # None: the start of the current month (UTC)
    until: str | None  # None: now
    function: str | None
    region: str | None
    prices: Path | None
    json: bool


def prices_for(options: UsageOptions) -> PriceList:
    """``--prices``, else the data directory's prices.json, else the built-in list."""
    if options.prices is not None:
        return load_prices(options.prices)
    local = options.data_dir / PRICES_FILE
    return load_prices(local if local.is_file() else None)


def run(options: UsageOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print the report; 0, or 2 when the options, the store or the prices are unusable."""
    now = time.time()
    try:
        until_ms = int(now * 1000) if options.until is None else parse_since(options.until, now)
        since_ms = (
            month_start_ms(int(now * 1000))
            if options.since is None
            else parse_since(options.since, now)
        )
        prices = prices_for(options)
    except (ValueError, PriceFileError) as exc:
        print(f"lambdaplane usage: {exc}", file=err)
        return 2
    if since_ms >= until_ms:
        print("lambdaplane usage: --since must be before --until", file=err)
        return 2
    database = options.data_dir / "lambdaplane.db"
    if not database.is_file():
        print(f"lambdaplane usage: no lambdaplane store in {options.data_dir}", file=err)
        return 2
    engine = open_engine(Settings(data_dir=options.data_dir).database_url)
    try:
        upgrade(engine)  # a no-op when the server already brought it to this version
        repository = UsageRepository(engine, "", "")
        report = build_report(
            lambda start, end, fn, region: repository.totals(start, end, fn, region),
            prices,
            since_ms,
            until_ms,
            options.function,
            options.region,
            repository.provisioned_periods,
        )
    except PriceFileError as exc:
        print(f"lambdaplane usage: {exc}", file=err)
        return 2
    except sa.exc.SQLAlchemyError as exc:
        print(f"lambdaplane usage: cannot read the store: {exc}", file=err)
        return 2
    finally:
        engine.dispose()
    out.write(report.to_json() + "\n" if options.json else report.to_text())
    return 0
