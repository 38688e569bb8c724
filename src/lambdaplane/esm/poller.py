"""The poller contract: what a source's poller implements and what the server gives it.

A poller reads one source for one mapping and invokes the mapped function with
batches. It is written against two names only:

``Poller`` (implement it)::

    class Poller(Protocol):
        async def run(self, ctx: PollerContext) -> None: ...

  ``run`` loops until ``ctx.stopping`` is set, then returns. It must checkpoint (in the
  source itself, e.g. by deleting SQS messages, or in ``ctx.checkpoints``) so that a new
  ``run`` after a restart resumes where the last one stopped. An exception out of ``run``
  is logged by the manager, which runs the poller again after a back-off: a poller never
  takes the server down, and never needs to catch everything itself. A poller is built
  per run by ``POLLERS[kind](mapping)`` (``lambdaplane.esm.manager``), so it may keep
  state in attributes.

``PollerContext`` (use it):

- ``mapping``: the ``MappingConfig`` (batch size, window, filters, ...).
- ``await invoke(payload) -> InvokeOutcome``: a synchronous invoke of the mapped
  function and qualifier, through the same path as the Invoke API (concurrency,
  logs, metrics). ``InvokeOutcome.function_error`` is set when the function failed
  (``Unhandled``/``Handled``); its ``payload`` is the response. Raises ``Throttled``
  when the function or account is at its concurrency limit, ``InvokeUnavailable``
  when it cannot run at all (deleted function, not Active, payload too large): retry
  the same batch later (``await ctx.sleep(...)``), do not drop it.
- ``checkpoints``: durable string values per key (shard id, partition, ...), stored
  with the mapping and deleted with it: ``await get(key)``, ``await put(key, value)``,
  ``await put_many({...})``, ``await all()``, ``await delete(key)``.
- ``metrics``: ``polled(n)``, ``filtered_out(n)``, ``invoked(batch_size)``,
  ``failed(batch_size)``, ``iterator_age(seconds)`` → ``lambda_esm_*`` on /metrics.
- ``endpoint(service) -> str | None``: the endpoint configured for ``"sqs"``,
  ``"kinesis"``, ``"dynamodbstreams"``, ``"dynamodb"``, ``"sns"``;
  ``client(service)``: a botocore client for it (region, dummy credentials, that
  endpoint), shared and closed by the server; raises ``SourceUnavailable`` when no
  endpoint is configured. Its calls block: run them with ``await ctx.blocking(fn,
  *args, **kwargs)``, which uses the pollers' own threads (long polls must not starve
  the default executor). ``broker(arn) -> str | None``: the URL configured for an
  Amazon MQ broker (``--mq-broker``).
- ``secret(arn) -> dict | None``: the credentials configured for a secret ARN
  (``{"username": ..., "password": ...}``, see ``lambdaplane.esm.model``).
- ``await function_role() -> str | None``: the mapped function's execution role (the
  ``invokeIdentityArn`` of Kinesis events); None when the function cannot be read.
- ``await send_to_destination(record, destination_arn) -> bool``: send an on-failure
  record (a JSON-able dict in AWS's shape) to an SQS queue or SNS topic; False
  (logged) if it did not arrive.
- ``await report(result)``: set the mapping's ``LastProcessingResult`` (``"OK"``,
  ``"PROBLEM: Function call failed"``, ...); stored only when it changes.
- ``stopping``: an ``asyncio.Event``; ``await ctx.sleep(seconds)`` sleeps, returning
  True early when stopping is set. ``clock()`` is epoch seconds (injectable).
- ``region``, ``account_id``: for ``awsRegion`` and ARNs in events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from lambdaplane.esm.model import MappingConfig

log = logging.getLogger("lambdaplane.esm")

T = TypeVar("T")


class Poller(Protocol):
    """Reads one mapping's source and invokes its function until ``ctx.stopping``."""

    async def run(self, ctx: PollerContext) -> None: ...


@dataclass(frozen=True)
class InvokeOutcome:
    """What one invocation of the mapped function answered."""

    status: int
    payload: bytes
    function_error: str | None  # "Unhandled" / "Handled"; None on success
    executed_version: str
    request_id: str

    @property
    def ok(self) -> bool:
        return self.function_error is None


class InvokeUnavailable(Exception):
    """The function could not be invoked at all (deleted, not Active, payload refused);
    retry the batch later. ``message`` is the reason, for LastProcessingResult and logs."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Throttled(InvokeUnavailable):
    """The function or the account is at its concurrency limit: back off and retry."""


class SourceUnavailable(Exception):
    """The source cannot be reached as configured (e.g. no endpoint for its service)."""


class Checkpoints(Protocol):
    """Durable per-mapping key/value strings (shard id → sequence number, ...)."""

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str) -> None: ...

    async def put_many(self, values: Mapping[str, str]) -> None: ...

    async def all(self) -> dict[str, str]: ...

    async def delete(self, key: str) -> None: ...


class MappingMetrics(Protocol):
    """What a poller records; the server exports it as ``lambda_esm_*`` metrics."""

    def polled(self, records: int) -> None: ...

    def filtered_out(self, records: int) -> None: ...

    def invoked(self, batch_size: int) -> None: ...

    def failed(self, batch_size: int) -> None: ...

    def iterator_age(self, seconds: float) -> None: ...


class Blocking:
    """Runs blocking calls (source SDK calls, long polls) on daemon threads of their own.

    Daemon threads, because a 20-second long poll in flight must neither delay the
    server's exit nor hold one of the default executor's few threads. At most
    ``limit`` awaited calls run at once; the others wait their turn (a call whose
    caller was cancelled finishes on its thread unawaited).
    """

    def __init__(self, limit: int = 64) -> None:
        self._limit = asyncio.Semaphore(limit)

    async def __call__(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(value: T | None, error: BaseException | None) -> None:
            if future.cancelled():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)  # type: ignore[arg-type]

        def work() -> None:
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the awaiting task
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(settle, None, exc)
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(settle, value, None)

        async with self._limit:
            threading.Thread(target=work, name="lambdaplane-esm-io", daemon=True).start()
            return await future


async def _no_role() -> str | None:
    return None


@dataclass
class PollerContext:
    """Everything a poller may use; built by the manager for each run of a poller."""

    mapping: MappingConfig
    invoke: Callable[[bytes], Awaitable[InvokeOutcome]]
    checkpoints: Checkpoints
    metrics: MappingMetrics
    endpoint: Callable[[str], str | None]
    client: Callable[[str], Any]
    blocking: Blocking
    send_to_destination: Callable[[dict[str, Any], str], Awaitable[bool]]
    report: Callable[[str], Awaitable[None]]
    stopping: asyncio.Event
    secret: Callable[[str], dict[str, str] | None] = lambda arn: None
    broker: Callable[[str], str | None] = lambda arn: None
    function_role: Callable[[], Awaitable[str | None]] = lambda: _no_role()
    region: str = "us-east-1"
    account_id: str = "000000000000"
    clock: Callable[[], float] = time.time

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) if the poller is asked to stop."""
        if self.stopping.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), max(0.0, seconds))
        return self.stopping.is_set()
