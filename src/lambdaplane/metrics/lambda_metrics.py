"""Lambda's CloudWatch metrics, Prometheus style: what the invoke path and the async
workers record, and what a scrape reads from the live environments.

The names follow CloudWatch's ``AWS/Lambda`` metrics (``Invocations`` →
``lambda_invocations_total``, ``Duration`` → ``lambda_duration_seconds``, …); see
docs/metrics.md for the whole table. Invocation metrics carry ``function`` and
``version`` (the version that ran, after alias routing). Asynchronous-queue metrics
carry ``function`` and ``qualifier`` (what the event was addressed to: ``$LATEST``, a
version or an alias), since an alias's version is drawn only when the event runs.

The hot path calls ``LambdaMetrics.invoked`` once per invocation: one dict lookup for
the (function, version) series, then a few locked additions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lambdaplane.metrics.registry import CounterSeries, HistogramSeries, Registry

__all__ = [
    "DURATION_BUCKETS",
    "EVENT_AGE_BUCKETS",
    "INIT_DURATION_BUCKETS",
    "MEMORY_BUCKETS",
    "DropReason",
    "EnvironmentCensus",
    "LambdaMetrics",
]

MB = 1024 * 1024
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip
INIT_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MEMORY_BUCKETS = tuple(
    mb * MB for mb in (16, 32, 64, 128, 256, 512, 1024, 2048, 3072, 4096, 6144, 8192, 10240)
)
EVENT_AGE_BUCKETS = (
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
    10800.0, 21600.0,
)  # fmt: skip

ENVIRONMENT_STATES = ("initializing", "busy", "idle", "prewarmed")


class DropReason:
    """Why an asynchronous event left the queue without a successful invocation."""

    RETRIES_EXHAUSTED = "retries_exhausted"
    EVENT_AGE_EXCEEDED = "event_age_exceeded"
    FUNCTION_DELETED = "function_deleted"
    ZERO_RESERVED_CONCURRENCY = "zero_reserved_concurrency"


@dataclass(frozen=True)
class EnvironmentCensus:
    """What runs now, counted on the event loop at scrape time."""

    by_state: dict[str, int]  # ENVIRONMENT_STATES -> count
    busy: dict[tuple[str, str], int]  # (function, version) -> concurrent executions
    concurrency_limit: int
    # (function, version) -> provisioned environments initialised (idle or invoking), and
    # those of them invoking now.
    provisioned: dict[tuple[str, str], int] = field(default_factory=dict)
    provisioned_busy: dict[tuple[str, str], int] = field(default_factory=dict)
    reserved: frozenset[str] = frozenset()  # functions with reserved concurrency


class _FunctionSeries:
    """The invocation series of one (function, version), kept so recording does no lookups."""

    __slots__ = ("duration", "errors", "init", "invocations", "memory", "throttles")

    def __init__(self, metrics: LambdaMetrics, labels: tuple[str, str]) -> None:
        self.invocations: CounterSeries = metrics.invocations.labels(*labels)
        self.errors: CounterSeries = metrics.errors.labels(*labels)
        self.throttles: CounterSeries = metrics.throttles.labels(*labels)
        self.duration: HistogramSeries = metrics.duration.labels(*labels)
        self.init: HistogramSeries = metrics.init_duration.labels(*labels)
        self.memory: HistogramSeries = metrics.memory.labels(*labels)


class LambdaMetrics:
    """Every metric lambdaplane exports, on one registry."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry = registry or Registry()
        fv = ("function", "version")
        fq = ("function", "qualifier")
        self.invocations = registry.counter(
            "lambda_invocations_total",
            "Function invocations, successful or not; throttled requests are not counted "
            "(CloudWatch Invocations).",
            fv,
        )
        self.errors = registry.counter(
            "lambda_errors_total",
            "Invocations that ended in a function error, init failures and timeouts included "
            "(CloudWatch Errors).",
            fv,
        )
        self.throttles = registry.counter(
            "lambda_throttles_total",
            "Invocation requests refused with TooManyRequestsException, each async retry of a "
            "throttled event included (CloudWatch Throttles).",
            fv,
        )
        self.duration = registry.histogram(
            "lambda_duration_seconds",
            "Time the function code spent on an invocation, as the REPORT line's Duration "
            "(CloudWatch Duration).",
            fv,
            DURATION_BUCKETS,
        )
        self.init_duration = registry.histogram(
            "lambda_init_duration_seconds",
            "Init phase of each cold start, as the REPORT line's Init Duration.",
            fv,
            INIT_DURATION_BUCKETS,
        )
        self.memory = registry.histogram(
            "lambda_max_memory_used_bytes",
            "Max Memory Used of each invocation, as the REPORT line says (the environment's "
            "cgroup peak).",
            fv,
            MEMORY_BUCKETS,
        )
        self.concurrent = registry.gauge(
            "lambda_concurrent_executions",
            "Environments running an invocation or starting for one, per function version "
            "(CloudWatch ConcurrentExecutions by FunctionName).",
            fv,
        )
        self.provisioned_concurrent = registry.gauge(
            "lambda_provisioned_concurrent_executions",
            "Provisioned environments running an invocation, per function version "
            "(CloudWatch ProvisionedConcurrentExecutions).",
            fv,
        )
        self.provisioned_utilization = registry.gauge(
            "lambda_provisioned_concurrency_utilization",
            "Provisioned environments running an invocation over those allocated, 0 to 1 "
            "(CloudWatch ProvisionedConcurrencyUtilization).",
            fv,
        )
        self.provisioned_invocations = registry.counter(
            "lambda_provisioned_concurrency_invocations_total",
            "Invocations run by a provisioned environment "
            "(CloudWatch ProvisionedConcurrencyInvocations).",
            fv,
        )
        self.provisioned_spillover = registry.counter(
            "lambda_provisioned_concurrency_spillover_invocations_total",
            "Invocations of a version with provisioned concurrency run by an on-demand "
            "environment, all provisioned ones being busy "
            "(CloudWatch ProvisionedConcurrencySpilloverInvocations).",
            fv,
        )
        self.account_concurrent = registry.gauge(
            "lambda_account_concurrent_executions",
            "Environments running an invocation or starting for one, all functions "
            "(CloudWatch ConcurrentExecutions without dimensions).",
        )
        self.unreserved_concurrent = registry.gauge(
            "lambda_unreserved_concurrent_executions",
            "Environments running an invocation or starting for one, of functions without "
            "reserved concurrency (CloudWatch UnreservedConcurrentExecutions).",
        )
        self.concurrency_limit = registry.gauge(
            "lambda_account_concurrency_limit",
            "The account's concurrent executions limit (--account-concurrency).",
        )
        self.async_received = registry.counter(
            "lambda_async_events_received_total",
            "Asynchronous events durably queued (CloudWatch AsyncEventsReceived).",
            fq,
        )
        self.async_age = registry.histogram(
            "lambda_async_event_age_seconds",
            "Time from queueing an event to each attempt to invoke the function with it "
            "(CloudWatch AsyncEventAge).",
            fq,
            EVENT_AGE_BUCKETS,
        )
        self.async_dropped = registry.counter(
            "lambda_async_events_dropped_total",
            "Asynchronous events dropped without a successful invocation, by reason "
            "(CloudWatch AsyncEventsDropped).",
            (*fq, "reason"),
        )
        self.dead_letter_errors = registry.counter(
            "lambda_dead_letter_errors_total",
            "Events that could not be sent to the function's dead-letter queue "
            "(CloudWatch DeadLetterErrors).",
            fq,
        )
        self.destination_failures = registry.counter(
            "lambda_destination_delivery_failures_total",
            "Invocation records that could not be sent to an OnSuccess/OnFailure destination "
            "(CloudWatch DestinationDeliveryFailures).",
            fq,
        )
        self.environments = registry.gauge(
            "lambdaplane_environments",
            "Execution environments by state: initializing (starting or in init), busy "
            "(invoking), idle (warm), prewarmed (pre-initialised, not yet a function's).",
            ("state",),
        )
        self.queue_depth = registry.gauge(
            "lambdaplane_async_queue_depth",
            "Asynchronous events accepted and not yet finished (due, leased or waiting to retry).",
        )
        self._series: dict[tuple[str, str], _FunctionSeries] = {}

    def _function(self, function: str, version: str) -> _FunctionSeries:
        key = (function, version)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _FunctionSeries(self, key)
        return series

    # -- the invoke path -------------------------------------------------------------------

    def invoked(
        self,
        function: str,
        version: str,
        duration_s: float,
        error: bool,
        init_duration_s: float | None,
        memory_bytes: int | None,
    ) -> None:
        """Record one invocation that reached the function (or its failed init)."""
        series = self._series.get((function, version)) or self._function(function, version)
        series.invocations.inc()
        if error:
            series.errors.inc()
        series.duration.observe(duration_s)
        if init_duration_s is not None:
            series.init.observe(init_duration_s)
        if memory_bytes:
            series.memory.observe(memory_bytes)

    def provisioned_invocation(self, function: str, version: str, *, spillover: bool) -> None:
        """An invocation of a version with provisioned concurrency: run by a provisioned
        environment, or (``spillover``) by an on-demand one."""
        counter = self.provisioned_spillover if spillover else self.provisioned_invocations
        counter.labels(function, version).inc()

    def throttled(self, function: str, version: str) -> None:
        series = self._series.get((function, version)) or self._function(function, version)
        series.throttles.inc()

    # -- asynchronous invocation -----------------------------------------------------------

    def event_received(self, function: str, qualifier: str) -> None:
        self.async_received.labels(function, qualifier).inc()

    def event_attempted(self, function: str, qualifier: str, age_s: float) -> None:
        self.async_age.labels(function, qualifier).observe(max(0.0, age_s))

    def event_dropped(self, function: str, qualifier: str, reason: str) -> None:
        self.async_dropped.labels(function, qualifier, reason).inc()

    def dead_letter_failed(self, function: str, qualifier: str) -> None:
        self.dead_letter_errors.labels(function, qualifier).inc()

    def destination_failed(self, function: str, qualifier: str) -> None:
        self.destination_failures.labels(function, qualifier).inc()

    # -- a scrape --------------------------------------------------------------------------

    def observe_environments(self, census: EnvironmentCensus) -> None:
        """Set the gauges of what is live now (call on the thread that owns the pools)."""
        self.environments.replace(
            {(state,): census.by_state.get(state, 0) for state in ENVIRONMENT_STATES}
        )
        self.concurrent.replace({key: count for key, count in census.busy.items()})
        self.provisioned_concurrent.replace(
            {key: census.provisioned_busy.get(key, 0) for key in census.provisioned}
        )
        self.provisioned_utilization.replace(
            {
                key: census.provisioned_busy.get(key, 0) / allocated
                for key, allocated in census.provisioned.items()
                if allocated
            }
        )
        self.account_concurrent.labels().set(sum(census.busy.values()))
        self.unreserved_concurrent.labels().set(
            sum(n for (function, _), n in census.busy.items() if function not in census.reserved)
        )
        self.concurrency_limit.labels().set(census.concurrency_limit)

    def observe_queue(self, depth: int) -> None:
        self.queue_depth.labels().set(depth)

    def render(self) -> str:
        """The whole exposition, in the Prometheus text format."""
        return self.registry.render()
