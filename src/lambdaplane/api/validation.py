"""Coral-style constraint validation of a parsed input dict.

Contract: ``compile_validator(op, overrides, skip_enum)`` -> ``Validator``;
``Validator.violations(params)`` -> every violation, in AWS's order, as the sentences
``ValidationException.from_violations`` joins ("N validation errors detected: a; b").

Rules (wording checked against responses recorded from AWS):

- required member absent/null: ``Value null at 'functionName' failed to satisfy
  constraint: Member must not be null``.
- strings (length in UTF-16 units, like Java): ``Member must have length less than or
  equal to 140`` / ``greater than or equal to 1``, then ``Member must satisfy regular
  expression pattern: <model pattern>`` (a Java regex, matched against the whole value),
  then ``Member must satisfy enum value set: [a, b]``. Every failing rule is reported.
- numbers: ``Member must have value less than or equal to 10240`` / ``greater than…``
  (doubles print like Java: ``1.0``).
- lists/maps: their own length first; then one sentence for all items:
  ``Member must satisfy constraint: [<every rule of the item shape>, Member must not be
  null]``; maps: ``Map keys must satisfy constraint: [...]`` and ``Map value must
  satisfy constraint: [..., Member must not be null]``. Structures inside lists/maps are
  checked member by member at ``<path>.<n>.member.<field>`` (1-based).
- paths: member names, first letter lower-cased (Java-bean style, so ``UUID`` stays),
  joined with ``.``: ``vpcConfig.securityGroupIds``.
- values print Java-style: strings raw, lists ``[a, b]``, maps ``{k=v}``, null
  ``null``; a sensitive shape (e.g. environment variables) prints no value at all:
  ``Value at 'environment.variables' failed to satisfy constraint: ...``.
- order: top-level members bound to the querystring first, then uri, headers and body
  (AWS reports ``qualifier`` before ``functionName``); model order within each group
  and inside structures.
- ``overrides`` (shape name -> {"min"|"max"|"pattern"|"enum": value or None to drop})
  replace model constraints, e.g. ``{"MemorySize": {"max": 10240}}``; ``skip_enum``
  names shapes whose enum the service checks itself (e.g. ``Runtime``). An ``enum`` on a
  list shape checks every item and is reported once, for the list (``Value '[a, b]' at
  'compatibleRuntimes' ... Member must satisfy enum value set: [...]``, as AWS checks
  CompatibleRuntimes); ``enum_shown`` is the set printed when AWS prints another set
  than it accepts. ``{"order": [member, ...]}`` on a structure shape reports its
  members in that order (AWS's), where botocore's differs.
- blob lengths are not checked here (the service owns size limits).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from lambdaplane.api.javaregex import compile_java

# The order AWS prints some enums in, where it differs from botocore's (recorded
# responses). Used only while the value set still equals the model's.
AWS_ENUM_ORDER: Mapping[str, tuple[str, ...]] = {
    "InvokeMode": ("RESPONSE_STREAM", "BUFFERED"),
    "EventSourcePosition": ("LATEST", "AT_TIMESTAMP", "TRIM_HORIZON"),
    "RecursiveLoop": ("Terminate", "Allow"),
}

# List shapes whose items AWS does not declare non-null (recorded: VpcConfig's lists
# print their item rules without "Member must not be null").
NULLABLE_ITEM_LISTS: frozenset[str] = frozenset({"SecurityGroupIds", "SubnetIds"})

_LOCATION_ORDER = {"querystring": 0, "uri": 1, "header": 2, "headers": 2}
_NOT_NULL = "Member must not be null"

Check = Callable[[Any, str, list[str]], None]
Overrides = Mapping[str, Mapping[str, Any]]


def coral_name(member: str) -> str:
    """Java-bean decapitalisation: ``FunctionName`` -> ``functionName``, ``UUID`` stays."""
    if len(member) > 1 and member[0].isupper() and member[1].isupper():
        return member
    return member[:1].lower() + member[1:]


def java_double(value: float) -> str:
    """``Double.toString``: ``1.0``, ``0.5``, ``1.0E7``, ``1.0E-4``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    scientific = len(digits) + exponent - 1
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{scientific}"


