"""Is the new version healthy? Its invocation counts, read from the server's metrics.

The server exposes cumulative counters per function and executed version,
``lambda_invocations_total{function=…,version=…}`` and ``lambda_errors_total{…}``, at
``GET /metrics``. A deployment takes a baseline when it starts and judges the
difference, so runs from before the deployment do not count. ``judge`` is the rollback
rule, a pure function; ``read_invocations`` is the only I/O here. It signs its request
with SigV4 when given credentials, as a server that is not on loopback requires.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass

__all__ = [
    "ERRORS",
    "INVOCATIONS",
    "METRICS_PATH",
    "MetricsError",
    "Tally",
    "Thresholds",
    "judge",
    "parse_invocations",
    "read_invocations",
    "since",
]

INVOCATIONS = "lambda_invocations_total"
ERRORS = "lambda_errors_total"
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class Tally:
    """Invocations of one function version: how many succeeded, how many failed."""

    success: int = 0
    error: int = 0

    @property
    def invocations(self) -> int:
        return self.success + self.error


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


@dataclass(frozen=True)
class Watch:
    """A version's counts since a deployment began, across restarts of the server.

    The counters live in the server's memory: one that goes down was reset by a restart,
    so what was observed until the previous reading is carried over and counting goes on
    from zero (as Prometheus's ``increase`` treats a reset).
    """

    baseline: Tally
    carried: Tally = Tally()
    last: Tally | None = None

    def read(self, now: Tally) -> Watch:
        last = self.last or self.baseline
        if now.success < last.success or now.error < last.error:
            kept = self.observed_at(last)
            return Watch(Tally(), kept, now)
        return Watch(self.baseline, self.carried, now)

    def observed_at(self, now: Tally) -> Tally:
        seen = since(self.baseline, now)
        return Tally(self.carried.success + seen.success, self.carried.error + seen.error)

    @property
    def observed(self) -> Tally:
        return self.observed_at(self.last or self.baseline)


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


_SAMPLE = re.compile(
    rf"^(?P<name>{INVOCATIONS}|{ERRORS})\{{(?P<labels>.*)\}}\s+(?P<value>\S+)(?:\s+\S+)?$"
)
_LABEL = re.compile(r'\s*(\w+)="((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _labels(name: str, text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        if match is None:
            raise MetricsError(f"malformed labels in {name}: {{{text}}}")
        labels[match[1]] = re.sub(r"\\.", lambda m: _UNESCAPE.get(m[0], m[0]), match[2])
        position = match.end()
    return labels


def parse_invocations(text: str, function_name: str) -> dict[str, Tally]:
    """The invocation counts of ``function_name`` by version, from a Prometheus exposition."""
    counts: dict[str, list[int]] = {}  # version -> [invocations, errors]
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None:
            continue
        labels = _labels(match["name"], match["labels"])
        if labels.get("function") != function_name or "version" not in labels:
            continue
        try:
            value = int(float(match["value"]))
        except ValueError:
            raise MetricsError(f"not a number in {line!r}") from None
        slot = counts.setdefault(labels["version"], [0, 0])
        slot[0 if match["name"] == INVOCATIONS else 1] += value
    return {
        version: Tally(max(0, invoked - failed), failed)
        for version, (invoked, failed) in counts.items()
    }


def read_invocations(
    endpoint: str,
    function_name: str,
    timeout: float = 10,
    *,
    credentials: tuple[str, str, str | None] | None = None,
    region: str = "us-east-1",
) -> dict[str, Tally]:
    """GET ``<endpoint>/metrics`` (SigV4-signed when ``credentials`` are given) and parse
    it; raises MetricsError."""
    url = endpoint.rstrip("/") + METRICS_PATH
    headers: dict[str, str] = {}
    if credentials is not None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        signed = AWSRequest(method="GET", url=url)
        SigV4Auth(Credentials(*credentials), "lambda", region).add_auth(signed)
        headers = dict(signed.headers.items())
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise MetricsError(f"cannot read {url}: {exc}") from exc
    return parse_invocations(text, function_name)
