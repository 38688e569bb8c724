"""Lambda event filtering: EventBridge event patterns as event source mappings use them.

A mapping's ``FilterCriteria`` holds up to five ``Filters``, each a ``Pattern``: a JSON
string in EventBridge's pattern grammar. A record is delivered when any filter matches
it and dropped otherwise. ``compile_criteria`` parses and validates the criteria once,
when a mapping is created or updated, raising ``FilterError`` with AWS's message (the
API layer renders it as ``InvalidParameterValueException``); a poller then asks
``Matcher.matches`` about each record's *view*, the record with its data decoded the way
Lambda decodes it before filtering (``sqs_view``, ``kinesis_view``, ``dynamodb_view``).

Semantics follow EventBridge's matcher (event-ruler), which sees an event as leaf values
under dotted paths:

- a pattern object's keys are ANDed, a key's list of rules is ORed, ``$or`` ORs whole
  sub-patterns; keys the pattern does not name are ignored.
- rules test leaf values only. An array in the event offers each of its scalars (nested
  arrays crushed); an array of objects offers each object to a nested pattern, which
  must hold within one element. An object where a rule list expects a leaf counts as
  absent, so ``{"exists": false}`` matches it; AWS does exactly this on DynamoDB's typed
  attributes (recorded in ``../shared/aws-reference/lambda/esm_dynamodbstreams``).
- values keep their JSON type: ``"5"`` is not ``5``, numeric rules match JSON numbers
  only, ``null`` is not ``""``. Numbers compare as their JSON rendering, so 300 and
  300.0 differ, as on AWS (AWS also tells 300.0 from 3.0e2; once parsed, we cannot).
- each source's data key (SQS ``body``, Kinesis ``data``, DynamoDB ``dynamodb``) obeys
  Lambda's format rules, described on ``EventSourceKind``.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INVALID_PATTERN_MESSAGE = "Invalid filter pattern definition."
# AWS's wording for too many filters is not recorded anywhere we could find; this is ours.
TOO_MANY_FILTERS_MESSAGE = "The number of filters in FilterCriteria exceeds the limit of {limit}."
DEFAULT_MAX_FILTERS = 5  # the default quota; AWS raises it to 10 on request
MAX_PATTERN_LENGTH = 4096  # UTF-16 units, as the API model (and Java) counts them
_MAX_NUMERIC = 5.0e9  # numeric rules take bounds in [-5e9, 5e9] (event-ruler)
_MAX_DEPTH = 64  # ours, AWS documents none: keeps matching far from Python's recursion limit


class FilterError(ValueError):
    """FilterCriteria that Lambda refuses. ``message`` is AWS's wording for the wire;
    ``reason`` says which rule the criteria broke, for logs."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def _invalid(reason: str) -> FilterError:
    return FilterError(INVALID_PATTERN_MESSAGE, reason)


class EventSourceKind(enum.Enum):
    """The kind of source a criteria filters, which fixes its data key and format rules.

    Lambda compares the format of the data key's pattern with the record's data before
    matching. SQS: an object pattern matches a JSON body only, a rule list a non-JSON
    body only; any other pairing drops the message. Kinesis and DynamoDB: the data
    pattern must be an object (a rule list is refused when the mapping is saved) and a
    record whose data is not JSON never matches it. A pattern without the data key skips
    the check. "JSON" here means a JSON object or array.
    """

    SQS = "body"
    KINESIS = "data"
    DYNAMODB = "dynamodb"

    @property
    def data_key(self) -> str:
        return self.value


# --- compiled patterns ------------------------------------------------------------------

_ABSENT: Any = object()  # the value at a path the event does not have
_Predicate = Callable[[Any], bool]


@dataclass(frozen=True)
class _Rules:
    """A key's list of rules: OR of value predicates, plus what ``exists`` asked for."""

    predicates: tuple[_Predicate, ...]
    if_present: bool  # holds {"exists": true}
    if_absent: bool  # holds {"exists": false}

    def matches(self, value: Any) -> bool:
        leaves = _leaves(value)
        if not leaves:
            return self.if_absent
        return self.if_present or any(p(leaf) for p in self.predicates for leaf in leaves)


