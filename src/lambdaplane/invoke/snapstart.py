"""SnapStart on the host: one initialised template per published version, forked per cold start.

A version published with ``SnapStart.ApplyOn=PublishedVersions`` (Python runtimes) gets
a *template*: a sandbox whose runtime runs the function's init phase once (with
``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``, so awslambdaric runs the before-snapshot
hooks and calls ``restore_next``) and then waits. Each new environment of that version
is restored from it: the host sends the template a control message with the new
environment's socket, log pipe, life pipe, the strict seccomp program and its cgroup
files, and the template forks a process that takes its own namespaces, /tmp and /proc
(``agent/snapstart.py``). See docs/snapstart.md for the isolation design.

The template's bwrap runs as an unprivileged host uid (``TEMPLATE_UID_BASE`` + n), so
the capabilities a restored environment holds briefly in its own user namespace reach
nothing of the host's. Host paths that uid cannot traverse (the interpreter under
``/root``, a data directory of mode 700) are bound read-only under a staging directory
it can, for the moment bwrap needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import logging
import os
import shutil
import socket
import struct
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdaplane.agent import wire
from lambdaplane.invoke.env_vars import environment
from lambdaplane.invoke.image import FunctionImage
from lambdaplane.invoke.logsink import LogSink
from lambdaplane.invoke.logstream import LogStream
from lambdaplane.sandbox import CpuPolicy, SandboxSpec, build_filter
from lambdaplane.sandbox.base import SandboxError
from lambdaplane.sandbox.bubblewrap import BubblewrapSandbox, RunningBubblewrap
from lambdaplane.sandbox.cgroups import EnvironmentCgroup, ResourceLimits
from lambdaplane.sandbox.spec import hostname_for
from lambdaplane.store import StoredFunction

log = logging.getLogger("lambdaplane.snapstart")

# AWS's SnapStart runtimes; of them, lambdaplane snapshots the Python ones.
SUPPORTED_RUNTIMES = frozenset(
    {"java11", "java17", "java21", "java25", "python3.12", "python3.13", "python3.14",
     "dotnet8", "dotnet10"}
)  # fmt: skip
TEMPLATE_UID_BASE = 3_100_000  # unprivileged host uids, one per template (no passwd entry)
STAGING_ROOT = Path("/run/lambdaplane-snapstart")
SNAPSHOT_INIT_SECONDS = 900.0  # AWS: a SnapStart init phase may take up to 15 minutes
RESTORE_SECONDS = 10.0  # AWS: the restore phase (after-restore hooks) times out after 10 s
SPARE_DELAY_SECONDS = 0.05  # a taken spare is replaced this long after (the invoke goes first)
_TEMPLATE_SYSCALLS = ("unshare", "mount")  # what a template needs beyond the strict filter
_uids = itertools.count()

MS_RDONLY, MS_REMOUNT, MS_BIND, MNT_DETACH = 1, 32, 4096, 2
_libc = ctypes.CDLL(None, use_errno=True)


def optimized(image: FunctionImage) -> bool:
    """Whether invocations of ``image`` restore from a snapshot."""
    return image.snapstart and image.runtime.family == "python" and not image.extensions


@dataclass
class SnapshotFailure:
    """The init phase of a snapshot failed: the error every invocation then returns."""

    payload: bytes
    error_type: str

    @property
    def reason(self) -> str:
        """The version's StateReason: the init error's type and message."""
        try:
            message = json.loads(self.payload).get("errorMessage", "")
        except (ValueError, AttributeError):
            message = ""
        return f"{self.error_type}: {message}" if message else self.error_type


class RestoredProcess:
    """What an Environment needs of its runtime's process: its end (from the life pipe)."""

    def __init__(self, life_fd: int) -> None:
        self.returncode: int | None = None
        self.pid = 0
        self._fd = life_fd
        self._status = b""
        self._done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        os.set_blocking(life_fd, False)
        asyncio.get_running_loop().add_reader(life_fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._status += data
            return
        self.close()

    def close(self) -> None:
        if self._fd < 0:
            return
        asyncio.get_running_loop().remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        code = struct.unpack("!i", self._status[:4])[0] if len(self._status) >= 4 else -9
        self.returncode = code
        if not self._done.done():
            self._done.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._done)


