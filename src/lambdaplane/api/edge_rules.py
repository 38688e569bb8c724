"""Constraints AWS's front end applies to some operations beyond botocore's model.

The layer operations check runtime ids at the edge, against AWS's own value sets rather
than the model's enum (elsewhere the service checks runtimes itself: ``Runtime`` is in
the server's ``skip_enum``). ListLayers and ListLayerVersions print every id AWS knows;
PublishLayerVersion accepts those too, but prints only the runtimes it currently
supports, and checks CompatibleRuntimes as one list value, reported before
CompatibleArchitectures. Both sets and their order are as recorded from AWS (2026-01).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambdaplane.api.validation import Overrides

# The layer version ARN pattern as AWS prints it (botocore's adds outer parentheses).
LAYER_VERSION_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)

# Every runtime id AWS knows, in the order its messages print them.
AWS_RUNTIMES = (
    "ruby3.5", "ruby2.6", "dotnetcore1.0", "python3.7", "nodejs8.10", "nasa", "ruby2.7",
    "python2.7-greengrass", "dotnetcore2.0", "python3.8", "java21", "dotnet6",
    "dotnetcore2.1", "python3.9", "java11", "nodejs6.10", "provided", "dotnetcore3.1",
    "dotnet8", "java25", "java17", "nodejs", "nodejs4.3", "java8.al2", "go1.x", "dotnet10",
    "nodejs20.x", "go1.9", "byol", "nodejs10.x", "provided.al2023", "nodejs22.x",
    "python3.10", "java8", "nodejs12.x", "python3.11", "nodejs24.x", "nodejs8.x",
    "python3.12", "nodejs14.x", "nodejs8.9", "nodejs26.x", "python3.13", "python3.14",
    "nodejs16.x", "python3.15", "provided.al2", "nodejs4.3-edge", "nodejs18.x", "ruby3.2",
    "python3.4", "ruby3.3", "ruby3.4", "ruby2.5", "python3.6", "python2.7",
)  # fmt: skip

# What PublishLayerVersion's message lists: the runtimes AWS supports today.
LAYER_RUNTIMES_SHOWN = (
    "nodejs20.x", "python3.14", "provided.al2023", "python3.12", "python3.13", "nodejs24.x",
    "nodejs22.x", "java25", "python3.10", "python3.11", "java21", "ruby3.3", "ruby3.4",
    "ruby3.2", "python3.8", "python3.9", "java17", "nodejs16.x", "dotnet10", "dotnet8",
    "java11", "dotnet6", "nodejs18.x", "provided.al2", "java8.al2",
)  # fmt: skip

# AWS reports PublishLayerVersion's members in its own model's order.
PUBLISH_ORDER = (
    "LayerName", "Description", "Content", "CompatibleRuntimes", "LicenseInfo",
    "CompatibleArchitectures",
)  # fmt: skip


def per_operation(
    overrides: Mapping[str, Mapping[str, Any]], skip_enum: frozenset[str]
) -> dict[str, tuple[Overrides, frozenset[str]]]:
    """(overrides, skip_enum) for the operations whose rules differ from the server's."""
    listing: Overrides = {**overrides, "Runtime": {"enum": list(AWS_RUNTIMES)}}
    publishing: Overrides = {
        **overrides,
        "PublishLayerVersionRequest": {"order": list(PUBLISH_ORDER)},
        "CompatibleRuntimes": {
            "enum": list(AWS_RUNTIMES),
            "enum_shown": list(LAYER_RUNTIMES_SHOWN),
        },
    }
    checked_here = skip_enum - {"Runtime"}
    return {
        "ListLayers": (listing, checked_here),
        "ListLayerVersions": (listing, checked_here),
        "PublishLayerVersion": (publishing, skip_enum),
    }
