"""The bubblewrap backend: namespaces, a minimal read-only root, seccomp and cgroups.

Each environment is one ``bwrap`` process tree in new user, pid, mount, ipc, uts and
cgroup namespaces (and a new network namespace holding only ``lo`` unless the spec
asks for the host network), running as AWS's sandbox user 993:990 with no
capabilities and ``no_new_privs``. Its root is an empty tmpfs made read-only after
assembly: the host's ``/usr`` (with Debian's ``/lib``, ``/bin``... symlinks), fresh
``/proc`` and ``/dev``, the function's directories at AWS's paths, a size-limited
``/tmp``, and a synthetic ``/etc`` (:func:`etc_files`). Nothing else of the host.

The server runs bwrap as root, so the sandbox user maps to host uid 0, with no
capability in any namespace. Kernel interfaces guarded only by "owned by root" file
modes would therefore be open to it; bwrap covers some of ``/proc``, and
:func:`build_argv` covers the rest (``/proc/sys`` read-only, root-only ``/proc``
files hidden behind ``/dev/null``), and nothing root-owned and sensitive is bound in.

:func:`build_argv` is pure; :class:`BubblewrapSandbox` does the I/O: cgroup creation,
the data file descriptors bwrap reads (its options, the seccomp program, the ``/etc``
files) and the spawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from lambdaplane.sandbox.base import SandboxError
from lambdaplane.sandbox.cgroups import CgroupManager, EnvironmentCgroup, ResourceLimits
from lambdaplane.sandbox.child import ChildProcess
from lambdaplane.sandbox.seccomp import build_filter
from lambdaplane.sandbox.spec import SandboxSpec

log = logging.getLogger(__name__)

SANDBOX_UID = 993
SANDBOX_GID = 990
SANDBOX_USER = "sbx_user1051"

# Debian's merged-/usr layout: the root's only other entries point into /usr.
USR_SYMLINKS = (("usr/lib", "/lib"), ("usr/lib64", "/lib64"), ("usr/bin", "/bin"), ("usr/sbin", "/sbin"))  # fmt: skip
# /proc directories a root-mapped user could write to, bound read-only over themselves.
PROC_READ_ONLY = ("sys", "fs", "irq", "bus", "acpi", "scsi", "driver")
# Root-only /proc files (physical page maps, slab and vmalloc layout, kernel log).
PROC_MASKED = (
    "kcore", "kmsg", "kpagecgroup", "kpagecount", "kpageflags", "pagetypeinfo",
    "slabinfo", "timer_list", "vmallocinfo", "sched_debug", "latency_stats",
    "sysrq-trigger", "mtrr", "keys", "key-users",
)  # fmt: skip


def etc_files(spec: SandboxSpec) -> dict[str, bytes]:
    """The synthetic files of the sandbox's read-only ``/etc``, by name."""
    return {
        "passwd": (
            f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}::/tmp:/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        ).encode(),
        "group": f"{SANDBOX_USER}:x:{SANDBOX_GID}:\nnogroup:x:65534:\n".encode(),
        "hosts": (
            f"127.0.0.1\tlocalhost {spec.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        ).encode(),
        "nsswitch.conf": b"passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
    }


