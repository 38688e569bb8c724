"""Provisioned concurrency: keep N initialised environments of a version ahead of demand.

The stored configs are the desired state; ``Provisioner`` reconciles this node's
environments with them, in one background task the server owns: at start (so a
restart provisions again), after every local write (``changed``), and every
``interval`` seconds (so a config deleted with its function, version or alias, an
alias moved to another version, or an environment that died, is seen without being
told). An alias's config provisions its primary version; when the alias moves, the
old version's environments are kept until the new one's are READY.

A config's status moves IN_PROGRESS → READY once all its environments have run their
init, or → FAILED (``FUNCTION_ERROR_INIT_FAILURE``, AWS's reason) when an init fails;
a FAILED config stays so until it is put again. ``Allocated`` counts the initialised
environments; a dead one is replaced, and the count drops until it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from lambdaplane.invoke.environment import EnvState
from lambdaplane.invoke.image import FunctionImage
from lambdaplane.invoke.pools import EnvironmentPools
from lambdaplane.store.functions import StoredFunction

log = logging.getLogger("lambdaplane.provisioned")

IN_PROGRESS = "IN_PROGRESS"
READY = "READY"
FAILED = "FAILED"
INIT_FAILURE = "FUNCTION_ERROR_INIT_FAILURE"
RECONCILE_SECONDS = 1.0
RECONCILE_TIMEOUT_SECONDS = 30.0  # one pass; a stuck store must not stop the loop for good

ConfigKey = tuple[str, str]  # (function name, qualifier)


@dataclass(frozen=True)
class Target:
    """A stored config, resolved: the version it provisions (an alias's primary one)."""

    function_name: str
    qualifier: str
    requested: int
    last_modified: float
    version: StoredFunction | None  # None: nothing to provision (yet)


@dataclass(frozen=True)
class Allocation:
    """What a config has now on this node, as the API reports it."""

    allocated: int
    status: str
    reason: str | None = None


@dataclass
class _State:
    version: str
    last_modified: float
    status: str = IN_PROGRESS
    reason: str | None = None
    previous: str | None = None  # an alias's former version, kept until the new is READY
    starting: asyncio.Task[None] | None = None


class Provisioner:
    """Keeps each stored config's environments; methods are called on the server's loop."""

    def __init__(
        self,
        pools: EnvironmentPools,
        targets: Callable[[], list[Target]],
        image_of: Callable[[StoredFunction], FunctionImage],
        interval: float = RECONCILE_SECONDS,
    ) -> None:
        self._pools = pools
        self._targets = targets  # blocking (reads the store): run in a worker thread
        self._image_of = image_of  # blocking (may unpack code)
        self._interval = interval
        self._states: dict[ConfigKey, _State] = {}
        self._nudge = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- what the API reads and tells -----------------------------------------------------

    def allocation(self, function_name: str, qualifier: str, requested: int) -> Allocation:
        """The config's allocation now (IN_PROGRESS with nothing allocated until seen)."""
        state = self._states.get((function_name, qualifier))
        if state is None:
            return Allocation(0, IN_PROGRESS)
        allocated = self._ready(function_name, state.version)
        if state.previous is not None:
            allocated += self._ready(function_name, state.previous)
        if state.status == FAILED:
            allocated = 0
        return Allocation(min(allocated, requested), state.status, state.reason)

    def changed(self, function_name: str, qualifier: str) -> None:
        """A config was put or deleted here: report IN_PROGRESS until the next pass
        applies it (a put changes the stored LastModified, so it starts over)."""
        state = self._states.get((function_name, qualifier))
        if state is not None:
            state.status, state.reason = IN_PROGRESS, None
        self._nudge.set()

    # -- the loop ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lambdaplane-provisioner")

    async def stop(self) -> None:
        """Stop reconciling (the pools' shutdown destroys the environments)."""
        task, self._task = self._task, None
        starting = [s.starting for s in self._states.values() if s.starting is not None]
        for pending in [task, *starting]:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.reconcile(), RECONCILE_TIMEOUT_SECONDS)
            except Exception:
                log.exception("provisioning environments failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), self._interval)
            self._nudge.clear()

    async def reconcile(self) -> None:
        """One pass: make this node's provisioned environments match the stored configs."""
        targets = await asyncio.to_thread(self._targets)
        wanted = {(t.function_name, t.qualifier): t for t in targets}
        for key in [k for k in self._states if k not in wanted]:
            state = self._states.pop(key)
            if state.starting is not None:
                state.starting.cancel()
            await self._give_up(key[0], (state.version, state.previous))
        for key, target in wanted.items():
            await self._apply(key, target)

    async def _apply(self, key: ConfigKey, target: Target) -> None:
        name = key[0]
        state = self._states.get(key)
        stored = target.version
        version = stored.version if stored is not None else ""
        if state is None or state.last_modified != target.last_modified:
            fresh = _State(version, target.last_modified)
            if state is not None:  # put again: start over (a FAILED config retries)
                if state.starting is not None:
                    state.starting.cancel()
                self._states[key] = fresh
                await self._give_up(name, (state.version, state.previous))
            state = self._states[key] = fresh
        elif state.version != version:  # the alias moved
            abandoned: str | None = state.version
            if state.previous is None:
                state.previous, abandoned = state.version, None
            elif state.previous == version:
                state.previous = None
            state.version, state.status, state.reason = version, IN_PROGRESS, None
            await self._give_up(name, (abandoned,))
        if state.status == FAILED or stored is None or stored.state != "Active":
            return
        await self._pools.unprovision(name, version, keep=target.requested)  # dead, surplus
        missing = target.requested - len(self._pools.provisioned(name, version))
        if missing > 0 and state.starting is None:
            state.starting = asyncio.create_task(
                self._provision(key, state, stored, missing), name=f"lambdaplane-provision-{name}"
            )
        if self._ready(name, version) >= target.requested:
            state.status = READY
            if state.previous is not None:
                previous, state.previous = state.previous, None
                await self._give_up(name, (previous,))

    async def _provision(
        self, key: ConfigKey, state: _State, stored: StoredFunction, count: int
    ) -> None:
        try:
            image = await asyncio.to_thread(self._image_of, stored)
            results = await self._pools.provision(image, count)
            if any(result is not None for result in results) and self._states.get(key) is state:
                state.status, state.reason = FAILED, INIT_FAILURE
                await self._pools.unprovision(key[0], state.version)
        except Exception:
            log.exception("provisioning %s:%s failed", *key)
            if self._states.get(key) is state:
                state.status, state.reason = FAILED, INIT_FAILURE
        finally:
            state.starting = None
            self._nudge.set()

    async def _give_up(self, name: str, versions: tuple[str | None, ...]) -> None:
        """Unprovision the function's ``versions`` that no config's state keeps now."""
        kept = {
            v
            for (n, _), s in self._states.items()
            if n == name
            for v in (s.version, s.previous)
            if v is not None
        }
        for version in versions:
            if version and version not in kept:
                await self._pools.unprovision(name, version)

    def _ready(self, function_name: str, version: str) -> int:
        return sum(
            1
            for e in self._pools.provisioned(function_name, version)
            if e.state in (EnvState.READY, EnvState.INVOKING)
        )
