"""A function's ``/opt``: its layers' unpacked trees laid over one another, in order.

Layout: ``<root>/<digest>/``, where ``digest`` is the sha256 of the ordered layer code
hashes, so each ordered list of layers is merged once and shared by every function
(and version) that uses it.

Contract
--------
* ``merged(hashes)`` is the directory to mount at ``/opt``: None for no layers, a layer's
  own unpacked tree for one, else a merged tree built on first use.
* Merging follows extraction order on AWS: a later layer's entry replaces an earlier
  layer's at the same path (a file or link replaces anything; a directory merges into a
  directory and replaces a file or link). Symlinks are recreated, never followed.
* A merge happens in a private temp directory renamed into place, so nobody (concurrent
  or after a crash) sees a half-built tree; losing a rename race leaves the winner's
  identical tree.
* Files are hard links to the unpacked trees' files (which are never written again), or
  copies where a link is impossible. Nothing here deletes a merged tree: a layer version
  deleted through the API stays usable by the functions that reference it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

_TREE_ROOT_MODE = 0o755


class LayerTrees:
    """Merged ``/opt`` trees under ``root``; ``unpacked`` gives a layer's own tree."""

    def __init__(self, root: Path, unpacked: Callable[[str], Path]) -> None:
        self.root = Path(root)
        self._unpacked = unpacked
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def merged(self, hashes: Sequence[str]) -> Path | None:
        """The /opt directory for layers with these code hashes (hex), in order."""
        if not hashes:
            return None
        if len(hashes) == 1:
            return self._unpacked(hashes[0])
        digest = hashlib.sha256(",".join(h.lower() for h in hashes).encode()).hexdigest()
        final = self.root / digest
        if final.is_dir():
            return final
        with self._lock_for(digest):
            if final.is_dir():
                return final
            sources = [self._unpacked(h) for h in hashes]
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{digest}.", suffix=".tmp", dir=self.root))
            try:
                for source in sources:
                    overlay(source, tmp)
                os.chmod(tmp, _TREE_ROOT_MODE)
                try:
                    os.rename(tmp, final)
                except OSError:
                    if not final.is_dir():
                        raise
                    shutil.rmtree(tmp)  # Another process won the race with the same tree.
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    def _lock_for(self, digest: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(digest, threading.Lock())


def overlay(source: Path, dest: Path) -> None:
    """Lay the tree at ``source`` over the directory ``dest`` (later wins, see module doc)."""
    stack: list[tuple[str, str]] = [(str(source), str(dest))]
    while stack:
        src_dir, dest_dir = stack.pop()
        with os.scandir(src_dir) as entries:
            for entry in entries:
                target = os.path.join(dest_dir, entry.name)
                if entry.is_symlink():
                    _remove(target)
                    os.symlink(os.readlink(entry.path), target)
                elif entry.is_dir(follow_symlinks=False):
                    if not _is_real_dir(target):
                        _remove(target)
                        os.mkdir(target, 0o700)
                    # The layer's mode, keeping owner rwx so later layers can write here.
                    mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
                    os.chmod(target, mode | 0o700)
                    stack.append((entry.path, target))
                else:
                    _remove(target)
                    try:
                        os.link(entry.path, target, follow_symlinks=False)
                    except OSError:
                        shutil.copy2(entry.path, target, follow_symlinks=False)


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _remove(path: str) -> None:
    """Remove whatever is at ``path`` (a directory with its contents); nothing if absent."""
    if _is_real_dir(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


__all__ = ["LayerTrees", "overlay"]