def build_argv(
    spec: SandboxSpec,
    seccomp_fd: int,
    *,
    etc_fds: Mapping[str, int],
    masked_proc: Sequence[str] = (),
    bwrap: str = "/usr/bin/bwrap",
    template: bool = False,
    sources: Mapping[Path, Path] | None = None,
) -> list[str]:
    """The complete bwrap command line for ``spec``.

    ``seccomp_fd`` and the ``etc_fds`` (name in ``/etc`` -> fd, see :func:`etc_files`)
    are readable descriptors bwrap consumes; ``masked_proc`` names the ``/proc`` files
    present on this host to hide. Mount operations run in order, so later binds
    (``host_ro_paths`` last) may sit inside earlier ones, and ``/`` is made read-only
    at the end.

    ``template`` (SnapStart, bwrap run as an unprivileged host uid): nested user
    namespaces stay possible, and ``/proc`` is left whole (a restored environment
    mounts its own, which the kernel allows only over a fully visible one; the
    unprivileged uid, not the masks, keeps root's files out of reach). ``sources``
    maps host paths to where bwrap finds them (paths that uid can traverse).
    """
    remap = dict(sources or {})

    def src(path: Path) -> str:
        return str(remap.get(path, path))

    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try"] if template else ["--unshare-cgroup-try", "--disable-userns"]
    if not spec.network:
        argv.append("--unshare-net")
    argv += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--hostname", spec.hostname]
    argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    argv += ["--seccomp", str(seccomp_fd), "--clearenv"]
    for name, value in spec.env.items():
        argv += ["--setenv", name, value]

    argv += ["--ro-bind", "/usr", "/usr"]
    for target, link in USR_SYMLINKS:
        argv += ["--symlink", target, link]
    argv += ["--proc", "/proc"]
    for name in () if template else PROC_READ_ONLY:
        argv += ["--ro-bind-try", f"/proc/{name}", f"/proc/{name}"]
    for name in () if template else masked_proc:
        argv += ["--ro-bind", "/dev/null", f"/proc/{name}"]
    argv += ["--dev", "/dev", "--remount-ro", "/dev"]

    argv += ["--ro-bind", src(spec.code_dir), "/var/task"]
    argv += _ro_dir(spec.runtime_dir and Path(src(spec.runtime_dir)), "/var/runtime")
    argv += ["--ro-bind", src(spec.agent_dir), "/var/lambdaplane"]
    argv += _ro_dir(spec.opt_dir and Path(src(spec.opt_dir)), "/opt")
    argv += ["--size", str(spec.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]

    for name, fd in etc_fds.items():
        # A template's restored environments bind their own /etc/hosts over it: it must
        # be a plain file of the (read-only) root, not a mount of an unlinked one.
        kind = "--file" if template and name == "hosts" else "--ro-bind-data"
        argv += [kind, str(fd), f"/etc/{name}"]
    argv += ["--symlink", "/usr/share/zoneinfo/UTC", "/etc/localtime"]
    argv += ["--ro-bind-try", "/etc/ssl/certs", "/etc/ssl/certs"]
    if spec.network:
        argv += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]

    for path in spec.host_ro_paths:
        argv += ["--ro-bind", src(path), str(path)]
    for hidden in spec.hidden_paths:
        argv += ["--size", "4096", "--tmpfs", hidden, "--remount-ro", hidden]
    argv += ["--remount-ro", "/", "--chdir", spec.cwd, "--", *spec.argv]
    return argv


def _ro_dir(source: Path | None, target: str) -> list[str]:
    # An unbound --dir lives in the root tmpfs, which ends read-only.
    return ["--dir", target] if source is None else ["--ro-bind", str(source), target]


class BubblewrapSandbox:
    """Starts environments under bubblewrap; implements :class:`~.base.Sandbox`.

    ``cgroups`` defaults to :meth:`CgroupManager.detect`; None runs without limits.
    Raises :class:`SandboxError` if bwrap is missing and
    :class:`~.seccomp.UnsupportedArchitecture` on a host without a syscall table.
    """

    def __init__(
        self,
        cgroups: CgroupManager | Literal["detect"] | None = "detect",
        *,
        bwrap: str = "/usr/bin/bwrap",
        kill_timeout: float = 5.0,
        proc: Path = Path("/proc"),
    ) -> None:
        if not os.access(bwrap, os.X_OK):
            raise SandboxError(f"bubblewrap not found at {bwrap} (apt-get install bubblewrap)")
        self._cgroups = CgroupManager.detect() if cgroups == "detect" else cgroups
        self._bwrap = bwrap
        self._kill_timeout = kill_timeout
        self._seccomp = build_filter()
        self._masked_proc = tuple(name for name in PROC_MASKED if (proc / name).exists())

    @property
    def cgroups(self) -> CgroupManager | None:
        return self._cgroups

    async def start(
        self,
        spec: SandboxSpec,
        *,
        run_as: int | None = None,
        seccomp: bytes | None = None,
        sources: Mapping[Path, Path] | None = None,
    ) -> RunningBubblewrap:
        """Spawn ``spec.argv`` in a new sandbox; raises :class:`SandboxError`.

        ``run_as`` (a SnapStart template): bwrap runs as that unprivileged host uid and
        gid, with ``seccomp`` instead of the strict program; see :func:`build_argv`.
        """
        cgroup = None
        if self._cgroups is not None:
            try:
                cgroup = self._cgroups.create(
                    spec.env_id, ResourceLimits(spec.memory_mb, spec.pids_max, spec.cpu)
                )
            except OSError as exc:
                raise SandboxError(f"cannot create cgroups for {spec.env_id}: {exc}") from exc
        opened: list[int] = []
        try:
            seccomp_fd = _data_fd(self._seccomp if seccomp is None else seccomp, opened)
            etc_fds = {name: _data_fd(data, opened) for name, data in etc_files(spec).items()}
            attach = cgroup.attach_files() if cgroup is not None else ()
            argv = build_argv(
                spec,
                seccomp_fd,
                etc_fds=etc_fds,
                masked_proc=self._masked_proc,
                bwrap=self._bwrap,
                template=run_as is not None,
                sources=sources,
            )
            # Options go through a file descriptor so that /proc/<pid>/cmdline of bwrap and
            # of the sandbox's pid 1 shows no host paths; the command stays visible.
            end = argv.index("--")
            args_fd = _data_fd(b"".join(arg.encode() + b"\0" for arg in argv[1:end]), opened)
            process = await ChildProcess.start(
                [argv[0], "--args", str(args_fd), *argv[end:]],
                pass_fds=(args_fd, seccomp_fd, *etc_fds.values(), *spec.pass_fds),
                cgroup_procs=[str(path) for path in attach],
                run_as=run_as,
            )
        except BaseException as exc:
            if cgroup is not None:
                _discard(cgroup)
            if isinstance(exc, OSError | subprocess.SubprocessError):
                raise SandboxError(f"cannot start sandbox {spec.env_id}: {exc}") from exc
            raise
        finally:
            for fd in opened:
                os.close(fd)
        return RunningBubblewrap(process, cgroup, kill_timeout=self._kill_timeout)