@dataclass(frozen=True)
class _Fields:
    """A pattern object: every field matches, and one of the ``$or`` alternatives does."""

    fields: tuple[tuple[str, _Node], ...]
    alternatives: tuple[_Fields, ...]

    def matches(self, value: Any) -> bool:
        if isinstance(value, list):
            objects = [item for item in _crushed(value) if isinstance(item, Mapping)]
            if objects:
                return any(self._matches_one(item) for item in objects)
            value = _ABSENT
        return self._matches_one(value)

    def _matches_one(self, value: Any) -> bool:
        present: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
        return all(node.matches(present.get(key, _ABSENT)) for key, node in self.fields) and (
            not self.alternatives or any(alt.matches(value) for alt in self.alternatives)
        )


@dataclass(frozen=True)
class _DataFormat:
    """A source's data key: the record's data must be JSON exactly when its pattern is."""

    node: _Rules | _Fields
    expects_json: bool

    def matches(self, value: Any) -> bool:
        is_json = isinstance(value, Mapping | list)
        return is_json == self.expects_json and self.node.matches(value)


_Node = _Rules | _Fields | _DataFormat


@dataclass(frozen=True)
class Matcher:
    """Compiled FilterCriteria: a record view passes when any filter matches it, and
    every record passes when there are no filters."""

    filters: tuple[_Fields, ...]

    def matches(self, event: Mapping[str, Any]) -> bool:
        return not self.filters or any(f.matches(event) for f in self.filters)


# --- compiling --------------------------------------------------------------------------


def compile_criteria(
    filter_criteria: Mapping[str, Any] | None,
    source: EventSourceKind | None = None,
    *,
    max_filters: int = DEFAULT_MAX_FILTERS,
) -> Matcher:
    """Validate and compile ``FilterCriteria``; ``None``, ``{}`` and ``{"Filters": []}``
    filter nothing. ``source`` applies its data-key rules; without one the patterns are
    plain EventBridge patterns. Raises FilterError with AWS's message."""
    filters = (filter_criteria or {}).get("Filters")
    if filters is None:
        return Matcher(())
    if not isinstance(filters, list):
        raise _invalid("Filters is not a list")
    if len(filters) > max_filters:
        message = TOO_MANY_FILTERS_MESSAGE.format(limit=max_filters)
        raise FilterError(message, f"{len(filters)} filters")
    return Matcher(tuple(_compile_filter(f, source) for f in filters))


def _compile_filter(entry: object, source: EventSourceKind | None) -> _Fields:
    text = entry.get("Pattern") if isinstance(entry, Mapping) else None
    if not isinstance(text, str):
        raise _invalid("a filter has no Pattern string")
    if len(text.encode("utf-16-le")) // 2 > MAX_PATTERN_LENGTH:
        raise _invalid(f"a pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise _invalid(f"a pattern is not JSON: {error}") from None
    if not isinstance(doc, dict):
        raise _invalid("a pattern is not a JSON object")
    return _compile_fields(doc, 1, source)


def _compile_fields(doc: dict[str, Any], depth: int, source: EventSourceKind | None) -> _Fields:
    """``source`` is given at the top level only, where its data key lives."""
    if depth > _MAX_DEPTH:
        raise _invalid(f"a pattern nests deeper than {_MAX_DEPTH} levels")
    fields: list[tuple[str, _Node]] = []
    alternatives: tuple[_Fields, ...] = ()
    for key, value in doc.items():
        if key == "$or" and _is_or_clause(value):
            alternatives = tuple(_compile_fields(alt, depth + 1, source) for alt in value)
            continue
        node = _compile_value(key, value, depth + 1)
        if source is not None and key == source.data_key:
            fields.append((key, _data_format(node, source)))
        else:
            fields.append((key, node))
    return _Fields(tuple(fields), alternatives)


def _is_or_clause(value: object) -> bool:
    """event-ruler reads ``$or`` as OR only over 2+ sub-patterns that use no operator
    names as keys; otherwise ``$or`` is an ordinary field name."""
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(alt, dict) and _OPERATORS.isdisjoint(alt) for alt in value)
    )


def _compile_value(key: str, value: object, depth: int) -> _Rules | _Fields:
    if isinstance(value, dict):
        return _compile_fields(value, depth, None)
    if isinstance(value, list) and value:
        return _compile_rules(key, value)
    raise _invalid(f"{key!r} is neither a pattern object nor a non-empty list of rules")


def _data_format(node: _Rules | _Fields, source: EventSourceKind) -> _DataFormat:
    expects_json = isinstance(node, _Fields)
    if not expects_json and source is not EventSourceKind.SQS:
        raise _invalid(f"the {source.data_key!r} pattern of a stream must be a JSON object")
    return _DataFormat(node, expects_json)


