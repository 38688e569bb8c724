"""A small Prometheus registry: counters, gauges and fixed-bucket histograms.

Recording sits on the warm invoke path (~0.36 ms), so it must cost well under a
microsecond or two: a series (one label combination) is looked up once and kept by
the caller, its label text is escaped and formatted once when it is created, and an
update is a lock and an add. Nothing is formatted until a scrape.

Thread safety: every series of one registry shares the registry's lock. Updates take
it for a few additions; ``render`` takes it once to copy every value, then formats
the copy outside the lock, so a scrape never stalls an invocation for long.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["Counter", "Gauge", "Histogram", "Registry", "escape_label"]


def escape_label(value: str) -> str:
    """A label value escaped as the text exposition format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_text(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    return ",".join(f'{n}="{escape_label(v)}"' for n, v in zip(names, values, strict=True))


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Family:
    kind = ""

    def __init__(
        self, lock: threading.Lock, name: str, help_text: str, labels: Sequence[str]
    ) -> None:
        self._lock = lock
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._series: dict[tuple[str, ...], _Series] = {}

    def _get(self, values: tuple[str, ...]) -> _Series:
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.label_names):
                raise ValueError(f"{self.name} takes labels {self.label_names}, got {values}")
            with self._lock:
                series = self._series.get(values)
                if series is None:
                    series = self._series[values] = self._new(_label_text(self.label_names, values))
        return series

    def _new(self, labels: str) -> _Series:
        raise NotImplementedError

    def header(self) -> str:
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n"

    def copy_values(self) -> list[tuple[str, object]]:
        """(label text, a copy of the value) per series; the caller holds the lock."""
        return [(s.labels, s.copy()) for s in self._series.values()]

    def format(self, samples: list[tuple[str, object]]) -> str:
        lines = []
        for labels, value in samples:
            assert isinstance(value, int | float)
            braces = f"{{{labels}}}" if labels else ""
            lines.append(f"{self.name}{braces} {_number(value)}\n")
        return "".join(lines)


class _Series:
    __slots__ = ("labels",)

    def __init__(self, labels: str) -> None:
        self.labels = labels

    def copy(self) -> object:
        raise NotImplementedError


class CounterSeries(_Series):
    __slots__ = ("_lock", "value")

    def __init__(self, labels: str, lock: threading.Lock) -> None:
        super().__init__(labels)
        self._lock = lock
        self.value: int | float = 0

    def inc(self, amount: int | float = 1) -> None:
        """Add ``amount`` (never negative: a counter only goes up)."""
        with self._lock:
            self.value += amount

    def copy(self) -> object:
        return self.value


class GaugeSeries(CounterSeries):
    __slots__ = ()

    def set(self, value: int | float) -> None:
        with self._lock:
            self.value = value

    def dec(self, amount: int | float = 1) -> None:
        with self._lock:
            self.value -= amount


class HistogramSeries(_Series):
    __slots__ = ("_bounds", "_lock", "counts", "total")

    def __init__(self, labels: str, lock: threading.Lock, bounds: tuple[float, ...]) -> None:
        super().__init__(labels)
        self._lock = lock
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation in the first bucket whose upper bound is >= ``value``."""
        index = bisect_left(self._bounds, value)
        with self._lock:
            self.counts[index] += 1
            self.total += value

    def copy(self) -> object:
        return (list(self.counts), self.total)


class Counter(_Family):
    kind = "counter"

    def labels(self, *values: str) -> CounterSeries:
        """The series for these label values (created at first use, then the same object)."""
        series = self._get(values)
        assert isinstance(series, CounterSeries)
        return series

    def _new(self, labels: str) -> _Series:
        return CounterSeries(labels, self._lock)


class Gauge(_Family):
    kind = "gauge"

    def labels(self, *values: str) -> GaugeSeries:
        series = self._get(values)
        assert isinstance(series, GaugeSeries)
        return series

    def _new(self, labels: str) -> _Series:
        return GaugeSeries(labels, self._lock)

    def replace(self, values: dict[tuple[str, ...], int | float]) -> None:
        """Set every series at once: those named get their value, every other one 0.

        For gauges computed at scrape time (what is running now), so a function that
        stopped running reads 0 instead of its last value.
        """
        series = {key: self._get(key) for key in values}
        with self._lock:
            for existing in self._series.values():
                assert isinstance(existing, GaugeSeries)
                existing.value = 0
            for key, value in values.items():
                target = series[key]
                assert isinstance(target, GaugeSeries)
                target.value = value


class Histogram(_Family):
    kind = "histogram"

    def __init__(
        self,
        lock: threading.Lock,
        name: str,
        help_text: str,
        labels: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        super().__init__(lock, name, help_text, labels)
        bounds = tuple(float(b) for b in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or math.isinf(bounds[-1]):
            raise ValueError(f"{name}: buckets must be finite, distinct and increasing")
        self.bounds = bounds
        self._le = [_number(b) for b in bounds] + ["+Inf"]

    def labels(self, *values: str) -> HistogramSeries:
        series = self._get(values)
        assert isinstance(series, HistogramSeries)
        return series

    def _new(self, labels: str) -> _Series:
        return HistogramSeries(labels, self._lock, self.bounds)

    def format(self, samples: list[tuple[str, object]]) -> str:
        lines = []
        for labels, value in samples:
            assert isinstance(value, tuple)
            counts: list[int] = value[0]
            total: float = value[1]
            prefix = f"{labels}," if labels else ""
            braces = f"{{{labels}}}" if labels else ""
            running = 0
            for le, count in zip(self._le, counts, strict=True):
                running += count
                lines.append(f'{self.name}_bucket{{{prefix}le="{le}"}} {running}\n')
            lines.append(f"{self.name}_sum{braces} {_number(total)}\n")
            lines.append(f"{self.name}_count{braces} {running}\n")
        return "".join(lines)


class Registry:
    """The metric families of one server, rendered together in the text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}

    def _add(self, family: _Family) -> None:
        if family.name in self._families:
            raise ValueError(f"metric {family.name} is already registered")
        self._families[family.name] = family
        if not family.label_names:
            family._get(())  # An unlabelled metric is exported (as 0) from the start.

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        family = Counter(self._lock, name, help_text, labels)
        self._add(family)
        return family

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        family = Gauge(self._lock, name, help_text, labels)
        self._add(family)
        return family

    def histogram(
        self, name: str, help_text: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        family = Histogram(self._lock, name, help_text, labels, buckets)
        self._add(family)
        return family

    def render(self) -> str:
        """Every family in the Prometheus text format (version 0.0.4), series sorted."""
        with self._lock:
            copies = [(f, f.copy_values()) for f in self._families.values()]
        parts = []
        for family, samples in copies:
            samples.sort(key=lambda sample: sample[0])
            parts.append(family.header())
            parts.append(family.format(samples))
        return "".join(parts)
