"""A bill for a time range: requests, GB-seconds and cost per function and in total.

Duration tiers are monthly, per account, region and architecture, so a range is cut
at the start of each (UTC) month, and each piece is priced knowing what its month had
used before it. When a piece straddles a tier boundary, each function gets the piece's
cost of each tier in proportion to its GB-seconds (AWS bills the account, not the
function, so any split is a convention; within one tier it is simply GB-s x price).
Provisioned concurrency is billed apart: each configuration's period (from the Put
that set it to the change or delete that ended it, rounded up to whole 5 minutes as AWS
rounds it) at concurrency x memory, and the invocations provisioned environments ran at
the provisioned duration price; neither counts towards, or is priced by, the tiers.
SnapStart (Python) bills each version's cached snapshot from when it is taken until the
version is deleted (at least 3 hours) at memory x time, and each restore (the first
invocation of a restored environment) at its memory in GB.
Everything is exact ``Decimal`` arithmetic; output rounds nothing in JSON.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lambdaplane.store.usage import (
    BILLING_STEP_MS,
    SNAPSHOT_MINIMUM_MS,
    ProvisionedPeriod,
    UsageTotal,
)
from lambdaplane.usage.pricing import CONTEXT, PriceList, gb_seconds, tier_portions

__all__ = ["Charges", "UsageReport", "build_report", "month_pieces"]

# (since ms, until ms, function or None, region or None) -> totals in [since, until)
Totals = Callable[[int, int, str | None, str | None], list[UsageTotal]]
# the same arguments -> the provisioned concurrency periods that may bill in [since, until)
Periods = Callable[[int, int, str | None, str | None], list[ProvisionedPeriod]]
ZERO = Decimal(0)


@dataclass
class Charges:
    """What a function (or everything) used and costs over the report's range."""

    requests: int = 0
    billed_ms: int = 0
    gb_seconds: Decimal = ZERO
    storage_gb_seconds: Decimal = ZERO  # ephemeral storage above the included amount
    request_cost: Decimal = ZERO
    duration_cost: Decimal = ZERO
    storage_cost: Decimal = ZERO
    provisioned_gb_seconds: Decimal = ZERO  # provisioned concurrency configured
    provisioned_cost: Decimal = ZERO
    snapstart_cache_gb_seconds: Decimal = ZERO  # snapshots cached
    snapstart_restores: int = 0
    snapstart_cost: Decimal = ZERO  # cache and restores

    @property
    def total_cost(self) -> Decimal:
        with decimal.localcontext(CONTEXT):
            return (
                self.request_cost
                + self.duration_cost
                + self.storage_cost
                + self.provisioned_cost
                + self.snapstart_cost
            )

    def add(self, other: Charges) -> None:
        with decimal.localcontext(CONTEXT):
            self.requests += other.requests
            self.billed_ms += other.billed_ms
            self.gb_seconds += other.gb_seconds
            self.storage_gb_seconds += other.storage_gb_seconds
            self.request_cost += other.request_cost
            self.duration_cost += other.duration_cost
            self.storage_cost += other.storage_cost
            self.provisioned_gb_seconds += other.provisioned_gb_seconds
            self.provisioned_cost += other.provisioned_cost
            self.snapstart_cache_gb_seconds += other.snapstart_cache_gb_seconds
            self.snapstart_restores += other.snapstart_restores
            self.snapstart_cost += other.snapstart_cost

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "billed_duration_ms": self.billed_ms,
            "gb_seconds": _text(self.gb_seconds),
            "ephemeral_storage_gb_seconds": _text(self.storage_gb_seconds),
            "provisioned_concurrency_gb_seconds": _text(self.provisioned_gb_seconds),
            "snapstart_cache_gb_seconds": _text(self.snapstart_cache_gb_seconds),
            "snapstart_restores": self.snapstart_restores,
            "cost": {
                "requests": _text(self.request_cost),
                "duration": _text(self.duration_cost),
                "ephemeral_storage": _text(self.storage_cost),
                "provisioned_concurrency": _text(self.provisioned_cost),
                "snapstart": _text(self.snapstart_cost),
                "total": _text(self.total_cost),
            },
        }


