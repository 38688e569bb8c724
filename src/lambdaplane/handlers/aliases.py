"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

from typing import Any

from lambdaplane.handlers.base import RequestContext


def create_alias(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.aliases.create(req)


def get_alias(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.aliases.get(req["FunctionName"], req["Name"])


def update_alias(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.aliases.update(req)


def delete_alias(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    ctx.services.aliases.delete(req["FunctionName"], req["Name"])
    return {"__status__": 204}


def list_aliases(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.aliases.list(
        req["FunctionName"], req.get("FunctionVersion"), req.get("Marker"), req.get("MaxItems")
    )
