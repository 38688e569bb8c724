"""CloudWatch Logs filter patterns: a pure parser and matcher.

Contract: ``compile_pattern(text)`` -> a ``Pattern`` whose ``matches(message)`` says
whether a log event's message matches, or raises ``FilterPatternError`` (the API
answers ``InvalidParameterException``). Three forms, chosen by the first character:

- terms: ``ERROR``, ``"exact phrase"``, ``?ERROR ?WARN`` (any of), ``-term`` (none of).
  Case-sensitive substring matches; every plain term must appear, at least one ``?``
  term if there are any, and no ``-`` term. Unquoted terms hold only letters, digits
  and ``_``. As on AWS, exclusions filter what positive terms selected: a pattern of
  exclusions alone matches nothing. An empty pattern, ``""`` or ``" "`` match
  everything; ``%regex%`` alone is a regular expression search.
- JSON, ``{ $.level = "ERROR" && ($.latency > 100 || $.user.id IS NULL) }``: selectors
  ``$.a.b``, ``$.arr[0]``, ``$.m[0][1]``; ``=`` ``!=`` on strings (``*`` wildcard at
  either end, or ``%regex%``) and numbers; ``<`` ``>`` ``<=`` ``>=`` on numbers;
  ``IS NULL``, ``NOT EXISTS``, ``IS TRUE``, ``IS FALSE``; ``&&`` binds tighter than
  ``||``; parentheses. A selector on an object or array, or on nothing, compares false.
  Messages that are not a JSON object or array never match.
- space-delimited, ``[ip, user, ..., status_code = 4* && bytes > 1000]``: the message
  is split on spaces, with ``[...]`` and ``"..."`` each one field (without their
  delimiters); ``...`` stands for any number of fields; a field's condition may use
  any field's name.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FilterPatternError", "Pattern", "compile_pattern"]


class FilterPatternError(ValueError):
    """The pattern is not valid; ``str(err)`` is the message AWS gives."""


Predicate = Callable[[str], bool]
_INVALID = "Invalid filter pattern"
_TERM = re.compile(r"[A-Za-z0-9_]+").fullmatch
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?").fullmatch


@dataclass(frozen=True)
class Pattern:
    """A compiled filter pattern; ``text`` is what it was compiled from."""

    text: str
    matches: Predicate


def compile_pattern(text: str | None) -> Pattern:
    """Parse ``text``; raise FilterPatternError with AWS's message when it is invalid."""
    source = (text or "").strip()
    if not source:
        return Pattern(text or "", _everything)
    if source.startswith("{"):
        if not source.endswith("}"):
            raise FilterPatternError("If a filter pattern starts with '{' it must end with '}'")
        return Pattern(source, _json_pattern(source[1:-1]))
    if source.startswith("["):
        if not source.endswith("]"):
            raise FilterPatternError("If a filter pattern starts with '[' it must end with ']'")
        return Pattern(source, _delimited_pattern(source[1:-1]))
    if len(source) >= 2 and source[0] == source[-1] == "%" and "%" not in source[1:-1]:
        found = _regex(source[1:-1]).search
        return Pattern(source, lambda message: found(message) is not None)
    return Pattern(source, _term_pattern(source))


def _everything(_message: str) -> bool:
    return True


def _regex(body: str) -> re.Pattern[str]:
    # AWS's subset: no groups. Everything else is handed to Python's engine.
    if not body or "(" in body or ")" in body:
        raise FilterPatternError(_INVALID)
    try:
        return re.compile(body)
    except re.error as exc:
        raise FilterPatternError(_INVALID) from exc


# ---------------------------------------------------------------------------- terms


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The string of a ``"..."`` starting at ``start`` (backslash escapes), and the end."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterPatternError(_INVALID)


