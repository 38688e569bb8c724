"""``lambda_esm_*`` metrics: what each mapping's poller read, filtered and invoked.

Recorded on the server's registry (so they appear on ``/metrics``), labelled by mapping
UUID, function and source kind. Each mapping also keeps plain counters (``counts``) for
tests and ``lambdaplane`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lambdaplane.metrics.registry import Registry

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_LABELS = ("uuid", "function", "source")


@dataclass
class MappingCounts:
    polled: int = 0
    filtered_out: int = 0
    invoked_records: int = 0
    invocations: int = 0
    failed_invocations: int = 0
    iterator_age: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)  # the last 100


class EsmMetrics:
    """The metric families of every mapping; ``for_mapping`` gives one mapping's recorder."""

    def __init__(self, registry: Registry | None = None) -> None:
        registry = registry or Registry()
        self.polled = registry.counter(
            "lambda_esm_polled_records_total",
            "Records or messages an event source mapping read from its source "
            "(CloudWatch PolledEventCount).",
            _LABELS,
        )
        self.filtered = registry.counter(
            "lambda_esm_filtered_out_records_total",
            "Records dropped because no FilterCriteria filter matched them "
            "(CloudWatch FilteredOutEventCount).",
            _LABELS,
        )
        self.invoked = registry.counter(
            "lambda_esm_invoked_records_total",
            "Records delivered to the function in batches, each attempt counted "
            "(CloudWatch InvokedEventCount).",
            _LABELS,
        )
        self.invocations = registry.counter(
            "lambda_esm_invocations_total",
            "Invocations of the function by an event source mapping, by outcome (ok, error).",
            (*_LABELS, "outcome"),
        )
        self.batch_size = registry.histogram(
            "lambda_esm_batch_size",
            "Records per invocation.",
            _LABELS,
            BATCH_SIZE_BUCKETS,
        )
        self.iterator_age = registry.gauge(
            "lambda_esm_iterator_age_seconds",
            "Age of the last record of the last batch read from a stream (CloudWatch IteratorAge).",
            _LABELS,
        )
        self._mappings: dict[str, MappingRecorder] = {}

    def for_mapping(self, uuid: str, function: str, source: str) -> MappingRecorder:
        recorder = self._mappings.get(uuid)
        if recorder is None:
            recorder = self._mappings[uuid] = MappingRecorder(self, (uuid, function, source))
        return recorder


class MappingRecorder:
    """One mapping's series (looked up once) and counts; implements ``MappingMetrics``."""

    def __init__(self, metrics: EsmMetrics, labels: tuple[str, str, str]) -> None:
        self.counts = MappingCounts()
        self._polled = metrics.polled.labels(*labels)
        self._filtered = metrics.filtered.labels(*labels)
        self._invoked = metrics.invoked.labels(*labels)
        self._ok = metrics.invocations.labels(*labels, "ok")
        self._error = metrics.invocations.labels(*labels, "error")
        self._batch = metrics.batch_size.labels(*labels)
        self._age = metrics.iterator_age.labels(*labels)

    def polled(self, records: int) -> None:
        self.counts.polled += records
        self._polled.inc(records)

    def filtered_out(self, records: int) -> None:
        self.counts.filtered_out += records
        self._filtered.inc(records)

    def invoked(self, batch_size: int) -> None:
        """One successful invocation with ``batch_size`` records."""
        self._record(batch_size)
        self._ok.inc()

    def failed(self, batch_size: int) -> None:
        """One invocation with ``batch_size`` records that ended in a function error."""
        self._record(batch_size)
        self.counts.failed_invocations += 1
        self._error.inc()

    def iterator_age(self, seconds: float) -> None:
        self.counts.iterator_age = max(0.0, seconds)
        self._age.set(max(0.0, seconds))

    def _record(self, batch_size: int) -> None:
        counts = self.counts
        counts.invocations += 1
        counts.invoked_records += batch_size
        counts.batch_sizes = [*counts.batch_sizes[-99:], batch_size]
        self._invoked.inc(batch_size)
        self._batch.observe(batch_size)
