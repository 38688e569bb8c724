"""Usage and cost: a record per invocation (billed duration, memory, architecture,
ephemeral storage), written in batches, and the bill ``lambdaplane usage`` prints."""

from lambdaplane.usage.pricing import PriceFileError, PriceList, load_prices
from lambdaplane.usage.recorder import UsageRecorder
from lambdaplane.usage.report import UsageReport, build_report

__all__ = [
    "PriceFileError",
    "PriceList",
    "UsageRecorder",
    "UsageReport",
    "build_report",
    "load_prices",
]