def _term_pattern(source: str) -> Predicate:
    required: list[str] = []
    optional: list[str] = []
    excluded: list[str] = []
    matches_all = False
    i = 0
    while i < len(source):
        if source[i].isspace():
            i += 1
            continue
        bucket = required
        if source[i] in "?-":
            bucket = optional if source[i] == "?" else excluded
            i += 1
            while i < len(source) and source[i].isspace():
                i += 1
            if i == len(source):
                raise FilterPatternError(f"Invalid character(s) in term '{source[i - 1]}'")
        if source[i] == '"':
            term, i = _quoted(source, i)
            if not term.strip():
                matches_all = matches_all or bucket is not excluded
                continue
        else:
            end = i
            while end < len(source) and not source[end].isspace():
                end += 1
            term, i = source[i:end], end
            if not _TERM(term):
                raise FilterPatternError(f"Invalid character(s) in term '{term}'")
        bucket.append(term)
    if not (required or optional or matches_all):
        return lambda _message: False

    def matches(message: str) -> bool:
        return (
            all(term in message for term in required)
            and (not optional or any(term in message for term in optional))
            and not any(term in message for term in excluded)
        )

    return matches


# ----------------------------------------------------------- tokens of expressions

_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")
_STOP = set(" \t\r\n()=!<>&|,")


@dataclass(frozen=True)
class _Token:
    kind: str  # "op", "and", "or", "(", ")", "selector", "string", "word", "regex"
    text: str


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(_Token(ch, ch))
            i += 1
        elif text.startswith("&&", i) or text.startswith("||", i):
            out.append(_Token("and" if ch == "&" else "or", text[i : i + 2]))
            i += 2
        elif any(text.startswith(op, i) for op in _OPERATORS):
            op = next(op for op in _OPERATORS if text.startswith(op, i))
            out.append(_Token("op", op))
            i += len(op)
        elif ch == '"':
            value, i = _quoted(text, i)
            out.append(_Token("string", value))
        elif ch == "%":
            end = text.find("%", i + 1)
            if end < 0:
                raise FilterPatternError(_INVALID)
            out.append(_Token("regex", text[i + 1 : end]))
            i = end + 1
        else:
            end = i
            while end < len(text) and text[end] not in _STOP:
                end += 1
            if end == i:
                raise FilterPatternError(_INVALID)
            word = text[i:end]
            out.append(_Token("selector" if word.startswith("$") else "word", word))
            i = end
    return out


# A comparison evaluated against a value resolved from the message (JSON value or
# field text); MISSING when the selector or field resolves to nothing.
MISSING: Any = object()
Test = Callable[[Any], bool]


def _literal_test(op: str, token: _Token) -> Test:
    """The test ``<value> op <literal>``."""
    if token.kind == "regex":
        if op not in ("=", "!="):
            raise FilterPatternError(_INVALID)
        found = _regex(token.text).search
        positive = op == "="
        return lambda value: (
            _scalar_text(value) is not None
            and ((found(_scalar_text(value) or "") is not None) == positive)
        )
    if token.kind not in ("string", "word"):
        raise FilterPatternError(_INVALID)
    literal = token.text
    number = float(literal) if token.kind == "word" and _NUMBER(literal) else None
    if op in ("<", ">", "<=", ">="):
        if number is None:
            raise FilterPatternError(_INVALID)
        compare = _NUMERIC[op]
        limit = number
        return lambda value: (n := _as_number(value)) is not None and compare(n, limit)
    text_matches = _wildcard(literal)
    positive = op == "="

    def test(value: Any) -> bool:
        if number is not None:
            n = _as_number(value)
            if n is not None:
                return (n == number) == positive
        text = _scalar_text(value)
        return text is not None and text_matches(text) == positive

    return test