@dataclass
class UsageReport:
    since_ms: int
    until_ms: int
    currency: str
    prices: str  # where the prices came from
    functions: dict[str, Charges] = field(default_factory=dict)
    total: Charges = field(default_factory=Charges)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since_ms),
            "until": _iso(self.until_ms),
            "currency": self.currency,
            "prices": self.prices,
            "functions": [
                {"function": name, **charges.as_json()}
                for name, charges in sorted(self.functions.items())
            ],
            "total": self.total.as_json(),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def to_text(self) -> str:
        # The provisioned column only when something was provisioned: most bills have none.
        provisioned = bool(self.total.provisioned_gb_seconds)
        header: tuple[str, ...] = ("FUNCTION", "REQUESTS", "BILLED (s)", "GB-SECONDS")
        if provisioned:
            header += ("PROVISIONED GB-S",)
        header += (f"COST ({self.currency})",)
        rows = [
            _row(name, charges, provisioned) for name, charges in sorted(self.functions.items())
        ]
        rows.append(_row("TOTAL", self.total, provisioned))
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [
            f"Usage from {_iso(self.since_ms)} to {_iso(self.until_ms)} (prices: {self.prices})",
            "",
        ]
        for index, row in enumerate([header, *rows]):
            if index == len(rows):  # the TOTAL row
                lines.append("  ".join("-" * w for w in widths))
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines) + "\n"


def _row(name: str, charges: Charges, provisioned: bool) -> tuple[str, ...]:
    cells: tuple[str, ...] = (
        name,
        f"{charges.requests:,}",
        _text(Decimal(charges.billed_ms) / 1000),
        _text(charges.gb_seconds),
    )
    if provisioned:
        cells += (_text(charges.provisioned_gb_seconds),)
    return (*cells, _text(charges.total_cost.quantize(Decimal("1E-10"))))


def _text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros ("0.000125", "12", "0")."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{moment.microsecond // 1000:03d}Z" if moment.microsecond else "Z"
    )


def month_start_ms(ms: int) -> int:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000)


def _next_month_ms(ms: int) -> int:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


def month_pieces(since_ms: int, until_ms: int) -> list[tuple[int, int]]:
    """[since, until) cut at the start of each UTC month."""
    pieces = []
    start = since_ms
    while start < until_ms:
        end = min(until_ms, _next_month_ms(start))
        pieces.append((start, end))
        start = end
    return pieces


def build_report(
    totals: Totals,
    prices: PriceList,
    since_ms: int,
    until_ms: int,
    function: str | None = None,
    region: str | None = None,
    periods: Periods | None = None,
) -> UsageReport:
    """Price the usage in [since, until), for one function or all; raises PriceFileError
    when the usage has an architecture the price list does not know."""
    report = UsageReport(since_ms, until_ms, prices.currency, prices.source)
    with decimal.localcontext(CONTEXT):
        for start, end in month_pieces(since_ms, until_ms):
            for name, charges in _price_piece(totals, prices, start, end, function, region).items():
                report.functions.setdefault(name, Charges()).add(charges)
        if periods is not None:
            for period in periods(since_ms, until_ms, function, region):
                billed = _price_period(prices, period, since_ms, until_ms)
                if billed is not None:
                    report.functions.setdefault(period.function_name, Charges()).add(billed)
        for charges in report.functions.values():
            report.total.add(charges)
    return report


