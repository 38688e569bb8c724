"""The access keys lambdaplane accepts, kept in ``<data_dir>/credentials.json``.

Contract: :meth:`KeyStore.open` loads the file (creating the directory if needed)
and, when it holds no root key yet, generates one shaped like AWS's (an ``AKIA``
access key id of 20 characters and a 40-character secret) and writes the file with
mode 0600, atomically (temporary file, fsync, rename). ``KeyStore.created`` tells
whether that happened, so the CLI can show the new keys once. Lookups
(:meth:`KeyStore.secret_for`) are a dict access, and the bound method is a
:class:`lambdaplane.auth.sigv4.KeyLookup`.

Besides the installation's own keys (its account's administrators), the file may hold
keys of *foreign* principals: another account's root or one of its users, optionally
in an organization (``lambdaplane keys add``). They authenticate like any key, but what
they may do is decided by resource-based policies (:meth:`KeyStore.identity_for` names
them). A running server sees keys added meanwhile: a lookup of an unknown key id
re-reads the file, at most once a second.

File format::

    {"version": 1,
     "root_access_key_id": "AKIA...",
     "keys": [{"access_key_id": "AKIA...", "secret_access_key": "...",
               "created": "2026-11-26T19:00:00Z"},
              {"access_key_id": "AKIA...", "secret_access_key": "...", "created": "...",
               "account_id": "111122223333", "user": "alice", "org_id": "o-..."}]}
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

__all__ = ["CREDENTIALS_FILE", "AccessKey", "ForeignKey", "Identity", "KeyStore", "KeyStoreError"]

CREDENTIALS_FILE: Final = "credentials.json"
_FORMAT_VERSION: Final = 1
_KEY_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32, as AWS's key ids
_SECRET_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"
DEFAULT_ACCOUNT_ID: Final = "000000000000"
RELOAD_INTERVAL: Final = 1.0  # seconds between re-reads prompted by unknown key ids
_ACCOUNT_ID = re.compile(r"\d{12}")
_USER_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_ORG_ID = re.compile(r"o-[a-z0-9]{10,32}")


class KeyStoreError(Exception):
    """The credentials file cannot be read or is not what lambdaplane wrote."""


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An access key id and its secret (kept out of ``repr``)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class Identity:
    """Who signed a request: the key, its account, and the principal's ARN."""

    access_key_id: str
    account_id: str  # the key's account
    arn: str  # arn:aws:iam::<account>:root, or :user/<name>
    org_id: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    """A key of another account's principal, as the credentials file keeps it."""

    access_key_id: str
    account_id: str
    user: str | None = None
    org_id: str | None = None

    @property
    def arn(self) -> str:
        suffix = f"user/{self.user}" if self.user else "root"
        return f"arn:aws:iam::{self.account_id}:{suffix}"


def new_access_key() -> AccessKey:
    """A fresh random key: ``AKIA`` + 16 base32 characters, and a 40-character secret."""
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return AccessKey(key_id, secret)


