"""A content-addressed store of function code packages, rooted at ``<data_dir>/code``.

Layout::

    blobs/<hex[:2]>/<hex>.zip     the package exactly as uploaded (read-only, 0o444)
    unpacked/<hex>/               its extracted tree, created on first use

Contract
--------
* ``put`` validates with :func:`inspect_zip` before creating anything, then writes the blob
  atomically (temp file in the same directory, fsync, ``os.replace``). Same bytes, same
  file: a second ``put`` finds the blob and writes nothing.
* ``unpacked`` extracts at most once per hash: into a private temp dir that is renamed into
  place, so no caller (concurrent or after a crash) ever sees a half-written tree. The blob's
  hash is re-verified and the archive re-checked by the same code that admitted it.
* Extraction never follows a symlink: every directory is opened with ``O_NOFOLLOW`` relative
  to its parent's descriptor, files are created with ``O_NOFOLLOW``, and symlinks are made
  last. This is defense in depth; :func:`inspect_zip` already refuses escaping archives.
* Regular files keep their unix permission bits (the executable bit of ``bootstrap``
  matters) minus setuid/setgid/sticky and group/other write; archives without unix modes
  get 0o644 files and 0o755 directories; directories always stay owner-rwx so the tree can
  be deleted.
* ``delete`` removes blob and tree and is a no-op for what is absent.

Instances hold no state beyond a per-hash lock map (to avoid duplicate in-process work);
correctness across threads and processes rests on atomic renames alone.
A missing or corrupt blob is a server-side fault, reported as ``ServiceException``.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from lambdaplane.code.validate import (
    Archive,
    Buffer,
    CorruptArchive,
    Entry,
    ZipSummary,
    inspect_zip,
    iter_entry_data,
    scan,
)
from lambdaplane.errors import LambdaError, ServiceException

_HEX = re.compile(r"[0-9a-f]{64}")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_BLOB_MODE = 0o444
_TREE_ROOT_MODE = 0o755
_IMPLICIT_DIR_MODE = 0o755


class CodeStore:
    """Content-addressed storage of deployment packages and their unpacked trees."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        """Use ``root`` (created lazily); ``fsync=False`` trades durability for speed."""
        self.root = Path(root)
        self._fsync = fsync
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    # -- blobs --------------------------------------------------------------------------

    def put(self, data: bytes) -> ZipSummary:
        """Validate ``data`` and store it under its sha256; idempotent."""
        summary = inspect_zip(data)
        path = self._blob_path(summary.sha256_hex)
        if path.is_file():
            return summary
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{summary.sha256_hex}.", suffix=".tmp", dir=path.parent
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
            os.chmod(tmp_name, _BLOB_MODE)
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        if self._fsync:
            _fsync_dir(path.parent)
            _fsync_dir(path.parent.parent)
        return summary

    def exists(self, sha256_hex: str) -> bool:
        """Whether the blob for ``sha256_hex`` is stored."""
        return self._blob_path(sha256_hex).is_file()

    def open_zip(self, sha256_hex: str) -> Path:
        """Path of the stored zip; ServiceException if it is missing."""
        path = self._blob_path(sha256_hex)
        if not path.is_file():
            raise ServiceException(f"Code package {sha256_hex} is missing from the store.")
        return path

    def read(self, sha256_hex: str) -> bytes:
        """The stored zip's bytes; ServiceException if it is missing."""
        try:
            return self._blob_path(sha256_hex).read_bytes()
        except FileNotFoundError:
            raise ServiceException(
                f"Code package {sha256_hex} is missing from the store."
            ) from None

    # -- unpacked trees -----------------------------------------------------------------

    def unpacked(self, sha256_hex: str) -> Path:
        """Directory holding the extracted package, extracting it on first use."""
        final = self._unpacked_root / _check_hex(sha256_hex)
        if final.is_dir():
            return final
        with self._lock_for(final.name):
            if final.is_dir():
                return final
            blob = self.open_zip(final.name)
            with open(blob, "rb") as handle, _map(handle.fileno()) as buf:
                if hashlib.sha256(buf).hexdigest() != final.name:
                    raise ServiceException(f"Code package {final.name} is corrupt in the store.")
                try:
                    archive = scan(buf)
                except LambdaError as exc:
                    raise ServiceException(
                        f"Code package {final.name} can no longer be unpacked."
                    ) from exc
                self._unpacked_root.mkdir(parents=True, exist_ok=True)
                tmp = Path(
                    tempfile.mkdtemp(
                        prefix=f".{final.name}.", suffix=".tmp", dir=self._unpacked_root
                    )
                )
                try:
                    _extract(buf, archive, tmp, fsync=self._fsync)
                    try:
                        os.rename(tmp, final)
                    except OSError:
                        if not final.is_dir():
                            raise
                        # Another process won the race with an identical tree.
                        shutil.rmtree(tmp)
                except CorruptArchive as exc:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise ServiceException(
                        f"Code package {final.name} is corrupt in the store."
                    ) from exc
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
            if self._fsync:
                _fsync_dir(self._unpacked_root)
        return final

    def delete(self, sha256_hex: str) -> None:
        """Remove the blob and the unpacked tree; safe if either is absent."""
        blob = self._blob_path(sha256_hex)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(blob)
        final = self._unpacked_root / blob.stem
        trash = self._unpacked_root / f".{blob.stem}.{uuid.uuid4().hex}.del"
        try:
            # Rename first so the tree vanishes atomically, then remove it at leisure.
            os.rename(final, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    # -- internals ----------------------------------------------------------------------

    @property
    def _unpacked_root(self) -> Path:
        return self.root / "unpacked"

    def _blob_path(self, sha256_hex: str) -> Path:
        digest = _check_hex(sha256_hex)
        return self.root / "blobs" / digest[:2] / f"{digest}.zip"

    def _lock_for(self, digest: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(digest, threading.Lock())


def _check_hex(sha256_hex: str) -> str:
    """Normalise a hex digest; anything else is a programming error (and a path risk)."""
    digest = sha256_hex.lower()
    if not _HEX.fullmatch(digest):
        raise ValueError(f"not a sha256 hex digest: {sha256_hex!r}")
    return digest


@contextlib.contextmanager
def _map(fd: int) -> Iterator[mmap.mmap]:
    if os.fstat(fd).st_size == 0:
        raise ServiceException("Code package is empty in the store.")
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
        yield mapped


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _DirWalker:
    """Descend into directories by descriptor, creating them, never following symlinks.

    Keeps the descriptors of the current path open, so entries grouped by directory (the
    usual order in a zip) cost one ``open`` per new directory.
    """

    def __init__(self, root_fd: int) -> None:
        self._root_fd = root_fd
        self._stack: list[tuple[str, int]] = []
        self.created: set[tuple[str, ...]] = set()

    def enter(self, parts: tuple[str, ...]) -> int:
        common = 0
        while (
            common < len(self._stack)
            and common < len(parts)
            and self._stack[common][0] == parts[common]
        ):
            common += 1
        while len(self._stack) > common:
            os.close(self._stack.pop()[1])
        fd = self._stack[-1][1] if self._stack else self._root_fd
        for depth in range(common, len(parts)):
            name = parts[depth]
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=fd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            self._stack.append((name, fd))
            self.created.add(parts[: depth + 1])
        return fd

    def close(self) -> None:
        while self._stack:
            os.close(self._stack.pop()[1])


def _extract(buf: Buffer, archive: Archive, dest: Path, *, fsync: bool) -> None:
    """Write the archive's tree under ``dest`` (an empty directory we own)."""
    last_file = {e.parts: i for i, e in enumerate(archive.entries) if e.kind == "file"}
    dir_modes: dict[tuple[str, ...], int] = {}
    root_fd = os.open(dest, _DIR_FLAGS)
    walker = _DirWalker(root_fd)
    try:
        for index, entry in enumerate(archive.entries):
            if entry.kind == "dir":
                walker.enter(entry.parts)
                if entry.parts:
                    dir_modes[entry.parts] = entry.mode
            elif entry.kind == "file" and last_file[entry.parts] == index:
                _write_file(buf, entry, walker.enter(entry.parts[:-1]), fsync=fsync)
        for entry in archive.entries:
            if entry.kind == "symlink" and entry.target is not None:
                parent = walker.enter(entry.parts[:-1])
                os.symlink(entry.target, entry.parts[-1], dir_fd=parent)
        walker.close()
        # Directory modes last (deepest first), so restrictive ones never block extraction.
        for parts in sorted(walker.created, key=len, reverse=True):
            fd = _open_dir(root_fd, parts)
            try:
                os.fchmod(fd, dir_modes.get(parts, _IMPLICIT_DIR_MODE))
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        os.fchmod(root_fd, _TREE_ROOT_MODE)
        if fsync:
            os.fsync(root_fd)
    finally:
        walker.close()
        os.close(root_fd)


def _open_dir(root_fd: int, parts: tuple[str, ...]) -> int:
    """Open ``parts`` below ``root_fd`` without following symlinks (a new descriptor)."""
    fd = os.dup(root_fd)
    try:
        for name in parts:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_file(buf: Buffer, entry: Entry, parent_fd: int, *, fsync: bool) -> None:
    fd = os.open(entry.parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent_fd)
    try:
        for chunk in iter_entry_data(buf, entry):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.fchmod(fd, entry.mode)
        if entry.mtime is not None:
            with contextlib.suppress(OSError, OverflowError, ValueError):
                os.utime(fd, (entry.mtime, entry.mtime))
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["CodeStore"]