def _discard(cgroup: EnvironmentCgroup) -> None:
    try:
        cgroup.remove()
    except OSError as exc:  # a half-started bwrap may still be dying in it
        log.warning("leaving cgroup %s behind: %s", cgroup.directories, exc)


def _data_fd(data: bytes, opened: list[int]) -> int:
    """An anonymous memory file holding ``data``, positioned at its start, for bwrap to read."""
    fd = os.memfd_create("lambdaplane-sandbox", os.MFD_CLOEXEC)
    opened.append(fd)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class RunningBubblewrap:
    """A started bubblewrap sandbox; implements :class:`~.base.RunningSandbox`."""

    def __init__(
        self,
        process: ChildProcess,
        cgroup: EnvironmentCgroup | None,
        *,
        kill_timeout: float,
    ) -> None:
        self.process = process
        self._cgroup = cgroup
        self._kill_timeout = kill_timeout
        self._lock = asyncio.Lock()
        self._destroyed = False
        self._final: tuple[int | None, bool] | None = None  # (peak, oom) kept past destroy

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def cgroup(self) -> EnvironmentCgroup | None:
        return self._cgroup

    async def destroy(self) -> None:
        """Kill every process of the environment, reap bwrap, close pipes, remove cgroups.

        Idempotent. Raises :class:`SandboxError` if processes survive ``kill_timeout``.
        """
        async with self._lock:
            if self._destroyed:
                return
            if self.process.returncode is None:
                # bwrap, and the sandbox's pid 1 whose death takes the pid namespace down
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            try:
                if self._cgroup is not None:
                    await self._cgroup.kill_all(self._kill_timeout)
                await asyncio.wait_for(self.process.wait(), self._kill_timeout)
            except TimeoutError as exc:
                raise SandboxError(f"bwrap {self.pid} did not exit after SIGKILL") from exc
            finally:
                self.process.close()  # kills bwrap if it is somehow still running
            if self._cgroup is not None:
                self._final = (self._cgroup.memory_peak_bytes(), self._cgroup.oom_killed())
                await self._remove_cgroup(self._cgroup)
            self._destroyed = True

    async def _remove_cgroup(self, cgroup: EnvironmentCgroup) -> None:
        # A killed cgroup stays busy until the kernel has finished tearing its tasks down.
        for _ in range(200):
            try:
                cgroup.remove()
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
            await asyncio.sleep(0.005)
        raise SandboxError(f"cgroups stay busy: {cgroup.directories}")

    def memory_peak_bytes(self) -> int | None:
        """Peak since start or the last reset; after destroy, the final peak."""
        if self._final is not None:
            return self._final[0]
        return None if self._cgroup is None else self._cgroup.memory_peak_bytes()

    def memory_reset_peak(self) -> bool:
        return self._final is None and self._cgroup is not None and self._cgroup.reset_memory_peak()

    def oom_killed(self) -> bool:
        """Whether the OOM killer struck; still answers after destroy."""
        if self._final is not None:
            return self._final[1]
        return self._cgroup is not None and self._cgroup.oom_killed()
