"""TagResource, UntagResource, ListTags."""

from __future__ import annotations

from typing import Any

from lambdaplane.handlers.base import RequestContext


def tag_resource(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    ctx.services.tags.tag(req["Resource"], dict(req.get("Tags") or {}))
    return {"__status__": 204}


def untag_resource(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    ctx.services.tags.untag(req["Resource"], list(req.get("TagKeys") or []))
    return {"__status__": 204}


def list_tags(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": ctx.services.tags.list(req["Resource"])}
