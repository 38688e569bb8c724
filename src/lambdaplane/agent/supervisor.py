"""The running agent: the runtime process, the host link, and the threads around them.

Threads, each blocking on one thing: the caller's thread accepts runtime connections
(one thread each, see ``server``); one reads host frames; one waits for the output
pipes to become readable; one reaps children (the runtime's exit ends the agent). The
runtime's stdout and stderr share one pipe, so their interleaving is kept, and the
pipe is drained under the host-link lock right before RESPONSE, ERROR, INIT_ERROR and
EXIT: everything the runtime wrote before posting reaches the host before the outcome.

Extensions (``extensions_api``) change the start and the end. External ones, the files
of the extensions directory, are started first, each in its own process group, with
their output on a second pipe (forwarded to the host in whole lines, so it lands in
the function's log); the runtime starts once all of them registered. On SHUTDOWN with
extensions registered, the runtime gets SIGTERM and 300 ms (500 ms beside an internal
extension), then extensions subscribed to SHUTDOWN get the event and the rest of the
2 s phase (500 ms with internal extensions only), then everything is killed (AWS's
"Shutdown phase" limits). Without extensions none of this is imported or started:
the Extensions API's routes load it on first use.

Every way out (runtime exit, SHUTDOWN, host gone, an extension failing, agent bug)
goes through ``Supervisor``: it kills every process group it started and ends the
process with ``os._exit``, so no thread outlives it.
"""

from __future__ import annotations

import _socket
import _thread
import os
import select
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable
    from typing import Any, BinaryIO

    from lambdaplane.agent import runtime_api, server, wire
    from lambdaplane.agent.extensions_api import ExtensionsAPI
    from lambdaplane.agent.host_link import HostLink
else:
    import _signal  # the same constants, without the enum import that `signal` costs

    import runtime_api
    import server
    import wire
    from host_link import HostLink

_SHUTDOWN_GRACE = 2.0
"""Seconds to wait, after SHUTDOWN's SIGKILL, for the EXIT report before leaving anyway."""
_SHUTDOWN_REASONS = ("spindown", "timeout", "failure")

# The Extensions and Telemetry APIs: (method, path, ExtensionsAPI handler name).
EXTENSION_ROUTES = (
    ("POST", "/2020-01-01/extension/register", "register"),
    ("GET", "/2020-01-01/extension/event/next", "next"),
    ("POST", "/2020-01-01/extension/init/error", "init_error"),
    ("POST", "/2020-01-01/extension/exit/error", "exit_error"),
    ("PUT", "/2022-07-01/telemetry", "subscribe"),
    ("PUT", "/2022-07-01/telemetry/", "subscribe"),
)

# Go's names for signals (syscall.Signal.String), as in "Runtime exited with error: signal: killed".
_SIGNAL_NAMES = (
    "hangup",
    "interrupt",
    "quit",
    "illegal instruction",
    "trace/breakpoint trap",
    "aborted",
    "bus error",
    "floating point exception",
    "killed",
    "user defined signal 1",
    "segmentation fault",
    "user defined signal 2",
    "broken pipe",
    "alarm clock",
    "terminated",
    "stack fault",
    "child exited",
    "continued",
    "stopped (signal)",
    "stopped",
    "stopped (tty input)",
    "stopped (tty output)",
    "urgent I/O condition",
    "CPU time limit exceeded",
    "file size limit exceeded",
    "virtual timer expired",
    "profiling timer expired",
    "window changed",
    "I/O possible",
    "power failure",
    "bad system call",
)


def exit_meta(status: int) -> dict[str, object]:
    """Describe a wait status as Go's os.ProcessState does ("exit status 3", "signal: killed")."""
    if os.WIFSIGNALED(status):
        signal = os.WTERMSIG(status)
        if 0 < signal <= len(_SIGNAL_NAMES):
            text = "signal: " + _SIGNAL_NAMES[signal - 1]
        else:
            text = f"signal: signal {signal}"
        if os.WCOREDUMP(status):
            text += " (core dumped)"
        return {"status": text, "code": None, "signal": signal}
    code = os.WEXITSTATUS(status)
    return {"status": f"exit status {code}", "code": code, "signal": None}


