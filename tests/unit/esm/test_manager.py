"""The manager: reconciling the store with running pollers, states, crashes, checkpoints."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.errors import ResourceNotFoundException, TooManyRequestsException
from lambdaplane.esm.access import SourceClients
from lambdaplane.esm.manager import EsmManager, ManagerSettings
from lambdaplane.esm.metrics import EsmMetrics
from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.poller import InvokeUnavailable, PollerContext, Throttled
from lambdaplane.invoke.service import InvokeResult
from lambdaplane.store import open_engine, upgrade
from lambdaplane.store.event_source_mappings import (
    EventSourceMappingRepository,
    StoredMapping,
    new_revision,
)

QUEUE = "arn:aws:sqs:us-east-1:000000000000:orders"


def sync(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class FakeInvoke:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, bytes]] = []
        self.error: Exception | None = None

    async def invoke(
        self, name: str, qualifier: str | None, payload: bytes, **_: Any
    ) -> InvokeResult:
        self.calls.append((name, qualifier, payload))
        if self.error is not None:
            raise self.error
        return InvokeResult(200, b'"ok"', "$LATEST")


class Recorder:
    """A poller factory whose pollers note what they did and wait to be stopped."""

    def __init__(self, crash_times: int = 0) -> None:
        self.runs: list[MappingConfig] = []
        self.running: set[str] = set()
        self.contexts: list[PollerContext] = []
        self.crash_times = crash_times

    def __call__(self, mapping: MappingConfig) -> Any:
        recorder = self

        class _Poller:
            async def run(self, ctx: PollerContext) -> None:
                recorder.runs.append(mapping)
                recorder.contexts.append(ctx)
                if recorder.crash_times > 0:
                    recorder.crash_times -= 1
                    raise RuntimeError("source exploded")
                recorder.running.add(mapping.uuid)
                try:
                    await ctx.stopping.wait()
                finally:
                    recorder.running.discard(mapping.uuid)

        return _Poller()


@pytest.fixture
def repo(tmp_path: Path) -> EventSourceMappingRepository:
    engine = open_engine(f"sqlite:///{tmp_path / 'esm.db'}")
    upgrade(engine)
    return EventSourceMappingRepository(engine, "000000000000", "us-east-1")


def insert(repo: EventSourceMappingRepository, state: str, enabled: bool = True) -> StoredMapping:
    stored = StoredMapping(
        uuid=f"00000000-0000-0000-0000-{time.monotonic_ns() % 10**12:012d}",
        function_name="fn",
        qualifier="live",
        source_kind="sqs",
        source_key=QUEUE,
        config={"EventSourceArn": QUEUE, "BatchSize": 10},
        enabled=enabled,
        state=state,
        state_reason="USER_INITIATED",
        last_processing_result=None,
        last_modified=1.0,
        created_at=time.time(),
        revision=new_revision(),
    )
    repo.insert(stored)
    return stored


def manager(
    repo: EventSourceMappingRepository,
    pollers: Recorder,
    invoke: FakeInvoke | None = None,
    forgotten: list[str] | None = None,
) -> EsmManager:
    return EsmManager(
        repo=repo,
        invoke=invoke or FakeInvoke(),  # type: ignore[arg-type]
        clients=SourceClients({}, "us-east-1"),
        metrics=EsmMetrics(),
        region="us-east-1",
        account_id="000000000000",
        forget=(forgotten.append if forgotten is not None else None),
        pollers={"sqs": pollers},
        settings=ManagerSettings(sweep_seconds=0.05, stop_grace_seconds=0.5, backoff=(0.01, 0.05)),
    )


async def until(predicate: Callable[[], bool], timeout: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@sync
async def test_start_runs_enabled_mappings_and_settles_transient_states(
    repo: EventSourceMappingRepository,
) -> None:
    creating = insert(repo, "Creating")
    enabled = insert(repo, "Enabled")
    disabled = insert(repo, "Disabled", enabled=False)
    pollers = Recorder()
    esm = manager(repo, pollers)
    await esm.start()
    try:
        await until(lambda: pollers.running == {creating.uuid, enabled.uuid})
        assert repo.get(creating.uuid).state == "Enabled"  # type: ignore[union-attr]
        assert repo.get(disabled.uuid).state == "Disabled"  # type: ignore[union-attr]
        assert set(esm.running()) == {creating.uuid, enabled.uuid}
    finally:
        await esm.stop()
    assert pollers.running == set()


@sync
async def test_disabling_updating_and_deleting(repo: EventSourceMappingRepository) -> None:
    stored = insert(repo, "Enabled")
    pollers = Recorder()
    forgotten: list[str] = []
    esm = manager(repo, pollers, forgotten=forgotten)
    await esm.start()
    try:
        await until(lambda: stored.uuid in pollers.running)
        current = repo.get(stored.uuid)
        assert current is not None
        changed = current.with_changes(
            config={**current.config, "BatchSize": 5}, state="Updating", revision=new_revision()
        )
        assert repo.replace(changed, current.revision)
        esm.notify()
        await until(lambda: len(pollers.runs) == 2)  # a fresh poller with the new config
        assert pollers.runs[-1].batch_size == 5
        await until(lambda: repo.get(stored.uuid).state == "Enabled")  # type: ignore[union-attr]

        current = repo.get(stored.uuid)
        assert current is not None
        off = current.with_changes(enabled=False, state="Disabling", revision=new_revision())
        assert repo.replace(off, current.revision)
        esm.notify()
        await until(lambda: repo.get(stored.uuid).state == "Disabled")  # type: ignore[union-attr]
        assert pollers.running == set()

        current = repo.get(stored.uuid)
        assert current is not None
        repo.put_checkpoints(stored.uuid, {"shard-1": "42"}, 1.0)
        gone = current.with_changes(state="Deleting", revision=new_revision())
        assert repo.replace(gone, current.revision)
        esm.notify()
        await until(lambda: repo.get(stored.uuid) is None)
        assert repo.checkpoints(stored.uuid) == {}
        assert forgotten == [
            f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{stored.uuid}"
        ]
    finally:
        await esm.stop()


@sync
async def test_a_crashing_poller_is_restarted_and_reported(
    repo: EventSourceMappingRepository,
) -> None:
    stored = insert(repo, "Enabled")
    pollers = Recorder(crash_times=2)
    esm = manager(repo, pollers)
    await esm.start()
    try:
        await until(lambda: stored.uuid in pollers.running)
        assert len(pollers.runs) == 3
        result = repo.get(stored.uuid).last_processing_result  # type: ignore[union-attr]
        assert result == "PROBLEM: source exploded"
    finally:
        await esm.stop()


@sync
async def test_a_kind_without_a_poller_is_reported(repo: EventSourceMappingRepository) -> None:
    stored = insert(repo, "Enabled")
    esm = EsmManager(
        repo=repo,
        invoke=FakeInvoke(),  # type: ignore[arg-type]
        clients=SourceClients({}, "us-east-1"),
        metrics=EsmMetrics(),
        region="us-east-1",
        account_id="000000000000",
        pollers={},
    )
    await esm.start()
    try:
        await until(
            lambda: (repo.get(stored.uuid).last_processing_result or "").startswith("PROBLEM")  # type: ignore[union-attr]
        )
    finally:
        await esm.stop()


@sync
async def test_context_invokes_the_mapped_qualifier_and_maps_errors(
    repo: EventSourceMappingRepository,
) -> None:
    stored = insert(repo, "Enabled")
    pollers = Recorder()
    invoke = FakeInvoke()
    esm = manager(repo, pollers, invoke)
    await esm.start()
    try:
        await until(lambda: stored.uuid in pollers.running)
        ctx = pollers.contexts[-1]
        outcome = await ctx.invoke(b'{"Records":[]}')
        assert outcome.ok and outcome.payload == b'"ok"' and outcome.request_id
        assert invoke.calls == [("fn", "live", b'{"Records":[]}')]
        invoke.error = TooManyRequestsException("Rate Exceeded.")
        with pytest.raises(Throttled):
            await ctx.invoke(b"{}")
        invoke.error = ResourceNotFoundException("Function not found: fn")
        with pytest.raises(InvokeUnavailable) as info:
            await ctx.invoke(b"{}")
        assert not isinstance(info.value, Throttled)

        await ctx.checkpoints.put("shard-0", "7")
        await ctx.checkpoints.put_many({"shard-0": "8", "shard-1": "9"})
        assert await ctx.checkpoints.get("shard-0") == "8"
        assert await ctx.checkpoints.all() == {"shard-0": "8", "shard-1": "9"}
        await ctx.checkpoints.delete("shard-1")
        assert await ctx.checkpoints.all() == {"shard-0": "8"}

        await ctx.report("OK")
        await ctx.report("OK")
        assert repo.get(stored.uuid).last_processing_result == "OK"  # type: ignore[union-attr]
        assert await ctx.send_to_destination({"a": 1}, QUEUE) is False  # no router here
    finally:
        await esm.stop()


@sync
async def test_a_new_manager_resumes_what_the_store_holds(
    repo: EventSourceMappingRepository,
) -> None:
    stored = insert(repo, "Enabled")
    first = Recorder()
    esm = manager(repo, first)
    await esm.start()
    await until(lambda: stored.uuid in first.running)
    await esm.stop()
    second = Recorder()
    again = manager(repo, second)
    await again.start()
    try:
        await until(lambda: stored.uuid in second.running)
    finally:
        await again.stop()
