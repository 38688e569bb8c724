"""Validation of Lambda deployment packages (zip archives) before anything is written.

Contract
--------
``inspect_zip(data)`` is pure: it reads the archive from memory, never touches the disk, and
either returns a :class:`ZipSummary` or raises the error AWS Lambda answers for that archive:

* not a zip, truncated, bad CRC, unsupported compression or encryption, entries whose data
  overlap, central and local headers that disagree, or an entry whose data inflates to more
  (or less) than its declared size: ``InvalidParameterValueException`` "Could not unzip
  uploaded file. ...";
* an entry that would land outside the extraction root (absolute path, drive letter, UNC
  path, a ``..`` component with either slash, a NUL in the name), a symlink whose target is
  absolute or resolves outside the tree (or loops), an entry placed beneath a symlink, or
  entries whose paths conflict (a file used as a directory, a symlink given twice): the
  same message, which is what AWS says for archives it refuses to extract. Only STORED and
  DEFLATED entries are accepted. Backslashes count as separators (as unzip treats them);
  duplicate file entries are allowed and the last one wins;
* a zip with no entries at all (or zero bytes): "Uploaded file must be a non-empty zip";
* declared uncompressed total above :data:`MAX_UNZIPPED_BYTES`: "Unzipped size must be
  smaller than 262144000 bytes".

The zipped-size limit (:data:`MAX_ZIPPED_BYTES`, :func:`check_zipped_size`) applies to
inline ``ZipFile`` uploads only, so callers check it where it applies; ``inspect_zip`` does not.

Rationale
---------
The archive is checked completely, including a streaming decompression of every entry with
a hard cap at its declared size, so that a stored package is known to extract cleanly and
to exactly the size we accounted for. Declared sizes are summed first, which bounds the work
a hostile archive can cause to ``MAX_UNZIPPED_BYTES`` of inflation. We decompress with zlib
directly rather than through ``zipfile.ZipExtFile``, which silently truncates an entry at its
declared size instead of reporting that it inflates further. Symlinks are resolved virtually
against the other symlinks of the archive, because a lexical check alone misses chains such
as ``s -> .`` plus ``t -> s/..``; entries beneath a symlink are refused for the same reason.
Mode bits are taken from ``external_attr >> 16`` whatever the creating system says.

:func:`scan` and :func:`iter_entry_data` are shared with the store's extractor, so the rules
that admit an archive are the same code that later unpacks it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import mmap
import re
import stat
import struct
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Literal, cast

from lambdaplane.errors import InvalidParameterValueException, RequestEntityTooLargeException

MAX_ZIPPED_BYTES = 52_428_800
"""Largest inline ``ZipFile`` upload AWS accepts (50 MiB)."""

MAX_UNZIPPED_BYTES = 262_144_000
"""Largest total uncompressed size of a package (250 MiB)."""

UNZIP_ERROR = "Could not unzip uploaded file. Please check your file, then try to upload again."
EMPTY_ZIP_ERROR = "Uploaded file must be a non-empty zip"
UNZIPPED_SIZE_ERROR = f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"
ZIPPED_SIZE_ERROR = f"Zipped size must be smaller than {MAX_ZIPPED_BYTES} bytes"

Buffer = bytes | mmap.mmap
"""What the scanner reads from: the upload itself, or a stored blob mapped into memory."""

EntryKind = Literal["file", "dir", "symlink"]

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_MAGIC = b"PK\x03\x04"
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_DRIVE = re.compile(r"[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")
_MAX_COMPONENT_BYTES = 255
_MAX_PATH_BYTES = 4000
_MAX_LINK_BYTES = 4095
_MAX_LINK_HOPS = 256
_MAX_RESOLVE_STEPS = 1_000_000
_IN_CHUNK = 1 << 16
_OUT_CHUNK = 1 << 18
_EXTENDED_TIMESTAMP = 0x5455

# Everything zipfile (and the struct/zlib calls below) may raise on a malformed archive.
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    ValueError,  # includes UnicodeDecodeError for bad UTF-8 names
    KeyError,
    IndexError,
    OverflowError,
    struct.error,
    zlib.error,
)


class CorruptArchive(Exception):
    """Internal: the archive cannot be extracted safely (mapped to the "Could not unzip" error)."""


@dataclass(frozen=True, slots=True)
class ZipSummary:
    """What Lambda reports about a package: ``CodeSha256`` (base64) and ``CodeSize``."""

    sha256_b64: str
    sha256_hex: str
    size: int
    unzipped_size: int
    entries: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive member, checked and normalised for extraction."""

    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    """Normalised path components below the extraction root (empty only for a root dir)."""
    kind: EntryKind
    mode: int
    """Permission bits to apply: setuid/setgid/sticky and group/other write removed."""
    data_offset: int
    target: str | None
    """Symlink target with ``/`` separators; None unless ``kind == "symlink"``."""
    mtime: float | None


