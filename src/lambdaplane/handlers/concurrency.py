"""PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency."""

from __future__ import annotations

from typing import Any

from lambdaplane.errors import NotImplementedYet
from lambdaplane.handlers.base import RequestContext
from lambdaplane.service.concurrency import ConcurrencyService


def _service(ctx: RequestContext) -> ConcurrencyService:
    if ctx.services.concurrency is None:
        raise NotImplementedYet("Reserved concurrency is not available on this server.")
    return ctx.services.concurrency


def put_function_concurrency(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).put(req["FunctionName"], req["ReservedConcurrentExecutions"])


def get_function_concurrency(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _service(ctx).get(req["FunctionName"])


def delete_function_concurrency(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _service(ctx).delete(req["FunctionName"])
    return {"__status__": 204}
