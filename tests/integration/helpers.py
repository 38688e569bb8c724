"""Shared helpers for integration tests: waiting on states, reference shapes."""

from __future__ import annotations

import json
import sys
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

RUNTIME = f"python3.{sys.version_info.minor}"


def _reference_dir() -> Path:
    """``shared/aws-reference/lambda`` beside the checkout (or any folder above it)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "aws-reference" / "lambda"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("shared/aws-reference/lambda not found beside the checkout")


def unique_name(prefix: str = "fn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_settled(client: Any, name: str, timeout: float = 10) -> dict[str, Any]:
    """Poll until State is Active and no update is in progress (AWS's function_updated_v2)."""
    deadline = time.monotonic() + timeout
    while True:
        config: dict[str, Any] = client.get_function_configuration(FunctionName=name)
        if config["State"] == "Active" and config.get("LastUpdateStatus") in ("Successful", None):
            return config
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} did not settle: {config}")
        time.sleep(0.02)


@cache
def reference(test_id: str, step: str, file: str = "test_lambda_api.snapshot.json") -> Any:
    """A response recorded against real AWS (see ../shared/aws-reference/README.md)."""
    data = json.loads((_reference_dir() / file).read_text())
    return data[f"tests/aws/services/lambda_/test_lambda_api.py::{test_id}"]["recorded-content"][
        step
    ]


def shape(value: Any) -> Any:
    """The structure of a response: keys all the way down, with leaf values dropped."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__ if isinstance(value, bool) else "leaf"


@cache
def esm_reference(source: str, test: str, step: str) -> Any:
    """A response recorded against AWS in ``esm_<source>.snapshot.json`` (``sqs``,
    ``kinesis``, ``dynamodbstreams``); ``test`` is the part after the module's ``::``."""
    data = json.loads((_reference_dir() / f"esm_{source}.snapshot.json").read_text())
    module = "tests/aws/services/lambda_/event_source_mapping/test_lambda_integration_"
    return data[f"{module}{source}.py::{test}"]["recorded-content"][step]