def _compile_rules(key: str, items: list[Any]) -> _Rules:
    predicates: list[_Predicate] = []
    if_present = if_absent = False
    for item in items:
        if _is_scalar(item):
            predicates.append(_equals(item))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise _invalid(f"a rule of {key!r} is not a value or a one-key rule object")
        ((operator, argument),) = item.items()
        if operator == "exists":
            if not isinstance(argument, bool):
                raise _invalid("exists takes true or false")
            if_present |= argument
            if_absent |= not argument
            continue
        builder = _RULE_BUILDERS.get(operator)
        if builder is None:
            raise _invalid(f"unknown rule {operator!r}")
        predicates.append(builder(argument))
    return _Rules(tuple(predicates), if_present, if_absent)


def _equals(expected: Any) -> _Predicate:
    """Same JSON type and value; numbers compare as their JSON rendering."""
    if _is_number(expected):
        text = json.dumps(expected)
        return lambda value: _is_number(value) and json.dumps(value) == text
    kind = type(expected)
    return lambda value: type(value) is kind and bool(value == expected)


def _prefix(argument: object) -> _Predicate:
    if isinstance(argument, str):
        return lambda value: isinstance(value, str) and value.startswith(argument)
    folded = _ignore_case_argument(argument, "prefix").lower()
    return lambda value: isinstance(value, str) and value.lower().startswith(folded)


def _suffix(argument: object) -> _Predicate:
    if isinstance(argument, str):
        return lambda value: isinstance(value, str) and value.endswith(argument)
    folded = _ignore_case_argument(argument, "suffix").lower()
    return lambda value: isinstance(value, str) and value.lower().endswith(folded)


def _ignore_case_argument(argument: object, operator: str) -> str:
    if isinstance(argument, dict) and len(argument) == 1:
        text = argument.get("equals-ignore-case")
        if isinstance(text, str):
            return text
    raise _invalid(f"{operator} takes a string or {{'equals-ignore-case': string}}")


def _equals_ignore_case(argument: object) -> _Predicate:
    if not isinstance(argument, str):
        raise _invalid("equals-ignore-case takes a string")
    folded = argument.lower()
    return lambda value: isinstance(value, str) and value.lower() == folded


def _wildcard(argument: object) -> _Predicate:
    if not isinstance(argument, str):
        raise _invalid("wildcard takes a string")
    segments = _wildcard_segments(argument)
    return lambda value: isinstance(value, str) and _glob_matches(segments, value)


def _wildcard_segments(text: str) -> tuple[str, ...]:
    """The literal runs between a wildcard's stars. ``\\*`` and ``\\\\`` are a literal
    star and backslash; other escapes and consecutive stars are invalid, as in EventBridge."""
    segments = [""]
    chars = iter(text)
    for char in chars:
        if char == "*":
            if len(segments) > 1 and not segments[-1]:
                raise _invalid("a wildcard has consecutive '*'")
            segments.append("")
            continue
        if char == "\\":
            char = next(chars, "")
            if char not in ("*", "\\"):
                raise _invalid("a wildcard escapes something other than '*' or '\\'")
        segments[-1] += char
    return tuple(segments)


def _glob_matches(segments: tuple[str, ...], text: str) -> bool:
    """Whether ``text`` is the segments joined by runs of any characters. Taking each
    middle segment at its leftmost place is enough, so nothing backtracks (a regex would,
    through every placement of the stars)."""
    first, last = segments[0], segments[-1]
    if len(segments) == 1:
        return text == first
    end = len(text) - len(last)
    if end < len(first) or not text.startswith(first) or not text.endswith(last):
        return False
    position = len(first)
    for segment in segments[1:-1]:
        found = text.find(segment, position, end)
        if found < 0:
            return False
        position = found + len(segment)
    return True


def _anything_but(argument: object) -> _Predicate:
    """Matches a present value that is not excluded; a missing key never matches."""
    if isinstance(argument, dict):
        excluded = _anything_but_operator(argument)
        return lambda value: not excluded(value)
    values = argument if isinstance(argument, list) else [argument]
    strings = all(isinstance(v, str) for v in values)
    if not values or not (strings or all(_is_number(v) for v in values)):
        raise _invalid("anything-but takes strings only or numbers only")
    tests = [_equals(v) for v in values]
    return lambda value: not any(test(value) for test in tests)


