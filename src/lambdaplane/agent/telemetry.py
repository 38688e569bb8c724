"""The Telemetry API 2022-07-01: subscriptions, and the platform, function and extension
records subscribers get (delivery is ``telemetry_delivery``).

Record shapes are the Lambda developer guide's ("Lambda Telemetry API", "Telemetry API
Event schema reference"); limits and validation follow AWS's open-source emulator
(``aws-lambda-rie/internal/telemetry``: the subscription schema, ``subscription_api.go``).
Platform records of the init phase are replayed to later subscribers, so each one
sees ``platform.initStart`` although it subscribed after it. Until someone subscribes,
records after init cost one test each: nothing is encoded for nobody.
"""

from __future__ import annotations

import _thread
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from lambdaplane.agent import wire
    from lambdaplane.agent.server import response
    from lambdaplane.agent.telemetry_delivery import Subscriber, encode_event
else:
    import wire
    from server import response
    from telemetry_delivery import Subscriber, encode_event

SCHEMA_VERSIONS = ("2022-07-01", "2022-12-13")
TYPES = ("platform", "function", "extension")
# name: (minimum, maximum, default)
BUFFERING = {
    "maxItems": (1000, 10000, 10000),
    "maxBytes": (262144, 1048576, 262144),
    "timeoutMs": (25, 30000, 1000),
}
LOCAL_HOSTS = ("sandbox.localdomain", "sandbox", "localhost", "127.0.0.1")
_TEXT = b"text/plain; charset=utf-8"  # what Go sniffs for the emulator's bodies
SUBSCRIBED = response(200, b'"OK"', _TEXT)
_MAX_PARTIAL_LINE = 256 * 1024
TRACE_TYPE = "X-Amzn-Trace-Id"


def validation_error(message: str) -> bytes:
    body = wire.dumps({"errorType": "ValidationError", "errorMessage": message}).encode()
    return response(400, body, _TEXT)


class Subscription:
    """A validated subscription request."""

    __slots__ = ("max_bytes", "max_items", "path", "port", "protocol", "timeout", "types")

    def __init__(self) -> None:
        self.types: tuple[str, ...] = ()
        self.protocol = "HTTP"
        self.port = 0
        self.path = "/"
        self.max_items = BUFFERING["maxItems"][2]
        self.max_bytes = BUFFERING["maxBytes"][2]
        self.timeout = BUFFERING["timeoutMs"][2] / 1000


def parse_subscription(body: bytes | bytearray | None) -> tuple[Subscription | None, str]:
    """The subscription a PUT /telemetry body asks for, or why it is not valid."""
    try:
        document = wire.loads(bytes(body or b""))
    except ValueError as exc:
        return None, f"Invalid JSON: {exc}"
    if not isinstance(document, dict):
        return None, "request body must be a JSON object"
    subscription = Subscription()
    problems: list[str] = []
    version = document.get("schemaVersion")
    if version not in SCHEMA_VERSIONS:
        problems.append(f"schemaVersion must be one of {', '.join(SCHEMA_VERSIONS)}")
    types = document.get("types")
    if not isinstance(types, list) or not types:
        problems.append("types should not be empty")
    elif any(t not in TYPES for t in types):
        problems.append(f"types must be among {', '.join(TYPES)}")
    else:
        subscription.types = tuple(dict.fromkeys(types))
    problems += _parse_destination(document.get("destination"), subscription)
    buffering = document.get("buffering")
    if buffering is not None and not isinstance(buffering, dict):
        problems.append("buffering must be an object")
    elif buffering:
        for key, (low, high, _) in BUFFERING.items():
            value = buffering.get(key)
            if value is None:
                continue
            if type(value) is not int or not low <= value <= high:
                problems.append(f"buffering.{key} must be an integer from {low} to {high}")
            elif key == "maxItems":
                subscription.max_items = value
            elif key == "maxBytes":
                subscription.max_bytes = value
            else:
                subscription.timeout = value / 1000
    if problems:
        return None, "; ".join(problems)
    return subscription, ""


def _parse_destination(destination: object, subscription: Subscription) -> list[str]:
    if not isinstance(destination, dict):
        return ["destination is required"]
    protocol = destination.get("protocol")
    if protocol == "TCP":
        port = destination.get("port")
        if type(port) is not int or not 0 < port < 65536:
            return ["destination.port must be an integer from 1 to 65535"]
        subscription.protocol, subscription.port = "TCP", port
        return []
    if protocol != "HTTP":
        return ["destination.protocol must be HTTP or TCP"]
    uri = destination.get("URI")
    if not isinstance(uri, str) or not uri:
        return ["destination.URI is required"]
    if not uri.lower().startswith("http://"):
        return ["destination.URI must be an http:// URI (Lambda supports only HTTP)"]
    authority, _, path = uri[7:].partition("/")
    host, colon, port_text = authority.rpartition("@")[2].rpartition(":")
    if not colon:
        host, port_text = port_text, ""
    if host.lower() not in LOCAL_HOSTS:
        return ["destination.URI host must be sandbox.localdomain"]
    if not port_text:
        return ["URI port is not provided"]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return ["URI port is invalid"]
    subscription.port = int(port_text)
    subscription.path = "/" + path
    return []


