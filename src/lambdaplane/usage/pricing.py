"""Lambda's price list and what usage costs under it: requests, tiered GB-seconds, storage,
provisioned concurrency (configured GB-seconds, and the lower duration price of the
invocations provisioned environments run; neither is tiered), and SnapStart's cache
(GB-seconds a snapshot is kept) and restores (GB restored).

Amounts are ``Decimal``s and every step is exact: a GB-second is
``billed_ms x memory_mb / 1,024,000`` (a finite decimal), and prices are decimals.
Duration tiers apply to a month's aggregate GB-seconds per architecture (and region
and account), as AWS applies them; ``tier_portions`` says how much of a month's usage
falls in each tier given what the month had already used.

The built-in price list (``prices.json`` beside this module) is AWS's for US East
(N. Virginia). A price file of the same shape replaces it (see docs/usage.md).
"""

from __future__ import annotations

import decimal
import json
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "MB_MS_PER_GB_SECOND",
    "PriceFileError",
    "PriceList",
    "ProvisionedPrices",
    "Tier",
    "gb_seconds",
    "load_prices",
    "tier_portions",
]

# 1 GB-second = 1,024 MB for 1,000 ms.
MB_MS_PER_GB_SECOND = Decimal(1024 * 1000)
# Enough digits that sums and proportional shares of exact amounts stay exact.
CONTEXT = decimal.Context(prec=60)
BUILT_IN = "built-in AWS us-east-1 price list"


class PriceFileError(ValueError):
    """A price file that cannot be read or does not have the expected shape."""


@dataclass(frozen=True)
class Tier:
    """GB-seconds of a month up to ``up_to`` (cumulative; None: no limit) cost ``price`` each."""

    up_to: Decimal | None
    price: Decimal


@dataclass(frozen=True)
class ProvisionedPrices:
    concurrency: Decimal  # per GB-second configured
    duration: Decimal  # per GB-second of invocations on provisioned environments


@dataclass(frozen=True)
class PriceList:
    currency: str
    request_price: Decimal  # per request
    duration: dict[str, tuple[Tier, ...]]  # architecture -> tiers, in order
    ephemeral_included_mb: int
    ephemeral_price: Decimal  # per GB-second of storage above the included amount
    source: str  # the file it came from, or BUILT_IN
    provisioned: dict[str, ProvisionedPrices] = field(default_factory=dict)  # by architecture
    snapstart_cache: Decimal | None = None  # per GB-second a snapshot is cached
    snapstart_restore: Decimal | None = None  # per GB restored

    def provisioned_prices(self, architecture: str) -> ProvisionedPrices:
        try:
            return self.provisioned[architecture]
        except KeyError:
            raise PriceFileError(
                f"{self.source} has no provisioned concurrency prices for architecture "
                f"{architecture!r}"
            ) from None

    def snapstart_prices(self) -> tuple[Decimal, Decimal]:
        """(cache per GB-second, restore per GB); PriceFileError if the list has none."""
        if self.snapstart_cache is None or self.snapstart_restore is None:
            raise PriceFileError(f"{self.source} has no snapstart prices")
        return self.snapstart_cache, self.snapstart_restore

    def tiers(self, architecture: str) -> tuple[Tier, ...]:
        try:
            return self.duration[architecture]
        except KeyError:
            raise PriceFileError(
                f"{self.source} has no duration prices for architecture {architecture!r}"
            ) from None


def gb_seconds(billed_ms: int, memory_mb: int) -> Decimal:
    """Exact GB-seconds of ``billed_ms`` milliseconds at ``memory_mb`` MB."""
    return CONTEXT.divide(Decimal(billed_ms * memory_mb), MB_MS_PER_GB_SECOND)


def tier_portions(tiers: tuple[Tier, ...], before: Decimal, amount: Decimal) -> list[Decimal]:
    """How much of ``amount`` GB-seconds falls in each tier, when the month already used
    ``before``."""
    portions = []
    low = Decimal(0)
    with decimal.localcontext(CONTEXT):
        start, end = before, before + amount
        for tier in tiers:
            high = tier.up_to
            top = end if high is None else min(end, high)
            portions.append(max(Decimal(0), top - max(start, low)))
            if high is not None:
                low = high
    return portions


def load_prices(path: Path | None = None) -> PriceList:
    """The price list in ``path``, or the built-in one; raises PriceFileError."""
    if path is None:
        text = resources.files("lambdaplane.usage").joinpath("prices.json").read_text()
        source = BUILT_IN
    else:
        try:
            text = path.read_text()
        except OSError as exc:
            raise PriceFileError(f"cannot read the price file {path}: {exc}") from exc
        source = str(path)
    try:
        document = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        raise PriceFileError(f"{source} is not valid JSON: {exc}") from exc
    try:
        return _parse(document, source)
    except (KeyError, TypeError, ValueError, decimal.InvalidOperation) as exc:
        if isinstance(exc, PriceFileError):
            raise
        raise PriceFileError(f"{source} does not have the expected shape ({exc!r}); "
                             "see docs/usage.md") from exc  # fmt: skip


def _amount(value: Any, what: str) -> Decimal:
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise PriceFileError(f"{what} must be a non-negative number, not {value!r}")
    return value


def _parse(document: Any, source: str) -> PriceList:
    if not isinstance(document, dict):
        raise PriceFileError(f"{source} must hold a JSON object")
    duration: dict[str, tuple[Tier, ...]] = {}
    for architecture, entries in document["duration"].items():
        tiers = []
        previous = Decimal(0)
        for index, entry in enumerate(entries):
            price = _amount(entry["price_per_gb_second"], f"duration.{architecture}[{index}]")
            limit = entry.get("up_to_gb_seconds")
            up_to = None if limit is None else _amount(limit, f"duration.{architecture}[{index}]")
            last = index == len(entries) - 1
            if (up_to is None) != last:
                raise PriceFileError(
                    f"{source}: in duration.{architecture} only the last tier has no "
                    "up_to_gb_seconds"
                )
            if up_to is not None and up_to <= previous:
                raise PriceFileError(
                    f"{source}: duration.{architecture} tiers must rise (up_to_gb_seconds)"
                )
            previous = up_to or previous
            tiers.append(Tier(up_to, price))
        if not tiers:
            raise PriceFileError(f"{source}: duration.{architecture} has no tiers")
        duration[str(architecture)] = tuple(tiers)
    provisioned = {
        str(architecture): ProvisionedPrices(
            _amount(entry["price_per_gb_second"], f"provisioned_concurrency.{architecture}"),
            _amount(
                entry["duration_price_per_gb_second"], f"provisioned_concurrency.{architecture}"
            ),
        )
        for architecture, entry in (document.get("provisioned_concurrency") or {}).items()
    }
    snapstart = document.get("snapstart") or {}
    cache = snapstart.get("cache_price_per_gb_second")
    restore = snapstart.get("restore_price_per_gb")
    storage = document.get("ephemeral_storage") or {}
    per_million = _amount(document["requests"]["price_per_million"], "requests.price_per_million")
    return PriceList(
        currency=str(document.get("currency", "USD")),
        request_price=CONTEXT.divide(per_million, Decimal(1_000_000)),
        duration=duration,
        ephemeral_included_mb=int(_amount(storage.get("included_mb", 512), "included_mb")),
        ephemeral_price=_amount(storage.get("price_per_gb_second", 0), "ephemeral price"),
        source=source,
        provisioned=provisioned,
        snapstart_cache=None if cache is None else _amount(cache, "snapstart cache price"),
        snapstart_restore=None if restore is None else _amount(restore, "snapstart restore price"),
    )
