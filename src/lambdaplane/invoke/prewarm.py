"""Pre-initialised sandboxes: the expensive part of a cold start, done ahead of demand.

Spawning a sandbox, starting an interpreter and importing awslambdaric takes ~45 ms
here; a function's own init (importing its handler) is usually a few. So for each
*kind* of environment that has cold-started recently (same Python runtime, memory
size and /tmp size), a few sandboxes are kept started with the runtime loaded but no
function in it. A cold start claims one: the function's code is mounted at /var/task,
its environment and handler are sent (``ASSIGN``), and its init phase begins —
exactly the init AWS runs, minus the interpreter's own start.

Only managed Python runtimes with no ``PYTHON*``/``LD_*`` variables qualify (those
change how the interpreter starts, which has already happened; the log format and
level are read again when the function arrives, see ``agent/pyruntime.py``); the
rest, and every environment when this process may not mount (not root), start the
ordinary way. Layers are mounted at /opt the same way as the code at /var/task (the
interpreter's ``PYTHONPATH`` and ``LD_LIBRARY_PATH`` name /opt's directories from the
start, and each slot holds an empty ``lib/`` so the loader does not write
/var/task/lib or /opt/lib off as missing), except layers with external extensions
(they need the agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lambdaplane.invoke.env_vars import LD_LIBRARY_PATH
from lambdaplane.invoke.image import FunctionImage
from lambdaplane.invoke.mounts import Mounts
from lambdaplane.sandbox import CpuPolicy, RunningSandbox, Sandbox, SandboxSpec
from lambdaplane.service.runtimes import Runtime

log = logging.getLogger("lambdaplane.prewarm")

# Variables that shape the interpreter's own start: such functions are not pre-started.
_STARTUP_PREFIXES = ("PYTHON", "LD_")


@dataclass(frozen=True)
class PrewarmKey:
    runtime_id: str
    memory_mb: int
    tmp_mb: int


@dataclass
class Prewarmed:
    """A started sandbox waiting for a function."""

    key: PrewarmKey
    env_id: str
    running: RunningSandbox
    host_sock: socket.socket
    log_fd: int
    slot: Path  # bound at /var/task
    opt_slot: Path  # bound at /opt
    started: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        return self.running.process.returncode is None


def key_for(image: FunctionImage) -> PrewarmKey | None:
    """The pool a function's environments can be claimed from, or None if it cannot."""
    if image.runtime.family != "python":
        return None
    if any(k.startswith(_STARTUP_PREFIXES) for k in image.variables):
        return None
    if image.opt_dir is not None and image.extensions:
        return None
    return PrewarmKey(image.runtime.id, image.memory_mb, image.tmp_mb)


