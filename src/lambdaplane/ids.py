"""Identifiers that need to be unique, not secret: request ids on the hot path.

``uuid.uuid4()`` reads the kernel's CSPRNG on every call (a syscall, ~1.5 us); request
ids only need to be unique and well-formed, so they come from a PRNG seeded from it.
"""

from __future__ import annotations

import random

_random = random.Random()  # Seeded from os.urandom at import.


def request_id() -> str:
    """A random UUID version 4 string, as AWS uses for request ids."""
    value = (_random.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC << 60) | (
        0x8 << 60
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def random_bits(k: int) -> int:
    """``k`` random bits (trace and span ids: unique, not secret)."""
    return _random.getrandbits(k)
