"""The live execution environments of this node, grouped in pools per function version.

``EnvironmentPools`` applies the scheduler's decisions: it hands out a warm
environment, or starts a cold one (at most ``max_parallel_starts`` sandbox creations
at once, so a burst on 2 cores does not stampede), or throttles. A reaper task owned
by the server's lifespan destroys idle environments after the keep-alive and those of
superseded versions; ``shutdown`` destroys everything.

Provisioned environments (``provision``) are started ahead of demand for one version,
initialised with ``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency``; placement
prefers them, the reaper never takes them, and ``unprovision`` gives them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from lambdaplane.errors import TooManyRequestsException
from lambdaplane.invoke import prewarm, scheduler, snapstart
from lambdaplane.invoke.burst import BurstLimiter
from lambdaplane.invoke.environment import (
    PROVISIONED,
    AgentLaunch,
    Environment,
    EnvState,
    Outcome,
)
from lambdaplane.invoke.image import FunctionImage
from lambdaplane.invoke.logsink import LogSink
from lambdaplane.invoke.prewarm import Prewarmer
from lambdaplane.metrics import EnvironmentCensus
from lambdaplane.sandbox import CpuPolicy, Sandbox
from lambdaplane.service.concurrency import NO_RESERVATIONS, Reservations

log = logging.getLogger("lambdaplane.pools")

REAP_INTERVAL_SECONDS = 1.0


class FunctionDisabled(TooManyRequestsException):
    """The throttle of a function whose reserved concurrency is 0.

    The same error on the wire; an asynchronous event that meets it is not retried but
    goes to the failure destination with condition ZeroReservedConcurrency, as on AWS.
    """


def throttled(reason: str, disabled: bool = False) -> TooManyRequestsException:
    kind = FunctionDisabled if disabled else TooManyRequestsException
    return kind("Rate Exceeded.", Reason=reason)


class EnvironmentPools:
    def __init__(
        self,
        *,
        sandbox: Sandbox,
        agent: AgentLaunch,
        sink: LogSink,
        region: str,
        limits: scheduler.Limits,
        keep_alive: float,
        init_timeout: float,
        cpu: CpuPolicy,
        max_parallel_starts: int,
        prewarmer: Prewarmer | None = None,
        clock: Callable[[], float] = time.monotonic,
        reservations: Callable[[], Reservations] = lambda: NO_RESERVATIONS,
        burst: BurstLimiter | None = None,
    ) -> None:
        self._sandbox = sandbox
        self._agent = agent
        self._sink = sink
        self._region = region
        self._limits = limits
        self._keep_alive = keep_alive
        self._init_timeout = init_timeout
        self._cpu = cpu
        self._clock = clock
        self._starts = asyncio.Semaphore(max_parallel_starts)
        # Cold starts queued for a start slot, woken when an environment goes idle: they
        # take it instead of starting another.
        self._waiters: list[asyncio.Future[None]] = []
        self._reservations = reservations  # reserved concurrency, from memory
        self._burst = burst  # the per-function scaling rate
        self._envs: dict[str, Environment] = {}
        self._current: dict[str, str] = {}  # function name:version -> its current pool key
        self._reaper: asyncio.Task[None] | None = None
        self._prewarmer = prewarmer
        self.snapstarts: snapstart.SnapStarts | None = None  # set by the server (root only)
        self._provisioned: set[str] = set()  # ids of provisioned environments
        self._retired: set[str] = set()  # unprovisioned while busy: destroyed at release

    def _views(self) -> list[scheduler.EnvView]:
        return [
            scheduler.EnvView(
                e.id,
                e.image.pool_key,
                e.image.memory_mb,
                e.busy,
                e.last_used,
                e.image.function_name,
                e.id in self._provisioned,
            )
            for e in self._envs.values()
        ]

    async def acquire(self, image: FunctionImage) -> tuple[Environment, Outcome | None]:
        """An environment for one invocation, marked busy; with the init failure if it had one.

        Raises TooManyRequestsException when neither a warm nor a new environment fits.
        """
        self._current[f"{image.function_name}:{image.version}"] = image.pool_key
        await self._discard_dead()
        reservations = self._reservations()
        warm = self._warm(image, reservations)
        if warm is not None:
            return warm, None
        decision = scheduler.place(
            image.pool_key,
            image.memory_mb,
            self._views(),
            self._limits,
            function_name=image.function_name,
            reservations=reservations.by_function,
            total_reserved=reservations.total,
        )
        if isinstance(decision, scheduler.UseIdle):
            env = self._envs[decision.env_id]
            return env, None
        if isinstance(decision, scheduler.Throttle):
            raise throttled(decision.reason, decision.disabled)
        if self._burst is not None and not self._burst.take(image.function_name):
            reserved = reservations.of(image.function_name) is not None
            raise throttled(scheduler.RESERVED_RATE_REASON if reserved else scheduler.RATE_REASON)
        for env_id in decision.evict:
            evicted = self._envs.pop(env_id, None)
            if evicted is not None:
                await evicted.destroy()
        if self.snapstarts is not None and snapstart.optimized(image):
            return await self._restore(image, self.snapstarts)
        key = prewarm.key_for(image) if self._prewarmer is not None else None
        claimed = self._prewarmer.take(key) if self._prewarmer is not None and key else None
        env = self._counted(
            self._environment(image, env_id=claimed.env_id if claimed is not None else None)
        )
        try:
            if claimed is not None and self._prewarmer is not None:
                failure = await env.adopt(claimed, self._prewarmer.mounts, self._init_timeout)
            else:
                reused = await self._slot_or_idle(image.pool_key)
                if reused is not None:  # An environment went idle while this one waited.
                    # The placeholder never started: nothing to stop. No await from here
                    # on, so the idle one is still idle when the caller invokes it.
                    self._envs.pop(env.id, None)
                    if self._burst is not None:
                        self._burst.refund(image.function_name)
                    return reused, None
                try:
                    failure = await env.start(self._init_timeout)
                finally:
                    self._starts.release()
            if self._prewarmer is not None and key is not None:
                self._prewarmer.want(key, image.runtime)  # Ready for the next cold start.
        except BaseException:
            await self._destroy(env)
            raise
        return await self._started(env, failure)

    def _warm(self, image: FunctionImage, reservations: Reservations) -> Environment | None:
        """The scheduler's UseIdle answer without its snapshot, where no limit can be in
        reach: a function without a reservation, and fewer live environments than the
        unreserved concurrency (each counted one is live, so none can throttle). The same
        choice as ``scheduler.place``: an idle provisioned environment of the pool key
        first, else the idle one used last. None: ask the scheduler."""
        if image.function_name in reservations.by_function or len(self._envs) >= (
            self._limits.account_concurrency - reservations.total
        ):
            return None
        best: Environment | None = None
        best_provisioned = False
        for env in self._envs.values():
            if env.image.pool_key != image.pool_key or env.busy:
                continue
            provisioned = env.id in self._provisioned
            if (
                best is None
                or (provisioned and not best_provisioned)
                or (provisioned == best_provisioned and env.last_used > best.last_used)
            ):
                best, best_provisioned = env, provisioned
        return best

    def _environment(
        self, image: FunctionImage, *, env_id: str | None = None, init_type: str = "on-demand"
    ) -> Environment:
        return Environment(
            image,
            sandbox=self._sandbox,
            agent=self._agent,
            region=self._region,
            sink=self._sink,
            cpu=self._cpu,
            clock=self._clock,
            env_id=env_id,
            init_type=init_type,
        )

    def _counted(self, env: Environment) -> Environment:
        """Count ``env`` (busy, STARTING) at once, before the first await of its start."""
        self._envs[env.id] = env
        return env

    async def _destroy(self, env: Environment) -> None:
        """Forget ``env`` (and any provisioned role it had), then stop it."""
        self._drop(env.id)
        await env.destroy()

    async def _started(
        self, env: Environment, failure: Outcome | None
    ) -> tuple[Environment, Outcome | None]:
        """A started environment for its first invocation, or its init failure (it is
        destroyed then: an environment whose init failed is never reused)."""
        if failure is not None:
            await self._destroy(env)
        return env, failure

    async def _restore(
        self, image: FunctionImage, snapstarts: snapstart.SnapStarts
    ) -> tuple[Environment, Outcome | None]:
        """A new environment of a SnapStart version, forked from its template."""
        # init_type: what its runtime sees (set in the template)
        env = self._counted(self._environment(image, init_type="snap-start"))
        try:
            template = await snapstarts.template(image)
            if isinstance(template, snapstart.SnapshotFailure):
                failure: Outcome | None = Outcome(
                    template.payload, "Unhandled", False, "error", template.error_type
                )
            else:
                failure = await env.restore(template, snapstart.RESTORE_SECONDS)
        except BaseException:
            await self._destroy(env)
            raise
        return await self._started(env, failure)

    def _idle_of(self, pool_key: str) -> Environment | None:
        for env in self._envs.values():
            if env.image.pool_key == pool_key and env.state is EnvState.READY and not env.dead:
                return env
        return None

    async def _slot_or_idle(self, pool_key: str) -> Environment | None:
        """Wait for a sandbox start slot (None: the caller holds one now and releases it),
        or for an environment of ``pool_key`` to go idle: that one is returned instead.

        Under a burst of first invocations this starts no more sandboxes than are needed:
        invocations queued behind the start slots take the environments that finish first.
        """
        while True:
            idle = self._idle_of(pool_key)
            if idle is not None:
                return idle
            if not self._starts.locked():
                await self._starts.acquire()  # free: returns at once
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            slot = asyncio.ensure_future(self._starts.acquire())
            try:
                await asyncio.wait((waiter, slot), return_when=asyncio.FIRST_COMPLETED)
            except BaseException:  # cancelled (the caller went away): hold no slot
                if not slot.cancel() and not slot.cancelled() and slot.exception() is None:
                    self._starts.release()  # it was acquired just before
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if not slot.done():
                slot.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await slot
            if slot.cancelled():
                continue  # an environment went idle: look again
            idle = self._idle_of(pool_key)
            if idle is not None:  # both at once: the idle one is cheaper
                self._starts.release()
                return idle
            return None

    def _wake(self) -> None:
        """An environment went idle: let every queued cold start look again."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _discard_dead(self) -> None:
        """Destroy idle environments whose runtime exited since their last invocation."""
        dead = [e for e in self._envs.values() if e.dead and not e.busy]
        for env in dead:
            self._envs.pop(env.id, None)
            await env.destroy()

    async def release(self, env: Environment) -> None:
        """Return an environment after an invocation: idle again, or destroyed if broken."""
        env.last_used = self._clock()
        if self._waiters:
            self._wake()  # a queued cold start may take this one
        if env.id in self._provisioned and env.state is EnvState.READY and not env.dead:
            return  # a version's environments never go stale
        if env.id in self._retired:
            pass  # unprovisioned while it ran
        elif env.state is EnvState.READY and not env.dead:
            stale = (
                self._current.get(f"{env.image.function_name}:{env.image.version}")
                != env.image.pool_key
            )
            if not stale:
                return
        await self._destroy(env)

    # -- provisioned concurrency --------------------------------------------------------

    async def provision(self, image: FunctionImage, count: int) -> list[Outcome | None]:
        """Start ``count`` provisioned environments of ``image`` and run their init now.

        Each is counted (busy, STARTING) before the first await, and idle for placement
        once READY. One result per environment: None when READY, else its init failure
        (that environment is destroyed). Pre-initialised sandboxes are left to on-demand
        cold starts.
        """
        envs = [self._environment(image, init_type=PROVISIONED) for _ in range(count)]
        for env in envs:
            self._envs[env.id] = env
            self._provisioned.add(env.id)
        return list(await asyncio.gather(*(self._start_provisioned(env) for env in envs)))

    async def _start_provisioned(self, env: Environment) -> Outcome | None:
        try:
            async with self._starts:
                failure = await env.start(self._init_timeout)
        except BaseException:
            await self._destroy(env)
            raise
        if failure is not None or env.id in self._retired:
            await self._destroy(env)  # failed, or given up while it started
        return failure

    def provisioned(self, function_name: str, version: str) -> list[Environment]:
        """The version's provisioned environments that are starting or alive."""
        live = []
        for env_id in list(self._provisioned):
            env = self._envs.get(env_id)
            if env is None:
                self._provisioned.discard(env_id)  # destroyed after a failed invocation
            elif (
                env.image.function_name == function_name
                and env.image.version == version
                and not env.dead
                and env.state not in (EnvState.RESETTING, EnvState.SHUT_DOWN)
            ):
                live.append(env)
        return live

    async def unprovision(self, function_name: str, version: str, keep: int = 0) -> None:
        """Give up the version's provisioned environments beyond ``keep``: dead ones, then
        idle ones at once; those starting or invoking go when they are done."""
        healthy = self.provisioned(function_name, version)
        for env_id in list(self._provisioned):
            env = self._envs.get(env_id)
            if (
                env is not None
                and env.image.function_name == function_name
                and env.image.version == version
                and env not in healthy
            ):
                await self._destroy(env)
        healthy.sort(key=lambda e: e.state is not EnvState.READY)  # idle ones first
        for env in healthy[keep:]:
            if env.state is EnvState.READY:
                await self._destroy(env)
            else:
                self._provisioned.discard(env.id)
                self._retired.add(env.id)

    def _drop(self, env_id: str) -> None:
        self._envs.pop(env_id, None)
        self._provisioned.discard(env_id)
        self._retired.discard(env_id)

    def forget(self, function_name: str) -> None:
        """A function was deleted: its idle environments go at the next reap."""
        for key in [k for k in self._current if k.split(":", 1)[0] == function_name]:
            del self._current[key]

    async def reap_once(self) -> None:
        if self.snapstarts is not None:
            await self.snapstarts.retire(self._current)
        if self._prewarmer is not None:
            await self._prewarmer.trim()
        live = frozenset(self._current.values())
        for env_id in scheduler.reap(self._views(), self._clock(), self._keep_alive, live):
            env = self._envs.pop(env_id, None)
            if env is not None:
                await env.destroy()

    async def start(self) -> None:
        if self.snapstarts is not None:
            self.snapstarts.bind(asyncio.get_running_loop())
        self._reaper = asyncio.create_task(self._reap_forever(), name="lambdaplane-reaper")

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL_SECONDS)
            try:
                await self.reap_once()
            except Exception:
                log.exception("reaping environments failed")

    async def shutdown(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
        envs = list(self._envs.values())
        self._envs.clear()
        await asyncio.gather(*(e.destroy() for e in envs), return_exceptions=True)
        if self._prewarmer is not None:
            await self._prewarmer.shutdown()
        if self.snapstarts is not None:
            await self.snapstarts.shutdown()

    @property
    def live(self) -> list[Environment]:
        return list(self._envs.values())

    def census(self) -> EnvironmentCensus:
        """What runs now, for the metrics (call on the event loop that owns the pools)."""
        states = {"initializing": 0, "busy": 0, "idle": 0}
        busy: dict[tuple[str, str], int] = {}
        provisioned: dict[tuple[str, str], int] = {}
        provisioned_busy: dict[tuple[str, str], int] = {}
        for env in self._envs.values():
            state = _CENSUS_STATES.get(env.state)
            if state is None:
                continue  # being destroyed
            states[state] += 1
            key = (env.image.function_name, env.image.version)
            if state != "idle":
                busy[key] = busy.get(key, 0) + 1
            if env.id in self._provisioned and state in ("idle", "busy"):
                provisioned[key] = provisioned.get(key, 0) + 1
                if state == "busy":
                    provisioned_busy[key] = provisioned_busy.get(key, 0) + 1
        prewarmed = self._prewarmer.waiting if self._prewarmer is not None else 0
        return EnvironmentCensus(
            {**states, "prewarmed": prewarmed},
            busy,
            self._limits.account_concurrency,
            provisioned,
            provisioned_busy,
            frozenset(self._reservations().by_function),
        )

    def provisioned_role(self, env: Environment) -> bool | None:
        """For an invocation ``env`` was just leased for: True when it is a provisioned
        environment, False when it is an on-demand one of a version that has provisioned
        ones (a spillover), None when the version has no provisioned concurrency here."""
        if not self._provisioned:
            return None  # the usual case, and free
        if env.id in self._provisioned:
            return True
        image = env.image
        for env_id in self._provisioned:
            other = self._envs.get(env_id)
            if (
                other is not None
                and other.image.function_name == image.function_name
                and other.image.version == image.version
            ):
                return False
        return None


_CENSUS_STATES = {
    EnvState.STARTING: "initializing",
    EnvState.INITIALIZING: "initializing",
    EnvState.INVOKING: "busy",
    EnvState.READY: "idle",
}