class Telemetry:
    """The subscribers of one environment and the records they get. The record methods
    take what the agent knows and build the schema's shapes."""

    def __init__(self, init_started: float, environ: Mapping[str, str]) -> None:
        self._lock = _thread.allocate_lock()
        self._subscribers: dict[str, Subscriber] = {}
        self._backlog: list[str] | None = []  # the init phase's platform records
        self._partial = {"function": b"", "extension": b""}
        self._init_type = environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") or "on-demand"
        self._version = environ.get("AWS_LAMBDA_FUNCTION_VERSION") or ""
        self._memory_size = int(environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 0)
        self.on_first_subscriber: Callable[[], None] | None = None
        record = {"initializationType": self._init_type, "phase": "init"}
        self.platform("platform.initStart", record, init_started)

    @property
    def listening(self) -> bool:
        """Someone gets platform records now, or may subscribe and get them replayed."""
        return self._backlog is not None or bool(self._subscribers)

    def subscribe(self, name: str, subscription: Subscription) -> None:
        """Start delivering to ``name``'s listener (replacing its earlier subscription)."""
        subscriber = Subscriber(name, subscription)
        with self._lock:
            first = not self._subscribers
            old = self._subscribers.pop(name, None)
            self._subscribers[name] = subscriber
            if "platform" in subscriber.types:
                for event in self._backlog or ():
                    subscriber.add(event)
        if old is not None:
            old.close()
        subscriber.start()
        if first and self.on_first_subscriber is not None:
            self.on_first_subscriber()
        record = {"name": name, "state": "Subscribed", "types": list(subscription.types)}
        self.platform("platform.telemetrySubscription", record)

    def platform(self, type: str, record: dict[str, Any], at: float | None = None) -> None:
        if not self.listening:
            return
        event = encode_event(time.time() if at is None else at, type, wire.dumps(record))
        with self._lock:
            if self._backlog is not None:
                self._backlog.append(event)
            for subscriber in self._subscribers.values():
                if "platform" in subscriber.types:
                    subscriber.add(event)

    # -- the platform's records --------------------------------------------------------

    def init_runtime_done(self, status: str, error_type: str | None = None) -> None:
        record = {"initializationType": self._init_type, "phase": "init", "status": status}
        if status != "success":
            record["errorType"] = error_type or "Runtime.Unknown"
        self.platform("platform.initRuntimeDone", record)

    def init_done(self, duration_ms: float, extensions: list[dict[str, Any]]) -> None:
        """The init phase is over: its report, then no more replay."""
        for record in extensions:
            self.platform("platform.extension", record)
        metrics = {"durationMs": duration_ms}
        record = {"initializationType": self._init_type, "phase": "init", "metrics": metrics}
        self.platform("platform.initReport", record)
        self.end_replay()

    def end_replay(self) -> None:
        """No more subscriptions: stop keeping the init phase's records."""
        with self._lock:
            self._backlog = None

    def start(self, request_id: str, trace_id: str) -> None:
        record: dict[str, Any] = {"requestId": request_id}
        if self._version:
            record["version"] = self._version
        if trace_id:
            record["tracing"] = {"type": TRACE_TYPE, "value": trace_id}
        self.platform("platform.start", record)

    def runtime_done(
        self,
        request_id: str,
        outcome: tuple[str, str | None],
        trace_id: str,
        duration_ms: float,
        produced_bytes: int,
    ) -> None:
        record = _invocation_record(request_id, outcome, trace_id)
        record["metrics"] = {"durationMs": duration_ms, "producedBytes": produced_bytes}
        self.platform("platform.runtimeDone", record)

    def report(
        self,
        request_id: str,
        outcome: tuple[str, str | None],
        trace_id: str,
        duration_ms: float,
        memory_used_mb: Callable[[], int],
        init_duration_ms: float | None,
    ) -> None:
        if not self.listening:
            return
        metrics: dict[str, Any] = {
            "durationMs": duration_ms,
            "billedDurationMs": max(1, -int(-duration_ms // 1)),
            "memorySizeMB": self._memory_size,
            "maxMemoryUsedMB": memory_used_mb(),
        }
        if init_duration_ms is not None:
            metrics["initDurationMs"] = init_duration_ms
        record = _invocation_record(request_id, outcome, trace_id)
        record["metrics"] = metrics
        self.platform("platform.report", record)

    # -- output ------------------------------------------------------------------------

    def function_output(self, data: bytes) -> None:
        """Bytes the runtime wrote: one ``function`` record per line."""
        self._output("function", data)

    def extension_output(self, data: bytes) -> None:
        """Bytes extensions wrote: one ``extension`` record per line."""
        self._output("extension", data)

    def _output(self, category: str, data: bytes) -> None:
        with self._lock:
            lines = (self._partial[category] + data).split(b"\n")
            partial = lines.pop()
            if len(partial) > _MAX_PARTIAL_LINE:
                lines.append(partial)
                partial = b""
            self._partial[category] = partial
            targets = [s for s in self._subscribers.values() if category in s.types]
            if not targets or not lines:
                return
            now = time.time()
            for line in lines:
                text = wire.dumps(line.decode("utf-8", "replace").rstrip("\r"))
                event = encode_event(now, category, text)
                for subscriber in targets:
                    subscriber.add(event)

    def flush(self, deadline: float) -> None:
        """Deliver what is buffered, waiting until ``deadline`` (time.monotonic()) at most."""
        with self._lock:
            subscribers = list(self._subscribers.values())
        for subscriber in subscribers:
            subscriber.flush(deadline)


def _invocation_record(
    request_id: str, outcome: tuple[str, str | None], trace_id: str
) -> dict[str, Any]:
    status, error_type = outcome
    record: dict[str, Any] = {"requestId": request_id, "status": status}
    if status != "success":
        record["errorType"] = error_type or "Runtime.Unknown"
    if trace_id:
        record["tracing"] = {"type": TRACE_TYPE, "value": trace_id}
    return record