_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _wildcard(literal: str) -> Predicate:
    """``*`` alone matches anything; at the start or end, any text before or after."""
    if literal == "*":
        return _everything
    head, tail = literal.startswith("*"), literal.endswith("*")
    core = literal[1 if head else 0 : len(literal) - 1 if tail else len(literal)]
    if head and tail:
        return lambda text: core in text
    if head:
        return lambda text: text.endswith(core)
    if tail:
        return lambda text: text.startswith(core)
    return lambda text: text == core


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _scalar_text(value: Any) -> str | None:
    """A JSON scalar (or field) as text; None for null, objects, arrays and nothing."""
    if value is None or value is MISSING or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


class _Parser:
    """Recursive descent over tokens: or := and ('||' and)*; and := atom ('&&' atom)*."""

    def __init__(self, tokens: Sequence[_Token], atom: Callable[[_Parser], Any]) -> None:
        self.tokens = tokens
        self.at = 0
        self._atom = atom

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, kind: str | None = None) -> _Token:
        token = self.peek()
        if token is None or (kind is not None and token.kind != kind):
            raise FilterPatternError(_INVALID)
        self.at += 1
        return token

    def parse(self) -> Any:
        node = self.disjunction()
        if self.peek() is not None:
            raise FilterPatternError(_INVALID)
        return node

    def disjunction(self) -> Any:
        parts = [self.conjunction()]
        while (token := self.peek()) is not None and token.kind == "or":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def conjunction(self) -> Any:
        parts = [self.primary()]
        while (token := self.peek()) is not None and token.kind == "and":
            self.take()
            parts.append(self.primary())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def primary(self) -> Any:
        token = self.peek()
        if token is not None and token.kind == "(":
            self.take()
            node = self.disjunction()
            self.take(")")
            return node
        return self._atom(self)


def _evaluate(node: Any, leaf: Callable[[Any], bool]) -> bool:
    if isinstance(node, tuple) and node[0] in ("and", "or"):
        combine = all if node[0] == "and" else any
        return combine(_evaluate(part, leaf) for part in node[1])
    return leaf(node)


# ----------------------------------------------------------------------------- JSON

_SELECTOR_PART = re.compile(r"\.([A-Za-z0-9_\-@:]+)|\[(\d+)\]")


@dataclass(frozen=True)
class _JsonCondition:
    path: tuple[str | int, ...]
    test: Test


def _selector(text: str) -> tuple[str | int, ...]:
    if not text.startswith("$"):
        raise FilterPatternError(_INVALID)
    path: list[str | int] = []
    at = 1
    while at < len(text):
        part = _SELECTOR_PART.match(text, at)
        if part is None:
            raise FilterPatternError(_INVALID)
        path.append(part.group(1) if part.group(1) is not None else int(part.group(2)))
        at = part.end()
    if not path:
        raise FilterPatternError(_INVALID)
    return tuple(path)


def _keyword_test(parser: _Parser) -> Test:
    """``IS NULL|TRUE|FALSE`` or ``NOT EXISTS`` after a selector."""
    first = parser.take("word").text.upper()
    second = parser.take("word").text.upper()
    if (first, second) == ("IS", "NULL"):
        return lambda value: value is None
    if (first, second) == ("IS", "TRUE"):
        return lambda value: value is True
    if (first, second) == ("IS", "FALSE"):
        return lambda value: value is False
    if (first, second) == ("NOT", "EXISTS"):
        return lambda value: value is MISSING
    raise FilterPatternError(_INVALID)


def _json_atom(parser: _Parser) -> _JsonCondition:
    path = _selector(parser.take("selector").text)
    token = parser.peek()
    if token is not None and token.kind == "word":
        return _JsonCondition(path, _keyword_test(parser))
    op = parser.take("op").text
    return _JsonCondition(path, _literal_test(op, parser.take()))


def _resolve(document: Any, path: tuple[str | int, ...]) -> Any:
    value = document
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return MISSING
        elif not isinstance(value, dict) or step not in value:
            return MISSING
        value = value[step]
    return value


