"""Is the new version healthy? Its invocation counts, read from the server's metrics.

The server exposes cumulative counters,
``lambdaplane_invocations_total{function=…,version=…,outcome="success"|"error"}``, at
``GET /_lambdaplane/metrics``. A deployment takes a baseline when it starts and judges
the difference, so runs from before the deployment do not count. ``judge`` is the
rollback rule, a pure function; ``read_invocations`` is the only I/O here.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass

from lambdaplane.invoke.counters import Tally

__all__ = [
    "METRIC",
    "METRICS_PATH",
    "MetricsError",
    "Thresholds",
    "judge",
    "parse_invocations",
    "read_invocations",
    "since",
]

METRIC = "lambdaplane_invocations_total"
METRICS_PATH = "/_lambdaplane/metrics"


class MetricsError(Exception):
    """The metrics endpoint could not be read or did not hold what we expect."""


@dataclass(frozen=True)
class Thresholds:
    """Roll back when more than ``max_error_rate`` of at least ``min_invocations`` fail."""

    max_error_rate: float = 0.1
    min_invocations: int = 10

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError(f"the error rate must be a fraction 0-1, got {self.max_error_rate}")
        if self.min_invocations < 1:
            raise ValueError(f"at least 1 invocation must be observed, not {self.min_invocations}")


def since(baseline: Tally, now: Tally) -> Tally:
    """What happened between two readings of the same cumulative counters."""
    return Tally(max(0, now.success - baseline.success), max(0, now.error - baseline.error))


def judge(observed: Tally, thresholds: Thresholds) -> str | None:
    """Why the observed invocations call for a rollback, or None while they do not."""
    if observed.invocations < thresholds.min_invocations:
        return None
    rate = observed.error / observed.invocations
    if rate <= thresholds.max_error_rate:
        return None
    return (
        f"{observed.error} of {observed.invocations} invocations failed "
        f"({rate:.1%}, more than the {thresholds.max_error_rate:.1%} allowed)"
    )


_SAMPLE = re.compile(rf"^{METRIC}\{{(?P<labels>.*)\}}\s+(?P<value>\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'\s*(\w+)="((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        if match is None:
            raise MetricsError(f"malformed labels in {METRIC}: {{{text}}}")
        labels[match[1]] = re.sub(r"\\.", lambda m: _UNESCAPE.get(m[0], m[0]), match[2])
        position = match.end()
    return labels


def parse_invocations(text: str, function_name: str) -> dict[str, Tally]:
    """The invocation counts of ``function_name`` by version, from a Prometheus exposition."""
    counts: dict[str, list[int]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None:
            continue
        labels = _labels(match["labels"])
        if labels.get("function") != function_name or "version" not in labels:
            continue
        try:
            value = int(float(match["value"]))
        except ValueError:
            raise MetricsError(f"not a number in {line!r}") from None
        slot = counts.setdefault(labels["version"], [0, 0])
        if labels.get("outcome") == "success":
            slot[0] += value
        elif labels.get("outcome") == "error":
            slot[1] += value
    return {version: Tally(ok, failed) for version, (ok, failed) in counts.items()}


def read_invocations(endpoint: str, function_name: str, timeout: float = 10) -> dict[str, Tally]:
    """GET ``<endpoint>/_lambdaplane/metrics`` and parse it; raises MetricsError."""
    url = endpoint.rstrip("/") + METRICS_PATH
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise MetricsError(f"cannot read {url}: {exc}") from exc
    return parse_invocations(text, function_name)
