"""An extension's state machine, and the Extensions API's wire edge: identifiers,
request bodies and the emulator's responses.

States, moves, error types and messages are those of AWS's runtime interface emulator
(``lambda/core`` external/internal agent states, ``lambda/rapi/handler/agent*.go``,
``lambda/rapi/middleware``). The API itself, and what the moves mean for the
environment, is ``extensions_api``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from lambdaplane.agent import wire
    from lambdaplane.agent.server import Connection, Request, response
else:
    import wire
    from server import response

MAX_EXTENSIONS = 10
"""AWS's limit on registered extensions (core.MaxAgentsAllowed)."""
INVOKE = "INVOKE"
SHUTDOWN = "SHUTDOWN"

# Extension states, spelled as the emulator prints them.
STARTED = "Started"
REGISTERED = "Registered"
READY = "Ready"
RUNNING = "Running"
INIT_ERROR = "InitError"
EXIT_ERROR = "ExitError"

# (state, move) -> next state; a missing entry is "State transition is not allowed".
# "next" parks the extension until an "event" hands it something to do.
_MOVES = {
    (STARTED, "register"): REGISTERED,
    (REGISTERED, "next"): READY,
    (RUNNING, "next"): READY,
    (READY, "event"): RUNNING,
    (REGISTERED, "event"): RUNNING,
    (RUNNING, "event"): RUNNING,
    (REGISTERED, "init_error"): INIT_ERROR,
    (INIT_ERROR, "init_error"): INIT_ERROR,
    (REGISTERED, "exit_error"): EXIT_ERROR,
    (READY, "exit_error"): EXIT_ERROR,
    (RUNNING, "exit_error"): EXIT_ERROR,
    (EXIT_ERROR, "exit_error"): EXIT_ERROR,
}
# The state each move is named after in the emulator's messages.
_TARGETS = {"register": REGISTERED, "next": READY, "init_error": INIT_ERROR, "exit_error": "Exited"}

# Variables AWS keeps from extensions: they describe the runtime process.
RUNTIME_ONLY_VARIABLES = (
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
    "_AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_PORT",
    "_HANDLER",
)

JSON = b"application/json; charset=utf-8"
ACCEPTED = response(202, b'{"status":"OK"}\n', JSON)


class Extension:
    """One extension: launched (external, in Started) or registered (internal)."""

    __slots__ = (
        "error_type",
        "events",
        "exited",
        "external",
        "id",
        "name",
        "pending",
        "pending_shutdown",
        "shutdown_done",
        "shutdown_sent",
        "state",
        "waiter",
    )

    def __init__(self, name: str, external: bool) -> None:
        self.name = name
        self.id = new_id()
        self.external = external
        self.state = STARTED
        self.events: tuple[str, ...] = ()
        self.waiter: Connection | None = None  # its parked /next
        self.pending: bytes | None = None  # an event (a whole response) not yet read
        self.pending_shutdown = False  # ... and that event is SHUTDOWN
        self.exited = False  # its process is gone (external only)
        self.error_type = ""  # what it reported with /init/error or /exit/error
        self.shutdown_sent = False
        self.shutdown_done = False  # called next after SHUTDOWN

    @property
    def gone(self) -> bool:
        """Reported /exit/error or its process ended: nothing waits for it any more."""
        return self.exited or self.state is EXIT_ERROR

    def move(self, move: str) -> bytes:
        """Take ``move``; b"" if allowed, else the emulator's 403 (and no change)."""
        target = _MOVES.get((self.state, move))
        if target is None:
            who = self.name if move == "register" else self.id
            message = (
                f"State transition from {self.state} to {_TARGETS[move]} failed for "
                f"extension {who}. Error: State transition is not allowed"
            )
            return refusal("Extension.InvalidExtensionState", message)
        self.state = target
        return b""

    def deliver(self, event: bytes, shutdown: bool = False) -> None:
        """Hand ``event`` (a whole response) over: now if its /next waits, else at its next."""
        self.move("event")
        conn, self.waiter = self.waiter, None
        self.pending = event
        self.pending_shutdown = shutdown
        if conn is None or conn.closed:
            return
        try:
            conn.send(event)
        except OSError:
            return  # its thread sees the failure too; the next /next gets the event again
        self.pending = None
        self.shutdown_sent = self.shutdown_sent or shutdown

    def status_line(self) -> bytes:
        """The line AWS writes to the function's log about an extension at the end of init."""
        line = (
            f"EXTENSION\tName: {self.name}\tState: {self.state}\tEvents: [{','.join(self.events)}]"
        )
        if self.error_type:
            line += f"\tError Type: {self.error_type}"
        return line.encode() + b"\n"


def extension_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The function's environment as AWS gives it to an extension."""
    return {k: v for k, v in environ.items() if k not in RUNTIME_ONLY_VARIABLES}


def new_id() -> str:
    """A random (version 4) UUID, without the cost of importing ``uuid``."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_id(raw: bytes) -> str | None:
    """The canonical form of a UUID in any spelling Go's uuid.Parse takes, or None."""
    text = raw.decode("ascii", "replace").strip().lower()
    if text.startswith("urn:uuid:"):
        text = text[9:]
    elif text[:1] == "{" and text[-1:] == "}":
        text = text[1:-1]
    if len(text) == 36 and all(text[i] == "-" for i in (8, 13, 18, 23)):
        text = text.replace("-", "")
    if len(text) != 32 or text.strip("0123456789abcdef"):
        return None
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def identify(request: Request) -> tuple[str, bytes]:
    """The request's Lambda-Extension-Identifier, or the emulator's 403 (its middleware)."""
    raw = request.headers.get(b"lambda-extension-identifier")
    if not raw:
        message = "Missing Lambda-Extension-Identifier header"
        return "", refusal("Extension.MissingExtensionIdentifier", message)
    ident = parse_id(raw)
    if ident is None:
        message = "Invalid Lambda-Extension-Identifier"
        return "", refusal("Extension.InvalidExtensionIdentifier", message)
    return ident, b""


def parse_register(body: bytes | bytearray | None) -> tuple[list[str], str]:
    """The events of a /register body, or a Go-like reason it is not one."""
    text = bytes(body or b"").strip()
    if not text:
        return [], "unexpected end of JSON input"
    try:
        document = wire.loads(text)
    except ValueError as exc:
        return [], f"invalid JSON: {exc}"
    if not isinstance(document, dict):
        return [], "json: cannot unmarshal a non-object into the register request"
    if document.get("configurationKeys"):
        return [], "configurationKeys are deprecated; use environment variables instead"
    events = document.get("events")
    if events is None:
        return [], ""
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        return [], "json: cannot unmarshal events: want an array of strings"
    return events, ""


def refusal(error_type: str, message: str, status: int = 403) -> bytes:
    """An error response as the emulator renders it (errorMessage first, then errorType)."""
    body = wire.dumps({"errorMessage": message, "errorType": error_type}).encode() + b"\n"
    return response(status, body, JSON)


def with_headers(head: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """``head`` (a whole response from ``server.response``) with ``headers`` added."""
    end = head.index(b"\r\n") + 2
    extra = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head[:end] + extra + head[end:]


def event(extension: Extension, body: bytes) -> bytes:
    """The /event/next response that carries ``body`` to ``extension``."""
    head = response(200, body, b"application/json")
    return with_headers(
        head,
        [
            (b"Lambda-Extension-Event-Identifier", new_id().encode()),
            (b"Lambda-Extension-Identifier", extension.id.encode()),
        ],
    )