def billed_span(period: ProvisionedPeriod, since_ms: int, until_ms: int) -> int:
    """Milliseconds of ``period`` billed in [since, until).

    Provisioned concurrency is billed in whole 5-minute steps from its start, a SnapStart
    snapshot for at least 3 hours. The time a period lasted counts where it fell; the
    rest (of its last step, or of the minimum) is billed at the moment it ended, in the
    window holding that moment (so windows add up, and a report right after a delete
    already shows it). A period that lasts is billed up to ``until``."""
    end = until_ms if period.end_ms is None else period.end_ms
    span = max(0, min(end, until_ms) - max(period.start_ms, since_ms))
    if period.end_ms is not None and since_ms <= period.end_ms < until_ms:
        lasted = period.end_ms - period.start_ms
        if period.kind == "snapstart":
            billed = max(lasted, SNAPSHOT_MINIMUM_MS)
        else:
            billed = max(1, -(-lasted // BILLING_STEP_MS)) * BILLING_STEP_MS
        span += billed - lasted
    return span


def _price_period(
    prices: PriceList, period: ProvisionedPeriod, since_ms: int, until_ms: int
) -> Charges | None:
    span = billed_span(period, since_ms, until_ms)
    if span == 0:
        return None
    configured = gb_seconds(span * period.concurrency, period.memory_mb)
    if period.kind == "snapstart":
        cache = prices.snapstart_prices()[0]
        return Charges(snapstart_cache_gb_seconds=configured, snapstart_cost=configured * cache)
    price = prices.provisioned_prices(period.architecture).concurrency
    return Charges(provisioned_gb_seconds=configured, provisioned_cost=configured * price)


def _price_piece(
    totals: Totals,
    prices: PriceList,
    start: int,
    end: int,
    function: str | None,
    region: str | None,
) -> dict[str, Charges]:
    """Charges per function for a range inside one month."""
    rows = totals(start, end, function, region)
    if not rows:
        return {}
    everyone = rows if function is None else totals(start, end, None, region)
    month = month_start_ms(start)
    earlier = totals(month, start, None, region) if start > month else []
    # Only on-demand duration is tiered (and counts towards the tiers).
    everyone = [row for row in everyone if not row.provisioned]
    earlier = [row for row in earlier if not row.provisioned]

    def pool(row: UsageTotal) -> tuple[str, str, str]:
        return (row.account_id, row.region, row.architecture)

    used_before: dict[tuple[str, str, str], Decimal] = {}
    for row in earlier:
        used_before[pool(row)] = used_before.get(pool(row), ZERO) + gb_seconds(
            row.billed_ms, row.memory_mb
        )
    used_now: dict[tuple[str, str, str], Decimal] = {}
    for row in everyone:
        used_now[pool(row)] = used_now.get(pool(row), ZERO) + gb_seconds(
            row.billed_ms, row.memory_mb
        )
    portions = {
        key: tier_portions(prices.tiers(key[2]), used_before.get(key, ZERO), amount)
        for key, amount in used_now.items()
    }
    charges: dict[str, Charges] = {}
    for row in rows:
        key = pool(row)
        used = gb_seconds(row.billed_ms, row.memory_mb)
        extra_mb = max(0, row.ephemeral_mb - prices.ephemeral_included_mb)
        storage = gb_seconds(row.billed_ms, extra_mb)
        duration_cost = ZERO
        whole = ZERO if row.provisioned else used_now[key]
        if row.provisioned:
            duration_cost = used * prices.provisioned_prices(row.architecture).duration
        elif whole:
            for tier, portion in zip(prices.tiers(row.architecture), portions[key], strict=True):
                # Multiply before dividing: within one tier the share is exactly GB-s x price.
                duration_cost += used * portion / whole * tier.price
        restored = ZERO
        if row.restores:  # each restore bills the environment's memory, in GB
            restored = row.restores * Decimal(row.memory_mb) / 1024 * prices.snapstart_prices()[1]
        charges.setdefault(row.function_name, Charges()).add(
            Charges(
                snapstart_restores=row.restores,
                snapstart_cost=restored,
                requests=row.requests,
                billed_ms=row.billed_ms,
                gb_seconds=used,
                storage_gb_seconds=storage,
                request_cost=row.requests * prices.request_price,
                duration_cost=duration_cost,
                storage_cost=storage * prices.ephemeral_price,
            )
        )
    return charges