@dataclass(frozen=True, slots=True)
class Archive:
    """The checked structure of an archive (data not yet verified unless stated)."""

    entries: tuple[Entry, ...]
    unzipped_size: int


def unzip_error() -> InvalidParameterValueException:
    """The error AWS answers for an archive it cannot (or will not) extract."""
    return InvalidParameterValueException(UNZIP_ERROR)


def check_zipped_size(n: int) -> None:
    """Raise RequestEntityTooLargeException if an inline upload of ``n`` bytes is too big."""
    if n > MAX_ZIPPED_BYTES:
        raise RequestEntityTooLargeException(ZIPPED_SIZE_ERROR)


def inspect_zip(data: bytes) -> ZipSummary:
    """Validate a deployment package completely, without writing anything; summarise it."""
    archive = scan(data)
    try:
        for entry in archive.entries:
            for _chunk in iter_entry_data(data, entry):
                pass
    except CorruptArchive:
        raise unzip_error() from None
    except _ZIP_ERRORS:
        raise unzip_error() from None
    digest = hashlib.sha256(data).digest()
    return ZipSummary(
        sha256_b64=base64.b64encode(digest).decode("ascii"),
        sha256_hex=digest.hex(),
        size=len(data),
        unzipped_size=archive.unzipped_size,
        entries=len(archive.entries),
    )


def scan(buf: Buffer) -> Archive:
    """Check an archive's structure, sizes, paths and symlinks; raise the AWS error if refused.

    Entry data is not decompressed here, except symlink targets; use :func:`iter_entry_data`.
    """
    if len(buf) == 0:
        raise InvalidParameterValueException(EMPTY_ZIP_ERROR)
    try:
        stream = io.BytesIO(buf) if isinstance(buf, bytes) else cast(IO[bytes], buf)
        with zipfile.ZipFile(stream) as zf:
            infos = list(zf.infolist())
            central_dir = zf.start_dir
    except _ZIP_ERRORS:
        raise unzip_error() from None
    if not infos:
        raise InvalidParameterValueException(EMPTY_ZIP_ERROR)
    declared = sum(info.file_size for info in infos)
    if declared > MAX_UNZIPPED_BYTES:
        raise InvalidParameterValueException(UNZIPPED_SIZE_ERROR)
    try:
        return Archive(_check_entries(buf, infos, central_dir), declared)
    except CorruptArchive:
        raise unzip_error() from None
    except _ZIP_ERRORS:
        raise unzip_error() from None


