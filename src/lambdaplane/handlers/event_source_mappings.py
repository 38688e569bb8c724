"""Create/Get/Update/Delete/ListEventSourceMappings."""

from __future__ import annotations

from typing import Any

from lambdaplane.errors import NotImplementedYet
from lambdaplane.handlers.base import RequestContext
from lambdaplane.service.event_source_mappings import EventSourceMappingService


def _service(ctx: RequestContext) -> EventSourceMappingService:
    service = ctx.services.event_source_mappings
    if service is None:
        raise NotImplementedYet("Event source mappings are not available on this server.")
    return service


def create_event_source_mapping(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).create(req, ctx.services.clock())


def get_event_source_mapping(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).get(req["UUID"])


def update_event_source_mapping(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).update(req["UUID"], req, ctx.services.clock())


def delete_event_source_mapping(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).delete(req["UUID"])


def list_event_source_mappings(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).list(
        req.get("FunctionName"), req.get("EventSourceArn"), req.get("Marker"), req.get("MaxItems")
    )
