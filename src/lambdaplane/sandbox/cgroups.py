"""Per-environment cgroups: memory without swap, a pids limit, CPU in proportion to memory.

One interface over both kernel layouts, chosen once by :meth:`CgroupManager.detect`:
v2 (the unified hierarchy, when ``cgroup.controllers`` at the root lists memory, pids
and cpu) or v1 (one hierarchy per controller: ``memory/``, ``pids/``, ``cpu/``, and
``freezer/`` for race-free killing). Each environment gets ``<parent>/<env_id>`` in
every hierarchy used; its first process joins before it execs bwrap, so everything it
starts is accounted and can be killed.

CPU follows memory as on AWS, where 1,769 MB buys one vCPU. The default is weighted
*shares*: under contention an environment gets CPU in proportion to its memory, but
an idle machine lets a 128 MB function burst to a full core. AWS instead enforces a
hard *quota* (128 MB = 7.2 % of a core), which makes a Python cold start take
hundreds of milliseconds; ``CpuPolicy("quota")`` reproduces that when parity matters.
Figures are in ``docs/sandbox.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import select
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lambdaplane.sandbox.base import SandboxError
from lambdaplane.sandbox.spec import CpuPolicy

log = logging.getLogger(__name__)

MB_PER_VCPU = 1769
CPU_PERIOD_US = 100_000
MIN_CPU_QUOTA_US = 1_000
MIB = 1024 * 1024
V2_CONTROLLERS = ("memory", "pids", "cpu")


def cpu_shares(memory_mb: int) -> int:
    """v1 ``cpu.shares``: 1024 per vCPU-equivalent of memory (kernel minimum 2)."""
    return max(2, round(1024 * memory_mb / MB_PER_VCPU))


def cpu_weight(memory_mb: int) -> int:
    """v2 ``cpu.weight``: 100 per vCPU-equivalent of memory, within the kernel's 1..10000."""
    return min(10_000, max(1, round(100 * memory_mb / MB_PER_VCPU)))


def cpu_quota_us(memory_mb: int) -> int:
    """CFS quota per :data:`CPU_PERIOD_US`: the fraction of a core AWS grants this memory."""
    return max(MIN_CPU_QUOTA_US, round(CPU_PERIOD_US * memory_mb / MB_PER_VCPU))


@dataclass(frozen=True)
class ResourceLimits:
    """What one environment may use."""

    memory_mb: int
    pids_max: int
    cpu: CpuPolicy


def v1_settings(limits: ResourceLimits, *, has_memsw: bool) -> dict[str, list[tuple[str, str]]]:
    """Files to write, in order, per v1 controller (memory before memsw: memsw >= memory)."""
    memory = str(limits.memory_mb * MIB)
    memory_files = [("memory.swappiness", "0"), ("memory.limit_in_bytes", memory)]
    if has_memsw:
        memory_files.append(("memory.memsw.limit_in_bytes", memory))
    if limits.cpu.mode == "quota":
        cpu_files = [
            ("cpu.cfs_period_us", str(CPU_PERIOD_US)),
            ("cpu.cfs_quota_us", str(cpu_quota_us(limits.memory_mb))),
        ]
    else:
        cpu_files = [("cpu.shares", str(cpu_shares(limits.memory_mb)))]
    return {
        "memory": memory_files,
        "pids": [("pids.max", str(limits.pids_max))],
        "cpu": cpu_files,
    }


