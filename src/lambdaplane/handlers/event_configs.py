"""Put/Update/Get/Delete/ListFunctionEventInvokeConfigs."""

from __future__ import annotations

from typing import Any

from lambdaplane.handlers.base import RequestContext
from lambdaplane.service.event_configs import InvokeConfigChange


def put_function_event_invoke_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    return services.event_configs.put(
        req["FunctionName"],
        req.get("Qualifier"),
        InvokeConfigChange.from_request(req),
        services.clock(),
    )


def update_function_event_invoke_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    return services.event_configs.update(
        req["FunctionName"],
        req.get("Qualifier"),
        InvokeConfigChange.from_request(req),
        services.clock(),
    )


def get_function_event_invoke_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.event_configs.get(req["FunctionName"], req.get("Qualifier"))


def delete_function_event_invoke_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    ctx.services.event_configs.delete(req["FunctionName"], req.get("Qualifier"))
    return {"__status__": 204}


def list_function_event_invoke_configs(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.event_configs.list(
        req["FunctionName"], req.get("Marker"), req.get("MaxItems")
    )
