"""Shared helpers: the Lambda service model, a router, and a request pipeline."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lambdaplane.api import protocol
from lambdaplane.api.model import load_service_model
from lambdaplane.api.routing import Router

# What lambdaplane's service layer is expected to pass (Lambda's limits today).
LAMBDA_OVERRIDES = {
    "MemorySize": {"max": 10240},
    "Timeout": {"max": 900},
    "EphemeralStorageSize": {"max": 10240},
}


@pytest.fixture(scope="session")
def model() -> Any:
    return load_service_model()


@pytest.fixture(scope="session")
def router(model: Any) -> Router:
    return Router(model)


class Client:
    """Routes, parses and validates a request the way the server will."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def call(
        self,
        method: str,
        url: str,
        body: Any = b"",
        headers: Mapping[str, str] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = LAMBDA_OVERRIDES,
        skip_enum: frozenset[str] = frozenset({"Runtime"}),
    ) -> tuple[str, dict[str, Any]]:
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        op, labels = self.router.match(method, parts.path, query)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        params = protocol.parse_request(op, labels, query, lowered, raw)
        protocol.validate(op, params, overrides, skip_enum)
        return op.name, params


@pytest.fixture()
def client(router: Router) -> Client:
    return Client(router)