def _anything_but_operator(argument: dict[str, Any]) -> _Predicate:
    if len(argument) != 1:
        raise _invalid("anything-but takes one operator")
    ((operator, inner),) = argument.items()
    if operator in ("prefix", "suffix"):
        if not isinstance(inner, str):
            raise _invalid(f"anything-but {operator} takes a string")
        return _prefix(inner) if operator == "prefix" else _suffix(inner)
    if operator in ("equals-ignore-case", "wildcard"):
        texts = inner if isinstance(inner, list) else [inner]
        if not texts:
            raise _invalid(f"anything-but {operator} takes a string or strings")
        build = _equals_ignore_case if operator == "equals-ignore-case" else _wildcard
        tests = [build(text) for text in texts]
        return lambda value: any(test(value) for test in tests)
    raise _invalid(f"anything-but does not take {operator!r}")


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _numeric(argument: object) -> _Predicate:
    """``["=", n]``, one bound (``>``, ``>=``, ``<``, ``<=``), or a lower and an upper
    bound with lower < upper; bounds are JSON numbers within +/-5e9."""
    if not isinstance(argument, list) or len(argument) not in (2, 4):
        raise _invalid("numeric takes one or two operator/number pairs")
    pairs = [(argument[i], argument[i + 1]) for i in range(0, len(argument), 2)]
    for operator, bound in pairs:
        if operator not in _COMPARISONS or not _is_number(bound) or abs(bound) > _MAX_NUMERIC:
            raise _invalid("numeric takes an operator and a number within +/-5e9")
    if len(pairs) == 2:
        lower = [bound for operator, bound in pairs if operator in (">", ">=")]
        upper = [bound for operator, bound in pairs if operator in ("<", "<=")]
        if len(lower) != 1 or len(upper) != 1 or not lower[0] < upper[0]:
            raise _invalid("a numeric range takes a lower bound below an upper bound")
    checks = [(_COMPARISONS[operator], bound) for operator, bound in pairs]
    return lambda value: _is_number(value) and all(test(value, b) for test, b in checks)


def _cidr(argument: object) -> _Predicate:
    if not isinstance(argument, str):
        raise _invalid("cidr takes a string")
    try:
        network = ipaddress.ip_network(argument, strict=False)
    except ValueError:
        raise _invalid(f"cidr {argument!r} is not an IP network") from None

    def in_network(value: Any) -> bool:
        try:
            return isinstance(value, str) and ipaddress.ip_address(value) in network
        except ValueError:
            return False

    return in_network


_RULE_BUILDERS: dict[str, Callable[[Any], _Predicate]] = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _equals_ignore_case,
    "wildcard": _wildcard,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "cidr": _cidr,
}
_OPERATORS = frozenset(_RULE_BUILDERS) | {"exists"}


# --- JSON values ------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | bool | int | float)


def _crushed(items: list[Any]) -> Iterable[Any]:
    """The elements of an array, with nested arrays flattened into it."""
    stack = [iter(items)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()


def _leaves(value: Any) -> list[Any]:
    if value is _ABSENT or isinstance(value, Mapping):
        return []
    if isinstance(value, list):
        return [item for item in _crushed(value) if not isinstance(item, Mapping)]
    return [value]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_document(text: str) -> dict[str, Any] | list[Any] | None:
    """``text`` parsed when it holds a JSON object or array; None for anything else."""
    try:
        parsed = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict | list) else None


# --- what each source's filters see -----------------------------------------------------


def sqs_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """An SQS record as Lambda filters it: ``body`` parsed when it holds a JSON object
    or array, left as the string otherwise."""
    view = dict(record)
    body = record.get("body")
    parsed = _json_document(body) if isinstance(body, str) else None
    if parsed is not None:
        view["body"] = parsed
    return view


def kinesis_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A Kinesis record as Lambda filters it: the fields of its ``kinesis`` object
    (``partitionKey``, ``data``, ...) lifted beside the record's metadata, and ``data``
    base64-decoded and parsed when it is a UTF-8 JSON object or array (else kept as is).
    A record already flat (no ``kinesis`` object) is read the same way."""
    view = {key: value for key, value in record.items() if key != "kinesis"}
    inner = record.get("kinesis")
    if isinstance(inner, Mapping):
        view.update(inner)
    data = view.get("data")
    if isinstance(data, str):
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), or not UTF-8
            return view
        parsed = _json_document(text)
        if parsed is not None:
            view["data"] = parsed
    return view


def dynamodb_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB Streams record as Lambda filters it: unchanged, so patterns spell the
    attribute type descriptors (``{"NewImage": {"id": {"S": [...]}}}``) and numbers,
    which DynamoDB sends as strings (``{"N": "42"}``), never match numeric rules."""
    return dict(record)
