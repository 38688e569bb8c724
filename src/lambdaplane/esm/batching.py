"""Batching decisions and batch responses, pure and shared by every poller.

A batch is invoked when the first of three things happens (AWS's rule): it holds
``BatchSize`` records, its batching window (``MaximumBatchingWindowInSeconds``, from
its first record) ends, or one more record would take the payload past 6 MB.
``Batch`` tracks one batch against those limits; the caller owns the clock.

``failed_items`` reads a ``ReportBatchItemFailures`` response as Lambda does.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from lambdaplane.esm.model import MAX_BATCH_PAYLOAD_BYTES

# {"Records":[ ... ]}: the envelope's bytes, and one comma per record after the first.
_ENVELOPE_BYTES = len(b'{"Records":[]}')


def record_bytes(record: Any) -> bytes:
    """A record as it will appear in the payload (compact JSON)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def payload(records: list[bytes]) -> bytes:
    """The ``{"Records": [...]}`` payload of encoded records."""
    return b'{"Records":[' + b",".join(records) + b"]}"


@dataclass
class Batch:
    """Records gathered for one invocation. ``started`` is when the first one arrived."""

    size: int
    window: float
    max_bytes: int = MAX_BATCH_PAYLOAD_BYTES
    started: float | None = None
    items: list[Any] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)
    _bytes: int = _ENVELOPE_BYTES

    def __len__(self) -> int:
        return len(self.items)

    @property
    def payload_bytes(self) -> int:
        return self._bytes

    def fits(self, encoded: bytes) -> bool:
        """Whether one more record of this encoding keeps the payload within the limit.
        An empty batch takes any record (one that alone passes 6 MB is the caller's)."""
        extra = len(encoded) + (1 if self.items else 0)
        return not self.items or self._bytes + extra <= self.max_bytes

    def add(self, item: Any, encoded: bytes, now: float) -> None:
        if self.started is None:
            self.started = now
        self._bytes += len(encoded) + (1 if self.items else 0)
        self.items.append(item)
        self.encoded.append(encoded)

    def replace(self, index: int, item: Any, encoded: bytes) -> None:
        """Put ``item`` in the place of the one at ``index`` (the same record, received again)."""
        self._bytes += len(encoded) - len(self.encoded[index])
        self.items[index] = item
        self.encoded[index] = encoded

    @property
    def full(self) -> bool:
        return len(self.items) >= self.size

    def remaining(self, now: float) -> float:
        """Seconds left in the window; the whole window while empty."""
        if self.started is None:
            return self.window
        return max(0.0, self.started + self.window - now)

    def due(self, now: float) -> bool:
        """Non-empty, and full or at the end of its window."""
        return bool(self.items) and (self.full or self.remaining(now) <= 0)

    def payload(self) -> bytes:
        return payload(self.encoded)


def failed_items(response: bytes, identifiers: Collection[str]) -> set[str] | None:
    """The item identifiers a ``ReportBatchItemFailures`` response names, or None when the
    response fails the whole batch.

    Success for every item: an empty or null response, ``{}``, an empty string, and a
    null or empty ``batchItemFailures``. The whole batch fails on a response that is not
    JSON, a ``batchItemFailures`` that is not a list, and an entry whose
    ``itemIdentifier`` is missing, null, empty, or not an item of the batch.
    """
    text = response.strip()
    if not text:
        return set()
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if body is None or body == "" or not isinstance(body, dict):
        return set() if body in (None, "") else None
    entries = body.get("batchItemFailures")
    if entries is None:
        return set()
    if not isinstance(entries, list):
        return None
    failed: set[str] = set()
    for entry in entries:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or not identifier or identifier not in identifiers:
            return None
        failed.add(identifier)
    return failed
