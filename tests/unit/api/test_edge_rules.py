"""The layer operations' runtime checks at the edge, compared with AWS's recorded messages
(TestLambdaLayer::test_layer_exceptions in the shared aws-reference)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from lambdaplane.api.edge_rules import AWS_RUNTIMES, LAYER_RUNTIMES_SHOWN
from lambdaplane.errors import ValidationException
from lambdaplane.server.app import CONSTRAINT_OVERRIDES, OPERATION_RULES, SERVICE_CHECKED_ENUMS

ZIP = base64.b64encode(b"PK\x03\x04").decode()


def call(client: Any, method: str, url: str, body: Any = b"") -> tuple[str, dict[str, Any]]:
    op, _ = client.router.match(method, url.split("?")[0], {})
    overrides, skip = OPERATION_RULES.get(op.name, (CONSTRAINT_OVERRIDES, SERVICE_CHECKED_ENUMS))
    name, params = client.call(method, url, body, overrides=overrides, skip_enum=skip)
    return name, params


def message(client: Any, method: str, url: str, body: Any = b"") -> str:
    with pytest.raises(ValidationException) as caught:
        call(client, method, url, body)
    assert caught.value.message is not None
    return caught.value.message


def test_list_layers_prints_every_runtime_aws_knows(client: Any) -> None:
    assert message(client, "GET", "/2018-10-31/layers?CompatibleRuntime=runtimedoesnotexist") == (
        "1 validation error detected: Value 'runtimedoesnotexist' at 'compatibleRuntime' "
        "failed to satisfy constraint: Member must satisfy enum value set: "
        f"[{', '.join(AWS_RUNTIMES)}]"
    )
    name, params = call(client, "GET", "/2018-10-31/layers/l/versions?CompatibleRuntime=python3.7")
    assert name == "ListLayerVersions" and params["CompatibleRuntime"] == "python3.7"


def test_publish_checks_the_runtime_list_as_aws_does(client: Any) -> None:
    body = {
        "Content": {"ZipFile": ZIP},
        "CompatibleRuntimes": ["invalidruntime", "invalidruntime2", "nodejs20.x"],
        "CompatibleArchitectures": ["invalidarch", "x86_64"],
    }
    assert message(client, "POST", "/2018-10-31/layers/l/versions", body) == (
        "2 validation errors detected: Value '[invalidruntime, invalidruntime2, nodejs20.x]' at "
        "'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value set: "
        f"[{', '.join(LAYER_RUNTIMES_SHOWN)}]; Value '[invalidarch, x86_64]' at "
        "'compatibleArchitectures' failed to satisfy constraint: Member must satisfy "
        "constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be "
        "null]"
    )
    # Retired runtimes are accepted (AWS published python3.7 and nodejs12.x layers in 2026).
    ok = {"Content": {"ZipFile": ZIP}, "CompatibleRuntimes": ["python3.7", "nodejs12.x"]}
    assert call(client, "POST", "/2018-10-31/layers/l/versions", ok)[0] == "PublishLayerVersion"


def test_function_layers_print_aws_pattern(client: Any) -> None:
    layer = "arn:aws:lambda:us-east-1:111111111111:layer:my-layer"
    body = {
        "FunctionName": "f",
        "Role": "arn:aws:iam::111111111111:role/r",
        "Code": {"ZipFile": ZIP},
        "Layers": [layer],
    }
    assert message(client, "POST", "/2015-03-31/functions", body).endswith(
        "Member must satisfy regular expression pattern: "
        r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:"
        r"\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:"
        r"[a-zA-Z0-9-_]+), Member must not be null]"
    )
