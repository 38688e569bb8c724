"""Invoke: resolve the function version, check it can run, lease an environment, run it.

Only RequestResponse and DryRun are served here; Event (asynchronous invocation)
belongs to the durable queue, which does not exist yet.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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
from lambdaplane.invoke.environment import Environment, EnvironmentGone, InvokeRequest, Outcome
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
# A streamed response's reader may fall this far behind before the runtime is held back
# (its writes block until the reader is down to the low water mark).
STREAM_HIGH_WATER = 1 << 20
STREAM_LOW_WATER = 256 << 10
# AWS: "The first 6 MB of your function's response has uncapped bandwidth. After this
# initial burst, Lambda streams your response at a maximum rate of 2 MBps."
STREAM_UNCAPPED_BYTES = 6 << 20
MAX_ASYNC_PAYLOAD_BYTES = 1_048_576
DEFAULT_STREAM_CONTENT_TYPE = "application/octet-stream"

log = logging.getLogger("lambdaplane.invoke")


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


class StreamedInvoke:
    """A streamed invocation under way (InvokeWithResponseStream, RESPONSE_STREAM URLs).

    ``invoke_stream`` returns it once the runtime has begun its response (or the
    invocation is over), so ``content_type`` is known. ``chunks()`` yields the body as
    the runtime streams it (a buffered function's response is one chunk); once it ends,
    ``error_type``/``error_body`` say whether the function failed, before or mid-stream,
    and ``log_result`` holds the base64 log tail when it was asked for. The environment
    stays leased until the invocation ends, whether or not the chunks are read: a
    consumer that stops reading (a client gone) only makes the rest be dropped.
    """

    def __init__(
        self,
        executed_version: str,
        request_id: str,
        pause: Callable[[], None] | None = None,
        resume: Callable[[], None] | None = None,
        rate: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.executed_version = executed_version
        # Bytes a second past the first STREAM_UNCAPPED_BYTES (0: no cap). The reader is
        # held back to that pace; the runtime then is too, by the flow control below.
        self._rate = rate
        self._sleep = sleep
        # Flow control: when the reader falls STREAM_HIGH_WATER behind, ``pause`` stops
        # reading the environment's output (so the runtime's writes block, end to end);
        # ``resume`` once it has caught up to STREAM_LOW_WATER.
        self._pause = pause
        self._resume = resume
        self._buffered = 0
        self._paused = False
        self.request_id = request_id
        self.content_type = DEFAULT_STREAM_CONTENT_TYPE
        self.error_type: str | None = None
        self.error_body: bytes | None = None
        self.log_result: str | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done = asyncio.Event()
        self._abandoned = False
        self._task: asyncio.Task[None] | None = None

    # -- the environment's sink --------------------------------------------------------

    def started(self, content_type: str | None) -> None:
        if content_type:
            self.content_type = content_type
        if not self._started.done():
            self._started.set_result(None)

    def chunk(self, data: bytes) -> None:
        if data and not self._abandoned:
            self._queue.put_nowait(data)
            self._buffered += len(data)
            if self._buffered > STREAM_HIGH_WATER and not self._paused and self._pause:
                self._paused = True
                self._pause()

    def _drained(self, size: int) -> None:
        self._buffered -= size
        if self._paused and (self._buffered <= STREAM_LOW_WATER or self._abandoned):
            self._paused = False
            if self._resume is not None:
                self._resume()

    # -- the consumer ------------------------------------------------------------------

    async def chunks(self) -> AsyncIterator[bytes]:
        """The response body as it arrives; ends when the invocation does, paced to
        ``rate`` past the uncapped first bytes."""
        loop = asyncio.get_running_loop()
        sent = 0
        capped_from: float | None = None  # when the stream passed the uncapped bytes
        try:
            while True:
                data = await self._queue.get()
                if data is None:
                    return
                sent += len(data)
                if self._rate and sent > STREAM_UNCAPPED_BYTES:
                    now = loop.time()
                    if capped_from is None:
                        capped_from = now
                    due = capped_from + (sent - STREAM_UNCAPPED_BYTES) / self._rate
                    if due > now:
                        await self._sleep(due - now)
                self._drained(len(data))
                yield data
        finally:
            if not self._done.is_set():
                self._abandoned = True  # nobody reads the rest: drop it as it comes
                self._drained(0)

    async def wait(self) -> None:
        """Until the invocation is over (its error, tail and metrics are recorded)."""
        await self._done.wait()

    def _finish(self, outcome: Outcome, log_result: str | None) -> None:
        if outcome.function_error is not None:
            self.error_type = outcome.error_type or _error_type_of(outcome.payload)
            self.error_body = outcome.payload
        elif not outcome.streamed and outcome.payload and not self._abandoned:
            self._queue.put_nowait(outcome.payload)  # a buffered response: one chunk
        self.log_result = log_result
        self._queue.put_nowait(None)
        self._done.set()
        if not self._started.done():
            self._started.set_result(None)


def _error_type_of(payload: bytes) -> str:
    """The errorType of an error document (awslambdaric posts no error-type header)."""
    try:
        document = json.loads(payload)
    except ValueError:
        return "Unhandled"
    error_type = document.get("errorType") if isinstance(document, dict) else None
    return error_type if isinstance(error_type, str) and error_type else "Unhandled"


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
        stream_rate: float = 0.0,
    ) -> None:
        self._functions = functions
        self._stream_rate = stream_rate  # bytes/s of a streamed response past its first 6 MB
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

    def image(self, stored: StoredFunction) -> FunctionImage:
        """The image a stored version's environments start from (what invocations use)."""
        return self._image(stored)

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

    def _prepare(
        self,
        stored: StoredFunction,
        name: str,
        qualifier: str | None,
        payload: bytes,
        request_id: str | None,
        trace_header: str | None,
        client_context: str | None,
    ) -> tuple[FunctionImage, str, tracing.InvocationTrace, str, str | None]:
        """What a synchronous invocation needs before it leases an environment: the checked
        payload and client context, the image, the request id, the trace, and the ARN the
        caller used (unqualified, or with its version or alias)."""
        self.check_payload(payload)
        if client_context is not None:
            client_context = _decode_client_context(client_context)
        image = self._image(stored)
        trace = tracing.for_invocation(trace_header, image.tracing_active, time.time())
        invoked_arn = self._functions.scope.function_arn(name, qualifier)
        return image, request_id or ids.request_id(), trace, invoked_arn, client_context

    async def _lease(
        self, stored: StoredFunction, image: FunctionImage
    ) -> tuple[Environment, Outcome | None]:
        """An environment from the pools; a throttle, and whether a version with provisioned
        concurrency got a provisioned environment or spilled over, go in the metrics."""
        try:
            env, failure = await self._pools.acquire(image)
        except TooManyRequestsException:
            if self._metrics is not None:
                self._metrics.throttled(stored.name, image.version)
            raise
        if self._metrics is not None:
            role = self._pools.provisioned_role(env)
            if role is not None:
                self._metrics.provisioned_invocation(stored.name, image.version, spillover=not role)
        return env, failure

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
        image, request_id, trace, invoked_arn, client_context = self._prepare(
            stored, ref.name, ref.qualifier, payload, request_id, trace_header, client_context
        )
        started_ns = invoke_ns = time.time_ns()  # the phases' times, for the spans
        for attempt in range(3):  # An idle environment may die between lease and use.
            acquire_ns = time.time_ns()
            env, failure = await self._lease(stored, image)
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
        self._record(stored, image, env, request_id, outcome)
        return InvokeResult(200, outcome.payload, image.version, outcome.function_error, log_result)

    async def invoke_stream(
        self,
        function_name: str,
        qualifier: str | None,
        payload: bytes,
        *,
        request_id: str | None = None,
        trace_header: str | None = None,
        tail: bool = False,
        client_context: str | None = None,
    ) -> StreamedInvoke:
        """Start one invocation whose response is streamed; see ``StreamedInvoke``.

        Resolution, payload checks and throttling raise the same LambdaErrors as
        ``invoke`` before anything is streamed; a function's failure (at init, before or
        mid-stream, a timeout) is ``error_type``/``error_body`` instead.
        """
        stored = self.resolve(function_name, qualifier)
        ref = self._functions.scope.parse(function_name, qualifier)
        image, request_id, trace, invoked_arn, client_context = self._prepare(
            stored, ref.name, ref.qualifier, payload, request_id, trace_header, client_context
        )
        started_ns = time.time_ns()
        for attempt in range(3):  # An idle environment may die between lease and use.
            acquire_ns = time.time_ns()
            env, failure = await self._lease(stored, image)
            if failure is None and env.dead and attempt < 2:
                await self._pools.release(env)
                continue
            break
        streamed = StreamedInvoke(
            image.version,
            request_id,
            pause=env.pause_output,
            resume=env.resume_output,
            rate=self._stream_rate,
        )
        request = InvokeRequest(
            request_id=request_id,
            payload=payload or b"{}",
            client_context=client_context,
            trace_id=trace.header,
            invoked_arn=invoked_arn,
        )
        timing = InvocationTiming(
            trace=trace,
            function_name=stored.name,
            version=image.version,
            invoked_arn=invoked_arn,
            request_id=request_id,
            memory_mb=image.memory_mb,
            environment_id=env.id,
            start_ns=started_ns,
            acquire_ns=acquire_ns,
            ready_ns=time.time_ns(),
            invoke_ns=0,
            end_ns=0,
            init_ms=env.init_duration_ms,
            invoke_duration_ms=0.0,
            function_error=None,
            error_type=None,
        )
        streamed._task = asyncio.create_task(
            self._run_stream(stored, image, env, failure, request, streamed, tail, timing),
            name=f"lambdaplane-stream-{request_id}",
        )
        await asyncio.shield(streamed._started)
        return streamed

    async def _run_stream(
        self,
        stored: StoredFunction,
        image: FunctionImage,
        env: Environment,
        failure: Outcome | None,
        request: InvokeRequest,
        streamed: StreamedInvoke,
        tail: bool,
        timing: InvocationTiming,
    ) -> None:
        """The rest of a streamed invocation: run it, release the environment, record it."""
        outcome = Outcome(
            json.dumps(
                {"errorType": "ServiceException", "errorMessage": "Internal error"}
            ).encode(),
            "Unhandled",
            error_type="ServiceException",
        )
        log_result: str | None = None
        try:
            if failure is not None:
                outcome = failure
                env.report_failed_init(request.request_id, failure)
            else:
                invoke_ns = time.time_ns()
                try:
                    outcome = await env.invoke(request, streamed)
                except EnvironmentGone:
                    message = f"RequestId: {request.request_id} Error: Runtime exited without providing a reason"
                    outcome = Outcome(
                        json.dumps(
                            {"errorType": "Runtime.ExitError", "errorMessage": message}
                        ).encode(),
                        "Unhandled",
                        False,
                        "error",
                        "Runtime.ExitError",
                    )
                finally:
                    await self._pools.release(env)
                timing = dataclasses.replace(timing, invoke_ns=invoke_ns)
            log_result = base64.b64encode(env.tail()).decode() if tail else None
            if self._spans is not None:
                self._spans.record(
                    dataclasses.replace(
                        timing,
                        end_ns=time.time_ns(),
                        invoke_duration_ms=outcome.duration_ms,
                        function_error=outcome.function_error,
                        error_type=outcome.error_type,
                    )
                )
            self._record(stored, image, env, request.request_id, outcome)
        except Exception:
            log.exception("streamed invocation %s failed", request.request_id)
        finally:
            streamed._finish(outcome, log_result)

    def _record(
        self,
        stored: StoredFunction,
        image: FunctionImage,
        env: Environment,
        request_id: str,
        outcome: Outcome,
    ) -> None:
        """Count the invocation in the metrics, and record what it bills (as REPORT says;
        a provisioned environment's at the provisioned duration price)."""
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
            restore = outcome.restore_duration_ms  # a SnapStart restore's first invocation
            billed = billed_ms(outcome.duration_ms, outcome.init_duration_ms)
            if restore is not None:  # REPORT's Billed Duration has the Billed Restore Duration
                billed += math.ceil(restore)
            self._usage.add(
                (
                    int(time.time() * 1000),
                    stored.name,
                    image.version,
                    request_id,
                    billed,
                    image.memory_mb,
                    (stored.config.get("Architectures") or ("x86_64",))[0],
                    image.tmp_mb,
                    self._pools.provisioned_role(env) is True,
                    restore is not None,
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
