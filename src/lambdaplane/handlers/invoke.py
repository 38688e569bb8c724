"""Invoke (synchronous and DryRun), and InvokeWithResponseStream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from lambdaplane.api import eventstream
from lambdaplane.handlers.base import RequestContext
from lambdaplane.invoke.service import StreamedInvoke


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


async def invoke_with_response_stream(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    """InvokeWithResponseStream: the response as PayloadChunk events, then InvokeComplete.

    Errors before the function runs (unknown function, bad payload, throttling) are
    ordinary JSON errors; once it runs the answer is 200 and a failure is InvokeComplete's
    ErrorCode/ErrorDetails. DryRun runs the function too: AWS's streaming API does (what
    SAM's integration tests against AWS record), unlike Invoke's 204.
    """
    streamed = await ctx.services.invoke.invoke_stream(
        req["FunctionName"],
        req.get("Qualifier"),
        req.get("Payload") or b"",
        request_id=ctx.request_id,
        trace_header=ctx.trace_header,
        tail=req.get("LogType") == "Tail",
        client_context=req.get("ClientContext"),
    )
    headers = [
        (b"content-type", eventstream.CONTENT_TYPE),
        (b"x-amz-executed-version", streamed.executed_version.encode()),
    ]
    return {"__stream__": eventstream.StreamedResponse(200, headers, _events(streamed))}


async def _events(streamed: StreamedInvoke) -> AsyncIterator[bytes]:
    async for data in streamed.chunks():
        for message in eventstream.payload_chunks(data):
            yield message
    details = (
        None if streamed.error_body is None else streamed.error_body.decode("utf-8", "replace")
    )
    yield eventstream.invoke_complete(streamed.error_type, details, streamed.log_result)