class RestoredSandbox:
    """A restored environment's processes (its own namespaces, cgroup); a RunningSandbox."""

    def __init__(self, process: RestoredProcess, cgroup: EnvironmentCgroup | None) -> None:
        self.process = process
        self._cgroup = cgroup
        self._final: tuple[int | None, bool] | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        return 0

    @property
    def cgroup(self) -> EnvironmentCgroup | None:
        return self._cgroup

    async def destroy(self) -> None:
        async with self._lock:
            if self._final is not None:
                return
            cgroup = self._cgroup
            if cgroup is not None:
                await cgroup.kill_all(5.0)
                self._final = (cgroup.memory_peak_bytes(), cgroup.oom_killed())
                for _ in range(200):
                    try:
                        cgroup.remove()
                        break
                    except OSError:
                        await asyncio.sleep(0.005)
            else:
                self._final = (None, False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 5.0)
            self.process.close()

    def memory_peak_bytes(self) -> int | None:
        if self._final is not None:
            return self._final[0]
        return None if self._cgroup is None else self._cgroup.memory_peak_bytes()

    def memory_reset_peak(self) -> bool:
        return self._final is None and self._cgroup is not None and self._cgroup.reset_memory_peak()

    def oom_killed(self) -> bool:
        if self._final is not None:
            return self._final[1]
        return self._cgroup is not None and self._cgroup.oom_killed()


@dataclass
class Restored:
    """A restored environment not yet handed out: namespaces made, locked down, waiting
    for ASSIGN before its after-restore hooks run."""

    sandbox: RestoredSandbox
    host_sock: socket.socket
    log_fd: int

    @property
    def alive(self) -> bool:
        return self.sandbox.process.returncode is None

    async def discard(self) -> None:
        self.host_sock.close()
        await self.sandbox.destroy()
        with contextlib.suppress(OSError):
            os.close(self.log_fd)


class Template:
    """One version's initialised runtime, waiting to be forked.

    It keeps ``spares`` environments restored ahead of demand (refilled in the
    background after each is taken), so a cold start only hands one over.
    """

    def __init__(
        self,
        image: FunctionImage,
        running: RunningBubblewrap,
        ctl: socket.socket,
        host_sock: socket.socket,
        log_fd: int,
        stream: LogStream,
        sandbox: BubblewrapSandbox,
        cpu: CpuPolicy,
        spares: int = 1,
    ) -> None:
        self.image = image
        self._per = spares
        self._spares: list[Restored] = []
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.running = running
        self._ctl = ctl
        self._host_sock = host_sock
        self._log_fd = log_fd
        self.log = stream
        self._sandbox = sandbox
        self._cpu = cpu
        self._strict = build_filter()
        self.init_duration_ms = 0.0

    @property
    def alive(self) -> bool:
        return self.running.process.returncode is None

    def take(self) -> Restored:
        """A restored environment: a spare if one is ready, else one forked now."""
        while self._spares:
            spare = self._spares.pop()
            if spare.alive:
                break
            self._later(spare.discard())
        else:
            spare = self.restore(uuid.uuid4().hex)
        asyncio.get_running_loop().call_later(SPARE_DELAY_SECONDS, self._refill)
        return spare

    def _refill(self) -> None:
        while not self._closed and self.alive and len(self._spares) < self._per:
            try:
                self._spares.append(self.restore(uuid.uuid4().hex))
            except (OSError, SandboxError):
                log.exception("could not restore a spare of %s", self.image.pool_key)
                return

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def restore(self, env_id: str) -> Restored:
        """Fork a new environment (``env_id`` names its cgroup and hostname)."""
        image = self.image
        cgroup = None
        manager = self._sandbox.cgroups
        if manager is not None:
            try:
                cgroup = manager.create(env_id, ResourceLimits(image.memory_mb, 1024, self._cpu))
            except OSError as exc:
                raise SandboxError(f"cannot create cgroups for {env_id}: {exc}") from exc
        opened: list[int] = []
        host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            log_r, log_w = os.pipe()
            opened.append(log_w)
            life_r, life_w = os.pipe()
            opened.append(life_w)
            program = os.memfd_create("lambdaplane-seccomp", os.MFD_CLOEXEC)
            opened.append(program)
            os.write(program, self._strict)
            os.lseek(program, 0, os.SEEK_SET)
            joins = []
            for path in cgroup.attach_files() if cgroup is not None else ():
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                opened.append(fd)
                joins.append(fd)
            meta = {"tmp_mb": image.tmp_mb, "hostname": hostname_for(env_id)}
            fds = [child_sock.fileno(), log_w, life_w, program, *joins]
            socket.send_fds(self._ctl, [json.dumps(meta).encode()], fds)
        except BaseException:
            host_sock.close()
            if cgroup is not None:
                with contextlib.suppress(OSError):
                    cgroup.remove()
            raise
        finally:
            child_sock.close()
            for fd in opened:
                os.close(fd)
        os.set_blocking(log_r, False)
        return Restored(RestoredSandbox(RestoredProcess(life_r), cgroup), host_sock, log_r)

    def drain(self) -> None:
        """Store what the template wrote (its init phase's output)."""
        while self._log_fd >= 0:
            try:
                data = os.read(self._log_fd, 65536)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            self.log.output(data, None)

    async def destroy(self) -> None:
        self._closed = True
        spares, self._spares = self._spares, []
        await asyncio.gather(*(spare.discard() for spare in spares), return_exceptions=True)
        with contextlib.suppress(OSError):
            self._ctl.close()
        self._host_sock.close()
        await self.running.destroy()
        self.drain()
        if self._log_fd >= 0:
            os.close(self._log_fd)
            self._log_fd = -1
        self.log.flush_partial()


