"""Invoke: resolve the function version, check it can run, lease an environment, run it.

Only RequestResponse and DryRun are served here; Event (asynchronous invocation)
belongs to the durable queue, which does not exist yet.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lambdaplane import ids
from lambdaplane.api.jackson import describe_json_error
from lambdaplane.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    LambdaError,
    NotImplementedYet,
    ResourceConflictException,
    TooManyRequestsException,
)
from lambdaplane.invoke import tracing
from lambdaplane.invoke.environment import EnvironmentGone, InvokeRequest, Outcome
from lambdaplane.invoke.image import FunctionImage
from lambdaplane.invoke.logformat import billed_ms
from lambdaplane.invoke.otlp import InvocationTiming, SpanExport
from lambdaplane.invoke.pools import EnvironmentPools
from lambdaplane.metrics import LambdaMetrics
from lambdaplane.service.function_layers import LayerRefs
from lambdaplane.service.functions import FunctionService
from lambdaplane.service.runtimes import RuntimeCatalog
from lambdaplane.store.functions import LATEST, StoredFunction
from lambdaplane.usage.recorder import UsageRecorder

MAX_SYNC_PAYLOAD_BYTES = 6_291_456
MAX_ASYNC_PAYLOAD_BYTES = 1_048_576


class RequestTooLargeException(LambdaError):
    code = "RequestTooLargeException"
    status = 413
    error_type = "User"
    message_key = "message"


@dataclass(frozen=True)
class InvokeResult:
    status: int
    payload: bytes
    executed_version: str
    function_error: str | None = None
    log_result: str | None = None  # base64 of the log tail, when asked for


class InvokeService:
    def __init__(
        self,
        functions: FunctionService,
        pools: EnvironmentPools,
        runtimes: RuntimeCatalog,
        unpacked: Callable[[str], Path],
        metrics: LambdaMetrics | None = None,
        opt_dir: Callable[[LayerRefs | None], Path | None] | None = None,
        spans: SpanExport | None = None,
        usage: UsageRecorder | None = None,
    ) -> None:
        self._functions = functions
        self._pools = pools
        self._runtimes = runtimes
        self._unpacked = unpacked
        self._images: dict[tuple[str, str], tuple[str, FunctionImage]] = {}
        self._enqueue: Callable[[str, str, str, bytes, str | None], None] | None = None
        self._metrics = metrics
        self._usage = usage  # a record per invocation, for the bill
        self._opt_dir = opt_dir  # a function's layers merged, for /opt
        self._spans = spans  # OTLP export of each invocation, when configured

    def accept_events_with(
        self, enqueue: Callable[[str, str, str, bytes, str | None], None]
    ) -> None:
        """Where InvocationType=Event stores events: (name, qualifier, request id, payload)."""
        self._enqueue = enqueue

    def qualified_arn(self, function_name: str, qualifier: str) -> str:
        return self._functions.scope.function_arn(function_name, qualifier)

    def check_payload(self, payload: bytes, limit: int = MAX_SYNC_PAYLOAD_BYTES) -> None:
        """AWS's limits and JSON check on an invocation's payload."""
        if len(payload) > limit:
            raise RequestTooLargeException(
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
            )
        if payload:
            problem = describe_json_error(payload)
            if problem is not None:
                raise InvalidRequestContentException(
                    f"Could not parse request body into json: Could not parse payload into json: {problem}"
                )

    def _image(self, stored: StoredFunction) -> FunctionImage:
        """The image of a stored version, rebuilt only when its revision changes."""
        cached = self._images.get((stored.name, stored.version))
        if cached is not None and cached[0] == stored.revision_id:
            return cached[1]
        config = stored.config
        runtime = self._runtimes.get(config.get("Runtime") or "")
        if runtime is None:
            raise InvalidParameterValueException(
                f"The runtime {config.get('Runtime')} of this function is not available on this host."
            )
        layers = config.get("Layers")
        opt_dir = self._opt_dir(layers) if layers and self._opt_dir is not None else None
        image = FunctionImage.from_config(
            config, runtime, self._unpacked(stored.code_sha256), opt_dir
        )
        self._images[(stored.name, stored.version)] = (stored.revision_id, image)
        return image

    def resolve(self, function_name: str, qualifier: str | None) -> StoredFunction:
        ref = self._functions.scope.parse(function_name, qualifier)
        try:
            stored = self._functions.load_for_invoke(function_name, qualifier)
        except LambdaError as err:
            if err.code == "ResourceNotFoundException" and "Function not found" in (
                err.message or ""
            ):
                raise self._functions.scope.not_found(ref.name, ref.qualifier or LATEST) from None
            raise
        if stored.state != "Active":
            raise ResourceConflictException(
                "The operation cannot be performed at this time. The function is currently in the "
                f"following state: {stored.state}"
            )
        return stored

    def accept_event(
        self,
        stored: StoredFunction,
        payload: bytes,
        request_id: str,
        qualifier: str | None = None,
        trace_header: str | None = None,
    ) -> InvokeResult:
        """Store an asynchronous invocation durably; 202 once it is committed.

        An event for an alias stays addressed to the alias: its routing picks the version
        when the event runs, and the function sees the alias's ARN. The caller's trace
        header is kept with it, so every attempt continues the caller's trace.
        """
        self.check_payload(payload, MAX_ASYNC_PAYLOAD_BYTES)
        if self._enqueue is None:
            raise NotImplementedYet("Asynchronous invocation is not available on this server.")
        self._enqueue(
            stored.name, qualifier or stored.version, request_id, payload or b"{}", trace_header
        )
        return InvokeResult(202, b"", stored.version)

    async def invoke(
        self,
        function_name: str,
        qualifier: str | None,
        payload: bytes,
        *,
        invocation_type: str = "RequestResponse",
        tail: bool = False,
        client_context: str | None = None,
        request_id: str | None = None,
        trace_header: str | None = None,
    ) -> InvokeResult:
        """Run one invocation; ``trace_header`` is the caller's X-Amzn-Trace-Id, if any."""
        stored = self.resolve(function_name, qualifier)
        ref = self._functions.scope.parse(function_name, qualifier)
        if invocation_type == "DryRun":
            return InvokeResult(204, b"", stored.version)
        if invocation_type == "Event":
            return self.accept_event(
                stored, payload, request_id or ids.request_id(), ref.qualifier, trace_header
            )
        self.check_payload(payload)
        if client_context is not None:
            client_context = _decode_client_context(client_context)
        image = self._image(stored)
        request_id = request_id or ids.request_id()
        trace = tracing.for_invocation(trace_header, image.tracing_active, time.time())
        # The ARN the caller used: unqualified, or with its version or alias.
        invoked_arn = self._functions.scope.function_arn(ref.name, ref.qualifier)
        started_ns = invoke_ns = time.time_ns()  # the phases' times, for the spans
        for attempt in range(3):  # An idle environment may die between lease and use.
            acquire_ns = time.time_ns()
            try:
                env, failure = await self._pools.acquire(image)
            except TooManyRequestsException:
                if self._metrics is not None:
                    self._metrics.throttled(stored.name, image.version)
                raise
            ready_ns, init_ms = time.time_ns(), env.init_duration_ms  # init_ms: a cold start
            if failure is not None:
                outcome = failure
                env.report_failed_init(request_id, failure)
                break
            try:
                invoke_ns = time.time_ns()
                outcome = await env.invoke(
                    InvokeRequest(
                        request_id=request_id,
                        payload=payload or b"{}",
                        client_context=client_context,
                        trace_id=trace.header,
                        invoked_arn=invoked_arn,
                    )
                )
            except EnvironmentGone:
                if attempt == 2:
                    raise
                continue
            finally:
                await self._pools.release(env)
            break
        log_result = base64.b64encode(env.tail()).decode() if tail else None
        if self._spans is not None:
            self._spans.record(
                InvocationTiming(
                    trace=trace,
                    function_name=stored.name,
                    version=image.version,
                    invoked_arn=invoked_arn,
                    request_id=request_id,
                    memory_mb=image.memory_mb,
                    environment_id=env.id,
                    start_ns=started_ns,
                    acquire_ns=acquire_ns,
                    ready_ns=ready_ns,
                    invoke_ns=0 if failure is not None else invoke_ns,
                    end_ns=time.time_ns(),
                    init_ms=init_ms,
                    invoke_duration_ms=outcome.duration_ms,
                    function_error=outcome.function_error,
                    error_type=outcome.error_type,
                )
            )
        self._record(stored, image, request_id, outcome)
        return InvokeResult(200, outcome.payload, image.version, outcome.function_error, log_result)

    def _record(
        self, stored: StoredFunction, image: FunctionImage, request_id: str, outcome: Outcome
    ) -> None:
        """Count the invocation in the metrics, and record what it bills (as REPORT says)."""
        if self._metrics is not None:
            init_ms = outcome.init_duration_ms
            self._metrics.invoked(
                stored.name,
                image.version,
                outcome.duration_ms / 1000,
                outcome.function_error is not None,
                None if init_ms is None else init_ms / 1000,
                outcome.max_memory_bytes,
            )
        if self._usage is not None:
            self._usage.add(
                (
                    int(time.time() * 1000),
                    stored.name,
                    image.version,
                    request_id,
                    billed_ms(outcome.duration_ms, outcome.init_duration_ms),
                    image.memory_mb,
                    (stored.config.get("Architectures") or ("x86_64",))[0],
                    image.tmp_mb,
                )
            )


def _decode_client_context(value: str) -> str:
    """X-Amz-Client-Context is base64 JSON; the runtime receives the JSON itself."""
    try:
        decoded = base64.b64decode(value, validate=True).decode()
        if not isinstance(json.loads(decoded), dict):
            raise ValueError("not an object")
    except ValueError:
        raise InvalidRequestContentException(
            "Client context must be a valid Base64-encoded JSON object."
        ) from None
    return decoded