def startup_environment(runtime: Runtime) -> dict[str, str]:
    """What the interpreter needs to start and import awslambdaric, before ASSIGN."""
    minor = runtime.id.removeprefix("python")
    return {
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "PYTHONPATH": f"/opt/python/lib/python{minor}/site-packages:/opt/python:/var/runtime",
        # Read by the loader at start only, so set before the code is mounted: the
        # function's /var/task/lib and a layer's /opt/lib are found once they are.
        "LD_LIBRARY_PATH": LD_LIBRARY_PATH,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime.id}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class Prewarmer:
    def __init__(
        self,
        *,
        sandbox: Sandbox,
        mounts: Mounts,
        agent_dir: Path,
        cpu: CpuPolicy,
        per_key: int,
        max_idle: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sandbox = sandbox
        self.mounts = mounts
        self._agent_dir = agent_dir
        self._cpu = cpu
        self._per_key = per_key
        self._max_idle = max_idle
        self._clock = clock
        self._ready: dict[PrewarmKey, list[Prewarmed]] = {}
        self._starting: dict[PrewarmKey, int] = {}
        self._runtimes: dict[PrewarmKey, Runtime] = {}
        self._last_wanted: dict[PrewarmKey, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def waiting(self) -> int:
        """Pre-initialised sandboxes ready to be claimed now."""
        return sum(len(ready) for ready in self._ready.values())

    def take(self, key: PrewarmKey) -> Prewarmed | None:
        """A ready sandbox of ``key``, if one is waiting."""
        ready = self._ready.get(key) or []
        while ready:
            candidate = ready.pop()
            if candidate.alive:
                return candidate
            self._retire(candidate)
        return None

    def want(self, key: PrewarmKey, runtime: Runtime, delay: float = 0.1) -> None:
        """Keep ``per_key`` sandboxes of ``key`` ready, started in the background after
        ``delay`` (so the invocation that asked goes first)."""
        self._runtimes[key] = runtime
        self._last_wanted[key] = self._clock()
        asyncio.get_running_loop().call_later(delay, self._refill, key, runtime)

    def _refill(self, key: PrewarmKey, runtime: Runtime) -> None:
        if self._closed:
            return
        missing = self._per_key - len(self._ready.get(key) or []) - self._starting.get(key, 0)
        for _ in range(max(0, missing)):
            self._starting[key] = self._starting.get(key, 0) + 1
            task = asyncio.get_running_loop().create_task(self._start_one(key, runtime))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start_one(self, key: PrewarmKey, runtime: Runtime) -> None:
        try:
            prewarmed = await self._spawn(key, runtime)
        except Exception:
            log.exception("could not pre-start a %s environment", key.runtime_id)
            return
        finally:
            self._starting[key] -= 1
        self._ready.setdefault(key, []).append(prewarmed)

    async def _spawn(self, key: PrewarmKey, runtime: Runtime) -> Prewarmed:
        assert runtime.executable is not None
        env_id = uuid.uuid4().hex
        slot = self.mounts.new_slot(env_id)
        opt_slot = self.mounts.new_slot(f"{env_id}-opt")
        host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_read, log_write = os.pipe()
        host_paths = tuple(p for p in (runtime.prefix,) if p is not None and p != Path("/usr"))
        spec = SandboxSpec(
            env_id=env_id,
            argv=(
                runtime.executable,
                "/var/lambdaplane/pyruntime.py",
                str(child_sock.fileno()),
                str(log_write),
                "--prewarm",
            ),
            env=startup_environment(runtime),
            code_dir=slot,
            opt_dir=opt_slot,
            runtime_dir=runtime.runtime_dir,
            agent_dir=self._agent_dir,
            host_ro_paths=host_paths,
            hidden_paths=tuple(runtime.site_dirs()),
            memory_mb=key.memory_mb,
            tmp_mb=key.tmp_mb,
            cpu=self._cpu,
            pass_fds=(child_sock.fileno(), log_write),
        )
        try:
            running = await self._sandbox.start(spec)
        except BaseException:
            host_sock.close()
            os.close(log_read)
            self.mounts.release_slot(slot)
            self.mounts.release_slot(opt_slot)
            raise
        finally:
            child_sock.close()
            os.close(log_write)
        os.set_blocking(log_read, False)
        # Loading runtimes ahead of demand must not slow down work that is running now.
        cgroup = getattr(running, "cgroup", None)
        if cgroup is not None:
            with contextlib.suppress(OSError):
                cgroup.set_cpu_weight(None)
        return Prewarmed(key, env_id, running, host_sock, log_read, slot, opt_slot, self._clock())

    def _retire(self, prewarmed: Prewarmed) -> None:
        task = asyncio.get_running_loop().create_task(self.discard(prewarmed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def discard(self, prewarmed: Prewarmed) -> None:
        """Destroy a sandbox that was never (or no longer) needed."""
        prewarmed.host_sock.close()
        await prewarmed.running.destroy()
        with contextlib.suppress(OSError):
            os.close(prewarmed.log_fd)
        self.mounts.release_slot(prewarmed.slot)
        self.mounts.release_slot(prewarmed.opt_slot)

    async def trim(self) -> None:
        """Retire the sandboxes of kinds nobody has cold-started for ``max_idle`` seconds."""
        now = self._clock()
        for key, ready in self._ready.items():
            if ready and now - self._last_wanted.get(key, 0.0) > self._max_idle:
                stale, self._ready[key] = ready, []
                for prewarmed in stale:
                    await self.discard(prewarmed)

    async def shutdown(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        ready = [p for group in self._ready.values() for p in group]
        self._ready.clear()
        await asyncio.gather(*(self.discard(p) for p in ready), return_exceptions=True)
        self.mounts.sweep()
