"""CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, Update*, DeleteFunction."""

from __future__ import annotations

from typing import Any

from lambdaplane.handlers.base import RequestContext


def create_function(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.functions.create_function(req)


def get_function(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    now = services.clock()

    def code_url(sha256_hex: str) -> str:
        return services.code_urls.url(ctx.base_url, sha256_hex, now)

    return services.functions.get_function(req["FunctionName"], req.get("Qualifier"), code_url)


def get_function_configuration(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.functions.get_configuration(req["FunctionName"], req.get("Qualifier"))


def list_functions(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.functions.list_functions(
        req.get("Marker"), req.get("MaxItems"), all_versions=req.get("FunctionVersion") == "ALL"
    )


def update_function_code(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.functions.update_function_code(req)


def update_function_configuration(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.functions.update_function_configuration(req)


def delete_function(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    services.functions.delete_function(req["FunctionName"], req.get("Qualifier"))
    ref = services.functions.scope.parse(req["FunctionName"], req.get("Qualifier"))
    if ref.qualifier is None:
        # A function re-created under the same name starts without the old async settings.
        services.event_configs.forget_function(ref.name)
    else:
        services.event_configs.forget_qualifier(ref.name, ref.qualifier)
    return {"__status__": 204}


def publish_version(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.functions.publish_version(req)


def list_versions_by_function(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.functions.list_versions(
        req["FunctionName"], req.get("Marker"), req.get("MaxItems")
    )
