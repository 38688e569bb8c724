"""Java (``java.util.regex``) patterns from the service model, run with Python's ``re``.

Contract: ``compile_java(pattern)`` returns a compiled Python pattern whose
``fullmatch`` accepts the same strings as Java's ``Pattern.matches`` (Coral checks a
``@pattern`` trait against the whole value), or ``None`` if the pattern uses a Java
feature this translator does not handle (the caller then skips the check rather than
fail the request). Results are cached per pattern string.

Translated differences:

- ``\\p{L}``, ``\\p{Lu}``, ``\\p{N}``, ``\\p{Z}``… (Unicode general categories) and the
  POSIX classes ``\\p{Alpha}``, ``\\p{Digit}``… become explicit ranges (Python's ``re``
  has no ``\\p``); ``\\P{..}`` outside a class becomes a negated class.
- ``.`` outside a class excludes all of Java's line terminators
  (``\\n \\r \\u0085 \\u2028 \\u2029``), not only ``\\n``.
- ``\\d \\w \\s \\b`` are ASCII-only in Java: compiled with ``re.ASCII``.
- ``\\Q…\\E`` quoting, ``\\z``, ``\\Z`` and ``\\h`` are rewritten.
- Character-class union/intersection (``[a[b]]``, ``[a&&b]``) is not supported.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import warnings

_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"
_HSPACE = "\\t \\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"

_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1f\\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r",
}


class UnsupportedPattern(ValueError):
    """A Java regex construct with no translation here."""


@functools.cache
def _category_ranges() -> dict[str, list[tuple[int, int]]]:
    """Unicode general category -> sorted code point ranges (one pass, ~50 ms, once)."""
    table: dict[str, list[tuple[int, int]]] = {}
    category = unicodedata.category

    def scan(start: int, stop: int) -> None:
        run_cat = category(chr(start))
        run_start = start
        for cp in range(start + 1, stop):
            cat = category(chr(cp))
            if cat != run_cat:
                table.setdefault(run_cat, []).append((run_start, cp - 1))
                run_cat, run_start = cat, cp
        table.setdefault(run_cat, []).append((run_start, stop - 1))

    # Planes 0-3 and 14 hold every assigned code point; 4-13 are unassigned and
    # 15-16 are private use (minus each plane's last two non-characters).
    scan(0, 0x40000)
    scan(0xE0000, 0xF0000)
    table.setdefault("Cn", []).append((0x40000, 0xDFFFF))
    for plane in (0xF0000, 0x100000):
        table.setdefault("Co", []).append((plane, plane + 0xFFFD))
        table.setdefault("Cn", []).append((plane + 0xFFFE, plane + 0xFFFF))
    for ranges in table.values():
        ranges.sort()
    return table


def _escape_cp(cp: int) -> str:
    return f"\\U{cp:08x}" if cp > 0xFFFF else f"\\u{cp:04x}"


@functools.cache
def _property_body(name: str) -> str:
    """The inside of a character class matching ``\\p{name}``."""
    if name in _POSIX:
        return _POSIX[name]
    if name.startswith("Is") and len(name) <= 4:
        name = name[2:]
    table = _category_ranges()
    if len(name) == 1:
        cats = [c for c in table if c[0] == name]
    elif len(name) == 2:
        cats = [name] if name in table else []
    else:
        cats = []
    if not cats:
        raise UnsupportedPattern(f"\\p{{{name}}}")
    ranges = sorted(r for c in cats for r in table[c])
    merged: list[list[int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return "".join(
        _escape_cp(s) if s == e else f"{_escape_cp(s)}-{_escape_cp(e)}" for s, e in merged
    )


def translate(pattern: str) -> str:
    """Java regex source -> equivalent Python regex source (raises UnsupportedPattern)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise UnsupportedPattern("trailing backslash")
            d = pattern[i + 1]
            if d in "pP":
                if i + 2 < n and pattern[i + 2] == "{":
                    end = pattern.find("}", i + 3)
                    if end < 0:
                        raise UnsupportedPattern("unterminated \\p{")
                    name, i = pattern[i + 3 : end], end + 1
                elif i + 2 < n:
                    name, i = pattern[i + 2], i + 3
                else:
                    raise UnsupportedPattern("dangling \\p")
                body = _property_body(name)
                if d == "P":
                    if in_class:
                        raise UnsupportedPattern("\\P inside a class")
                    out.append(f"[^{body}]")
                else:
                    out.append(body if in_class else f"[{body}]")
                continue
            if d == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 : end if end >= 0 else n]
                out.append("".join("\\" + ch if not ch.isalnum() else ch for ch in literal))
                i = end + 2 if end >= 0 else n
                continue
            if d == "z":
                out.append("\\Z")
            elif d == "Z":
                out.append("(?=(?:\\r\\n|[\\n\\r\\u0085\\u2028\\u2029])?\\Z)")
            elif d == "h":
                out.append(_HSPACE if in_class else f"[{_HSPACE}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" or (c == "&" and pattern.startswith("&&", i)):
                raise UnsupportedPattern("class union/intersection")
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("\\]")
                i += 1
            continue
        out.append(_DOT if c == "." else c)
        i += 1
    if in_class:
        raise UnsupportedPattern("unterminated class")
    return "".join(out)


@functools.cache
def compile_java(pattern: str) -> re.Pattern[str] | None:
    """Compiled equivalent of a Java pattern (use ``fullmatch``), or None if unsupported."""
    try:
        source = translate(pattern)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(source, re.ASCII)
    except (UnsupportedPattern, re.error, FutureWarning):
        return None