class KeyStore:
    """The access keys of one lambdaplane installation, and the foreign keys it knows."""

    def __init__(
        self,
        path: Path,
        keys: dict[str, str],
        root_access_key_id: str,
        *,
        created: bool,
        foreign: dict[str, ForeignKey] | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._secrets = keys
        self._foreign = foreign or {}
        self._root_id = root_access_key_id
        self.created = created
        self.account_id = account_id
        self._clock = clock
        self._reloaded_at = clock()
        self._version = _file_version(path)  # what was read: (inode, mtime) of the file
        self._reload_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        clock: Callable[[], float] = time.monotonic,
    ) -> KeyStore:
        """Load ``<data_dir>/credentials.json``, creating a root key if there is none.

        ``account_id`` is the installation's own account: its keys' identities are in it.
        """
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
                return cls._from_document(path, document, True, account_id, clock)
            if document.get("root_access_key_id"):
                return cls._from_document(path, document, False, account_id, clock)
            root = new_access_key()
            document["root_access_key_id"] = root.access_key_id
            document.setdefault("keys", []).append(_key_entry(root))
            _replace(path, document)
            return cls._from_document(path, document, True, account_id, clock)
        raise KeyStoreError(f"{path}: could not create the credentials file")

    @classmethod
    def _from_document(
        cls,
        path: Path,
        document: dict[str, Any],
        created: bool,
        account_id: str,
        clock: Callable[[], float],
    ) -> KeyStore:
        keys, foreign, root_id = _parse(path, document)
        return cls(
            path,
            keys,
            root_id,
            created=created,
            foreign=foreign,
            account_id=account_id,
            clock=clock,
        )

    @classmethod
    def add_foreign_key(
        cls,
        data_dir: Path,
        account_id: str,
        *,
        user: str | None = None,
        org_id: str | None = None,
    ) -> AccessKey:
        """Create a key for another account's root (or its ``user``) and store it.

        Raises KeyStoreError for a malformed account id, user name or organization id.
        """
        if not _ACCOUNT_ID.fullmatch(account_id):
            raise KeyStoreError(f"the account id must be 12 digits, got {account_id!r}")
        if user is not None and not _USER_NAME.fullmatch(user):
            raise KeyStoreError(f"not an IAM user name: {user!r}")
        if org_id is not None and not _ORG_ID.fullmatch(org_id):
            raise KeyStoreError(f"not an organization id (o-...): {org_id!r}")
        store = cls.open(data_dir)  # the file exists, with its root key, from here on
        key = new_access_key()
        entry: dict[str, str] = {**_key_entry(key), "account_id": account_id}
        if user is not None:
            entry["user"] = user
        if org_id is not None:
            entry["org_id"] = org_id
        with _locked(store.path):
            document = _load(store.path)
            if document is None:
                raise KeyStoreError(f"{store.path}: vanished")
            document.setdefault("keys", []).append(entry)
            _replace(store.path, document)
        return key

    @classmethod
    def remove_foreign_key(cls, data_dir: Path, access_key_id: str) -> ForeignKey:
        """Delete a foreign key; a running server refuses it within RELOAD_INTERVAL.

        Raises KeyStoreError when ``access_key_id`` is not a foreign key of this store
        (the installation's own keys are not removed this way).
        """
        store = cls.open(data_dir)
        with _locked(store.path):
            document = _load(store.path)
            if document is None:
                raise KeyStoreError(f"{store.path}: vanished")
            _, foreign, _ = _parse(store.path, document)
            removed = foreign.get(access_key_id)
            if removed is None:
                raise KeyStoreError(f"no foreign key {access_key_id!r} in {store.path}")
            document["keys"] = [
                e for e in document.get("keys", []) if e.get("access_key_id") != access_key_id
            ]
            _replace(store.path, document)
        return removed

    @property
    def root_key(self) -> AccessKey:
        """The installation's root access key."""
        return AccessKey(self._root_id, self._secrets[self._root_id])

    def secret_for(self, access_key_id: str, /) -> str | None:
        """The secret of ``access_key_id`` (own or foreign), or None if it is unknown.

        An unknown key, or a foreign one (which ``keys remove`` may have revoked), makes
        the file be read again when it changed, at most once per RELOAD_INTERVAL; the
        installation's own keys are a dict lookup.
        """
        secret = self._secrets.get(access_key_id)
        if (secret is None or access_key_id in self._foreign) and self._reload():
            secret = self._secrets.get(access_key_id)
        return secret

    def own_secret_for(self, access_key_id: str, /) -> str | None:
        """The secret of one of the installation's own keys (foreign keys: None)."""
        if access_key_id in self._foreign:
            return None
        return self.secret_for(access_key_id)

    def identity_for(self, access_key_id: str, /) -> Identity | None:
        """Who ``access_key_id`` is: a foreign principal, the installation's account root
        for its own keys, or None for a key this store does not know (or no longer)."""
        if self.secret_for(access_key_id) is None:
            return None
        foreign = self._foreign.get(access_key_id)
        if foreign is None:
            return Identity(access_key_id, self.account_id, f"arn:aws:iam::{self.account_id}:root")
        return Identity(access_key_id, foreign.account_id, foreign.arn, foreign.org_id)

    def foreign_keys(self) -> list[ForeignKey]:
        """The foreign keys, in the order they were added."""
        return list(self._foreign.values())

    def _reload(self) -> bool:
        """Re-read the file if the last read is over RELOAD_INTERVAL old and the file was
        replaced since (writers rename a new file over it); True if it was read."""
        now = self._clock()
        if now - self._reloaded_at < RELOAD_INTERVAL or not self._reload_lock.acquire(False):
            return False
        try:
            self._reloaded_at = now
            version = _file_version(self.path)
            if version is not None and version == self._version:
                return False
            self._version = version
            document = _load(self.path)
            if document is None:
                return False
            keys, foreign, _ = _parse(self.path, document)
        except KeyStoreError:
            return False  # keep serving the keys read before
        finally:
            self._reload_lock.release()
        self._secrets, self._foreign = keys, foreign
        return True

    def __contains__(self, access_key_id: object) -> bool:
        return access_key_id in self._secrets

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r}, keys={len(self._secrets)})"


def _file_version(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _parse(
    path: Path, document: dict[str, Any]
) -> tuple[dict[str, str], dict[str, ForeignKey], str]:
    keys: dict[str, str] = {}
    foreign: dict[str, ForeignKey] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise KeyStoreError(f"{path}: 'keys' must be a list")
    for entry in entries:
        key_id = entry.get("access_key_id") if isinstance(entry, dict) else None
        secret = entry.get("secret_access_key") if isinstance(entry, dict) else None
        if not isinstance(key_id, str) or not isinstance(secret, str) or not key_id:
            raise KeyStoreError(f"{path}: malformed key entry")
        keys[key_id] = secret
        assert isinstance(entry, dict)
        account = entry.get("account_id")
        if account is not None:
            if not isinstance(account, str) or not _ACCOUNT_ID.fullmatch(account):
                raise KeyStoreError(f"{path}: malformed account_id of key {key_id}")
            foreign[key_id] = ForeignKey(key_id, account, entry.get("user"), entry.get("org_id"))
    root_id = document.get("root_access_key_id")
    if not isinstance(root_id, str) or root_id not in keys or root_id in foreign:
        raise KeyStoreError(f"{path}: the root access key is not among the keys")
    return keys, foreign, root_id


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` (writers of the file queue here)."""
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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