class Supervisor:
    """Owns the runtime process (its own process group), the extensions' processes, and
    the agent's threads. ``pid`` is 0 until the runtime is started."""

    def __init__(
        self, host_sock: _socket.socket, pid: int, log_fd: int, account_id: str | None = None
    ) -> None:
        self.pid = pid
        self.log_fd = log_fd
        os.set_blocking(log_fd, False)
        self.link = HostLink(host_sock, log_fd, self.host_lost)
        self.api = runtime_api.RuntimeAPI(self.link)
        self.router = server.Router()
        self.api.register(self.router)
        self.extensions: ExtensionsAPI | None = None
        self._account_id = account_id
        self._started = time.time()  # the init phase began about now
        self._procs = _thread.allocate_lock()  # guards pid and _extension_pids
        self._lazy = _thread.allocate_lock()
        self._extension_pids: dict[int, str] = {}  # running extensions: pid -> name
        self._shutting_down = False
        self._runtime_status: dict[str, Any] | None = None  # its exit, once reaped
        for method, path, name in EXTENSION_ROUTES:
            self.router.add(method, path, self._extension_route(name))

    def run(self, listener: _socket.socket, host_reader: BinaryIO) -> None:
        """Start the threads and serve runtime connections; never returns."""
        _thread.start_new_thread(self._guarded, (self._read_host, host_reader))
        _thread.start_new_thread(self._guarded, (self._pump_logs,))
        _thread.start_new_thread(self._guarded, (self._reap,))
        self._guarded(self._accept, listener)

    # -- extensions ------------------------------------------------------------------

    def start_extensions(
        self, paths: list[str], spawn_runtime: Callable[[], int], runtime_output_fd: int
    ) -> None:
        """Start the external extensions; the runtime (``spawn_runtime``, which writes to
        ``runtime_output_fd``) starts once all of them registered. Call before ``run``."""
        if TYPE_CHECKING:
            from lambdaplane.agent import extensions
        else:
            import extensions

        api = self._extensions_api()
        for path in paths:
            api.add_external(os.path.basename(path))
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self.link.extension_fd = read_fd
        env = extensions.extension_environment(os.environ)
        try:
            if len(paths) > extensions.MAX_EXTENSIONS:
                raise _LaunchError("", "Error: ErrTooManyExtensions")
            for path in paths:
                try:
                    pid = spawn_extension(path, env, write_fd)
                except OSError as exc:
                    message = f"Error: fork/exec {path}: {(exc.strerror or str(exc)).lower()}"
                    raise _LaunchError(os.path.basename(path), message) from None
                with self._procs:
                    self._extension_pids[pid] = os.path.basename(path)
        except _LaunchError as exc:
            self._fail("Extension.LaunchError", exc.message, {"extension": exc.name})
        finally:
            os.close(write_fd)

        def start_runtime() -> None:
            try:
                with self._procs:
                    self.pid = spawn_runtime()
            except OSError as exc:
                meta = {"message": f"cannot start the runtime: {exc}", "errno": exc.errno}
                self.link.send(wire.AGENT_ERROR, wire.encode_meta(meta))
                self.kill_all()
                os._exit(1)
            finally:
                os.close(runtime_output_fd)

        api.on_all_registered = start_runtime

    def _extension_route(self, name: str) -> server.Handler:
        def handler(conn: server.Connection, request: server.Request, param: bytes) -> bool:
            method: server.Handler = getattr(self._extensions_api(), name)
            return method(conn, request, param)

        return handler

    def _extensions_api(self) -> ExtensionsAPI:
        """The Extensions API, imported and built on first use."""
        api = self.extensions
        if api is None:
            if TYPE_CHECKING:
                from lambdaplane.agent.extensions_api import ExtensionsAPI
            else:
                from extensions_api import ExtensionsAPI

            with self._lazy:
                api = self.extensions
                if api is None:
                    with self.api.lock:  # it reads the runtime's state
                        api = ExtensionsAPI(
                            self.api,
                            self.link,
                            os.environ,
                            self._account_id,
                            self._started,
                            self._memory_mb,
                        )
                    api.on_fatal = self._extension_fatal
                    api.telemetry.on_first_subscriber = self._attach_telemetry
                    self.extensions = api  # published only once wired
        return api

    def _attach_telemetry(self) -> None:
        """Someone subscribed: from now on the output goes to the Telemetry API too."""
        assert self.extensions is not None
        hub = self.extensions.telemetry
        self.link.tap = hub.function_output
        self.link.extension_tap = hub.extension_output

    def _memory_mb(self) -> int:
        with self._procs:
            pids = [self.pid, *self._extension_pids] if self.pid else list(self._extension_pids)
        return peak_memory_mb(pids)

    def _extension_fatal(self, error_type: str, message: str, name: str) -> None:
        self._fail(error_type, message, {"extension": name})

    def _fail(self, error_type: str, message: str, meta: dict[str, Any]) -> None:
        """An extension failed the environment: during init that is the init's error. Then
        EXIT (with the extension's name and the error type) and the end."""
        api = self.extensions
        if api is None or not api.init_done:
            if api is not None:
                lines = api.status_lines()
                if lines:
                    self.link.send(wire.LOG, b'{"ts":%d}' % (time.time_ns() // 1000000), lines)
            document = wire.dumps({"errorMessage": message, "errorType": error_type}).encode()
            self.link.send(
                wire.INIT_ERROR, wire.encode_meta({"error_type": error_type}), document, True
            )
        self.kill_all()
        exit_meta_ = {"status": None, "code": None, "signal": None, **meta}
        exit_meta_["error_type"] = error_type
        self.link.send(wire.EXIT, wire.encode_meta(exit_meta_), drain=True)
        os._exit(0)

    # -- ways out --------------------------------------------------------------------

    def kill_runtime(self) -> None:
        if self.pid > 0:
            try:
                os.killpg(self.pid, _signal.SIGKILL)
            except OSError:
                pass  # already gone

    def kill_all(self) -> None:
        """SIGKILL the runtime's process group and every extension's."""
        self.kill_runtime()
        with self._procs:
            pids = list(self._extension_pids)
        for pid in pids:
            try:
                os.killpg(pid, _signal.SIGKILL)
            except OSError:
                pass

    def host_lost(self) -> None:
        self.kill_all()
        os._exit(0)

    def report(self, message: str, **extra: object) -> None:
        extra["message"] = message
        self.link.send(wire.AGENT_ERROR, wire.encode_meta(extra))

    def _fatal(self, exc: BaseException) -> None:
        try:
            self.report(_describe(exc), fatal=True)
        finally:
            self.kill_all()
            os._exit(1)

    def _guarded(self, target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except BaseException as exc:
            self._fatal(exc)

    def _connection_bug(self, exc: BaseException) -> None:
        self.report(_describe(exc))

    # -- threads ---------------------------------------------------------------------

    def _read_host(self, reader: BinaryIO) -> None:
        while True:
            frame = wire.read_frame(reader)
            if frame is None:
                self.host_lost()
                return
            if frame.type == wire.INVOKE:
                try:
                    self.api.invoke(frame.meta, frame.body)
                except runtime_api.Refused as exc:
                    self.report(str(exc), request_id=frame.meta.get("request_id"))
            elif frame.type == wire.SHUTDOWN:
                if self.extensions is not None and self.extensions.count:
                    self._shut_down(self.extensions, frame.meta)
                self.kill_runtime()  # _reap reports EXIT and exits
                time.sleep(_SHUTDOWN_GRACE)
                os._exit(0)
            else:
                self.report(f"unexpected frame type {frame.type}")

    def _shut_down(self, api: ExtensionsAPI, meta: dict[str, Any]) -> None:
        """AWS's shutdown phase with extensions registered; ends the process."""
        reason = meta.get("reason")
        if reason not in _SHUTDOWN_REASONS:
            reason = "spindown"
        external = api.has(external=True)
        internal = api.has(external=False)
        phase = 2.0 if external else 0.5
        started = time.monotonic()
        deadline = started + phase
        deadline_ms = time.time_ns() // 1000000 + int(phase * 1000)
        with self._procs:
            self._shutting_down = True
            pid = self.pid
        if pid > 0:
            try:
                os.kill(pid, _signal.SIGTERM)
            except OSError:
                pass
            _wait(lambda: self._runtime_status is not None, started + (0.5 if internal else 0.3))
            self.kill_runtime()
        # What was said last reaches subscribers before extensions stop.
        self.link.drain_logs()
        self.link.drain_extension_logs()
        api.telemetry.flush(started + phase / 2)
        awaited = api.shutdown(reason, deadline_ms)
        with self._procs:
            others = [other for other, name in self._extension_pids.items() if name not in awaited]
        for other in others:
            try:
                os.killpg(other, _signal.SIGKILL)
            except OSError:
                pass
        _wait(lambda: not api.awaiting_shutdown(), deadline)
        self.kill_all()
        if pid > 0:
            _wait(lambda: self._runtime_status is not None, time.monotonic() + _SHUTDOWN_GRACE)
        status = self._runtime_status or {"status": None, "code": None, "signal": None}
        self.link.drain_extension_logs()  # their last words, before the end
        self.link.send(wire.EXIT, wire.encode_meta(status), drain=True)
        os._exit(0)

    def _pump_logs(self) -> None:
        poller = select.poll()
        drains = {self.log_fd: self.link.drain_logs}
        if self.link.extension_fd >= 0:
            drains[self.link.extension_fd] = self.link.drain_extension_logs
        for fd in drains:
            poller.register(fd, select.POLLIN)
        while drains:
            for fd, _ in poller.poll():
                drain = drains.get(fd)
                if drain is not None and not drain():
                    poller.unregister(fd)
                    del drains[fd]

    def _reap(self) -> None:
        """Reap every child (orphans too when we are PID 1); the runtime's exit is the end."""
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:  # between extensions and the runtime: nothing to wait for
                time.sleep(0.05)
                continue
            with self._procs:
                runtime = pid == self.pid
                name = self._extension_pids.pop(pid, None)
                shutting_down = self._shutting_down
                if runtime:
                    self._runtime_status = exit_meta(status)
            if runtime and not shutting_down:
                self._runtime_exited(status)
            elif name is not None and self.extensions is not None:
                meta = exit_meta(status)
                verdict = self.extensions.process_exited(name, meta)
                if verdict is not None and not shutting_down:
                    meta["extension"] = name
                    self._fail(verdict[0], verdict[1], meta)

    def _runtime_exited(self, status: int) -> None:
        self.link.send(wire.EXIT, wire.encode_meta(exit_meta(status)), drain=True)
        self.kill_all()  # whatever it left behind
        os._exit(0)

    def _accept(self, listener: _socket.socket) -> None:
        while True:
            try:
                fd, _ = listener._accept()  # type: ignore[attr-defined]  # _socket's accept
            except OSError as exc:  # EMFILE and friends: back off rather than spin
                self.report(f"accept failed: {exc}")
                time.sleep(0.05)
                continue
            sock = _socket.socket(listener.family, _socket.SOCK_STREAM, 0, fd)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            _thread.start_new_thread(
                server.serve_connection,
                (
                    server.Connection(sock),
                    self.router,
                    runtime_api.MAX_PAYLOAD,
                    self.api.closed,
                    self._connection_bug,
                ),
            )


class _LaunchError(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def spawn_extension(path: str, env: dict[str, str], output_fd: int) -> int:
    """Start an external extension in its own process group, output on ``output_fd``; as
    the runtime, it is the OOM killer's first choice. Raises OSError."""
    pid = os.posix_spawn(
        path,
        [path],
        env,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, output_fd, 1),
            (os.POSIX_SPAWN_DUP2, output_fd, 2),
        ],
        setpgroup=0,
        setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ),
    )
    try:
        fd = os.open("/proc/" + str(pid) + "/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)
    except OSError:
        pass
    return pid


def peak_memory_mb(pids: list[int]) -> int:
    """The processes' peak resident memory (VmHWM), summed, in MB rounded up."""
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmHWM:"):
                        total_kb += int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
    return -(-total_kb // 1024)


def _wait(done: Callable[[], bool], deadline: float) -> None:
    """Poll ``done`` every 10 ms until it is true or time.monotonic() passes ``deadline``."""
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


def _describe(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
