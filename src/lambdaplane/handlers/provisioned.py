"""PutProvisionedConcurrencyConfig, GetProvisionedConcurrencyConfig,
DeleteProvisionedConcurrencyConfig, ListProvisionedConcurrencyConfigs."""

from __future__ import annotations

from typing import Any

from lambdaplane.handlers.base import RequestContext
from lambdaplane.service.provisioned import ProvisionedConcurrencyService


def _service(ctx: RequestContext) -> ProvisionedConcurrencyService:
    assert ctx.services.provisioned is not None, "the app factory wires provisioned"
    return ctx.services.provisioned


def put_provisioned_concurrency_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).put(
        req["FunctionName"], req["Qualifier"], req["ProvisionedConcurrentExecutions"]
    )


def get_provisioned_concurrency_config(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).get(req["FunctionName"], req["Qualifier"])


def delete_provisioned_concurrency_config(
    ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    _service(ctx).delete(req["FunctionName"], req["Qualifier"])
    return {"__status__": 204}


def list_provisioned_concurrency_configs(
    ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    return _service(ctx).list(req["FunctionName"], req.get("Marker"), req.get("MaxItems"))
