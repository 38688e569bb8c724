"""Invocations counted per function version and outcome, for the metrics endpoint.

Counters are cumulative from server start (Prometheus counters): a reader that wants
"what happened during X" takes two snapshots and subtracts. ``record`` is called on the
invoke path, so it is a lock and a dict increment; snapshots are taken from another
thread (the metrics endpoint renders off the event loop), hence the lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Tally:
    """Invocations of one function version: how many succeeded, how many failed."""

    success: int = 0
    error: int = 0

    @property
    def invocations(self) -> int:
        return self.success + self.error


class InvocationCounters:
    """Thread-safe counts of finished runs by (function name, executed version)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], list[int]] = {}

    def record(self, function_name: str, version: str, error: bool) -> None:
        """Count one run of ``function_name`` at ``version``; ``error``: it had a FunctionError."""
        with self._lock:
            counts = self._counts.get((function_name, version))
            if counts is None:
                counts = self._counts[(function_name, version)] = [0, 0]
            counts[1 if error else 0] += 1

    def snapshot(self) -> dict[tuple[str, str], Tally]:
        """A copy of every count so far, keyed by (function name, version)."""
        with self._lock:
            return {key: Tally(ok, failed) for key, (ok, failed) in self._counts.items()}