def _utf16_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def render(value: Any, shape: Any = None) -> str:
    """How Coral prints a value inside ``Value '...'``."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, bytes | bytearray | memoryview):
        size = len(value)
        return f"java.nio.HeapByteBuffer[pos=0 lim={size} cap={size}]"
    if isinstance(value, dt.datetime):
        return value.strftime("%a %b %d %H:%M:%S UTC %Y")
    type_name = shape.type_name if shape is not None else None
    if isinstance(value, list):
        member = shape.member if type_name == "list" else None
        return "[" + ", ".join(render(item, member) for item in value) + "]"
    if isinstance(value, dict):
        if type_name == "structure":
            parts = []
            for name, member in shape.members.items():
                if value.get(name) is not None:
                    shown = (
                        "***Sensitive Data Redacted***"
                        if _is_sensitive(member)
                        else render(value[name], member)
                    )
                    parts.append(f"{name}: {shown}")
            return "{" + ",".join(parts) + "}"
        value_shape = shape.value if type_name == "map" else None
        return "{" + ", ".join(f"{k}={render(v, value_shape)}" for k, v in value.items()) + "}"
    return str(value)


def _is_sensitive(shape: Any, _seen: frozenset[str] = frozenset()) -> bool:
    if shape.metadata.get("sensitive"):
        return True
    if shape.name in _seen:
        return False
    seen = _seen | {shape.name}
    if shape.type_name == "list":
        return _is_sensitive(shape.member, seen)
    if shape.type_name == "map":
        return _is_sensitive(shape.key, seen) or _is_sensitive(shape.value, seen)
    return False


def _violation(value: Any, shape: Any, path: str, constraint: str, sensitive: bool) -> str:
    if sensitive:
        return f"Value at '{path}' failed to satisfy constraint: {constraint}"
    return f"Value '{render(value, shape)}' at '{path}' failed to satisfy constraint: {constraint}"


Predicate = Callable[[Any], bool]


def _length_at_most(limit: int, measure: Callable[[Any], int]) -> Predicate:
    return lambda value: measure(value) <= limit


def _length_at_least(limit: int, measure: Callable[[Any], int]) -> Predicate:
    return lambda value: measure(value) >= limit


def _value_at_most(limit: float) -> Predicate:
    return lambda value: bool(value <= limit)


def _value_at_least(limit: float) -> Predicate:
    return lambda value: bool(value >= limit)


def _matches(matcher: Callable[[str], Any]) -> Predicate:
    return lambda value: matcher(value) is not None


def _one_of(allowed: frozenset[str]) -> Predicate:
    return lambda value: value in allowed


def _all_of(allowed: frozenset[str]) -> Predicate:
    return lambda items: all(item is None or item in allowed for item in items)


_NUMBER_TYPES = ("integer", "long", "short", "byte", "double", "float")
_SCALAR_TYPES = ("string", *_NUMBER_TYPES)


class _Scalar:
    """Compiled rules of a string/number shape (or of a list/map's own length):
    full check, predicate, and the rule descriptions AWS lists for items."""

    __slots__ = ("checks", "descriptions", "kind", "sensitive", "shape")

    def __init__(self, shape: Any, rules: Mapping[str, Any]) -> None:
        self.shape = shape
        self.sensitive = _is_sensitive(shape)
        self.kind = shape.type_name
        self.checks: list[tuple[Predicate, str]] = []
        low, high = rules.get("min"), rules.get("max")
        if self.kind in ("string", "list", "map"):
            measure = _utf16_len if self.kind == "string" else len
            if high is not None:
                self.checks.append(
                    (
                        _length_at_most(high, measure),
                        f"Member must have length less than or equal to {high}",
                    )
                )
            if low is not None:
                self.checks.append(
                    (
                        _length_at_least(low, measure),
                        f"Member must have length greater than or equal to {low}",
                    )
                )
        else:
            is_double = self.kind in ("double", "float")

            def number(limit: Any) -> str:
                return java_double(float(limit)) if is_double else str(limit)

            if high is not None:
                self.checks.append(
                    (
                        _value_at_most(high),
                        f"Member must have value less than or equal to {number(high)}",
                    )
                )
            if low is not None:
                self.checks.append(
                    (
                        _value_at_least(low),
                        f"Member must have value greater than or equal to {number(low)}",
                    )
                )
        if self.kind == "string":
            pattern = rules.get("pattern")
            compiled = compile_java(pattern) if pattern is not None else None
            if compiled is not None:
                self.checks.append(
                    (
                        _matches(compiled.fullmatch),
                        f"Member must satisfy regular expression pattern: {pattern}",
                    )
                )
        enum = rules.get("enum")
        if enum and self.kind in ("string", "list"):
            allowed = frozenset(enum)
            shown = rules.get("enum_shown") or enum
            self.checks.append(
                (
                    _one_of(allowed) if self.kind == "string" else _all_of(allowed),
                    f"Member must satisfy enum value set: [{', '.join(shown)}]",
                )
            )
        self.descriptions = [description for _, description in self.checks]

    def applies(self, value: Any) -> bool:
        kind = self.kind
        if kind == "string":
            return isinstance(value, str)
        if kind == "list":
            return isinstance(value, list)
        if kind == "map":
            return isinstance(value, dict)
        return isinstance(value, int | float) and not isinstance(value, bool)

    def ok(self, value: Any) -> bool:
        if not self.applies(value):
            return True
        return all(predicate(value) for predicate, _ in self.checks)

    def check(self, value: Any, path: str, out: list[str]) -> None:
        if not self.applies(value):
            return
        for predicate, description in self.checks:
            if not predicate(value):
                out.append(_violation(value, self.shape, path, description, self.sensitive))


class _Structure:
    """Compiled member checks of a structure; filled after creation (recursion-safe)."""

    __slots__ = ("members",)

    def __init__(self) -> None:
        # (member name, path segment, required, check or None)
        self.members: list[tuple[str, str, bool, Check | None]] = []

    def check(self, value: Any, path: str, out: list[str]) -> None:
        if not isinstance(value, dict):
            return
        prefix = path + "." if path else ""
        for name, segment, required, check in self.members:
            item = value.get(name)
            if item is None:
                if required:
                    out.append(
                        f"Value null at '{prefix}{segment}' failed to satisfy constraint: "
                        f"{_NOT_NULL}"
                    )
                continue
            if check is not None:
                check(item, prefix + segment, out)


class Validator:
    """Validates one operation's parsed input under fixed overrides."""

    def __init__(
        self, operation: Any, overrides: Overrides | None, skip_enum: frozenset[str]
    ) -> None:
        self.operation = operation
        self._overrides: Overrides = overrides or {}
        self._skip_enum = skip_enum
        self._structures: dict[str, _Structure] = {}
        self._root: Check | None = None
        shape = operation.input_shape
        if shape is not None:
            root = self._structure(shape, top_level=True)
            self._root = root.check if root.members else None

    def violations(self, params: Mapping[str, Any]) -> list[str]:
        out: list[str] = []
        if self._root is not None:
            self._root(params, "", out)
        return out

    # ---------------------------------------------------------------- compilation

    def _rules(self, shape: Any) -> dict[str, Any]:
        metadata = shape.metadata
        rules = {key: metadata.get(key) for key in ("min", "max", "pattern")}
        enum = list(getattr(shape, "enum", None) or [])
        preferred = AWS_ENUM_ORDER.get(shape.name)
        if preferred is not None and set(preferred) == set(enum):
            enum = list(preferred)
        rules["enum"] = enum or None
        rules.update(self._overrides.get(shape.name, {}))
        if shape.name in self._skip_enum:
            rules["enum"] = None
        return rules

    def _structure(self, shape: Any, top_level: bool = False) -> _Structure:
        key = shape.name + ("#top" if top_level else "")
        existing = self._structures.get(key)
        if existing is not None:
            return existing
        compiled = self._structures[key] = _Structure()
        required = set(shape.required_members)
        members = list(shape.members.items())
        order = self._overrides.get(shape.name, {}).get("order")
        if order:  # AWS's member order, where it differs from botocore's
            members.sort(key=lambda item: order.index(item[0]) if item[0] in order else len(order))
        if top_level:
            members.sort(
                key=lambda item: _LOCATION_ORDER.get(item[1].serialization.get("location") or "", 3)
            )
        for name, member in members:
            check = self._check(member)
            if check is None and name not in required:
                continue
            compiled.members.append((name, coral_name(name), name in required, check))
        return compiled

    def _check(self, shape: Any) -> Check | None:
        type_name = shape.type_name
        if type_name == "structure":
            structure = self._structure(shape)
            return structure.check
        if type_name == "list":
            return self._list_check(shape)
        if type_name == "map":
            return self._map_check(shape)
        if type_name in _SCALAR_TYPES:
            scalar = _Scalar(shape, self._rules(shape))
            return scalar.check if scalar.checks else None
        return None

    def _container_length(self, shape: Any) -> _Scalar:
        return _Scalar(shape, self._rules(shape))

    def _list_check(self, shape: Any) -> Check | None:
        length = self._container_length(shape)
        member = shape.member
        nested: Check | None = None
        item: _Scalar | None = None
        if member.type_name in ("structure", "list", "map"):
            nested = self._check(member)
        elif member.type_name in _SCALAR_TYPES:
            item = _Scalar(member, self._rules(member))
        not_null = shape.name not in NULLABLE_ITEM_LISTS
        descriptions = (item.descriptions if item is not None else []) + (
            [_NOT_NULL] if not_null else []
        )
        sensitive = length.sensitive
        constraint = f"Member must satisfy constraint: [{', '.join(descriptions)}]"

        def check(value: Any, path: str, out: list[str]) -> None:
            if not isinstance(value, list):
                return
            length.check(value, path, out)
            if nested is not None:
                for index, element in enumerate(value, 1):
                    if element is not None:
                        nested(element, f"{path}.{index}.member", out)
            bad = any(
                (not_null if element is None else item is not None and not item.ok(element))
                for element in value
            )
            if bad:
                out.append(_violation(value, shape, path, constraint, sensitive))

        if not length.checks and nested is None and not descriptions:
            return None
        return check

    def _map_check(self, shape: Any) -> Check | None:
        length = self._container_length(shape)
        key_rules = _Scalar(shape.key, self._rules(shape.key))
        value_shape = shape.value
        nested: Check | None = None
        item: _Scalar | None = None
        if value_shape.type_name in ("structure", "list", "map"):
            nested = self._check(value_shape)
        elif value_shape.type_name in _SCALAR_TYPES:
            item = _Scalar(value_shape, self._rules(value_shape))
        sensitive = length.sensitive
        keys_constraint = f"Map keys must satisfy constraint: [{', '.join(key_rules.descriptions)}]"
        value_descriptions = (item.descriptions if item is not None else []) + [_NOT_NULL]
        values_constraint = f"Map value must satisfy constraint: [{', '.join(value_descriptions)}]"

        def check(value: Any, path: str, out: list[str]) -> None:
            if not isinstance(value, dict):
                return
            length.check(value, path, out)
            if key_rules.checks and not all(key_rules.ok(k) for k in value):
                out.append(_violation(value, shape, path, keys_constraint, sensitive))
            if nested is not None:
                for key, element in value.items():
                    if element is not None:
                        nested(element, f"{path}.{key}.member", out)
            if any(
                element is None or (item is not None and not item.ok(element))
                for element in value.values()
            ):
                out.append(_violation(value, shape, path, values_constraint, sensitive))

        return check


def _freeze(overrides: Overrides | None) -> tuple[Any, ...]:
    if not overrides:
        return ()
    return tuple(
        sorted(
            (
                shape,
                tuple(
                    sorted(
                        (k, tuple(v) if isinstance(v, list | tuple) else v)
                        for k, v in rules.items()
                    )
                ),
            )
            for shape, rules in overrides.items()
        )
    )


_COMPILED: dict[tuple[Any, tuple[Any, ...], frozenset[str]], Validator] = {}
_LAST: dict[Any, tuple[Overrides | None, frozenset[str], Validator]] = {}


def compile_validator(
    operation: Any,
    overrides: Overrides | None = None,
    skip_enum: frozenset[str] = frozenset(),
) -> Validator:
    """The cached Validator for an operation under these overrides (treat them as
    constants: a mapping is recognised by identity first, then by content)."""
    last = _LAST.get(operation)
    if last is not None and last[0] is overrides and last[1] == skip_enum:
        return last[2]
    key = (operation, _freeze(overrides), skip_enum)
    validator = _COMPILED.get(key)
    if validator is None:
        validator = _COMPILED[key] = Validator(operation, overrides, skip_enum)
    _LAST[operation] = (overrides, skip_enum, validator)
    return validator
