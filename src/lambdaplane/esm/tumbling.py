"""Tumbling windows (``TumblingWindowInSeconds``) for stream sources, as Lambda runs them.

Windows are fixed slices of time (``[k*W, (k+1)*W)``, W the window in seconds) that a
record belongs to by its approximate arrival time. Every invocation of a window carries
the window's bounds and the ``state`` the function returned last time (``{}`` at first),
and the function must answer ``{"state": {...}}``: an answer without a state object is a
failed invocation. A batch never spans two windows. When the window is over (the shard
has moved past it, or it ended and the shard has nothing newer), Lambda invokes once more
with no records and ``isFinalInvokeForWindow: true``; then the state is dropped. A state
over 1 MB ends the window early (``isWindowTerminatedEarly``), and so does the end of the
shard (children start their own windows). Pure, but for the clock the caller passes in.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from lambdaplane.esm.stream_failures import iso_seconds

MAX_STATE_BYTES = 1_048_576  # AWS's limit per shard


def window_start(arrival: float, seconds: int) -> float:
    """The start (epoch seconds) of the window a record that arrived at ``arrival`` is in."""
    return float(math.floor(arrival / seconds) * seconds)


@dataclass
class Window:
    """One shard's open window and the state the function built in it."""

    start: float
    seconds: int
    state: dict[str, Any] = field(default_factory=dict)
    terminate_early: bool = False  # the state grew past 1 MB: the next invoke is final

    @property
    def end(self) -> float:
        return self.start + self.seconds

    def fields(
        self, *, shard_id: str, stream_arn: str, final: bool, early: bool = False
    ) -> dict[str, Any]:
        """The members a window's event carries beside ``Records`` (AWS's order)."""
        return {
            "window": {"start": iso_seconds(self.start), "end": iso_seconds(self.end)},
            "state": self.state,
            "shardId": shard_id,
            "eventSourceARN": stream_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": early,
        }

    def update(self, state: dict[str, Any]) -> None:
        """Keep the state an invocation returned; past 1 MB the window ends early."""
        self.state = state
        size = len(json.dumps(state, separators=(",", ":")).encode())
        self.terminate_early = size > MAX_STATE_BYTES

    def encode(self) -> str:
        """The stored form (beside the shard's checkpoint), so a restart keeps the state."""
        return json.dumps({"start": self.start, "state": self.state}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None, seconds: int) -> Window | None:
        if not text:
            return None
        try:
            stored = json.loads(text)
            window = cls(float(stored["start"]), seconds, dict(stored["state"]))
        except (ValueError, KeyError, TypeError):
            return None
        # A changed TumblingWindowInSeconds: the stored window no longer lines up.
        return window if window.start == window_start(window.start, seconds) else None


def window_payload(encoded: list[bytes], fields: dict[str, Any]) -> bytes:
    """``{"Records": [...], "window": ..., "state": ..., ...}``."""
    rest = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    return b'{"Records":[' + b",".join(encoded) + b"]," + rest[1:]


def response_state(response: bytes) -> dict[str, Any] | None:
    """The ``state`` a window's invocation returned; None when the answer has no state
    object, which fails the invocation (a null state counts as empty)."""
    try:
        body = json.loads(response or b"null")
    except ValueError:
        return None
    if not isinstance(body, dict) or "state" not in body:
        return None
    state = body["state"]
    if state is None:
        return {}
    return state if isinstance(state, dict) else None


def fields_reserve(window: Window, shard_id: str, stream_arn: str) -> int:
    """Bytes the window's members add to a payload (so batches stay within 6 MB)."""
    fields = window.fields(shard_id=shard_id, stream_arn=stream_arn, final=False, early=False)
    return len(json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()) + 1