def iter_entry_data(buf: Buffer, entry: Entry) -> Iterator[bytes]:
    """Yield an entry's uncompressed data, raising CorruptArchive on any mismatch.

    Output is capped at the declared size; the CRC and exact length are checked once the
    stream is exhausted, so consume it to the end.
    """
    info = entry.info
    start, size, expected = entry.data_offset, info.compress_size, info.file_size
    end = start + size
    crc = 0
    produced = 0
    if info.compress_type == zipfile.ZIP_STORED:
        if size != expected:
            raise CorruptArchive("stored entry with differing sizes")
        for pos in range(start, end, _IN_CHUNK):
            chunk = bytes(buf[pos : min(pos + _IN_CHUNK, end)])
            crc = zlib.crc32(chunk, crc)
            produced += len(chunk)
            yield chunk
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        pos = start
        while not inflater.eof:
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            elif pos < end:
                data = bytes(buf[pos : min(pos + _IN_CHUNK, end)])
                pos += len(data)
            else:
                break
            out = inflater.decompress(data, _OUT_CHUNK)
            if not out and inflater.unconsumed_tail == data:
                raise CorruptArchive("inflate made no progress")
            produced += len(out)
            if produced > expected:
                raise CorruptArchive("entry inflates beyond its declared size")
            if out:
                crc = zlib.crc32(out, crc)
                yield out
        if not inflater.eof:
            out = inflater.flush()
            produced += len(out)
            if produced > expected or not inflater.eof:
                raise CorruptArchive("truncated or oversized deflate stream")
            if out:
                crc = zlib.crc32(out, crc)
                yield out
    if produced != expected or crc != info.CRC:
        raise CorruptArchive("size or CRC mismatch")


def _check_entries(
    buf: Buffer, infos: list[zipfile.ZipInfo], central_dir: int
) -> tuple[Entry, ...]:
    spans: list[tuple[int, int]] = []
    kinds: dict[tuple[str, ...], EntryKind] = {}
    staged: list[tuple[zipfile.ZipInfo, tuple[str, ...], EntryKind, int, int]] = []
    for info in infos:
        parts = split_name(info.orig_filename)
        kind, mode = _kind_and_mode(info)
        if not parts and kind != "dir":
            raise CorruptArchive("entry without a name")
        data_offset = _data_offset(buf, info)
        spans.append((info.header_offset, data_offset + info.compress_size))
        _claim(kinds, parts, kind)
        staged.append((info, parts, kind, mode, data_offset))
    _check_spans(spans, min(central_dir, len(buf)))

    entries: list[Entry] = []
    for info, parts, kind, mode, data_offset in staged:
        entry = Entry(info, parts, kind, mode, data_offset, None, _mtime(info))
        if kind == "symlink":
            target = _link_target(buf, entry)
            entry = Entry(info, parts, kind, mode, data_offset, target, None)
        entries.append(entry)
    links = {e.parts: e.target for e in entries if e.target is not None}
    budget = [_MAX_RESOLVE_STEPS]
    for link_parts, target in links.items():
        if not _stays_inside(link_parts[:-1], target, links, budget):
            raise CorruptArchive("symlink escapes the package")
    return tuple(entries)


def split_name(name: str) -> tuple[str, ...]:
    """Split an archive member name into safe path components, or raise CorruptArchive."""
    if not name or "\x00" in name:
        raise CorruptArchive("empty name or NUL in name")
    if name[0] in "/\\" or _DRIVE.match(name):
        raise CorruptArchive("absolute path")
    parts: list[str] = []
    for component in _SEPARATORS.split(name):
        if component in ("", "."):
            continue
        if component == "..":
            raise CorruptArchive("path traversal")
        if len(component.encode("utf-8", "surrogateescape")) > _MAX_COMPONENT_BYTES:
            raise CorruptArchive("path component too long")
        parts.append(component)
    if len("/".join(parts).encode("utf-8", "surrogateescape")) > _MAX_PATH_BYTES:
        raise CorruptArchive("path too long")
    return tuple(parts)


def _kind_and_mode(info: zipfile.ZipInfo) -> tuple[EntryKind, int]:
    unix = info.external_attr >> 16
    perm = stat.S_IMODE(unix) & 0o777 & ~0o022
    name = info.orig_filename
    if stat.S_ISLNK(unix):
        if name.endswith(("/", "\\")):
            raise CorruptArchive("symlink named like a directory")
        return "symlink", 0o777
    if name.endswith(("/", "\\")) or stat.S_ISDIR(unix):
        return "dir", (perm | 0o700) if unix else 0o755
    return "file", perm if unix else 0o644