def _json_pattern(body: str) -> Predicate:
    tree = _Parser(_tokens(body), _json_atom).parse()

    def matches(message: str) -> bool:
        text = message.strip()
        if not text or text[0] not in "{[":
            return False
        try:
            document = json.loads(text)
        except ValueError:
            return False

        def leaf(condition: _JsonCondition) -> bool:
            return condition.test(_resolve(document, condition.path))

        return _evaluate(tree, leaf)

    return matches


# -------------------------------------------------------------------- space-delimited

_ELLIPSIS = "..."
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*").fullmatch
_MAX_ALIGNMENTS = 10_000


@dataclass(frozen=True)
class _FieldCondition:
    name: str
    test: Test


def _split_fields(body: str) -> list[str]:
    """The comma-separated field specs of ``[...]``, commas in quotes kept."""
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    fields.append("".join(current).strip())
    if len(fields) > 1 and fields[-1] == "":
        fields.pop()  # A trailing comma, as in AWS's own examples.
    if any(not field for field in fields):
        raise FilterPatternError(_INVALID)
    return fields


def _field_atom(default: str) -> Callable[[_Parser], _FieldCondition]:
    def atom(parser: _Parser) -> _FieldCondition:
        token = parser.peek()
        name = default
        if token is not None and token.kind == "word" and _NAME(token.text):
            name = parser.take().text
        op = parser.take("op").text
        return _FieldCondition(name, _literal_test(op, parser.take()))

    return atom


def _delimited_pattern(body: str) -> Predicate:
    names: list[str] = []
    conditions: list[Any] = []
    for spec in _split_fields(body):
        if spec == _ELLIPSIS:
            names.append(_ELLIPSIS)
            continue
        tokens = _tokens(spec)
        if not tokens or tokens[0].kind != "word" or not _NAME(tokens[0].text):
            raise FilterPatternError(_INVALID)
        name = tokens[0].text
        names.append(name)
        if len(tokens) > 1:
            # The condition's first comparison may leave out its field: ``bytes > 1000``.
            conditions.append(_Parser(tokens[1:], _field_atom(name)).parse())
    known = set(names)
    for condition in conditions:
        _check_names(condition, known)

    def matches(message: str) -> bool:
        fields = split_message(message)
        tried = [0]

        def satisfied(bound: dict[str, str]) -> bool:
            def leaf(condition: _FieldCondition) -> bool:
                return condition.test(bound.get(condition.name, MISSING))

            return all(_evaluate(condition, leaf) for condition in conditions)

        def align(at_name: int, at_field: int, bound: dict[str, str]) -> bool:
            tried[0] += 1
            if tried[0] > _MAX_ALIGNMENTS:
                return False
            if at_name == len(names):
                return at_field == len(fields) and satisfied(bound)
            name = names[at_name]
            if name == _ELLIPSIS:
                return any(
                    align(at_name + 1, skip, bound) for skip in range(at_field, len(fields) + 1)
                )
            if at_field == len(fields):
                return False
            return align(at_name + 1, at_field + 1, {**bound, name: fields[at_field]})

        return align(0, 0, {})

    return matches


def _check_names(node: Any, known: set[str]) -> None:
    if isinstance(node, tuple):
        for part in node[1]:
            _check_names(part, known)
    elif node.name not in known:
        raise FilterPatternError(_INVALID)


def split_message(message: str) -> list[str]:
    """A message's space-delimited fields; ``[...]`` and ``"..."`` are one field each."""
    fields: list[str] = []
    i, size = 0, len(message)
    while i < size:
        ch = message[i]
        if ch.isspace():
            i += 1
            continue
        closer = {"[": "]", '"': '"'}.get(ch)
        if closer is not None:
            end = message.find(closer, i + 1)
            if end >= 0:
                fields.append(message[i + 1 : end])
                i = end + 1
                continue
        end = i
        while end < size and not message[end].isspace():
            end += 1
        fields.append(message[i:end])
        i = end
    return fields
