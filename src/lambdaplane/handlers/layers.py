"""PublishLayerVersion, Get/List/Delete of layer versions, and their permission policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdaplane.handlers.base import RequestContext


def _code_url(ctx: RequestContext) -> Callable[[str], str]:
    services = ctx.services
    now = services.clock()
    return lambda sha256_hex: services.code_urls.url(ctx.base_url, sha256_hex, now)


def publish_layer_version(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.layers.publish(req, _code_url(ctx))


def get_layer_version(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.layers.get(req["LayerName"], req["VersionNumber"], _code_url(ctx))


def get_layer_version_by_arn(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.layers.get_by_arn(req["Arn"], _code_url(ctx))


def list_layers(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.layers.list_layers(
        req.get("CompatibleRuntime"),
        req.get("CompatibleArchitecture"),
        req.get("Marker"),
        req.get("MaxItems"),
    )


def list_layer_versions(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.layers.list_versions(
        req["LayerName"],
        req.get("CompatibleRuntime"),
        req.get("CompatibleArchitecture"),
        req.get("Marker"),
        req.get("MaxItems"),
    )


def delete_layer_version(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    ctx.services.layers.delete(req["LayerName"], req["VersionNumber"])
    return {}


def add_layer_version_permission(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.layers.add_permission(req)


def remove_layer_version_permission(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    ctx.services.layers.remove_permission(
        req["LayerName"], req["VersionNumber"], req["StatementId"], req.get("RevisionId")
    )
    return {}


def get_layer_version_policy(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.layers.get_policy(req["LayerName"], req["VersionNumber"])