def _data_offset(buf: Buffer, info: zipfile.ZipInfo) -> int:
    if info.flag_bits & _FLAG_ENCRYPTED:
        raise CorruptArchive("encrypted entry")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CorruptArchive("unsupported compression method")
    offset = info.header_offset
    if offset < 0 or offset + _LOCAL_HEADER.size > len(buf):
        raise CorruptArchive("local header out of range")
    fields = _LOCAL_HEADER.unpack(buf[offset : offset + _LOCAL_HEADER.size])
    magic, flags, method = fields[0], int(fields[3]), int(fields[4])
    name_len, extra_len = int(fields[10]), int(fields[11])
    if magic != _LOCAL_MAGIC or method != info.compress_type or flags & _FLAG_ENCRYPTED:
        raise CorruptArchive("bad local header")
    name_start = offset + _LOCAL_HEADER.size
    raw_name = bytes(buf[name_start : name_start + name_len])
    local_name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
    if local_name != info.orig_filename:
        raise CorruptArchive("local and central names differ")
    data_offset = name_start + name_len + extra_len
    if data_offset + info.compress_size > len(buf):
        raise CorruptArchive("entry data out of range")
    return data_offset


def _check_spans(spans: list[tuple[int, int]], limit: int) -> None:
    """Entries must not share bytes (the overlapping-entries zip bomb) nor run into the CD."""
    spans.sort()
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        if end > next_start:
            raise CorruptArchive("overlapping entries")
    if spans and spans[-1][1] > limit:
        raise CorruptArchive("entry overlaps the central directory")


def _claim(
    kinds: dict[tuple[str, ...], EntryKind], parts: tuple[str, ...], kind: EntryKind
) -> None:
    """Record a path; refuse paths beneath files or symlinks and conflicting duplicates."""
    for depth in range(1, len(parts)):
        prefix = parts[:depth]
        seen = kinds.setdefault(prefix, "dir")
        if seen != "dir":
            raise CorruptArchive("entry beneath a file or symlink")
    if not parts:
        return
    seen_kind = kinds.get(parts)
    if seen_kind is None:
        kinds[parts] = kind
    elif not (seen_kind == kind and kind in ("dir", "file")):
        # Same-kind duplicates of files (last one wins) and directories are harmless.
        raise CorruptArchive("conflicting entries")


def _link_target(buf: Buffer, entry: Entry) -> str:
    if entry.info.file_size > _MAX_LINK_BYTES:
        raise CorruptArchive("symlink target too long")
    raw = b"".join(iter_entry_data(buf, entry))
    target = raw.decode("utf-8", "surrogateescape")
    if not target or "\x00" in target:
        raise CorruptArchive("empty symlink target or NUL in target")
    if target[0] in "/\\" or _DRIVE.match(target):
        raise CorruptArchive("absolute symlink target")
    return target.replace("\\", "/")


def _stays_inside(
    start: tuple[str, ...],
    target: str,
    links: dict[tuple[str, ...], str],
    budget: list[int],
) -> bool:
    """Resolve ``target`` from directory ``start`` through the archive's own symlinks."""
    current = list(start)
    pending = deque(target.split("/"))
    hops = 0
    while pending:
        budget[0] -= 1
        if budget[0] < 0:
            raise CorruptArchive("symlink resolution too expensive")
        component = pending.popleft()
        if component in ("", "."):
            continue
        if component == "..":
            if not current:
                return False
            current.pop()
            continue
        nested = links.get((*current, component))
        if nested is None:
            current.append(component)
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS:
            return False
        # The nested link's target is relative to its own directory, i.e. ``current``.
        pending.extendleft(reversed(nested.split("/")))
    return True


def _mtime(info: zipfile.ZipInfo) -> float | None:
    """Modification time: the UTC "UT" extra field if present, else the DOS local time."""
    extra = info.extra
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == _EXTENDED_TIMESTAMP and len(body) >= 5 and body[0] & 1:
            return float(struct.unpack_from("<i", body, 1)[0])
        pos += 4 + length
    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


__all__ = [
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIPPED_BYTES",
    "Archive",
    "Buffer",
    "CorruptArchive",
    "Entry",
    "ZipSummary",
    "check_zipped_size",
    "inspect_zip",
    "iter_entry_data",
    "scan",
    "split_name",
    "unzip_error",
]
