"""The Extensions API 2020-01-01 (and the Telemetry API's subscribe route), and the
lifecycle extensions impose on the environment.

Status codes, error types and messages follow AWS's runtime interface emulator
(``lambda/rapi/handler/agent*.go``, ``lambda/core/registrations.go``, ``lambda/rapid``);
lifecycle and payloads follow the Lambda developer guide ("Lambda Extensions API"):

- External extensions are started before the runtime; the runtime starts once every
  one of them has registered (``on_all_registered``). A name that is not an external
  extension registers an internal one: only while the runtime initialises (before its
  first /next), INVOKE only, ten extensions at most.
- Init completes, and the host gets its first NEXT, only when the runtime and every
  registered extension have called next. After an invocation NEXT waits for the
  runtime and every extension subscribed to INVOKE to call next again; the RESPONSE
  frame never waits for extensions.
- /init/error marks the extension, and init fails (Extension.InitError) when it exits,
  as in AWS. Any other exit of an extension, except after /exit/error, fails the
  environment (Extension.Crash). /exit/error is logged and the extension counts as
  gone: nothing waits for it any more.
- SHUTDOWN carries the deadline the supervisor computed (``shutdown``); telemetry
  subscriptions close with the init phase.

State is guarded by the Runtime API's lock, so a NEXT is decided in one place; frames
to the host are sent holding it, as the Runtime API does.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from lambdaplane.agent import telemetry, wire
    from lambdaplane.agent.extensions import (
        ACCEPTED,
        EXIT_ERROR,
        INIT_ERROR,
        INVOKE,
        JSON,
        MAX_EXTENSIONS,
        READY,
        RUNNING,
        SHUTDOWN,
        STARTED,
        Extension,
        event,
        identify,
        parse_register,
        refusal,
        with_headers,
    )
    from lambdaplane.agent.runtime_api import FrameSink, RuntimeAPI, next_meta
    from lambdaplane.agent.server import Connection, Request, response
else:
    import telemetry
    import wire
    from extensions import (
        ACCEPTED,
        EXIT_ERROR,
        INIT_ERROR,
        INVOKE,
        JSON,
        MAX_EXTENSIONS,
        READY,
        RUNNING,
        SHUTDOWN,
        STARTED,
        Extension,
        event,
        identify,
        parse_register,
        refusal,
        with_headers,
    )
    from runtime_api import next_meta
    from server import response


class _Invocation:
    __slots__ = ("outcome", "request_id", "started", "trace_id")

    def __init__(self, request_id: str, trace_id: str) -> None:
        self.request_id = request_id
        self.trace_id = trace_id
        self.started = time.monotonic()
        self.outcome: tuple[str, str | None] = ("success", None)  # status, error type


class ExtensionsAPI:
    """The extensions of one environment: their routes, and the runtime's lifecycle hooks.

    Build it holding ``runtime.lock`` (it reads the runtime's state). It becomes
    ``runtime.lifecycle`` once an extension exists. The supervisor sets
    ``on_all_registered`` (start the runtime), ``on_fatal`` (fail the environment;
    never returns) and ``telemetry.on_first_subscriber``, and calls ``add_external``,
    ``process_exited`` and ``shutdown``.
    """

    def __init__(
        self,
        runtime: RuntimeAPI,
        sink: FrameSink,
        environ: Mapping[str, str],
        account_id: str | None,
        started: float,
        memory_mb: Callable[[], int],
    ) -> None:
        self._runtime = runtime
        self._lock = runtime.lock
        self._sink = sink
        self._environ = environ
        self._account_id = account_id
        self._started = started  # time.time() when the init phase began
        self._memory_mb = memory_mb
        self._by_id: dict[str, Extension] = {}
        self._by_name: dict[str, Extension] = {}
        self._runtime_ready = False  # the runtime waits in Ready for the extensions
        self._init_duration_ms: float | None = None  # for the first report after init
        self._failed = False
        self._shutting_down = False
        self._invocation: _Invocation | None = None
        self.init_done = not runtime.initializing
        self.telemetry = telemetry.Telemetry(started, environ)
        if self.init_done:  # built on a late request: nobody can subscribe any more
            self.telemetry.end_replay()
        self.on_all_registered: Callable[[], None] | None = None
        self.on_fatal: Callable[[str, str, str], None] | None = None

    # -- supervisor side ---------------------------------------------------------------

    def add_external(self, name: str) -> None:
        """Record an external extension about to be started (in Started)."""
        with self._lock:
            self._add(Extension(name, external=True))
            self._runtime.lifecycle = self

    @property
    def count(self) -> int:
        return len(self._by_id)

    def has(self, external: bool) -> bool:
        return any(e.external is external for e in self._by_id.values())

    def process_exited(self, name: str, status: dict[str, Any]) -> tuple[str, str] | None:
        """An external extension's process ended: (error type, message) if that fails the
        environment; it does unless the extension reported /exit/error or we shut down."""
        with self._lock:
            extension = self._by_name[name]
            extension.exited = True
            extension.waiter = None
            if self._shutting_down or self._failed:
                return None
            if extension.state is EXIT_ERROR:
                self._check_ready()
                return None
            self._failed = True
            error_type = (
                "Extension.InitError" if extension.state is INIT_ERROR else "Extension.Crash"
            )
            code = status.get("code")
            return error_type, "Error: exit code 0" if code == 0 else f"Error: {status['status']}"

    def status_lines(self) -> bytes:
        """AWS's EXTENSION lines for the function's log, one per extension."""
        with self._lock:
            return b"".join(e.status_line() for e in self._by_id.values())

    def shutdown(self, reason: str, deadline_ms: int) -> set[str]:
        """Send SHUTDOWN to every external extension subscribed to it (at its next /next
        if it is busy); return their names. Nothing becomes ready after this."""
        body = wire.dumps(
            {"eventType": SHUTDOWN, "shutdownReason": reason, "deadlineMs": deadline_ms}
        ).encode()
        with self._lock:
            self._shutting_down = True
            awaited = [e for e in self._by_id.values() if self._awaits_shutdown(e)]
            for extension in awaited:
                extension.deliver(event(extension, body), shutdown=True)
            return {e.name for e in awaited}

    def awaiting_shutdown(self) -> bool:
        """Some extension sent SHUTDOWN has neither exited nor called next since."""
        with self._lock:
            return any(
                self._awaits_shutdown(e) and not e.shutdown_done for e in self._by_id.values()
            )

    @staticmethod
    def _awaits_shutdown(extension: Extension) -> bool:
        return (
            extension.external
            and SHUTDOWN in extension.events
            and not extension.gone
            and extension.state is not INIT_ERROR
        )

    # -- lifecycle hooks (RuntimeAPI calls them holding the lock) -----------------------

    def runtime_ready(self) -> None:
        if not self.init_done:
            self.telemetry.init_runtime_done("success")
        self._runtime_ready = True
        self._check_ready()

    def invoke(self, meta: dict[str, Any], request_id: str) -> None:
        trace_id = meta.get("trace_id") or ""
        self._invocation = _Invocation(request_id, trace_id)
        subscribers = [e for e in self._by_id.values() if INVOKE in e.events and e.state is READY]
        if subscribers:
            body = wire.dumps(
                {
                    "eventType": INVOKE,
                    "deadlineMs": int(meta.get("deadline_ms") or 0),
                    "requestId": request_id,
                    "invokedFunctionArn": meta.get("invoked_function_arn") or "",
                    "tracing": {"type": telemetry.TRACE_TYPE, "value": trace_id},
                }
            ).encode()
            for extension in subscribers:
                extension.deliver(event(extension, body))
        self.telemetry.start(request_id, trace_id)

    def runtime_done(self, request_id: str, status: str, error_type: str | None, size: int) -> None:
        invocation = self._invocation
        if invocation is None or invocation.request_id != request_id:
            return
        invocation.outcome = (status, error_type)
        duration = _ms(time.monotonic() - invocation.started)
        self.telemetry.runtime_done(
            request_id, invocation.outcome, invocation.trace_id, duration, size
        )

    def runtime_init_error(self, error_type: str | None) -> None:
        if not self.init_done:
            self.telemetry.init_runtime_done("error", error_type)

    def closed(self, conn: Connection) -> None:
        for extension in self._by_id.values():
            if extension.waiter is conn:
                extension.waiter = None

    # -- routes ------------------------------------------------------------------------

    def register(self, conn: Connection, request: Request, _param: bytes) -> bool:
        name = request.headers.get(b"lambda-extension-name", b"").decode("utf-8", "replace")
        if not name:
            conn.send(refusal("Extension.InvalidExtensionName", "Empty extension name"))
            return False
        features = request.headers.get(b"lambda-extension-accept-feature", b"").split(b",")
        with_account = b"accountId" in [feature.strip() for feature in features]
        events, problem = parse_register(request.body)
        if problem:
            conn.send(refusal("InvalidRequestFormat", problem))
            return False
        with self._lock:
            extension = self._by_name.get(name)
            if extension is not None and extension.external:
                refused = self._register_external(extension, events)
            else:
                extension, refused = self._register_internal(name, events)
            if extension is None or refused:
                conn.send(refused)
                return False
            self._runtime.lifecycle = self
            conn.send(self._registered(extension, with_account))
            start = self.on_all_registered
            if start is not None and extension.external and self._all_registered():
                self.on_all_registered = None
                start()
        return False

    def _register_external(self, extension: Extension, events: list[str]) -> bytes:
        for name in events:
            if name not in (INVOKE, SHUTDOWN):
                return refusal("Extension.InvalidEventType", f"{name}: ErrorInvalidEventType")
        refused = extension.move("register")
        if not refused:
            extension.events = tuple(dict.fromkeys(events))
        return refused

    def _register_internal(self, name: str, events: list[str]) -> tuple[Extension | None, bytes]:
        for event_name in events:
            if event_name == SHUTDOWN:
                message = "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension"
                return None, refusal("Extension.InvalidEventType", message)
            if event_name != INVOKE:
                message = f"{event_name}: ErrorInvalidEventType"
                return None, refusal("Extension.InvalidEventType", message)
        if not self._runtime.initializing or self.init_done:
            message = "Extension registration closed already"
            return None, refusal("Extension.RegistrationClosed", message)
        if len(self._by_id) >= MAX_EXTENSIONS:
            message = f"Extension limit ({MAX_EXTENSIONS}) reached"
            return None, refusal("Extension.TooManyExtensions", message)
        if name in self._by_name:
            message = "Extension with this name already registered"
            return None, refusal("Extension.InvalidExtensionState", message)
        extension = Extension(name, external=False)
        extension.move("register")
        extension.events = tuple(dict.fromkeys(events))
        self._add(extension)
        return extension, b""

    def _registered(self, extension: Extension, with_account: bool) -> bytes:
        document: dict[str, str] = {}
        if with_account and self._account_id:
            document["accountId"] = self._account_id
        document["functionName"] = self._environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        document["functionVersion"] = self._environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")
        document["handler"] = self._environ.get("_HANDLER", "")
        head = response(200, wire.dumps(document).encode() + b"\n", JSON)
        return with_headers(head, [(b"Lambda-Extension-Identifier", extension.id.encode())])

    def next(self, conn: Connection, request: Request, _param: bytes) -> bool:
        ident, refused = identify(request)
        with self._lock:
            extension = self._known(ident, refused, f"Unknown extension {ident}", conn)
            if extension is None:
                return False
            if extension.pending is not None:  # an event it has not read yet: this is it
                extension.waiter = conn
                extension.deliver(extension.pending, extension.pending_shutdown)
                return False
            refused = extension.move("next")
            if refused:
                conn.send(refused)
                return False
            extension.waiter = conn
            if extension.shutdown_sent:
                extension.shutdown_done = True
            else:
                self._check_ready()
            return True  # parked: an event answers it from another thread

    def init_error(self, conn: Connection, request: Request, _param: bytes) -> bool:
        return self._report_error(conn, request, "init_error")

    def exit_error(self, conn: Connection, request: Request, _param: bytes) -> bool:
        return self._report_error(conn, request, "exit_error")

    def _report_error(self, conn: Connection, request: Request, move: str) -> bool:
        ident, refused = identify(request)
        error_type = request.headers.get(b"lambda-extension-function-error-type", b"")
        if not refused and not error_type:
            message = "Lambda-Extension-Function-Error-Type not found"
            refused = refusal("Extension.MissingHeader", message)
        with self._lock:
            extension = self._known(ident, refused, "Unknown Lambda-Extension-Identifier", conn)
            if extension is None:
                return False
            state = extension.state
            refused = extension.move(move)
            conn.send(refused or ACCEPTED)
            if refused or state is extension.state:  # a repeat: only the first one counts
                return False
            extension.error_type = error_type.decode("utf-8", "replace")
            if move == "exit_error":
                self._log(extension.status_line())
                self._check_ready()
                return False
            # An internal extension has no process whose exit would end the init: now.
            fatal = not extension.external and self.on_fatal is not None
            self._failed = self._failed or fatal
        if fatal and self.on_fatal is not None:  # outside the lock: it reports, then exits
            self.on_fatal("Extension.InitError", f"Error: {extension.error_type}", extension.name)
        return False

    def subscribe(self, conn: Connection, request: Request, _param: bytes) -> bool:
        """PUT /2022-07-01/telemetry: subscribe an extension to the Telemetry API."""
        ident, refused = identify(request)
        with self._lock:
            extension = self._known(ident, refused, f"Unknown extension {ident}", conn)
            if extension is None:
                return False
            if self.init_done:
                message = "Telemetry API subscription is closed already"
                conn.send(refusal("Telemetry.SubscriptionClosed", message))
                return False
            subscription, problem = telemetry.parse_subscription(request.body)
            if subscription is None:
                conn.send(telemetry.validation_error(problem))
                return False
            self.telemetry.subscribe(extension.name, subscription)
            conn.send(telemetry.SUBSCRIBED)
            return False

    # -- the readiness barrier ---------------------------------------------------------

    def _check_ready(self) -> None:
        """Send NEXT if the runtime and every extension the phase waits for are ready."""
        if not self._runtime_ready or self._failed or self._shutting_down:
            return
        extensions = self._by_id.values()
        if not self.init_done:
            if any(e.state is not READY and not e.gone for e in extensions):
                return
            self._finish_init()
        else:
            if any(INVOKE in e.events and e.state is RUNNING and not e.gone for e in extensions):
                return
            self._report()
        self._runtime_ready = False
        self._sink.send(wire.NEXT, next_meta(), drain=True)

    def _finish_init(self) -> None:
        self.init_done = True
        self._init_duration_ms = _ms(time.time() - self._started)
        self._log(b"".join(e.status_line() for e in self._by_id.values()))
        states = []
        for extension in self._by_id.values():
            record: dict[str, Any] = {
                "name": extension.name,
                "state": extension.state,
                "events": list(extension.events),
            }
            if extension.error_type:
                record["errorType"] = extension.error_type
            states.append(record)
        self.telemetry.init_done(self._init_duration_ms, states)

    def _report(self) -> None:
        invocation, self._invocation = self._invocation, None
        if invocation is None:
            return
        init_duration, self._init_duration_ms = self._init_duration_ms, None
        self.telemetry.report(
            invocation.request_id,
            invocation.outcome,
            invocation.trace_id,
            _ms(time.monotonic() - invocation.started),
            self._memory_mb,
            init_duration,
        )

    # -- helpers -----------------------------------------------------------------------

    def _add(self, extension: Extension) -> None:
        self._by_id[extension.id] = extension
        self._by_name[extension.name] = extension

    def _all_registered(self) -> bool:
        return all(e.state is not STARTED for e in self._by_id.values() if e.external)

    def _known(
        self, ident: str, refused: bytes, unknown: str, conn: Connection
    ) -> Extension | None:
        """The extension a request names, or None once ``conn`` got the refusal."""
        extension = None if refused else self._by_id.get(ident)
        if extension is None:
            conn.send(refused or refusal("Extension.UnknownExtensionIdentifier", unknown))
        return extension

    def _log(self, lines: bytes) -> None:
        if lines:
            self._sink.send(wire.LOG, b'{"ts":%d}' % (time.time_ns() // 1000000), lines)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