EXISTS_CHECK_SECONDS = 10.0  # how often templates are checked against the store


class SnapStarts:
    """The templates of this node, by pool key; created on publish or on first need."""

    def __init__(
        self,
        *,
        sandbox: BubblewrapSandbox,
        agent_dir: Path,
        region: str,
        sink: LogSink,
        cpu: CpuPolicy,
        init_timeout: float = SNAPSHOT_INIT_SECONDS,
        wall: Callable[[], float] = time.time,
        exists: Callable[[str, str], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._exists = exists  # whether a function version is still in the store
        self._clock = clock
        self._checked_at = clock()
        self._sandbox = sandbox
        self._agent_dir = agent_dir
        self._region = region
        self._sink = sink
        self._cpu = cpu
        self._init_timeout = init_timeout
        self._wall = wall
        self._templates: dict[str, Template] = {}
        self._failures: dict[str, SnapshotFailure] = {}
        self._making: dict[str, asyncio.Task[Template | SnapshotFailure]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._backlog: list[Callable[[], None]] = []
        self._snapshots: set[asyncio.Task[None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop snapshots run on (the server's); publishes queued before it start now."""
        self._loop = loop
        backlog, self._backlog = self._backlog, []
        for start in backlog:
            loop.call_soon_threadsafe(start)

    def snapshotter(
        self,
        image_of: Callable[[StoredFunction], FunctionImage],
        done: Callable[[str, str, str | None], None],
    ) -> Callable[[StoredFunction], None]:
        """What FunctionService calls (from any thread) when a SnapStart version is
        published: make its snapshot, then ``done(name, version, failure reason)``."""

        async def snapshot(stored: StoredFunction) -> None:
            failure: str | None
            try:
                result = await self.template(image_of(stored))
            except Exception as exc:  # the version must not stay Pending
                log.exception("snapshot of %s:%s failed", stored.name, stored.version)
                failure = f"InternalError: {exc}"
            else:
                failure = None if isinstance(result, Template) else result.reason
            await asyncio.to_thread(done, stored.name, stored.version, failure)

        def start(stored: StoredFunction) -> None:
            def run() -> None:
                task = asyncio.get_running_loop().create_task(snapshot(stored))
                self._snapshots.add(task)
                task.add_done_callback(self._snapshots.discard)

            if self._loop is None:
                self._backlog.append(run)
            else:
                self._loop.call_soon_threadsafe(run)

        return start

    async def template(self, image: FunctionImage) -> Template | SnapshotFailure:
        """The ready template of ``image`` (made now if need be), or why it cannot be."""
        key = image.pool_key
        ready = self._templates.get(key)
        if ready is not None and ready.alive:
            return ready
        if ready is not None:  # it died (killed, OOM): a new snapshot is made
            del self._templates[key]
            await ready.destroy()
        if key in self._failures:
            return self._failures[key]
        task = self._making.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._make(image))
            self._making[key] = task
        try:
            result = await asyncio.shield(task)
        finally:
            if task.done():
                self._making.pop(key, None)
        if isinstance(result, Template):
            self._templates[key] = result
        else:
            self._failures[key] = result
        return result

    def prepare(self, image: FunctionImage) -> None:
        """Snapshot ``image`` in the background (a version was just published)."""
        task = asyncio.get_running_loop().create_task(self.template(image))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def retire(self, current: dict[str, str]) -> None:
        """Destroy the templates of versions whose configuration changed since (a version
        deleted and published again): ``current`` maps "name:version" to its pool key.
        Every EXISTS_CHECK_SECONDS, also those of versions no longer in the store (the
        version or its function was deleted)."""
        for key, template in list(self._templates.items()):
            image = template.image
            newer = current.get(f"{image.function_name}:{image.version}")
            if newer is not None and newer != key:
                del self._templates[key]
                await template.destroy()
        now = self._clock()
        if (
            self._exists is None
            or not self._templates
            or now - self._checked_at < EXISTS_CHECK_SECONDS
        ):
            return
        self._checked_at = now
        exists = self._exists
        candidates = list(self._templates.items())
        gone = await asyncio.to_thread(
            lambda: [
                key for key, t in candidates if not exists(t.image.function_name, t.image.version)
            ]
        )
        for key in gone:
            stale = self._templates.pop(key, None)
            if stale is not None:
                await stale.destroy()

    async def shutdown(self) -> None:
        for task in [*self._making.values(), *self._snapshots]:
            task.cancel()
        templates = list(self._templates.values())
        self._templates.clear()
        await asyncio.gather(*(t.destroy() for t in templates), return_exceptions=True)

    async def _make(self, image: FunctionImage) -> Template | SnapshotFailure:
        runtime = image.runtime
        assert runtime.executable is not None
        template_id = uuid.uuid4().hex
        stream_name = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{image.version}]{template_id}"
        stream = LogStream(image.log_group, stream_name, self._sink, self._wall, image.log_settings)
        host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl, child_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log_r, log_w = os.pipe()
        env = environment(image, self._region, "", init_type="snap-start")
        # AWS: these two are not available in SnapStart functions (one snapshot, many streams).
        env.pop("AWS_LAMBDA_LOG_GROUP_NAME", None)
        env.pop("AWS_LAMBDA_LOG_STREAM_NAME", None)
        host_paths = tuple(p for p in (runtime.prefix,) if p is not None and p != Path("/usr"))
        spec = SandboxSpec(
            env_id=template_id,
            argv=(
                runtime.executable,
                "/var/lambdaplane/pyruntime.py",
                str(child_sock.fileno()),
                str(log_w),
                image.handler,
                "--template",
                str(child_ctl.fileno()),
            ),
            env=env,
            code_dir=image.code_dir,
            opt_dir=image.opt_dir,
            runtime_dir=runtime.runtime_dir,
            agent_dir=self._agent_dir,
            host_ro_paths=host_paths,
            hidden_paths=tuple(runtime.site_dirs()),
            memory_mb=image.memory_mb,
            tmp_mb=image.tmp_mb,
            cpu=self._cpu,
            pass_fds=(child_sock.fileno(), log_w, child_ctl.fileno()),
        )
        staging = STAGING_ROOT / template_id
        sources = [image.code_dir, self._agent_dir, *host_paths]
        sources += [p for p in (runtime.runtime_dir, image.opt_dir) if p is not None]
        started = time.monotonic()
        stream.init_start(
            runtime.id,
            runtime.version_arn(self._region),
            image.function_name,
            image.version,
            "snap-start",
        )
        try:
            remap = _stage(staging, sources)
            uid = TEMPLATE_UID_BASE + next(_uids) % 1_000_000
            running = await self._sandbox.start(
                spec, run_as=uid, seccomp=build_filter(allow=_TEMPLATE_SYSCALLS), sources=remap
            )
        except BaseException:
            _unstage(staging)
            for closing in (host_sock, ctl):
                closing.close()
            os.close(log_r)
            raise
        finally:
            child_sock.close()
            child_ctl.close()
            os.close(log_w)
        os.set_blocking(log_r, False)
        template = Template(image, running, ctl, host_sock, log_r, stream, self._sandbox, self._cpu)
        try:
            failure = await self._wait_ready(template, running, ctl, host_sock)
        finally:
            _unstage(staging)
            template.drain()
        duration = (time.monotonic() - started) * 1000
        if failure is not None:
            stream.init_done("error", duration, failure.error_type, "snap-start")
            await template.destroy()
            return failure
        template.init_duration_ms = duration
        asyncio.get_running_loop().call_soon(template._refill)
        stream.init_done("success", duration, None, "snap-start")
        if not stream.format.json:
            stream.platform(
                f"INIT_REPORT Init Duration: {duration:.2f} ms\tPhase: init\tStatus: success"
            )
        stream.flush_partial()
        return template

    async def _wait_ready(
        self,
        template: Template,
        running: RunningBubblewrap,
        ctl: socket.socket,
        host_sock: socket.socket,
    ) -> SnapshotFailure | None:
        loop = asyncio.get_running_loop()
        ctl.setblocking(False)
        host_sock.setblocking(False)
        ready = loop.create_task(loop.sock_recv(ctl, 256))
        exited = loop.create_task(running.process.wait())
        done, _ = await asyncio.wait(
            {ready, exited}, timeout=self._init_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done and not ready.exception() and ready.result():
            exited.cancel()
            ctl.setblocking(True)
            return None
        ready.cancel()
        exited.cancel()
        if not done:
            await running.destroy()
            return SnapshotFailure(
                json.dumps(
                    {"errorType": "Sandbox.Timedout", "errorMessage": "Snapshot init timed out"}
                ).encode(),
                "Sandbox.Timedout",
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(running.process.wait(), 5.0)
        decoder = wire.FrameDecoder()
        failure: SnapshotFailure | None = None
        while True:
            try:
                data = host_sock.recv(65536)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            for frame in decoder.feed(data):
                if frame.type == wire.INIT_ERROR:
                    error_type = frame.meta.get("error_type") or "Runtime.Unknown"
                    failure = SnapshotFailure(frame.body, error_type)
        if failure is None:
            failure = SnapshotFailure(
                json.dumps(
                    {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": "Runtime exited during the snapshot's init phase",
                    }
                ).encode(),
                "Runtime.ExitError",
            )
        return failure


def _stage(staging: Path, sources: list[Path]) -> dict[Path, Path]:
    """Read-only binds of ``sources`` under ``staging`` (mode 755), for an unprivileged bwrap."""
    staging.mkdir(parents=True, mode=0o755)
    os.chmod(staging.parent, 0o755)
    remap = {}
    for index, source in enumerate(dict.fromkeys(sources)):
        # An unpacked tree is made in a private (0700) directory; open its top for the
        # unprivileged uid (the data directory above it stays closed to everyone else).
        os.chmod(source, os.stat(source).st_mode | 0o055)
        target = staging / str(index)
        target.mkdir(mode=0o755)
        _mount(str(source), str(target), MS_BIND)
        _mount(None, str(target), MS_BIND | MS_REMOUNT | MS_RDONLY)
        remap[source] = target
    return remap


def _unstage(staging: Path) -> None:
    if not staging.exists():
        return
    for target in staging.iterdir():
        _libc.umount2(str(target).encode(), MNT_DETACH)
    shutil.rmtree(staging, ignore_errors=True)


def _mount(source: str | None, target: str, flags: int) -> None:
    src = source.encode() if source is not None else None
    if _libc.mount(src, target.encode(), None, flags, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} -> {target}: {os.strerror(errno)}")
