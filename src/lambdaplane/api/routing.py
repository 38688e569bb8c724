"""Request routing: (HTTP method, raw path, query) -> (operation, uri labels).

Contract:

- ``Router(service_model)`` indexes every operation's ``http.method`` +
  ``http.requestUri``. A template such as ``/2015-03-31/functions/{FunctionName}/policy``
  is split into segments; ``{Name}`` matches exactly one non-empty segment and
  ``{Name+}`` (greedy) one or more segments, ``/`` included.
- ``match(method, raw_path, query)`` returns the ``OperationModel`` and a dict of label
  name -> value. ``raw_path`` is the path as sent (still percent-encoded, no query
  string): it is split on ``/`` *before* percent-decoding, so an encoded ``%2F`` stays
  inside its label, and ``arn%3Aaws%3A...`` / ``%24LATEST`` arrive decoded. ``+`` is a
  literal plus (paths are not form-encoded). One trailing ``/`` is ignored (older SDKs
  sent ``/2015-03-31/functions/``).
- Some request URIs carry a fixed query (``/2018-10-31/layers?find=LayerVersion``,
  ``...provisioned-concurrency?List=ALL``); such a route matches only if ``query``
  (``parse_qs``-style: name -> list of values) holds that pair, and it is tried before
  the plain route on the same path.
- Literal segments win over labels at the same position. Nothing matches ->
  ``UnknownOperationException`` (404, JSON body rendered by ``protocol.render_error``).

Matching walks a per-method segment trie: a few dict look-ups per request, independent
of the number of operations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from lambdaplane.errors import UnknownOperationException


class _Route:
    __slots__ = ("fixed_query", "operation")

    def __init__(self, operation: Any, fixed_query: tuple[tuple[str, str], ...]) -> None:
        self.operation = operation
        self.fixed_query = fixed_query

    def accepts(self, query: Mapping[str, list[str]]) -> bool:
        for key, value in self.fixed_query:
            values = query.get(key)
            if values is None or (value and value not in values):
                return False
        return True


class _Node:
    __slots__ = ("greedy", "labels", "literals", "routes")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.labels: list[tuple[str, _Node]] = []
        self.greedy: list[tuple[str, list[_Route]]] = []
        self.routes: list[_Route] = []

    def label_child(self, name: str) -> _Node:
        for existing, child in self.labels:
            if existing == name:
                return child
        child = _Node()
        self.labels.append((name, child))
        return child


def _add_route(routes: list[_Route], route: _Route) -> None:
    routes.append(route)
    # Routes with a fixed query are more specific: try them first, most pairs first.
    routes.sort(key=lambda r: -len(r.fixed_query))


def split_request_uri(request_uri: str) -> tuple[list[str], tuple[tuple[str, str], ...]]:
    """A model ``requestUri`` -> (path segments, fixed query pairs)."""
    path, _, fixed = request_uri.partition("?")
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    segments = path[1:].split("/") if path != "/" else []
    return segments, tuple(parse_qsl(fixed, keep_blank_values=True))


class Router:
    """Maps requests to operations of one botocore ``ServiceModel``."""

    def __init__(self, service_model: Any) -> None:
        self._roots: dict[str, _Node] = {}
        for name in service_model.operation_names:
            self._add(service_model.operation_model(name))

    def _add(self, operation: Any) -> None:
        http = operation.http
        segments, fixed_query = split_request_uri(http["requestUri"])
        node = self._roots.setdefault(http["method"].upper(), _Node())
        route = _Route(operation, fixed_query)
        for index, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("}"):
                name = segment[1:-1]
                if name.endswith("+"):
                    if index != len(segments) - 1:
                        raise ValueError(f"greedy label not last in {http['requestUri']}")
                    for existing, routes in node.greedy:
                        if existing == name[:-1]:
                            _add_route(routes, route)
                            return
                    node.greedy.append((name[:-1], [route]))
                    return
                node = node.label_child(name)
            elif "{" in segment:
                raise ValueError(f"partial-segment label in {http['requestUri']}")
            else:
                node = node.literals.setdefault(segment, _Node())
        _add_route(node.routes, route)

    def match(
        self, method: str, raw_path: str, query: Mapping[str, list[str]]
    ) -> tuple[Any, dict[str, str]]:
        """The operation and decoded uri labels for a request, or UnknownOperationException."""
        root = self._roots.get(method) or self._roots.get(method.upper())
        path = raw_path.partition("?")[0]
        if root is not None and path.startswith("/"):
            if len(path) > 1 and path.endswith("/"):
                path = path[:-1]
            segments = (
                [unquote(s) if "%" in s else s for s in path[1:].split("/")] if path != "/" else []
            )
            captured: list[tuple[str, str]] = []
            route = _walk(root, segments, 0, captured, query)
            if route is not None:
                return route.operation, dict(captured)
        raise UnknownOperationException(f"Unknown operation: {method} {raw_path}")


def _walk(
    node: _Node,
    segments: list[str],
    index: int,
    captured: list[tuple[str, str]],
    query: Mapping[str, list[str]],
) -> _Route | None:
    if index == len(segments):
        for route in node.routes:
            if route.accepts(query):
                return route
        return None
    segment = segments[index]
    child = node.literals.get(segment)
    if child is not None:
        found = _walk(child, segments, index + 1, captured, query)
        if found is not None:
            return found
    if segment:
        for name, labelled in node.labels:
            captured.append((name, segment))
            found = _walk(labelled, segments, index + 1, captured, query)
            if found is not None:
                return found
            captured.pop()
        for name, routes in node.greedy:
            for route in routes:
                if route.accepts(query):
                    captured.append((name, "/".join(segments[index:])))
                    return route
    return None
