"""Attaching a function's code to a sandbox that is already running (root only).

A pre-initialised sandbox binds an empty *slot* directory at /var/task. The slot is a
shared mount point on the host, so a mount made on it later propagates into the
sandbox. What is mounted there is a read-only bind of the function's unpacked code
(one per code hash, made once): a bind of a read-only mount stays read-only in the
copy that propagates, which a remount after the fact would not guarantee.

Everything lives under one directory of the data dir; ``sweep`` detaches what a
killed server left behind. A server running as root first moves into a mount namespace
of its own (``enter_private_namespace``), so its mounts are never seen on the host and
go with it however it ends: a SIGKILLed server leaves no busy mount points in its data
directory for anyone else to trip over.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("lambdaplane.mounts")

MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_PRIVATE = 1 << 18
MS_SHARED = 1 << 20
MS_REC = 1 << 14
MS_SLAVE = 1 << 19
MNT_DETACH = 2
CLONE_NEWNS = 0x00020000


class MountError(OSError):
    pass


def enter_private_namespace() -> bool:
    """Move this process into a new mount namespace whose mounts stay out of the host's.

    Host mounts still propagate in (the namespace is a slave of the host's), nothing made
    here propagates out. Must be called before any thread starts: unshare affects only the
    calling thread. False (and the host namespace kept) where that is not possible.
    """
    if os.geteuid() != 0:
        return False
    if threading.active_count() > 1:
        log.warning("mounts stay in the host namespace (threads already running)")
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        log.warning(
            "mounts stay in the host namespace (unshare: %s)", os.strerror(ctypes.get_errno())
        )
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None) != 0:
        # Still in the new namespace, but shared with the host: undo nothing, just say so.
        log.warning("mount namespace not made a slave: %s", os.strerror(ctypes.get_errno()))
    return True


class Mounts:
    """Mount operations under ``root`` (``<data dir>/mounts``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._sources: dict[str, Path] = {}

    @classmethod
    def open(cls, root: Path) -> Mounts | None:
        """A Mounts if this process may mount (root), else None (with a log line)."""
        mounts = cls(root)
        try:
            (root / "slots").mkdir(parents=True, exist_ok=True)
            (root / "code").mkdir(parents=True, exist_ok=True)
            mounts.sweep()
            probe = root / "slots" / ".probe"
            probe.mkdir(exist_ok=True)
            mounts._mount(str(probe), str(probe), MS_BIND)
            mounts.detach(probe)
            probe.rmdir()
        except OSError as exc:
            log.warning("pre-initialised environments are off (cannot mount: %s)", exc)
            return None
        return mounts

    def _mount(self, source: str | None, target: str, flags: int) -> None:
        src = source.encode() if source is not None else None
        if self._libc.mount(src, target.encode(), None, flags, None) != 0:
            errno = ctypes.get_errno()
            raise MountError(errno, f"mount {source} -> {target}: {os.strerror(errno)}")

    def new_slot(self, env_id: str) -> Path:
        """An empty directory that is a shared mount point, for a sandbox's /var/task."""
        slot = self.root / "slots" / env_id
        slot.mkdir()
        # The interpreter starts before any code is mounted, and the dynamic loader
        # remembers which LD_LIBRARY_PATH directories did not exist then (for good):
        # an empty lib/ keeps /var/task/lib and /opt/lib searched once code covers it.
        (slot / "lib").mkdir()
        self._mount(str(slot), str(slot), MS_BIND)
        self._mount(None, str(slot), MS_SHARED)
        return slot

    def read_only_source(self, code_dir: Path, key: str) -> Path:
        """A read-only bind of ``code_dir`` (made once per ``key``, the code hash)."""
        found = self._sources.get(key)
        if found is not None:
            return found
        target = self.root / "code" / key
        target.mkdir(exist_ok=True)
        self._mount(str(code_dir), str(target), MS_BIND)
        self._mount(None, str(target), MS_PRIVATE)
        self._mount(None, str(target), MS_REMOUNT | MS_BIND | MS_RDONLY)
        self._sources[key] = target
        return target

    def attach(self, source: Path, slot: Path) -> None:
        """Mount ``source`` (read-only) on ``slot``; it appears at the sandbox's /var/task."""
        self._mount(str(source), str(slot), MS_BIND)

    def detach(self, path: Path) -> None:
        """Lazily unmount everything stacked on ``path``."""
        while self._libc.umount2(str(path).encode(), MNT_DETACH) == 0:
            pass

    def release_slot(self, slot: Path) -> None:
        self.detach(slot)
        _remove_slot(slot)

    def sweep(self) -> None:
        """Detach every mount under ``root`` (left by a previous run, or at shutdown)."""
        prefix = str(self.root) + "/"
        with open("/proc/self/mountinfo") as info:
            points = [line.split()[4] for line in info]
        for point in sorted({p for p in points if p.startswith(prefix)}, reverse=True):
            self.detach(Path(point))
        self._sources.clear()
        for slot in (self.root / "slots").glob("*"):
            _remove_slot(slot)


def _remove_slot(slot: Path) -> None:
    """Remove an unmounted slot and its placeholder lib/ (quietly if still in use)."""
    with contextlib.suppress(OSError):
        (slot / "lib").rmdir()
        slot.rmdir()
