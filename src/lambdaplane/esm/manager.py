"""The manager: one poller task per enabled mapping, in the server's lifespan.

The store is the truth. The API only writes rows (with a transient state: Creating,
Enabling, Updating, Disabling, Deleting) and calls ``notify()``; the manager
*reconciles*: it reads every mapping and makes the running pollers match, then
finishes each transient state (→ Enabled or Disabled, or deletes the row). The same
reconcile runs at start, so mappings survive restarts, and every few seconds, so
nothing depends on a notification arriving.

Pollers are found by source kind in ``POLLERS`` (``"sqs"``, ``"kinesis"``,
``"dynamodb"``, ``"mq"``, ``"rabbitmq"``, ``"kafka"``): a factory from a
``MappingConfig`` to a ``Poller`` (see ``lambdaplane.esm.poller`` for the contract).
A poller's ``run`` that raises is logged and run again after a back-off (1 s doubling
to 60 s); a poller is never allowed to take the server down. A changed mapping gets a
fresh poller: the old one is asked to stop (``ctx.stopping``), given a grace period,
then cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdaplane import ids
from lambdaplane.errors import LambdaError, TooManyRequestsException
from lambdaplane.esm.access import SourceClients
from lambdaplane.esm.activemq import ActiveMqPoller
from lambdaplane.esm.dynamodb import DynamoDBPoller
from lambdaplane.esm.kinesis import KinesisPoller
from lambdaplane.esm.metrics import EsmMetrics
from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.poller import (
    Blocking,
    InvokeOutcome,
    InvokeUnavailable,
    Poller,
    PollerContext,
    Throttled,
)
from lambdaplane.esm.rabbitmq import RabbitMqPoller
from lambdaplane.esm.sqs import SqsPoller
from lambdaplane.esm.states import TRANSIENT, State, settled
from lambdaplane.invoke.service import InvokeService
from lambdaplane.store.event_source_mappings import (
    EventSourceMappingRepository,
    StoredMapping,
    new_revision,
)

log = logging.getLogger("lambdaplane.esm")

PollerFactory = Callable[[MappingConfig], Poller]

# Source kind -> poller factory. Add a source by adding its entry here.
POLLERS: dict[str, PollerFactory] = {
    "sqs": SqsPoller,
    "kinesis": KinesisPoller,
    "dynamodb": DynamoDBPoller,
    "mq": ActiveMqPoller,
    "rabbitmq": RabbitMqPoller,
}

DeliverRecord = Callable[[dict[str, Any], str], Awaitable[bool]]


@dataclass(frozen=True)
class ManagerSettings:
    sweep_seconds: float = 5.0  # reconcile at least this often
    stop_grace_seconds: float = 3.0  # a stopping poller's time to finish its batch
    backoff: tuple[float, float] = (1.0, 60.0)  # restart delays of a crashing poller
    healthy_run_seconds: float = 60.0  # a run this long resets the back-off


def mapping_config(stored: StoredMapping, region: str, account_id: str) -> MappingConfig:
    return MappingConfig(
        uuid=stored.uuid,
        function_name=stored.function_name,
        qualifier=stored.qualifier,
        source_kind=stored.source_kind,
        config=stored.config,
        region=region,
        account_id=account_id,
    )


@dataclass
class _Running:
    mapping: MappingConfig
    stopping: asyncio.Event
    task: asyncio.Task[None]


class EsmManager:
    def __init__(
        self,
        *,
        repo: EventSourceMappingRepository,
        invoke: InvokeService,
        clients: SourceClients,
        metrics: EsmMetrics,
        region: str,
        account_id: str,
        deliver: DeliverRecord | None = None,
        secrets: Mapping[str, dict[str, str]] | None = None,
        brokers: Mapping[str, str] | None = None,
        forget: Callable[[str], None] | None = None,
        pollers: Mapping[str, PollerFactory] = POLLERS,
        settings: ManagerSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repo = repo
        self._invoke = invoke
        self._clients = clients
        self.metrics = metrics
        self._region = region
        self._account_id = account_id
        self._deliver = deliver
        self._secrets = dict(secrets or {})
        self._brokers = dict(brokers or {})
        self._forget = forget  # drops what hangs off a deleted mapping's ARN (its tags)
        self._pollers = pollers
        self._settings = settings or ManagerSettings()
        self._clock = clock
        self._blocking = Blocking()
        self._running: dict[str, _Running] = {}
        self._reported: dict[str, str | None] = {}
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- lifespan ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start every enabled mapping's poller and finish interrupted transitions."""
        self._wake = asyncio.Event()
        await self.reconcile()
        self._loop_task = asyncio.create_task(self._loop(), name="lambdaplane-esm-manager")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        async with self._lock:
            await asyncio.gather(*(self._stop(uuid) for uuid in list(self._running)))
        self._clients.close()

    def notify(self) -> None:
        """A mapping was written: reconcile soon."""
        if self._wake is not None:
            self._wake.set()

    def running(self) -> dict[str, MappingConfig]:
        """The mappings whose poller runs now, by UUID."""
        return {uuid: r.mapping for uuid, r in self._running.items()}

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.sweep_seconds)
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconciling event source mappings failed; retrying")

    # -- reconcile ---------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Make the running pollers match the store, and settle transient states."""
        async with self._lock:
            stored = await asyncio.to_thread(self._repo.all)
            seen = set()
            for row in stored:
                seen.add(row.uuid)
                try:
                    await self._reconcile_one(row)
                except Exception:
                    log.exception("reconciling event source mapping %s failed", row.uuid)
            for uuid in list(self._running):
                if uuid not in seen:
                    await self._stop(uuid)

    async def _reconcile_one(self, row: StoredMapping) -> None:
        state = State(row.state)
        if state is State.DELETING:
            await self._stop(row.uuid)
            if await asyncio.to_thread(self._repo.delete, row.uuid, row.revision):
                self._reported.pop(row.uuid, None)
                if self._forget is not None:
                    mapping = mapping_config(row, self._region, self._account_id)
                    await asyncio.to_thread(self._forget, mapping.mapping_arn)
                log.info("event source mapping %s deleted", row.uuid)
            return
        wanted = row.enabled and state is not State.DISABLING
        if wanted:
            await self._ensure_running(mapping_config(row, self._region, self._account_id), row)
        else:
            await self._stop(row.uuid)
        if state in TRANSIENT:
            target = settled(wanted)
            done = row.with_changes(state=target.value, revision=new_revision())
            if await asyncio.to_thread(self._repo.replace, done, row.revision):
                log.info("event source mapping %s: %s -> %s", row.uuid, state, target)
            # else: changed meanwhile; the next round sees the new row

    async def _ensure_running(self, mapping: MappingConfig, row: StoredMapping) -> None:
        running = self._running.get(mapping.uuid)
        if running is not None:
            if running.mapping == mapping and not running.task.done():
                return
            await self._stop(mapping.uuid)
        self._reported.setdefault(mapping.uuid, row.last_processing_result)
        stopping = asyncio.Event()
        task = asyncio.create_task(
            self._supervise(mapping, stopping), name=f"lambdaplane-esm-{mapping.uuid}"
        )
        self._running[mapping.uuid] = _Running(mapping, stopping, task)
        log.info(
            "event source mapping %s: polling %s for %s",
            mapping.uuid,
            mapping.event_source_arn or mapping.source_kind,
            mapping.function_name,
        )

    async def _stop(self, uuid: str) -> None:
        running = self._running.pop(uuid, None)
        if running is None:
            return
        running.stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(running.task), self._settings.stop_grace_seconds)
        except TimeoutError:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running.task
        except Exception:
            log.exception("poller of %s failed while stopping", uuid)

    # -- one mapping's poller ------------------------------------------------------------

    async def _supervise(self, mapping: MappingConfig, stopping: asyncio.Event) -> None:
        low, high = self._settings.backoff
        delay = low
        while not stopping.is_set():
            ctx = self.context(mapping, stopping)
            factory = self._pollers.get(mapping.source_kind)
            if factory is None:
                log.warning(
                    "event source mapping %s: lambdaplane has no poller for %s sources",
                    mapping.uuid,
                    mapping.source_kind,
                )
                await ctx.report(f"PROBLEM: No poller for {mapping.source_kind} event sources.")
                await stopping.wait()
                return
            started = self._clock()
            try:
                await factory(mapping).run(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("poller of event source mapping %s failed", mapping.uuid)
                await ctx.report(f"PROBLEM: {exc}"[:1024])
            else:
                if stopping.is_set():
                    return
                log.warning("poller of %s returned without being stopped", mapping.uuid)
            if self._clock() - started >= self._settings.healthy_run_seconds:
                delay = low
            if await ctx.sleep(delay):
                return
            delay = min(high, delay * 2)

    def context(self, mapping: MappingConfig, stopping: asyncio.Event) -> PollerContext:
        """The context a poller of ``mapping`` runs with."""
        return PollerContext(
            mapping=mapping,
            invoke=lambda payload: self._invoke_function(mapping, payload),
            checkpoints=_Checkpoints(self._repo, mapping.uuid, self._clock),
            metrics=self.metrics.for_mapping(
                mapping.uuid, mapping.function_name, mapping.source_kind
            ),
            endpoint=self._clients.endpoint,
            client=self._clients.client,
            blocking=self._blocking,
            send_to_destination=self._send,
            report=lambda result: self._report(mapping.uuid, result),
            stopping=stopping,
            secret=self._secrets.get,
            broker=self._brokers.get,
            function_role=lambda: self._function_role(mapping),
            region=self._region,
            account_id=self._account_id,
            clock=self._clock,
        )

    async def _invoke_function(self, mapping: MappingConfig, payload: bytes) -> InvokeOutcome:
        request_id = ids.request_id()
        try:
            result = await self._invoke.invoke(
                mapping.function_name, mapping.qualifier, payload, request_id=request_id
            )
        except TooManyRequestsException as err:
            raise Throttled(err.message or "Rate Exceeded.") from err
        except LambdaError as err:
            raise InvokeUnavailable(err.message or err.code) from err
        return InvokeOutcome(
            result.status,
            result.payload,
            result.function_error,
            result.executed_version,
            request_id,
        )

    async def _function_role(self, mapping: MappingConfig) -> str | None:
        try:
            stored = await asyncio.to_thread(
                self._invoke.resolve, mapping.function_name, mapping.qualifier
            )
        except LambdaError:
            return None
        role = stored.config.get("Role")
        return str(role) if role else None

    async def _send(self, record: dict[str, Any], destination_arn: str) -> bool:
        if self._deliver is None:
            log.warning("no destination router: a record for %s was not sent", destination_arn)
            return False
        return await self._deliver(record, destination_arn)

    async def _report(self, uuid: str, result: str) -> None:
        if self._reported.get(uuid) == result:
            return
        self._reported[uuid] = result
        try:
            await asyncio.to_thread(self._repo.set_last_processing_result, uuid, result)
        except Exception:
            log.exception("could not store the LastProcessingResult of %s", uuid)


class _Checkpoints:
    """One mapping's checkpoints in the store (``Checkpoints``)."""

    def __init__(
        self, repo: EventSourceMappingRepository, uuid: str, clock: Callable[[], float]
    ) -> None:
        self._repo = repo
        self._uuid = uuid
        self._clock = clock

    async def get(self, key: str) -> str | None:
        return await asyncio.to_thread(self._repo.checkpoint, self._uuid, key)

    async def put(self, key: str, value: str) -> None:
        await self.put_many({key: value})

    async def put_many(self, values: Mapping[str, str]) -> None:
        await asyncio.to_thread(self._repo.put_checkpoints, self._uuid, dict(values), self._clock())

    async def all(self) -> dict[str, str]:
        return await asyncio.to_thread(self._repo.checkpoints, self._uuid)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._repo.delete_checkpoint, self._uuid, key)
