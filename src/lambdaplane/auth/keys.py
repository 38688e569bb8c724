"""The access keys lambdaplane accepts, kept in ``<data_dir>/credentials.json``.

Contract: :meth:`KeyStore.open` loads the file (creating the directory if needed)
and, when it holds no root key yet, generates one shaped like AWS's (an ``AKIA``
access key id of 20 characters and a 40-character secret) and writes the file with
mode 0600, atomically (temporary file, fsync, rename). ``KeyStore.created`` tells
whether that happened, so the CLI can show the new keys once. Lookups
(:meth:`KeyStore.secret_for`) are a dict access, and the bound method is a
:class:`lambdaplane.auth.sigv4.KeyLookup`.

File format::

    {"version": 1,
     "root_access_key_id": "AKIA...",
     "keys": [{"access_key_id": "AKIA...", "secret_access_key": "...",
               "created": "2026-11-26T19:00:00Z"}]}
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

__all__ = ["CREDENTIALS_FILE", "AccessKey", "KeyStore", "KeyStoreError"]

CREDENTIALS_FILE: Final = "credentials.json"
_FORMAT_VERSION: Final = 1
_KEY_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32, as AWS's key ids
_SECRET_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"


class KeyStoreError(Exception):
    """The credentials file cannot be read or is not what lambdaplane wrote."""


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An access key id and its secret (kept out of ``repr``)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


def new_access_key() -> AccessKey:
    """A fresh random key: ``AKIA`` + 16 base32 characters, and a 40-character secret."""
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return AccessKey(key_id, secret)


class KeyStore:
    """The access keys of one lambdaplane installation."""

    def __init__(
        self, path: Path, keys: dict[str, str], root_access_key_id: str, *, created: bool
    ) -> None:
        self.path = path
        self._secrets = keys
        self._root_id = root_access_key_id
        self.created = created

    @classmethod
    def open(cls, data_dir: Path) -> KeyStore:
        """Load ``<data_dir>/credentials.json``, creating a root key if there is none."""
        data_dir = Path(data_dir)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = data_dir / CREDENTIALS_FILE
        for _ in range(3):
            document = _load(path)
            if document is None:
                root = new_access_key()
                document = _new_document(root)
                if not _create_exclusive(path, document):
                    continue  # another process created it first: load theirs
                return cls._from_document(path, document, created=True)
            if document.get("root_access_key_id"):
                return cls._from_document(path, document, created=False)
            root = new_access_key()
            document["root_access_key_id"] = root.access_key_id
            document.setdefault("keys", []).append(_key_entry(root))
            _replace(path, document)
            return cls._from_document(path, document, created=True)
        raise KeyStoreError(f"{path}: could not create the credentials file")

    @classmethod
    def _from_document(cls, path: Path, document: dict[str, Any], *, created: bool) -> KeyStore:
        keys: dict[str, str] = {}
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise KeyStoreError(f"{path}: 'keys' must be a list")
        for entry in entries:
            key_id = entry.get("access_key_id") if isinstance(entry, dict) else None
            secret = entry.get("secret_access_key") if isinstance(entry, dict) else None
            if not isinstance(key_id, str) or not isinstance(secret, str) or not key_id:
                raise KeyStoreError(f"{path}: malformed key entry")
            keys[key_id] = secret
        root_id = document.get("root_access_key_id")
        if not isinstance(root_id, str) or root_id not in keys:
            raise KeyStoreError(f"{path}: the root access key is not among the keys")
        return cls(path, keys, root_id, created=created)

    @property
    def root_key(self) -> AccessKey:
        """The installation's root access key."""
        return AccessKey(self._root_id, self._secrets[self._root_id])

    def secret_for(self, access_key_id: str, /) -> str | None:
        """The secret of ``access_key_id``, or None if it is unknown."""
        return self._secrets.get(access_key_id)

    def __contains__(self, access_key_id: object) -> bool:
        return access_key_id in self._secrets

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r}, keys={len(self._secrets)})"


def _key_entry(key: AccessKey) -> dict[str, str]:
    return {
        "access_key_id": key.access_key_id,
        "secret_access_key": key.secret_access_key,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _new_document(root: AccessKey) -> dict[str, Any]:
    return {
        "version": _FORMAT_VERSION,
        "root_access_key_id": root.access_key_id,
        "keys": [_key_entry(root)],
    }


def _load(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyStoreError(f"{path}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise KeyStoreError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise KeyStoreError(f"{path}: expected a JSON object")
    return document


def _write_temp(path: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` to a 0600 temporary file next to ``path``; return its path."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create_exclusive(path: Path, document: dict[str, Any]) -> bool:
    """Atomically create ``path``; False if it already exists."""
    temp = _write_temp(path, document)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    except OSError:
        # No hard links on this filesystem: fall back to a plain atomic rename.
        if path.exists():
            return False
        os.replace(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    _fsync_dir(path.parent)
    return True


def _replace(path: Path, document: dict[str, Any]) -> None:
    """Atomically replace ``path`` with ``document``."""
    temp = _write_temp(path, document)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)
