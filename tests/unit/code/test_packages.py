"""Tests for lambdaplane.code: package validation (inspect_zip) and the CodeStore."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import struct
import tempfile
import threading
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import lambdaplane.code.store as store_mod
from lambdaplane.code import (
    MAX_UNZIPPED_BYTES,
    MAX_ZIPPED_BYTES,
    CodeStore,
    ZipSummary,
    check_zipped_size,
    inspect_zip,
)
from lambdaplane.code.validate import scan
from lambdaplane.errors import (
    InvalidParameterValueException,
    RequestEntityTooLargeException,
    ServiceException,
)

UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
TOO_BIG = "Unzipped size must be smaller than 262144000 bytes"
EMPTY = "Uploaded file must be a non-empty zip"

S_LINK = (stat.S_IFLNK | 0o777) << 16
MiB = 1024 * 1024


# -- archive builders -------------------------------------------------------------------------


def make_zip(
    files: Iterable[tuple[str, bytes] | tuple[str, bytes, int]],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A zip via zipfile; a third tuple item is the unix mode (type bits included)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names, on purpose
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for item in files:
                info = zipfile.ZipInfo(item[0], date_time=(2024, 5, 17, 12, 30, 10))
                info.compress_type = compression
                info.create_system = 3
                mode = item[2] if len(item) == 3 else stat.S_IFREG | 0o644
                info.external_attr = mode << 16
                zf.writestr(info, item[1])
    return buf.getvalue()


def link(name: str, target: str) -> tuple[str, bytes, int]:
    return (name, target.encode(), stat.S_IFLNK | 0o777)


@dataclass
class Raw:
    """A hand-made entry: payload is written as-is, every header field can lie."""

    name: bytes
    payload: bytes
    size: int
    crc: int
    method: int = zipfile.ZIP_STORED
    external_attr: int = (stat.S_IFREG | 0o644) << 16
    flags: int = 0
    local_name: bytes | None = None
    offset: int | None = None  # central directory's header offset, if it should lie


def stored(name: str, data: bytes) -> Raw:
    return Raw(name.encode(), data, len(data), zlib.crc32(data))


def deflated(name: str, data: bytes) -> Raw:
    return Raw(name.encode(), deflate(data), len(data), zlib.crc32(data), zipfile.ZIP_DEFLATED)


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def raw_zip(entries: list[Raw], *, write_locals: list[bool] | None = None) -> bytes:
    """Assemble local headers, central directory and end record by hand."""
    out = bytearray()
    central = bytearray()
    offsets: list[int] = []
    for index, e in enumerate(entries):
        offsets.append(len(out))
        if write_locals is not None and not write_locals[index]:
            continue
        local_name = e.name if e.local_name is None else e.local_name
        out += struct.pack(
            "<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, e.flags, e.method, 0, 0x21,
            e.crc, len(e.payload), e.size, len(local_name), 0,
        )  # fmt: skip
        out += local_name + e.payload
    for e, offset in zip(entries, offsets, strict=True):
        central += struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, e.flags, e.method, 0, 0x21,
            e.crc, len(e.payload), e.size, len(e.name), 0, 0, 0, 0,
            e.external_attr, offset if e.offset is None else e.offset,
        )  # fmt: skip
        central += e.name
    start = len(out)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                       len(central), start, 0)  # fmt: skip
    return bytes(out)


def refused(data: bytes, message: str = UNZIP) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        inspect_zip(data)
    assert caught.value.message == message
    assert caught.value.status == 400


def tree(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


HELLO = make_zip([("index.py", b"def handler(e, c):\n    return e\n")])


# -- malicious and broken archives ------------------------------------------------------------

MALICIOUS: dict[str, bytes] = {
    "dotdot": make_zip([("../evil", b"x")]),
    "absolute": make_zip([("/etc/passwd", b"root::0:0::/:/bin/sh\n")]),
    "inner-dotdot": make_zip([("a/../../b", b"x")]),
    "inner-dotdot-harmless-looking": make_zip([("a/b/../../../c", b"x")]),
    "backslash-dotdot": make_zip([("..\\evil", b"x")]),
    "backslash-inner": make_zip([("a\\..\\..\\b", b"x")]),
    "drive-backslash": make_zip([("C:\\Windows\\x", b"x")]),
    "drive-slash": make_zip([("c:/x", b"x")]),
    "unc": make_zip([("\\\\server\\share\\x", b"x")]),
    "leading-backslash": make_zip([("\\x", b"x")]),
    "nul-in-name": raw_zip([stored("a\x00../../b", b"x")]),
    "symlink-absolute": make_zip([link("shadow", "/etc/shadow")]),
    "symlink-escapes": make_zip([link("up", "../../x")]),
    "symlink-escapes-from-subdir": make_zip([link("a/up", "../../x")]),
    "symlink-backslash-escape": make_zip([link("up", "..\\..\\x")]),
    "symlink-drive": make_zip([link("d", "C:\\x")]),
    "symlink-empty-target": make_zip([link("l", "")]),
    "symlink-chain-escape": make_zip([link("s", "."), link("t", "s/..")]),
    "symlink-loop": make_zip([link("a", "b"), link("b", "a")]),
    "entry-beneath-symlink": make_zip([("sub/f", b"x"), link("d", "sub"), ("d/x", b"x")]),
    "entry-beneath-symlink-first": make_zip([("d/x", b"x"), link("d", "sub")]),
    "symlink-twice": make_zip([link("l", "a"), link("l", "b"), ("a", b""), ("b", b"")]),
    "file-used-as-dir": make_zip([("a", b"x"), ("a/b", b"y")]),
    "dir-then-file": make_zip([("a/b", b"y"), ("a", b"x")]),
    "random-bytes": os.urandom(4096),
    "truncated-tail": HELLO[:-10],
    "truncated-half": HELLO[: len(HELLO) // 2],
    "bad-local-magic": b"XX" + HELLO[2:],
    "encrypted-flag": raw_zip([Raw(b"a", b"x", 1, zlib.crc32(b"x"), flags=0x1)]),
    "bzip2": make_zip([("a", b"x" * 100)], compression=zipfile.ZIP_BZIP2),
    "names-disagree": raw_zip([Raw(b"a.py", b"x", 1, zlib.crc32(b"x"), local_name=b"../a")]),
    "crc-mismatch": raw_zip([Raw(b"a", b"hello", 5, zlib.crc32(b"hellp"))]),
    "stored-sizes-disagree": raw_zip([Raw(b"a", b"hello", 3, zlib.crc32(b"hel"))]),
}


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_or_broken_archives_are_refused(name: str) -> None:
    refused(MALICIOUS[name])


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_refused_archives_write_nothing(name: str, tmp_path: Path) -> None:
    root = tmp_path / "code"
    store = CodeStore(root)
    with pytest.raises(InvalidParameterValueException):
        store.put(MALICIOUS[name])
    assert not root.exists()

    store.put(HELLO)
    before = tree(root)
    with pytest.raises(InvalidParameterValueException):
        store.put(MALICIOUS[name])
    assert tree(root) == before


def test_corrupted_deflate_stream_is_refused() -> None:
    data = bytearray(make_zip([("a.txt", os.urandom(2048))]))
    data[60] ^= 0xFF  # inside the first entry's compressed data
    refused(bytes(data))


def test_empty_input_and_empty_zip_are_refused_like_aws() -> None:
    refused(b"", EMPTY)
    refused(make_zip([]), EMPTY)
    assert len(make_zip([])) == 22


def test_entry_inflating_beyond_declared_size_is_refused() -> None:
    # The stream really holds 1 MiB, the headers claim 10 bytes with a CRC that matches those
    # 10 bytes: zipfile alone would silently hand back a truncated file.
    bomb = Raw(b"bomb", deflate(bytes(MiB)), 10, zlib.crc32(bytes(10)), zipfile.ZIP_DEFLATED)
    data = raw_zip([bomb])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("bomb") == bytes(10)
    refused(data)


def test_entry_inflating_short_of_declared_size_is_refused() -> None:
    short = Raw(b"short", deflate(bytes(10)), 100, zlib.crc32(bytes(10)), zipfile.ZIP_DEFLATED)
    refused(raw_zip([short]))


def test_truncated_deflate_stream_is_refused() -> None:
    payload = deflate(os.urandom(5000))
    cut = Raw(b"cut", payload[:-100], 5000, 0, zipfile.ZIP_DEFLATED)
    refused(raw_zip([cut]))


def test_overlapping_entries_are_refused() -> None:
    # Two central records share one local entry (the core of the overlapping-file zip bomb).
    one = stored("a", b"x" * 100)
    twin = stored("a", b"x" * 100)
    twin.offset = 0
    refused(raw_zip([one, twin], write_locals=[True, False]))


def test_declared_sizes_are_checked_before_decompression() -> None:
    # Each entry lies: 100 MB declared, one byte of data. The total is refused on the
    # declared figures, with the size message rather than the unzip one.
    liars = [Raw(f"f{i}".encode(), b"x", 100_000_000, 0) for i in range(3)]
    refused(raw_zip(liars), TOO_BIG)


def test_many_compressible_entries_over_the_limit() -> None:
    chunk = bytes(10 * MiB)
    payload, crc = deflate(chunk), zlib.crc32(chunk)
    entries = [Raw(f"z{i}".encode(), payload, len(chunk), crc, zipfile.ZIP_DEFLATED)
               for i in range(26)]  # fmt: skip
    data = raw_zip(entries)
    assert len(data) < 1 * MiB
    assert 26 * len(chunk) > MAX_UNZIPPED_BYTES
    refused(data, TOO_BIG)


def test_exactly_the_unzipped_limit_is_accepted() -> None:
    chunk = bytes(10 * MiB)
    payload, crc = deflate(chunk), zlib.crc32(chunk)
    entries = [Raw(f"z{i}".encode(), payload, len(chunk), crc, zipfile.ZIP_DEFLATED)
               for i in range(25)]  # fmt: skip
    assert 25 * len(chunk) == MAX_UNZIPPED_BYTES
    assert inspect_zip(raw_zip(entries)).unzipped_size == MAX_UNZIPPED_BYTES


# -- accepted archives -------------------------------------------------------------------------


def test_summary_matches_lambda_code_sha256_and_size() -> None:
    data = make_zip([("index.py", b"print('hi')\n"), ("lib/", b"", stat.S_IFDIR | 0o755)])
    summary = inspect_zip(data)
    digest = hashlib.sha256(data).digest()
    assert summary == ZipSummary(
        sha256_b64=base64.b64encode(digest).decode(),
        sha256_hex=digest.hex(),
        size=len(data),
        unzipped_size=len(b"print('hi')\n"),
        entries=2,
    )


@pytest.mark.parametrize(
    "files",
    [
        [("lib/libfoo.so.1", b"ELF"), link("lib/libfoo.so", "libfoo.so.1")],
        [("lib/x", b"x"), link("bin/tool", "../lib/x")],
        [link("a/b/up", "../../x")],  # resolves to ./x: still inside
        [link("dangling", "nowhere/at/all")],
        [link("self-dir", "."), ("f", b"x")],
        [("./a/./b", b"x"), ("a//c", b"y")],
        [("dup", b"one"), ("dup", b"two")],
        [("only/", b"", stat.S_IFDIR | 0o755)],
    ],
)
def test_benign_archives_are_accepted(files: list[tuple[str, bytes, int]]) -> None:
    assert inspect_zip(make_zip(files)).entries == len(files)


def test_stored_entries_and_unicode_names_are_accepted() -> None:
    data = make_zip([("caf\u00e9.txt", b"x"), ("a", b"y")], compression=zipfile.ZIP_STORED)
    assert inspect_zip(data).unzipped_size == 2


def test_zipped_size_limit() -> None:
    check_zipped_size(MAX_ZIPPED_BYTES)
    with pytest.raises(RequestEntityTooLargeException) as caught:
        check_zipped_size(MAX_ZIPPED_BYTES + 1)
    assert caught.value.message == "Zipped size must be smaller than 52428800 bytes"
    assert caught.value.status == 413
    assert MAX_UNZIPPED_BYTES == 262_144_000


# -- CodeStore: blobs --------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> CodeStore:
    return CodeStore(tmp_path / "code", fsync=False)


def test_put_writes_blob_content_addressed(store: CodeStore) -> None:
    summary = store.put(HELLO)
    blob = store.root / "blobs" / summary.sha256_hex[:2] / f"{summary.sha256_hex}.zip"
    assert blob.read_bytes() == HELLO
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert store.open_zip(summary.sha256_hex) == blob
    assert store.read(summary.sha256_hex) == HELLO
    assert store.exists(summary.sha256_hex)
    assert store.exists(summary.sha256_hex.upper())
    assert tree(store.root) == sorted(
        ["blobs", f"blobs/{summary.sha256_hex[:2]}", f"blobs/{summary.sha256_hex[:2]}/"
         f"{summary.sha256_hex}.zip"]
    )  # fmt: skip


def test_put_with_fsync(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "code")
    summary = store.put(HELLO)
    assert store.read(summary.sha256_hex) == HELLO
    assert (store.unpacked(summary.sha256_hex) / "index.py").is_file()


def test_put_is_idempotent_and_does_not_rewrite(
    store: CodeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.put(HELLO)
    blob = store.open_zip(first.sha256_hex)
    before = blob.stat()

    def no_writes(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("rewrote an existing blob")

    monkeypatch.setattr(tempfile, "mkstemp", no_writes)
    assert store.put(HELLO) == first
    after = blob.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_put_failure_leaves_no_temp_file(store: CodeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_replace(src: str, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put(HELLO)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_missing_and_invalid_digests(store: CodeStore) -> None:
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(ServiceException):
        store.open_zip(missing)
    with pytest.raises(ServiceException):
        store.read(missing)
    with pytest.raises(ServiceException):
        store.unpacked(missing)
    for bad in ["", "../" + "0" * 61, "g" * 64, "0" * 63]:
        with pytest.raises(ValueError):
            store.exists(bad)
        with pytest.raises(ValueError):
            store.unpacked(bad)


# -- CodeStore: unpacking ----------------------------------------------------------------------


def test_unpack_preserves_modes_and_links(store: CodeStore) -> None:
    data = make_zip(
        [
            ("bootstrap", b"#!/bin/sh\necho hi\n", stat.S_IFREG | 0o755),
            ("world-writable", b"w", stat.S_IFREG | 0o777),
            ("group-writable", b"g", stat.S_IFREG | 0o664),
            ("setuid", b"s", stat.S_IFREG | 0o4755),
            ("private", b"p", stat.S_IFREG | 0o600),
            ("conf/", b"", stat.S_IFDIR | 0o775),
            ("lib/libfoo.so.1", b"ELF", stat.S_IFREG | 0o644),
            link("lib/libfoo.so", "libfoo.so.1"),
            link("bin/foo", "../lib/libfoo.so"),
            ("deep/er/still/file.txt", b"deep"),
        ]
    )
    root = store.unpacked(store.put(data).sha256_hex)

    def mode(rel: str) -> int:
        return stat.S_IMODE((root / rel).lstat().st_mode)

    assert (root / "bootstrap").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert mode("bootstrap") == 0o755
    assert os.access(root / "bootstrap", os.X_OK)
    assert mode("world-writable") == 0o755
    assert mode("group-writable") == 0o644
    assert mode("setuid") == 0o755
    assert mode("private") == 0o600
    assert mode("conf") == 0o755
    assert mode("deep/er") == 0o755
    assert mode(".") == 0o755
    assert os.readlink(root / "lib/libfoo.so") == "libfoo.so.1"
    assert (root / "bin/foo").read_bytes() == b"ELF"
    assert (root / "deep/er/still/file.txt").read_bytes() == b"deep"
    assert (root / "bootstrap").stat().st_mtime == time.mktime((2024, 5, 17, 12, 30, 10, 0, 0, -1))


def test_unpack_defaults_for_archives_without_unix_modes(store: CodeStore) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in [("dir/", b""), ("dir/handler.js", b"x")]:
            info = zipfile.ZipInfo(name)
            info.create_system = 0  # MS-DOS: no unix mode in external_attr
            info.external_attr = 0x10 if name.endswith("/") else 0x20
            zf.writestr(info, body)
    root = store.unpacked(store.put(buf.getvalue()).sha256_hex)
    assert stat.S_IMODE((root / "dir").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "dir/handler.js").stat().st_mode) == 0o644


def test_unpack_duplicate_entries_last_wins(store: CodeStore) -> None:
    root = store.unpacked(store.put(make_zip([("dup", b"one"), ("dup", b"two")])).sha256_hex)
    assert (root / "dup").read_bytes() == b"two"


def test_unpack_happens_once(store: CodeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_extractions(monkeypatch)
    digest = store.put(HELLO).sha256_hex
    first = store.unpacked(digest)
    inode = (first / "index.py").stat().st_ino
    assert store.unpacked(digest) == first
    assert (first / "index.py").stat().st_ino == inode
    assert calls == [1]
    assert first == store.root / "unpacked" / digest
    assert tree(store.root / "unpacked") == [digest, f"{digest}/index.py"]


def test_concurrent_unpack_extracts_once(store: CodeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_extractions(monkeypatch)
    digest = store.put(make_zip([(f"m{i}.py", os.urandom(1000)) for i in range(50)])).sha256_hex
    results: list[Path] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(store.unpacked(digest))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and set(results) == {store.root / "unpacked" / digest}
    assert calls == [1]
    assert len(list(results[0].iterdir())) == 50
    assert [p.name for p in (store.root / "unpacked").iterdir()] == [digest]


def test_separate_stores_racing_on_one_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two instances (think: two processes) share no lock; the rename decides the winner.
    a, b = CodeStore(tmp_path, fsync=False), CodeStore(tmp_path, fsync=False)
    digest = a.put(HELLO).sha256_hex
    real = store_mod._extract
    won: list[Path] = []

    def extract_then_lose(buf: Any, archive: Any, dest: Path, *, fsync: bool) -> None:
        real(buf, archive, dest, fsync=fsync)
        if not won:
            won.append(dest)
            won.append(b.unpacked(digest))  # the other instance finishes first

    monkeypatch.setattr(store_mod, "_extract", extract_then_lose)
    assert a.unpacked(digest) == won[1] == tmp_path / "unpacked" / digest
    assert not won[0].exists()
    assert (tmp_path / "unpacked" / digest / "index.py").is_file()
    assert [p.name for p in (tmp_path / "unpacked").iterdir()] == [digest]


def test_failed_unpack_leaves_nothing_behind(
    store: CodeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = store.put(HELLO).sha256_hex
    real = store_mod._extract

    def crash(buf: Any, archive: Any, dest: Path, *, fsync: bool) -> None:
        real(buf, archive, dest, fsync=fsync)
        raise OSError("crash after writing")

    monkeypatch.setattr(store_mod, "_extract", crash)
    with pytest.raises(OSError, match="crash"):
        store.unpacked(digest)
    assert list((store.root / "unpacked").iterdir()) == []
    monkeypatch.setattr(store_mod, "_extract", real)
    assert (store.unpacked(digest) / "index.py").is_file()


def test_tampered_blob_is_not_unpacked(store: CodeStore) -> None:
    digest = store.put(HELLO).sha256_hex
    blob = store.open_zip(digest)
    blob.chmod(0o644)
    tampered = bytearray(HELLO)
    tampered[40] ^= 0x01  # inside the deflated handler source
    blob.write_bytes(bytes(tampered))
    with pytest.raises(ServiceException):
        store.unpacked(digest)
    assert not (store.root / "unpacked" / digest).exists()


def test_extraction_never_follows_symlinks(tmp_path: Path) -> None:
    # Defense in depth: even if a symlink sat where a directory should be created, the
    # writer refuses to traverse it rather than writing outside the tree.
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "d").symlink_to(outside)
    (dest / "f").symlink_to(outside / "f")
    data = make_zip([("d/x", b"x")])
    with pytest.raises(OSError):
        store_mod._extract(data, scan(data), dest, fsync=False)
    data = make_zip([("f", b"x")])
    with pytest.raises(OSError):
        store_mod._extract(data, scan(data), dest, fsync=False)
    assert list(outside.iterdir()) == []


def test_delete_removes_blob_and_tree(store: CodeStore) -> None:
    digest = store.put(make_zip([("ro/file", b"x", stat.S_IFREG | 0o444)])).sha256_hex
    store.unpacked(digest)
    store.delete(digest)
    assert not store.exists(digest)
    assert list((store.root / "unpacked").iterdir()) == []
    store.delete(digest)  # absent: no error
    CodeStore(store.root / "never-created").delete(digest)
    # Deleting only the tree's blob leaves nothing to re-unpack from.
    with pytest.raises(ServiceException):
        store.unpacked(digest)


def count_extractions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real: Callable[..., None] = store_mod._extract

    def counting(buf: Any, archive: Any, dest: Path, *, fsync: bool) -> None:
        calls[0] += 1
        real(buf, archive, dest, fsync=fsync)

    monkeypatch.setattr(store_mod, "_extract", counting)
    return calls
