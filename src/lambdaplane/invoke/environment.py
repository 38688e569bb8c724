"""One execution environment, seen from the host: a sandbox running the agent and a runtime.

The host talks to the agent over one Unix socket with the frames of
``lambdaplane.agent.wire``; the agent serves the Runtime API to the runtime inside.
An environment moves through an explicit state machine:

    STARTING → INITIALIZING → READY ⇄ INVOKING → (READY | RESETTING) → SHUT_DOWN

Validate first, then transition: an illegal move raises ``IllegalTransition``. A
timeout, a crash or an exit during INVOKING resets the environment (it is destroyed
and the next invocation starts cold), and the invocation gets AWS's error for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from lambdaplane.agent import wire
from lambdaplane.invoke.env_vars import environment
from lambdaplane.invoke.image import FunctionImage
from lambdaplane.invoke.logsink import LogSink
from lambdaplane.invoke.logstream import LogStream
from lambdaplane.invoke.mounts import Mounts
from lambdaplane.invoke.prewarm import Prewarmed
from lambdaplane.languages import for_runtime
from lambdaplane.sandbox import CpuPolicy, RunningSandbox, Sandbox, SandboxSpec
from lambdaplane.service.runtimes import Runtime

if TYPE_CHECKING:
    from lambdaplane.invoke.snapstart import Template

MAX_RESPONSE_BYTES = 6_291_556
MAX_STREAM = 200 * 1024 * 1024  # a streamed response (the agent's runtime_api.MAX_STREAM)
PEAK_REFRESH_SECONDS = 0.05
SHUTDOWN_PHASE_SECONDS = 2.5  # AWS: 2,000 ms for extensions, plus the agent's own exit
ON_DEMAND = "on-demand"
PROVISIONED = "provisioned-concurrency"  # initialised ahead of demand


class IllegalTransition(RuntimeError):
    pass


class EnvState(StrEnum):
    STARTING = "STARTING"
    INITIALIZING = "INITIALIZING"
    READY = "READY"
    INVOKING = "INVOKING"
    RESETTING = "RESETTING"
    SHUT_DOWN = "SHUT_DOWN"


_BUSY = frozenset({EnvState.STARTING, EnvState.INITIALIZING, EnvState.INVOKING})
_MOVES: dict[EnvState, frozenset[EnvState]] = {
    EnvState.STARTING: frozenset({EnvState.INITIALIZING, EnvState.RESETTING, EnvState.SHUT_DOWN}),
    EnvState.INITIALIZING: frozenset({EnvState.READY, EnvState.RESETTING, EnvState.SHUT_DOWN}),
    EnvState.READY: frozenset({EnvState.INVOKING, EnvState.RESETTING, EnvState.SHUT_DOWN}),
    EnvState.INVOKING: frozenset({EnvState.READY, EnvState.RESETTING, EnvState.SHUT_DOWN}),
    EnvState.RESETTING: frozenset({EnvState.SHUT_DOWN}),
    EnvState.SHUT_DOWN: frozenset(),
}


@dataclass(frozen=True)
class AgentLaunch:
    """How to start the agent: its directory on the host and the interpreter that runs it."""

    directory: Path
    interpreter: Runtime


@dataclass(frozen=True)
class InvokeRequest:
    request_id: str
    payload: bytes
    client_context: str | None = None
    cognito_identity: str | None = None
    trace_id: str = ""
    invoked_arn: str = ""


@dataclass
class Outcome:
    """What an invocation (or a failed init) produced, as the Invoke API returns it."""

    payload: bytes
    function_error: str | None = None  # "Unhandled" when the function failed
    healthy: bool = True  # False: the environment must be destroyed
    report_status: str | None = None  # "timeout" / "error" on the REPORT line
    error_type: str | None = None
    duration_ms: float = 0.0  # the invocation's Duration, as REPORT gives it
    init_duration_ms: float | None = None  # REPORT's Init Duration (an environment's first)
    restore_duration_ms: float | None = None  # REPORT's Restore Duration (a restore's first)
    max_memory_bytes: int | None = None  # the peak behind REPORT's Max Memory Used
    streamed: bool = False  # the runtime streamed its response (its bytes went to the sink)


class StreamSink(Protocol):
    """Where a streamed response goes while it arrives (``Environment.invoke(sink=...)``)."""

    def started(self, content_type: str | None) -> None:
        """The runtime began streaming, with this Content-Type (None: it sent none)."""

    def chunk(self, data: bytes) -> None:
        """The next bytes of the response."""


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _exit_message(
    request_id: str, status: str | None, error_type: str = "Runtime.ExitError"
) -> bytes:
    if not status or status == "exit status 0":
        text = f"RequestId: {request_id} Error: Runtime exited without providing a reason"
    else:
        text = f"RequestId: {request_id} Error: Runtime exited with error: {status}"
    return _error_payload(error_type, text)


def runtime_argv(runtime: Runtime, handler: str, code_dir: Path) -> list[str]:
    """The runtime process the agent starts (the language decides)."""
    return for_runtime(runtime).argv(runtime, handler, code_dir)


class _AgentProtocol(asyncio.Protocol):
    def __init__(self, environment: Environment) -> None:
        self._env = environment
        self._decoder = wire.FrameDecoder()

    def data_received(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            self._env._on_frame(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._env.direct:  # A direct runtime's exit status comes from its process.
            self._env._on_agent_gone()


class Environment:
    """A live environment of one function version."""

    def __init__(
        self,
        image: FunctionImage,
        *,
        sandbox: Sandbox,
        agent: AgentLaunch,
        region: str,
        sink: LogSink,
        cpu: CpuPolicy,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        env_id: str | None = None,
        init_type: str = ON_DEMAND,
    ) -> None:
        self.image = image
        self.id = env_id or uuid.uuid4().hex
        self.init_type = init_type  # AWS_LAMBDA_INITIALIZATION_TYPE
        self.state = EnvState.STARTING
        self.busy = True  # STARTING, INITIALIZING or INVOKING (kept by _move)
        self.last_used = clock()
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[{image.version}]{self.id}"
        self._sandbox = sandbox
        self._agent = agent
        self._region = region
        self._cpu = cpu
        self._clock = clock
        self._wall = wall
        self._running: RunningSandbox | None = None
        self._transport: asyncio.Transport | None = None
        self._ready: asyncio.Future[None] | None = None
        self._pending: asyncio.Future[Outcome] | None = None
        self._request_id = ""
        self.log = LogStream(image.log_group, self.log_stream, sink, wall, image.log_settings)
        self._invoked = False
        self._init_error: tuple[bytes, str | None] | None = None
        self._exit_status: str | None = None
        self.init_duration_ms: float | None = None
        self.restore_duration_ms: float | None = None  # SnapStart: REPORT's Restore Duration
        # Managed Python runtimes talk frames directly (agent/pyruntime.py); the rest go
        # through the agent and the HTTP Runtime API, as do functions whose layers bring
        # external extensions (the agent runs those).
        self.direct = image.runtime.family == "python" and not image.extensions
        self._log_fd = -1
        self._exit_watch: asyncio.Task[None] | None = None
        self._release: Callable[[], None] | None = None  # undo what adopt() mounted
        self.dead = False  # the runtime or the agent is gone: never hand this one out
        self._exit_error_type = "Runtime.ExitError"
        self._peak: int | None = None
        self._peak_read_at = float("-inf")
        self._stream_sink: StreamSink | None = None  # where a streamed response goes
        self._output_paused = False  # the agent's frames are not read (a slow stream reader)
        self._collected: list[bytes] | None = None  # a streamed response, for a plain invoke
        self._collected_size = 0

    # -- state --------------------------------------------------------------------------

    def _move(self, target: EnvState) -> None:
        if target not in _MOVES[self.state]:
            raise IllegalTransition(f"environment {self.id}: {self.state} -> {target}")
        self.state = target
        # Read for every environment on every placement: an attribute, not a property.
        self.busy = target in _BUSY

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, init_timeout: float) -> Outcome | None:
        """Start the sandbox and run the init phase; None when READY, else the init failure."""
        loop = asyncio.get_running_loop()
        started = self._clock()
        host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_read, log_write = os.pipe() if self.direct else (-1, -1)
        try:
            spec = self._spec(child_sock.fileno(), log_write)
            self._running = await self._sandbox.start(spec)
        except BaseException:
            host_sock.close()
            child_sock.close()
            for fd in (log_read, log_write):
                if fd >= 0:
                    os.close(fd)
            self._move(EnvState.SHUT_DOWN)
            raise
        child_sock.close()
        if self.direct:
            os.close(log_write)
            os.set_blocking(log_read, False)
            self._log_fd = log_read
            loop.add_reader(log_read, self._drain_output)
            self._exit_watch = loop.create_task(self._watch_exit(self._running))
        self._ready = loop.create_future()
        transport, _ = await loop.create_unix_connection(
            lambda: _AgentProtocol(self), sock=host_sock
        )
        self._transport = transport
        return await self._initialize(started, init_timeout)

    async def adopt(
        self, prewarmed: Prewarmed, mounts: Mounts, init_timeout: float
    ) -> Outcome | None:
        """Take over a pre-initialised sandbox: mount the code, send the function, run init."""
        loop = asyncio.get_running_loop()
        started = self._clock()
        source = mounts.read_only_source(self.image.code_dir, self.image.code_dir.name)
        mounts.attach(source, prewarmed.slot)
        if self.image.opt_dir is not None:
            layers = mounts.read_only_source(self.image.opt_dir, f"opt-{self.image.opt_dir.name}")
            mounts.attach(layers, prewarmed.opt_slot)

        def release() -> None:
            mounts.release_slot(prewarmed.slot)
            mounts.release_slot(prewarmed.opt_slot)

        self._release = release
        cgroup = getattr(prewarmed.running, "cgroup", None)
        if cgroup is not None:
            with contextlib.suppress(OSError):
                cgroup.set_cpu_weight(self.image.memory_mb)
        self._running = prewarmed.running
        self._log_fd = prewarmed.log_fd
        loop.add_reader(self._log_fd, self._drain_output)
        self._exit_watch = loop.create_task(self._watch_exit(prewarmed.running))
        self._ready = loop.create_future()
        transport, _ = await loop.create_unix_connection(
            lambda: _AgentProtocol(self), sock=prewarmed.host_sock
        )
        self._transport = transport
        meta = {
            "env": environment(self.image, self._region, self.log_stream, self.init_type),
            "handler": self.image.handler,
        }
        head = wire.encode_head(wire.ASSIGN, json.dumps(meta).encode(), 0)
        transport.write(head)
        return await self._initialize(started, init_timeout)

    async def restore(self, template: Template, restore_timeout: float) -> Outcome | None:
        """Start from a SnapStart template (``invoke/snapstart.py``): fork, run the
        after-restore hooks; None when READY, else the restore's failure."""
        loop = asyncio.get_running_loop()
        started = self._clock()
        image = self.image
        self.log.restore_start(
            image.runtime.id, image.runtime.version_arn(self._region), image.function_name,
            image.version,
        )  # fmt: skip
        restored = template.take()
        host_sock, log_fd = restored.host_sock, restored.log_fd
        # Its process is a RestoredProcess (returncode, wait): all an environment uses.
        running = cast(RunningSandbox, restored.sandbox)
        self._running = running
        self._log_fd = log_fd
        loop.add_reader(log_fd, self._drain_output)
        self._exit_watch = loop.create_task(self._watch_exit(running))
        self._ready = loop.create_future()
        transport, _ = await loop.create_unix_connection(
            lambda: _AgentProtocol(self), sock=host_sock
        )
        self._transport = transport
        transport.write(wire.encode_head(wire.ASSIGN, b"{}", 0))  # run the after-restore hooks
        self._move(EnvState.INITIALIZING)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), restore_timeout)
        except (TimeoutError, _AgentExited) as exc:
            self._move(EnvState.RESETTING)
            if isinstance(exc, TimeoutError):
                error_type = "Lambda.SnapStartTimeoutException"
                payload = _error_payload(
                    error_type, "Lambda couldn't restore the snapshot within the timeout limit."
                )
            elif self._init_error is not None:
                payload, error_type = self._init_error[0], self._init_error[1] or "Runtime.Unknown"
            else:
                error_type = "Runtime.ExitError"
                payload = _exit_message("", self._exit_status)
            status = "timeout" if isinstance(exc, TimeoutError) else "error"
            self.log.restore_done(status, (self._clock() - started) * 1000, error_type)
            return Outcome(payload, "Unhandled", False, "error", error_type)
        self.restore_duration_ms = (self._clock() - started) * 1000
        self.log.restore_done("success", self.restore_duration_ms)
        self._move(EnvState.READY)
        return None

    async def _initialize(self, started: float, init_timeout: float) -> Outcome | None:
        """Wait for the init phase to end: the runtime's first /next."""
        assert self._ready is not None
        self._move(EnvState.INITIALIZING)
        image = self.image
        self.log.init_start(
            image.runtime.id,
            image.runtime.version_arn(self._region),
            image.function_name,
            image.version,
            self.init_type,
        )
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), init_timeout)
        except TimeoutError:
            self._move(EnvState.RESETTING)
            self.log.init_done("timeout", init_timeout * 1000, "Sandbox.Timedout", self.init_type)
            return Outcome(
                _error_payload(
                    "Sandbox.Timedout",
                    f"INIT_REPORT Init Duration: {init_timeout * 1000:.2f} ms Phase: init "
                    "Status: timeout",
                ),
                "Unhandled",
                healthy=False,
                report_status="timeout",
                error_type="Sandbox.Timedout",
            )
        except _AgentExited:
            self._move(EnvState.RESETTING)
            self.log.init_done(
                "error",
                (self._clock() - started) * 1000,
                self._init_error[1] if self._init_error is not None else "Runtime.ExitError",
                self.init_type,
            )
            if self._init_error is not None:
                payload, error_type = self._init_error
                return Outcome(payload, "Unhandled", False, "error", error_type)
            return Outcome(
                _exit_message("", self._exit_status),
                "Unhandled",
                False,
                "error",
                "Runtime.ExitError",
            )
        self.init_duration_ms = (self._clock() - started) * 1000
        self.log.init_done("success", self.init_duration_ms, None, self.init_type)
        if self.init_type == PROVISIONED:
            # Init ran ahead of demand and is logged on its own: the first invocation's
            # REPORT has no Init Duration and its tail starts at its own START, as AWS's.
            self.init_duration_ms = None
            self._invoked = True
        self._move(EnvState.READY)
        return None

    def _spec(self, child_fd: int, log_fd: int) -> SandboxSpec:
        image = self.image
        runtime = image.runtime
        agent_python = self._agent.interpreter
        assert agent_python.executable is not None
        argv: tuple[str, ...]
        if self.direct:
            assert runtime.executable is not None
            argv = (
                runtime.executable,
                "/var/lambdaplane/pyruntime.py",
                str(child_fd),
                str(log_fd),
                image.handler,
            )
            fds: tuple[int, ...] = (child_fd, log_fd)
        else:
            argv = (
                agent_python.executable,
                "-I",
                "-S",
                "/var/lambdaplane/agent.py",
                "--fd",
                str(child_fd),
                "--",
                *runtime_argv(runtime, image.handler, image.code_dir),
            )
            fds = (child_fd,)
        host_paths = {p for p in (runtime.prefix, agent_python.prefix) if p is not None}
        host_paths.discard(Path("/usr"))
        return SandboxSpec(
            env_id=self.id,
            argv=argv,
            env=environment(image, self._region, self.log_stream, self.init_type),
            code_dir=image.code_dir,
            opt_dir=image.opt_dir,
            runtime_dir=runtime.runtime_dir,
            agent_dir=self._agent.directory,
            host_ro_paths=tuple(sorted(host_paths)),
            hidden_paths=tuple(sorted({*runtime.site_dirs(), *agent_python.site_dirs()})),
            memory_mb=image.memory_mb,
            tmp_mb=image.tmp_mb,
            cpu=self._cpu,
            pass_fds=fds,
        )

    async def invoke(self, request: InvokeRequest, sink: StreamSink | None = None) -> Outcome:
        """Run one invocation; on timeout or crash the environment is left RESETTING.

        A response the runtime streams goes to ``sink`` as it arrives (the outcome then
        carries only its error, if any); without a sink it is collected, as AWS's Invoke
        returns a streaming function's response, within the 6 MB limit.
        Raises EnvironmentGone, before anything is sent, if the runtime already exited.
        """
        if self.dead:
            raise EnvironmentGone(self.id)
        self._move(EnvState.INVOKING)
        self._stream_sink = sink
        loop = asyncio.get_running_loop()
        self._pending = loop.create_future()
        self._request_id = request.request_id
        if self._invoked:  # The first invocation's tail keeps the init phase's lines.
            self.log.new_invocation()
        self._invoked = True
        image = self.image
        trace = request.trace_id if image.tracing_active else None  # logged when Active
        self.log.start(request.request_id, image.version, trace)
        started = self._clock()
        deadline_ms = int(self._wall() * 1000) + image.timeout_s * 1000
        meta: dict[str, Any] = {
            "request_id": request.request_id,
            "deadline_ms": deadline_ms,
            "invoked_function_arn": request.invoked_arn or image.function_arn,
            "trace_id": request.trace_id,
        }
        if request.client_context is not None:
            meta["client_context"] = request.client_context
        if request.cognito_identity is not None:
            meta["cognito_identity"] = request.cognito_identity
        assert self._transport is not None
        # The host encodes meta with the C json encoder (wire's own encoder is for the agent).
        head = wire.encode_head(wire.INVOKE, json.dumps(meta).encode(), len(request.payload))
        self._transport.write(head + request.payload)
        pending = self._pending
        # A timer, not wait_for: no extra task per invocation on the hot path.
        timer = loop.call_later(image.timeout_s, self._time_out, pending, request.request_id)
        try:
            outcome = await pending
        finally:
            timer.cancel()
            self.resume_output()
        duration_ms = (self._clock() - started) * 1000
        self._pending = None
        self._stream_sink = None
        outcome.duration_ms = duration_ms
        self._report(request.request_id, duration_ms, outcome, trace)
        self._move(EnvState.READY if outcome.healthy else EnvState.RESETTING)
        return outcome

    def pause_output(self) -> None:
        """Stop reading the agent's frames: a streamed response's reader fell behind. The
        socket fills, the agent's reads of the runtime's response block, and so do the
        runtime's writes: back-pressure from the client to the function's code."""
        if self._transport is not None and not self._output_paused:
            self._output_paused = True
            self._transport.pause_reading()

    def resume_output(self) -> None:
        if self._transport is not None and self._output_paused:
            self._output_paused = False
            self._transport.resume_reading()

    def tail(self) -> bytes:
        """The last 4 KB of the last invocation's log (what LogType=Tail returns)."""
        return self.log.tail()

    async def destroy(self) -> None:
        """Kill every process of the environment; idempotent."""
        if self.state is EnvState.SHUT_DOWN:
            return
        if self.state is not EnvState.RESETTING:
            self._move(EnvState.RESETTING)
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.write(wire.encode(wire.SHUTDOWN, None))
            if not self.direct and not self.dead and self._running is not None:
                # The agent runs the shutdown phase (SIGTERM to the runtime, SHUTDOWN to
                # extensions, at most 2 s) and answers EXIT; without extensions at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._running.process.wait(), SHUTDOWN_PHASE_SECONDS)
            self._transport.close()
        if self._running is not None:
            await self._running.destroy()
        if self._exit_watch is not None:
            self._exit_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._exit_watch
        if self._log_fd >= 0:
            self._drain_output()
            asyncio.get_running_loop().remove_reader(self._log_fd)
            os.close(self._log_fd)
            self._log_fd = -1
        if self._release is not None:
            self._release()
            self._release = None
        self.log.flush_partial()
        self._move(EnvState.SHUT_DOWN)

    # -- frames from the agent ----------------------------------------------------------

    def _on_frame(self, frame: wire.Frame) -> None:
        kind = frame.type
        if self._log_fd >= 0 and kind != wire.LOG:
            self._drain_output()  # Output written before this frame is stored before it.
        if kind == wire.LOG:
            self.log.output(frame.body, frame.meta.get("ts"))
        elif kind == wire.NEXT:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif kind == wire.RESPONSE:
            self._resolve(Outcome(frame.body))
        elif kind == wire.ERROR:
            error_type = frame.meta.get("error_type")
            self._resolve(Outcome(frame.body, "Unhandled", True, "error", error_type))
        elif kind == wire.RESPONSE_TOO_LARGE:
            message = f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            self._resolve(
                Outcome(
                    _error_payload("Function.ResponseSizeTooLarge", message),
                    "Unhandled",
                    True,
                    "error",
                    "Function.ResponseSizeTooLarge",
                )
            )
        elif kind == wire.INIT_ERROR:
            self._init_error = (frame.body, frame.meta.get("error_type"))
        elif kind == wire.EXIT:
            self._exit_status = frame.meta.get("status")
            if frame.meta.get("error_type") == "Extension.Crash":
                self._exit_error_type = "Extension.Crash"
            self._on_agent_gone()
        elif kind == wire.AGENT_ERROR:
            self.log.platform(f"lambdaplane agent error: {frame.meta.get('message')}")
        elif kind == wire.STREAM_CHUNK:
            sink = self._stream_sink
            if sink is not None:
                sink.chunk(frame.body)
            elif self._collected is not None:
                self._collected_size += len(frame.body)
                if self._collected_size <= MAX_RESPONSE_BYTES:
                    self._collected.append(frame.body)
        elif kind == wire.STREAM_START:
            if self._stream_sink is not None:
                self._stream_sink.started(frame.meta.get("content_type"))
            else:
                self._collected, self._collected_size = [], 0
        elif kind == wire.STREAM_END:
            self._stream_ended(frame)

    def _stream_ended(self, frame: wire.Frame) -> None:
        """The runtime's streamed response is over: the invocation's outcome."""
        error_type = frame.meta.get("error_type")
        collected, self._collected = self._collected, None
        outcome: Outcome
        if error_type is not None:
            payload = frame.body
            if error_type == "Function.ResponseSizeTooLarge":
                payload = _error_payload(
                    error_type,
                    "Response payload size exceeded maximum allowed payload size "
                    f"({MAX_STREAM} bytes).",
                )
            elif error_type == "Runtime.TruncatedResponse":
                payload = _error_payload(
                    error_type,
                    f"RequestId: {self._request_id} Error: the runtime's connection closed "
                    "before the end of its streamed response",
                )
            elif not payload:
                payload = _error_payload(error_type, "")
            outcome = Outcome(payload, "Unhandled", True, "error", error_type)
        elif collected is not None and self._collected_size > MAX_RESPONSE_BYTES:
            message = f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            outcome = Outcome(
                _error_payload("Function.ResponseSizeTooLarge", message),
                "Unhandled",
                True,
                "error",
                "Function.ResponseSizeTooLarge",
            )
        else:
            outcome = Outcome(b"".join(collected) if collected is not None else b"")
        outcome.streamed = self._stream_sink is not None
        self._resolve(outcome)

    def _time_out(self, pending: asyncio.Future[Outcome], request_id: str) -> None:
        if pending.done():
            return
        message = f"Task timed out after {self.image.timeout_s:.2f} seconds"
        self.log.timed_out(request_id, self.image.timeout_s)
        pending.set_result(
            Outcome(
                _error_payload("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}"),
                "Unhandled",
                healthy=False,
                report_status="timeout",
                error_type="Sandbox.Timedout",
            )
        )

    def _resolve(self, outcome: Outcome) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.set_result(outcome)

    def _on_agent_gone(self) -> None:
        """The runtime exited or the agent vanished: fail whatever waits, and never reuse
        this environment (a runtime may exit right after posting its outcome, as AWS's
        Node and Ruby runtimes do after some errors)."""
        self.log.flush_partial()
        self.dead = True
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(_AgentExited())
            self._ready.exception()  # Retrieved here so an unawaited failure is not logged.
        if self._pending is not None and not self._pending.done():
            payload = _exit_message(self._request_id, self._exit_status, self._exit_error_type)
            self._pending.set_result(
                Outcome(payload, "Unhandled", False, "error", self._exit_error_type)
            )

    async def _watch_exit(self, running: RunningSandbox) -> None:
        """Direct mode: the runtime is the sandbox's command, so its exit is the sandbox's."""
        code = await running.process.wait()
        if self._exit_status is None:
            self._exit_status = _status_of(code)
        self._on_agent_gone()

    # -- logs ---------------------------------------------------------------------------

    def _drain_output(self) -> None:
        """Read everything the runtime has written so far (non-blocking)."""
        while self._log_fd >= 0:
            try:
                data = os.read(self._log_fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                return
            if not data:
                asyncio.get_running_loop().remove_reader(self._log_fd)
                return
            self.log.output(data, None)

    def report_failed_init(self, request_id: str, outcome: Outcome) -> None:
        """Log an invocation that never ran because init failed (AWS logs START/END/REPORT)."""
        self.log.start(request_id, self.image.version)
        self._report(request_id, 0.0, outcome)

    def _memory_peak(self) -> int | None:
        """The cgroup's peak, read at most every 50 ms (the read costs ~10 us in the kernel)."""
        now = self._clock()
        if self._running is not None and now - self._peak_read_at >= PEAK_REFRESH_SECONDS:
            self._peak = self._running.memory_peak_bytes()
            self._peak_read_at = now
        return self._peak

    def _report(
        self, request_id: str, duration_ms: float, outcome: Outcome, trace: str | None = None
    ) -> None:
        init, self.init_duration_ms = self.init_duration_ms, None  # only the first REPORT has it
        restore, self.restore_duration_ms = self.restore_duration_ms, None
        peak = self._memory_peak()
        outcome.init_duration_ms, outcome.max_memory_bytes = init, peak  # for metrics and usage
        outcome.restore_duration_ms = restore
        # Text names the error type of a failed environment only; JSON records of any failure.
        failed = outcome.report_status is not None and (
            self.log.format.json or (outcome.report_status == "error" and not outcome.healthy)
        )
        self.log.report(
            request_id,
            duration_ms,
            self.image.memory_mb,
            peak,
            init,
            outcome.report_status,
            outcome.error_type if failed else None,
            produced_bytes=len(outcome.payload) if outcome.function_error is None else 0,
            trace_id=trace,
            restore_duration_ms=restore,
        )


class _AgentExited(Exception):
    pass


class EnvironmentGone(Exception):
    """The environment's runtime exited while it was idle: use another one."""


def _status_of(code: int | None) -> str | None:
    """Go's wording for a process's end, as AWS reports it ("signal: killed")."""
    if code is None:
        return None
    if code < 0:
        signal_number = -code
    elif code > 128:  # bwrap's init reports a child killed by signal N as 128 + N
        signal_number = code - 128
    else:
        return f"exit status {code}"
    names = {9: "killed", 6: "aborted", 11: "segmentation fault", 15: "terminated", 7: "bus error"}
    return f"signal: {names.get(signal_number, str(signal_number))}"
