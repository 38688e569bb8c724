"""Invoke (synchronous and DryRun)."""

from __future__ import annotations

from typing import Any

from lambdaplane.handlers.base import RequestContext


async def invoke(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    result = await ctx.services.invoke.invoke(
        req["FunctionName"],
        req.get("Qualifier"),
        req.get("Payload") or b"",
        invocation_type=req.get("InvocationType") or "RequestResponse",
        tail=req.get("LogType") == "Tail",
        client_context=req.get("ClientContext"),
        request_id=ctx.request_id,  # AWS: x-amzn-RequestId is the invocation's request id
        trace_header=ctx.trace_header,
    )
    output: dict[str, Any] = {
        "__status__": result.status,
        "StatusCode": result.status,
        "ExecutedVersion": result.executed_version,
    }
    if result.status in (202, 204):
        return output
    output["Payload"] = result.payload
    if result.function_error is not None:
        output["FunctionError"] = result.function_error
    if result.log_result is not None:
        output["LogResult"] = result.log_result
    return output


async def invoke_async(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    """The deprecated InvokeAsync: the same durable queue as InvocationType=Event."""
    await ctx.services.invoke.invoke(
        req["FunctionName"],
        None,
        req.get("InvokeArgs") or b"",
        invocation_type="Event",
        request_id=ctx.request_id,
        trace_header=ctx.trace_header,
    )
    return {"__status__": 202, "Status": 202}