def v2_settings(limits: ResourceLimits, *, has_swap: bool) -> list[tuple[str, str]]:
    """Files to write, in order, in a v2 environment cgroup."""
    files = [("memory.max", str(limits.memory_mb * MIB))]
    if has_swap:
        files.append(("memory.swap.max", "0"))
    files.append(("pids.max", str(limits.pids_max)))
    if limits.cpu.mode == "quota":
        files.append(("cpu.max", f"{cpu_quota_us(limits.memory_mb)} {CPU_PERIOD_US}"))
    else:
        files.append(("cpu.weight", str(cpu_weight(limits.memory_mb))))
    return files


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_ints(path: Path) -> list[int]:
    try:
        return [int(word) for word in path.read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _read_keyed(path: Path) -> dict[str, int]:
    """A ``key value`` per line file (memory.events, memory.oom_control)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {k: int(v) for k, v in (line.split() for line in lines if line.strip())}


class EnvironmentCgroup(ABC):
    """The cgroup(s) of one environment. Create through :meth:`CgroupManager.create`."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self._dirs = dirs  # controller name (v1) or "unified" (v2) -> directory

    @property
    def directories(self) -> tuple[Path, ...]:
        return tuple(self._dirs.values())

    def attach_files(self) -> tuple[Path, ...]:
        """The ``cgroup.procs`` files a process writes its pid to, to join this environment."""
        return tuple(directory / "cgroup.procs" for directory in self._dirs.values())

    def pids(self) -> list[int]:
        """Host pids of the environment's processes."""
        found: set[int] = set()
        for path in self.attach_files():
            found.update(_read_ints(path))
        return sorted(found)

    async def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process, including ones forked meanwhile; wait until none is left.

        Raises :class:`SandboxError` if processes survive ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pidfds: dict[int, int] = {}  # held so that no pid we wait for can be reused
        try:
            while pids := self.pids():
                if loop.time() > deadline:
                    raise SandboxError(f"processes survived SIGKILL in {self.directories}: {pids}")
                for pid in pids:
                    if pid not in pidfds:
                        with contextlib.suppress(ProcessLookupError):
                            pidfds[pid] = os.pidfd_open(pid)
                await self._kill_once(pids)
                await asyncio.sleep(0.002)
            # A task leaves its cgroup early in exit(); wait until each one has finished.
            while pending := [fd for fd in pidfds.values() if not _exited(fd)]:
                if loop.time() > deadline:
                    raise SandboxError(f"{len(pending)} killed processes did not finish exiting")
                await asyncio.sleep(0.001)
        finally:
            for fd in pidfds.values():
                os.close(fd)

    async def _kill_once(self, pids: Iterable[int]) -> None:
        _signal_all(pids)

    def remove(self) -> None:
        """Remove the directories; raises ``OSError`` (EBUSY) while processes remain."""
        for directory in self._dirs.values():
            with contextlib.suppress(FileNotFoundError):
                directory.rmdir()

    def set_cpu_weight(self, memory_mb: int | None) -> None:
        """Weight the CPU as for ``memory_mb`` (None: the lowest weight, for background work)."""
        if "cpu" in self._dirs:  # v1
            value = "2" if memory_mb is None else str(cpu_shares(memory_mb))
            _write(self._dirs["cpu"] / "cpu.shares", value)
        elif "unified" in self._dirs:
            value = "1" if memory_mb is None else str(cpu_weight(memory_mb))
            with contextlib.suppress(OSError):
                _write(self._dirs["unified"] / "cpu.weight", value)

    @abstractmethod
    def memory_peak_bytes(self) -> int | None:
        """Peak memory charged since creation or the last reset."""

    @abstractmethod
    def reset_memory_peak(self) -> bool:
        """Restart peak tracking; False where the kernel cannot."""

    @abstractmethod
    def oom_killed(self) -> bool:
        """Whether the OOM killer killed a process in this cgroup."""


def _exited(pidfd: int) -> bool:
    """A pidfd polls readable once its process is a zombie or gone.

    poll, not select: a busy server holds well over FD_SETSIZE (1,024) descriptors, and
    select refuses any numbered above it.
    """
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def _signal_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class _V1Cgroup(EnvironmentCgroup):
    def __init__(self, dirs: dict[str, Path]) -> None:
        super().__init__(dirs)
        self._peak_fd: int | None = None

    def remove(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        super().remove()

    async def _kill_once(self, pids: Iterable[int]) -> None:
        # Frozen tasks can neither fork nor exit, so the list read below is complete and
        # no pid in it can be reused before the SIGKILLs land.
        freezer = self._dirs.get("freezer")
        if freezer is None:
            _signal_all(pids)
            return
        _write(freezer / "freezer.state", "FROZEN")
        try:
            for _ in range(50):
                if (freezer / "freezer.state").read_text().strip() == "FROZEN":
                    break
                await asyncio.sleep(0.001)
            _signal_all(self.pids())
        finally:
            _write(freezer / "freezer.state", "THAWED")  # SIGKILL is acted on once thawed

    def memory_peak_bytes(self) -> int | None:
        # Read on every invocation's REPORT: keep the file open and pread it (~2 us).
        fd = self._peak_fd
        try:
            if fd is None:
                fd = os.open(
                    self._dirs["memory"] / "memory.max_usage_in_bytes", os.O_RDONLY | os.O_CLOEXEC
                )
                self._peak_fd = fd
            return int(os.pread(fd, 64, 0).split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def reset_memory_peak(self) -> bool:
        _write(self._dirs["memory"] / "memory.max_usage_in_bytes", "0")
        return True

    def oom_killed(self) -> bool:
        return _read_keyed(self._dirs["memory"] / "memory.oom_control").get("oom_kill", 0) > 0


class _V2Cgroup(EnvironmentCgroup):
    def __init__(self, dirs: dict[str, Path]) -> None:
        super().__init__(dirs)
        self._peak_fd: int | None = None  # memory.peak resets are per open file (Linux 6.12+)

    @property
    def _dir(self) -> Path:
        return self._dirs["unified"]

    async def _kill_once(self, pids: Iterable[int]) -> None:
        kill_file = self._dir / "cgroup.kill"  # Linux 5.14+: atomic, forks included
        if kill_file.exists():
            _write(kill_file, "1")
        else:
            _signal_all(pids)

    def memory_peak_bytes(self) -> int | None:
        if self._peak_fd is not None:
            return int(os.pread(self._peak_fd, 64, 0).split()[0])
        values = _read_ints(self._dir / "memory.peak")
        return values[0] if values else None

    def reset_memory_peak(self) -> bool:
        try:
            if self._peak_fd is None:
                self._peak_fd = os.open(self._dir / "memory.peak", os.O_RDWR | os.O_CLOEXEC)
            os.write(self._peak_fd, b"reset\n")
        except OSError:
            return False
        return True

    def oom_killed(self) -> bool:
        return _read_keyed(self._dir / "memory.events").get("oom_kill", 0) > 0

    def remove(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        super().remove()


_ENV_ID = re.compile(r"[a-z0-9-]{8,64}")


class CgroupManager:
    """Creates environment cgroups under ``<root>/<parent>`` (v2) or each controller's."""

    def __init__(self, version: Literal[1, 2], parents: dict[str, Path], *, swap: bool) -> None:
        self.version = version
        self._parents = parents  # controller (v1) or "unified" (v2) -> parent directory
        self._swap = swap  # memory.memsw (v1) / memory.swap.max (v2) exist: limit swap too

    @classmethod
    def detect(
        cls, root: Path = Path("/sys/fs/cgroup"), parent: str = "lambdaplane"
    ) -> CgroupManager | None:
        """Find and prepare a usable hierarchy; None (with a warning) when there is none.

        ``parent`` is a path relative to the hierarchy root. Without a manager, sandboxes
        still start but have no memory, CPU or pids limits.
        """
        try:
            if set(V2_CONTROLLERS) <= set(_words(root / "cgroup.controllers")):
                return cls._prepare_v2(root, parent).swept()
            if (root / "memory" / "memory.limit_in_bytes").exists():
                return cls._prepare_v1(root, parent).swept()
            reason = "no cgroup v2 memory/pids/cpu controllers and no cgroup v1 memory hierarchy"
        except OSError as exc:
            reason = f"cannot set up {parent!r}: {exc}"
        log.warning(
            "cgroups unavailable under %s (%s): sandboxes run WITHOUT memory, CPU and pids "
            "limits; run as root or delegate a writable cgroup",
            root,
            reason,
        )
        return None

    def swept(self, older_than: float = 60.0) -> CgroupManager:
        """Remove environment cgroups a killed server left behind (empty, and older than
        ``older_than`` seconds, so one another server is creating right now is spared)."""
        now = time.time()
        removed = 0
        for parent in self._parents.values():
            for child in parent.iterdir():
                if not child.is_dir() or not _ENV_ID.fullmatch(child.name):
                    continue
                try:
                    if (
                        now - child.stat().st_mtime < older_than
                        or (child / "cgroup.procs").read_text().strip()
                    ):
                        continue
                    child.rmdir()
                    removed += 1
                except OSError:
                    continue  # busy or already gone: leave it
        if removed:
            log.info("removed %d stale environment cgroups", removed)
        return self

    @classmethod
    def _prepare_v2(cls, root: Path, parent: str) -> CgroupManager:
        enable = " ".join(f"+{name}" for name in V2_CONTROLLERS)
        directory = root
        _write(directory / "cgroup.subtree_control", enable)
        for part in Path(parent).parts:
            directory = directory / part
            directory.mkdir(exist_ok=True)
            _write(directory / "cgroup.subtree_control", enable)
        _require_writable(directory)
        swap = (directory / "memory.swap.max").exists()
        return cls(2, {"unified": directory}, swap=swap)

    @classmethod
    def _prepare_v1(cls, root: Path, parent: str) -> CgroupManager:
        parents: dict[str, Path] = {}
        for name in ("memory", "pids", "cpu", "freezer"):
            hierarchy = root / name
            if not (hierarchy / "cgroup.procs").exists():
                if name in ("memory", "pids"):
                    raise FileNotFoundError(f"cgroup v1 {name} hierarchy missing at {hierarchy}")
                log.warning("cgroup v1 %s controller missing at %s", name, hierarchy)
                continue
            directory = hierarchy / parent
            directory.mkdir(parents=True, exist_ok=True)
            _require_writable(directory)
            parents[name] = directory
        swap = (root / "memory" / "memory.memsw.limit_in_bytes").exists()
        return cls(1, parents, swap=swap)

    def create(self, env_id: str, limits: ResourceLimits) -> EnvironmentCgroup:
        """Create the environment's cgroup(s) with ``limits`` applied; raises ``OSError``."""
        dirs = {name: parent / env_id for name, parent in self._parents.items()}
        cgroup: EnvironmentCgroup = _V1Cgroup(dirs) if self.version == 1 else _V2Cgroup(dirs)
        for directory in dirs.values():
            with contextlib.suppress(OSError):
                directory.rmdir()  # left over by a crashed server, and empty
            directory.mkdir()
        try:
            if self.version == 2:
                for name, value in v2_settings(limits, has_swap=self._swap):
                    _write(dirs["unified"] / name, value)
            else:
                for controller, files in v1_settings(limits, has_memsw=self._swap).items():
                    if controller in dirs:
                        for name, value in files:
                            _write(dirs[controller] / name, value)
        except OSError:
            cgroup.remove()
            raise
        return cgroup


def _words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def _require_writable(directory: Path) -> None:
    if not os.access(directory, os.W_OK):
        raise PermissionError(f"{directory} is not writable")
