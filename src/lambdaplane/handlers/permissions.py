"""AddPermission, RemovePermission and GetPolicy: a function's resource-based policy."""

from __future__ import annotations

from typing import Any

from lambdaplane.handlers.base import RequestContext
from lambdaplane.service.permissions import PermissionService


def _service(ctx: RequestContext) -> PermissionService:
    service = ctx.services.permissions
    assert service is not None, "the app factory wires PermissionService"
    return service


def add_permission(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).add_permission(req)


def remove_permission(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _service(ctx).remove_permission(
        req["FunctionName"], req["StatementId"], req.get("Qualifier"), req.get("RevisionId")
    )
    return {}


def get_policy(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).get_policy(req["FunctionName"], req.get("Qualifier"))
