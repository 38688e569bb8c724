"""CreateFunctionUrlConfig, GetFunctionUrlConfig, UpdateFunctionUrlConfig,
DeleteFunctionUrlConfig, ListFunctionUrlConfigs."""

from __future__ import annotations

from typing import Any

from lambdaplane.handlers.base import RequestContext
from lambdaplane.service.url_configs import UrlConfigService


def _service(ctx: RequestContext) -> UrlConfigService:
    assert ctx.services.url_configs is not None, "the app factory wires url_configs"
    return ctx.services.url_configs


def create_function_url_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).create(req)


def get_function_url_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).get(req["FunctionName"], req.get("Qualifier"))


def update_function_url_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).update(req)


def delete_function_url_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _service(ctx).delete(req["FunctionName"], req.get("Qualifier"))
    return {"__status__": 204}


def list_function_url_configs(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).list(req["FunctionName"], req.get("Marker"), req.get("MaxItems"))
